#include "logic/conversation/message_json.h"

#include "absl/strings/escaping.h"

namespace im::logic {

nlohmann::json MessageJson(const im::v1::Message& message) {
  nlohmann::json json = {{"conv_id", message.conv_id()},
                         {"seq", message.seq()},
                         {"msg_id", std::to_string(message.msg_id())},
                         {"sender", message.sender()},
                         {"client_msg_id", message.client_msg_id()},
                         {"type", im::v1::MessageType_Name(message.type())},
                         {"body_base64", absl::Base64Escape(message.body())},
                         {"created_ms", message.created_ms()}};
  if (message.ref_seq() != 0) json["ref_seq"] = message.ref_seq();
  if (message.recalled()) json["recalled"] = true;
  if (message.edited_ms() != 0) json["edited_ms"] = message.edited_ms();
  return json;
}

}  // namespace im::logic
