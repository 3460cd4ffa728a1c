#include "sdk/wire_conversions.h"

namespace im::sdk {

Status StatusOf(const im::v1::Status& status) { return Status{status.code(), status.message()}; }

Message MessageOf(const im::v1::Message& message) {
  Message out;
  out.conv_id = message.conv_id();
  out.seq = message.seq();
  out.msg_id = message.msg_id();
  out.sender = message.sender();
  out.client_msg_id = message.client_msg_id();
  out.type = message.type();
  out.body = message.body();
  out.created_ms = message.created_ms();
  out.ref_seq = message.ref_seq();
  out.recalled = message.recalled();
  out.edited_ms = message.edited_ms();
  return out;
}

Conversation ConversationOf(const im::v1::Conversation& conversation) {
  Conversation out;
  out.conv_id = conversation.conv_id();
  out.max_seq = conversation.max_seq();
  out.delivered_seq = conversation.delivered_seq();
  out.read_seq = conversation.read_seq();
  out.unread = conversation.unread();
  out.peer_read_seq = conversation.peer_read_seq();
  out.updated_ms = conversation.updated_ms();
  if (conversation.has_last_message()) out.last_message = MessageOf(conversation.last_message());
  return out;
}

Presence PresenceOf(const im::v1::Presence& presence) {
  Presence out;
  out.uid = presence.uid();
  out.online = presence.online();
  out.devices.assign(presence.devices().begin(), presence.devices().end());
  out.last_seen_ms = presence.last_seen_ms();
  out.platforms.assign(presence.platforms().begin(), presence.platforms().end());
  // From a server that does not say (older than platforms): one empty platform per device.
  out.platforms.resize(out.devices.size());
  return out;
}

}  // namespace im::sdk
