#pragma once

#include "im/v1/client.pb.h"
#include "nlohmann/json.hpp"

namespace im::logic {

// A stored message as the app server sees it, in the admin API's answers and in webhooks: conv_id,
// seq, msg_id (a string: JSON numbers lose 64-bit precision), sender, client_msg_id, type (the
// MessageType name), body_base64, created_ms, and ref_seq, recalled and edited_ms when set.
nlohmann::json MessageJson(const im::v1::Message& message);

}  // namespace im::logic
