#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "im/v1/logic.pb.h"
#include "nlohmann/json.hpp"

namespace im::logic {

// The webhooks' request bodies (docs/callbacks.md), each the Standard Webhooks envelope
// {"type", "timestamp" (ISO 8601 UTC), "data"}, and their webhook-ids. A message's events take
// ids from the message (conv_id and seq), so a node that publishes one again after another
// node's death sends the same id, and the app drops the repeat.

// The check before a send is stored: the sender (uid, device), the conversation (conv_id, and
// to_uid or group_id), client_msg_id, type and body_base64.
im::v1::WebhookEvent BeforeSendEvent(const im::v1::Caller& caller, const im::v1::SendReq& send,
                                     int64_t now_ms);
// A message stored ("message.after_send"): the message as MessageJson gives it, and to_uid or
// group_id.
im::v1::WebhookEvent AfterSendEvent(const im::v1::Message& message, int64_t now_ms);
// A message some recipients have no online device for ("message.offline", the offline-push
// hook): the message and those recipients' uids.
im::v1::WebhookEvent OfflineMessageEvent(const im::v1::Message& message,
                                         const std::vector<std::string>& offline_uids,
                                         int64_t now_ms);
// The same for a group message: its members with no online device (never the sender), at most
// `kOfflineUidsPerEvent` in an event, each event's id the message's with the chunk's number
// ("offline_<conv>_<seq>_<n>", from 0). `offline_uids` are taken sorted, so a node that publishes
// the message's events again after another's death sends the same chunks while nobody came online.
inline constexpr size_t kOfflineUidsPerEvent = 1000;
std::vector<im::v1::WebhookEvent> GroupOfflineMessageEvents(
    const im::v1::Message& message, const std::vector<std::string>& offline_uids, int64_t now_ms);
// A device logged in or left ("user.online", "user.offline").
struct DeviceEventData {
  std::string uid;
  std::string device;
  std::string platform;
};
im::v1::WebhookEvent DeviceEvent(bool online, const DeviceEventData& device, int64_t now_ms);
// A group changed ("group.<event>": created, member_joined, member_left, member_removed,
// role_changed, dismissed): the notice's fields (group_id, by, count, uids, ...) and the
// notice message's conv_id and seq; `notice_id` identifies the change.
im::v1::WebhookEvent GroupEvent(const nlohmann::json& notice, const std::string& notice_id,
                                const im::v1::SendResp& posted, int64_t now_ms);

}  // namespace im::logic
