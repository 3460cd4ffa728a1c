#include "logic/conversation/message_change.h"

#include "fmt/format.h"

namespace im::logic {
namespace {

bool IsContent(im::v1::MessageType type) {
  return type == im::v1::TEXT || type == im::v1::IMAGE || type == im::v1::FILE ||
         type == im::v1::CUSTOM;
}

}  // namespace

ChangeVerdict JudgeChange(const im::v1::Message& original, im::v1::MessageType type,
                          const ChangeAuthor& author, int64_t now_ms,
                          const ChangeWindows& windows) {
  const bool recall = type == im::v1::RECALL;
  if (!IsContent(original.type()) || original.recalled()) {
    return {im::v1::NOT_CHANGEABLE,
            original.recalled() ? "the message is recalled" : "only content messages change"};
  }
  const bool own = original.sender() == author.uid;
  if (!own && !(recall && author.group_admin)) {
    return {im::v1::PERMISSION_DENIED, recall ? "only its sender or a group admin may recall it"
                                              : "only its sender may edit it"};
  }
  const int64_t window_ms = recall ? windows.recall_ms : windows.edit_ms;
  if (now_ms - original.created_ms() > window_ms) {
    return {
        im::v1::CHANGE_WINDOW_PASSED,
        fmt::format("{} is allowed for {} ms after a message; this one is {} ms old",
                    recall ? "a recall" : "an edit", window_ms, now_ms - original.created_ms())};
  }
  return {};
}

im::v1::Message ChangeOf(const im::v1::SendReq& req, const im::v1::SendResp& stored) {
  im::v1::Message change;
  change.set_conv_id(stored.conv_id());
  change.set_seq(stored.seq());
  change.set_msg_id(stored.msg_id());
  change.set_type(req.type());
  change.set_ref_seq(req.ref_seq());
  change.set_body(req.body());
  change.set_created_ms(stored.server_time_ms());
  return change;
}

}  // namespace im::logic
