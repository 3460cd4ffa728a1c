#pragma once

#include <cstdint>
#include <string>

namespace im::sdk {

// A message the app asked to send that the server has not confirmed yet. It lives in the outbox
// (and in the state store, so an app restart resumes it) until its SendResp arrives.
struct PendingSend {
  std::string client_msg_id;
  std::string conv_id;  // empty when to_uid names the peer of a single chat
  std::string to_uid;
  int type = 1;
  std::string body;
  uint64_t ref_seq = 0;  // RECALL (6) and EDIT (7): the seq they change in conv_id
  int64_t created_ms = 0;
  int64_t deadline_ms = 0;  // give up (report failed) after this wall-clock time; 0: never
};

}  // namespace im::sdk
