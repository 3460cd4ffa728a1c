#pragma once

#include "im/v1/client.pb.h"
#include "sdk/types.h"

namespace im::sdk {

// The SDK's plain values from their wire form (proto/im/v1/client.proto).
Status StatusOf(const im::v1::Status& status);
Message MessageOf(const im::v1::Message& message);
Conversation ConversationOf(const im::v1::Conversation& conversation);
Presence PresenceOf(const im::v1::Presence& presence);

}  // namespace im::sdk
