#pragma once

#include <cstdint>
#include <string>

#include "im/v1/client.pb.h"

namespace im::logic {

// Who may recall or edit a message, and until when (client.proto, MessageType RECALL and EDIT).
struct ChangeWindows {
  int64_t recall_ms = 0;
  int64_t edit_ms = 0;
};

// Who asks for a change: the caller, and whether it is an ADMIN or OWNER of the message's group
// (false in a single chat).
struct ChangeAuthor {
  std::string uid;
  bool group_admin = false;
};

// OK, or the code and reason that refuse `author` a change of `type` (RECALL or EDIT) to
// `original` at now_ms: only content (TEXT, IMAGE, FILE, CUSTOM) not recalled yet changes; its
// sender may recall or edit it, a group admin may recall it; each within its window of the
// message's creation.
struct ChangeVerdict {
  im::v1::Code code = im::v1::OK;
  std::string reason;
  bool ok() const { return code == im::v1::OK; }
};
ChangeVerdict JudgeChange(const im::v1::Message& original, im::v1::MessageType type,
                          const ChangeAuthor& author, int64_t now_ms, const ChangeWindows& windows);

// The change a sent RECALL or EDIT makes, as MessageStore::ApplyChange takes it: the request's
// type, ref_seq and body at the seq and time the send was stored with.
im::v1::Message ChangeOf(const im::v1::SendReq& req, const im::v1::SendResp& stored);

}  // namespace im::logic
