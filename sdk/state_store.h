#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sdk/pending_send.h"

namespace im::sdk {

// What a device must remember across app restarts: per conversation the delivered cursor (the
// highest contiguous seq handed to the app), and the outbox of unconfirmed sends.
// Called on the client's network thread only; implementations need no locking.
class StateStore {
 public:
  virtual ~StateStore() = default;

  // Everything saved for `uid` (a store may be shared by accounts; each sees only its own).
  virtual absl::Status Load(const std::string& uid, std::map<std::string, uint64_t>* cursors,
                            std::vector<PendingSend>* outbox) = 0;
  // Upserts cursors; a cursor never moves backwards.
  virtual absl::Status SaveCursors(const std::string& uid,
                                   const std::map<std::string, uint64_t>& cursors) = 0;
  virtual absl::Status AddPending(const std::string& uid, const PendingSend& send) = 0;
  virtual absl::Status RemovePending(const std::string& uid, const std::string& client_msg_id) = 0;
};

}  // namespace im::sdk
