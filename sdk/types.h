#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace im::sdk {

// Plain values the SDK hands to the app. They mirror im.v1 (proto/im/v1/client.proto) without
// exposing protobuf types, so that the public API does not change with the generated code.

// Status codes are the values of im.v1.Code: 0 is OK, below 100 the gRPC codes, from 100 up the
// protocol's own (NOT_MEMBER = 106, BODY_TOO_LARGE = 107, ...).
struct Status {
  int code = 0;
  std::string message;
  bool ok() const { return code == 0; }
};

struct Message {
  std::string conv_id;
  uint64_t seq = 0;
  uint64_t msg_id = 0;
  std::string sender;
  std::string client_msg_id;
  // im.v1.MessageType: 1 TEXT, 2 IMAGE, 3 FILE, 4 CUSTOM, 5 SYSTEM, and the changes of an earlier
  // message (ref_seq): 6 RECALL, 7 EDIT (body: the new body). An app applies a change to the
  // message it holds at ref_seq; history and sync already show that message's current version.
  int type = 1;
  std::string body;
  int64_t created_ms = 0;
  uint64_t ref_seq = 0;
  bool recalled = false;  // its body was deleted by a RECALL
  int64_t edited_ms = 0;  // when an EDIT last replaced its body; 0: never
};

// Message types (im.v1.MessageType) an app names.
// A system notice from "@system": a group's changes, or the app server's own (sdk/README.md).
inline constexpr int kMessageSystem = 5;
inline constexpr int kMessageRecall = 6;
inline constexpr int kMessageEdit = 7;

// Someone typing in a conversation (transient: shown for a few seconds, repeated while it lasts).
struct TypingNotice {
  std::string conv_id;
  std::string uid;
};

// Whether a user is online, and on which devices (Client::WatchPresence, OnPresence).
struct Presence {
  std::string uid;
  bool online = false;
  std::vector<std::string> devices;  // the devices logged in, in name order
  int64_t last_seen_ms = 0;          // offline: when its last device left (0: not known); online: 0
  // platforms[i]: the platform devices[i] logged in with (ClientOptions::platform; may be "").
  std::vector<std::string> platforms;
  bool operator==(const Presence&) const = default;
};

// The server's answer to Client::WatchPresence.
struct WatchedPresence {
  std::vector<Presence> presences;   // of the watched users, in uid order
  std::vector<std::string> refused;  // users this user shares no conversation with: not watched
};

struct Conversation {
  std::string conv_id;
  uint64_t max_seq = 0;
  uint64_t delivered_seq = 0;
  uint64_t read_seq = 0;
  uint64_t unread = 0;
  uint64_t peer_read_seq = 0;  // single chat: how far the peer has read
  int64_t updated_ms = 0;
  Message last_message;  // empty conv_id when the conversation has none
};

// What became of one Send(): sent (code 0, with the seq the server gave it) or failed for good.
struct SendResult {
  std::string client_msg_id;
  Status status;
  std::string conv_id;
  uint64_t seq = 0;
  uint64_t msg_id = 0;
  int64_t server_time_ms = 0;
};

struct ReadReceipt {
  std::string conv_id;
  std::string reader;
  uint64_t read_seq = 0;
};

struct GroupMember {
  std::string uid;
  int role = 1;  // im.v1.GroupRole: 1 MEMBER, 2 ADMIN, 3 OWNER
  uint64_t joined_seq = 0;
};

// Who in a group has read a message (Client::ListReaders).
struct GroupReaders {
  uint64_t read_count = 0;
  uint64_t unread_count = 0;         // members when it was sent, less its sender and the readers
  std::vector<std::string> readers;  // when asked, in uid order; empty when counts_only
  bool counts_only = false;          // the group is too large for names
};

struct GroupCreated {
  std::string group_id;
  std::string conv_id;
};

// One history page: messages in seq order, and ranges that will never hold a message.
struct HistoryPage {
  std::vector<Message> messages;
  std::vector<std::pair<uint64_t, uint64_t>> holes;
};

// What crossed the wire since the client was made (frames and their bytes, length prefix
// included), for an app's diagnostics and for benchmarks.
struct ClientStats {
  uint64_t frames_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t frames_received = 0;
  uint64_t bytes_received = 0;
};

enum class ConnectionState {
  kIdle,        // not started, or stopped
  kConnecting,  // connecting or logging in (after a failure: waiting for the next attempt)
  kConnected,   // logged in; sends and pushes flow
  kKicked,      // the server kicked this device (logged in elsewhere, admin): no reconnect
  kAuthFailed,  // the token was refused (expired, invalid): no reconnect until SetToken()
};

const char* ConnectionStateName(ConnectionState state);

}  // namespace im::sdk
