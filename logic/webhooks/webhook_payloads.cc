#include "logic/webhooks/webhook_payloads.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/random_id.h"
#include "logic/conversation/conversation_id.h"
#include "logic/conversation/message_json.h"

namespace im::logic {
namespace {

std::string IsoTime(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

im::v1::WebhookEvent Envelope(std::string id, const std::string& type, nlohmann::json data,
                              int64_t now_ms) {
  im::v1::WebhookEvent event;
  event.set_id(std::move(id));
  event.set_type(type);
  event.set_created_ms(now_ms);
  const nlohmann::json body = {
      {"type", type}, {"timestamp", IsoTime(now_ms)}, {"data", std::move(data)}};
  // Invalid UTF-8 in a uid or device name (clients choose those) is replaced, never thrown on.
  event.set_payload(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return event;
}

// to_uid (single chat, the participant other than `sender`) or group_id.
void AddRecipient(const std::string& conv_id, const std::string& sender, nlohmann::json& data) {
  const std::optional<ConversationId> conversation = ConversationId::Parse(conv_id);
  if (!conversation) return;
  if (conversation->kind == ConversationId::Kind::kGroup) {
    data["group_id"] = conversation->group_id;
  } else {
    data["to_uid"] = conversation->PeerOf(sender);
  }
}

// A message's id for one of its events: "<kind>_<conv_id>_<seq>" with the conversation's ':'
// spelled '-' (the id is a header and part of the signed text; kept to URL-safe characters).
std::string MessageEventId(const char* kind, const im::v1::Message& message) {
  return absl::StrCat(kind, "_", absl::StrReplaceAll(message.conv_id(), {{":", "-"}}), "_",
                      message.seq());
}

}  // namespace

im::v1::WebhookEvent BeforeSendEvent(const im::v1::Caller& caller, const im::v1::SendReq& send,
                                     int64_t now_ms) {
  // A single chat's sender may name the peer instead of the conversation.
  std::string conv_id = send.conv_id();
  if (conv_id.empty()) {
    const std::optional<ConversationId> single =
        ConversationId::Single(caller.uid(), send.to_uid());
    if (single) conv_id = single->ToString();
  }
  nlohmann::json data = {{"sender", caller.uid()},
                         {"device", caller.device()},
                         {"conv_id", conv_id},
                         {"client_msg_id", send.client_msg_id()},
                         {"type", im::v1::MessageType_Name(send.type())},
                         {"body_base64", absl::Base64Escape(send.body())}};
  AddRecipient(conv_id, caller.uid(), data);
  if (!data.contains("to_uid") && !data.contains("group_id") && !send.to_uid().empty()) {
    data["to_uid"] = send.to_uid();  // an invalid peer: the send is refused after the check
  }
  return Envelope(absl::StrCat("check_", common::RandomHexId()), "message.before_send",
                  std::move(data), now_ms);
}

im::v1::WebhookEvent AfterSendEvent(const im::v1::Message& message, int64_t now_ms) {
  nlohmann::json data = MessageJson(message);
  AddRecipient(message.conv_id(), message.sender(), data);
  return Envelope(MessageEventId("sent", message), "message.after_send", std::move(data), now_ms);
}

im::v1::WebhookEvent OfflineMessageEvent(const im::v1::Message& message,
                                         const std::vector<std::string>& offline_uids,
                                         int64_t now_ms) {
  nlohmann::json data = MessageJson(message);
  AddRecipient(message.conv_id(), message.sender(), data);
  data["offline_uids"] = offline_uids;
  return Envelope(MessageEventId("offline", message), "message.offline", std::move(data), now_ms);
}

std::vector<im::v1::WebhookEvent> GroupOfflineMessageEvents(
    const im::v1::Message& message, const std::vector<std::string>& offline_uids, int64_t now_ms) {
  nlohmann::json data = MessageJson(message);
  AddRecipient(message.conv_id(), message.sender(), data);
  const std::string id = MessageEventId("offline", message);
  std::vector<im::v1::WebhookEvent> events;
  for (size_t first = 0; first < offline_uids.size(); first += kOfflineUidsPerEvent) {
    const size_t end = std::min(offline_uids.size(), first + kOfflineUidsPerEvent);
    data["offline_uids"] =
        std::vector<std::string>(offline_uids.begin() + first, offline_uids.begin() + end);
    events.push_back(
        Envelope(absl::StrCat(id, "_", events.size()), "message.offline", data, now_ms));
  }
  return events;
}

im::v1::WebhookEvent DeviceEvent(bool online, const DeviceEventData& device, int64_t now_ms) {
  nlohmann::json data = {{"uid", device.uid}, {"device", device.device}};
  if (!device.platform.empty()) data["platform"] = device.platform;
  return Envelope(absl::StrCat("device_", common::RandomHexId()),
                  online ? "user.online" : "user.offline", std::move(data), now_ms);
}

im::v1::WebhookEvent GroupEvent(const nlohmann::json& notice, const std::string& notice_id,
                                const im::v1::SendResp& posted, int64_t now_ms) {
  nlohmann::json data = notice;
  const std::string event = data.value("event", "changed");
  data.erase("event");
  data["conv_id"] = posted.conv_id();
  data["seq"] = posted.seq();
  const std::string group_event = event == "group_created"     ? "created"
                                  : event == "group_dismissed" ? "dismissed"
                                                               : event;
  return Envelope(absl::StrReplaceAll(notice_id, {{":", "_"}}), absl::StrCat("group.", group_event),
                  std::move(data), now_ms);
}

}  // namespace im::logic
