#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sdk/pending_send.h"
#include "sdk/state_store.h"
#include "sdk/types.h"

namespace im::sdk {

class ClientCore;
}  // namespace im::sdk
namespace im::v1 {
class Frame;
}  // namespace im::v1
namespace im::sdk {

// Callbacks from the client. They run on the client's network thread, or through
// ClientOptions::executor when one is set; never two at once, and in the order things happened.
// A callback must not block for long (it holds up the network thread) and may call the Client.
class ClientListener {
 public:
  virtual ~ClientListener() = default;
  virtual void OnStateChanged(ConnectionState /*state*/, const Status& /*reason*/) {}
  // New messages of one conversation, in seq order, each message once over the life of the
  // cursor (see StateStore). Includes this device's own sends once the server has given them a seq.
  virtual void OnMessages(const std::string& /*conv_id*/,
                          const std::vector<Message>& /*messages*/) {}
  // The outcome of a Send(): sent (with its seq) or failed for good. Exactly once per send.
  virtual void OnSendResult(const SendResult& /*result*/) {}
  virtual void OnReadReceipt(const ReadReceipt& /*receipt*/) {}
  virtual void OnTyping(const TypingNotice& /*notice*/) {}
  // Watched users whose state the app has not heard yet (Client::WatchPresence): every one in
  // the first answer to a new list, then each change the server pushes, and after a reconnect
  // those that changed while the device was away.
  virtual void OnPresence(const std::vector<Presence>& /*presences*/) {}
};

// How the client trusts gateways it reaches over TLS.
struct TlsTrust {
  // PEM file of the CAs to trust; empty: the system's roots.
  std::string ca_file;
  // "sha256/<base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo>" each. When set, a
  // gateway is trusted if and only if its certificate's key is one of them (CA chain and name
  // are then not checked, so a self-signed certificate works). Pin two keys to rotate one.
  std::vector<std::string> pinned_keys;
  // The name the certificate must carry (and the SNI); empty: the host of the gateway address.
  std::string server_name;
};

struct ClientOptions {
  // Gateways as "host:port", or "tls://host:port" for a gateway's TLS port (gateway.tls_listen),
  // whose certificate is checked as `tls` says. The client starts at a random one (the first one
  // when `start_at_random_gateway` is false) and rotates on failure and on GoAway.
  std::vector<std::string> gateways;
  bool start_at_random_gateway = true;
  TlsTrust tls;
  // base64url(json{uid, exp, dev?}).signature, minted by the app's backend (DESIGN.md section 4).
  std::string token;
  std::string device = "default";
  std::string platform = "sdk";
  std::string client_version = "im-sdk/1";

  // Connecting and logging in must finish within this, or the attempt counts as failed.
  int64_t connect_timeout_ms = 10'000;
  // Requests (history, conversations, groups, read) fail with DEADLINE_EXCEEDED after this,
  // including time spent waiting for a connection.
  int64_t request_timeout_ms = 10'000;
  // A send not confirmed within this is reported failed (DEADLINE_EXCEEDED), unless it is on the
  // wire at that moment: then its answer decides. 0: retry for as long as the client lives.
  int64_t send_timeout_ms = 0;
  // Reconnect backoff: exponential with full jitter between these.
  int64_t reconnect_initial_ms = 250;
  int64_t reconnect_max_ms = 30'000;
  // Sends on the wire at once (the gateway allows 64 requests in flight per connection), at most:
  // a send refused for overload halves the window for a while, and acknowledged sends widen it
  // again (common::SendWindow), so a crowd of clients backs off together.
  uint32_t max_sends_in_flight = 32;
  // Delivered cursors are acked to the server (and saved to the store) this often.
  int64_t ack_interval_ms = 500;
  // A gap in a conversation (a push above a missing seq) is synced after this long, as the
  // missing message is usually just behind.
  int64_t gap_wait_ms = 300;
  uint32_t sync_page = 200;
  uint32_t max_frame_bytes = 64 * 1024;
  // After a reconnect, ask only for the conversations changed since the last session (ResumeReq)
  // instead of listing every conversation. false: always list (for comparison and debugging).
  bool resume_sessions = true;

  // Runs callbacks; must run tasks one at a time in order (an app's main-thread queue). Empty:
  // callbacks run on the network thread.
  std::function<void(std::function<void()>)> executor;
  // Diagnostics: level 0 debug, 1 info, 2 warning. Empty: silent.
  std::function<void(int level, const std::string& line)> log;
};

// A device's connection to the cluster: connects to one of the gateways, logs in, keeps the
// heartbeat, reconnects with backoff; sends reliably through an outbox; delivers every
// conversation in seq order with duplicates dropped and gaps synced.
// Thread-safe: every method may be called from any thread (they post to the network thread).
// Destroying the client stops it: state is saved, no callback runs after the destructor returns.
class Client {
 public:
  // `store`: where cursors and the outbox live; nullptr keeps them in memory.
  Client(ClientOptions options, ClientListener* listener,
         std::unique_ptr<StateStore> store = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts connecting (and keeps reconnecting). Idempotent.
  void Start();
  // Disconnects and stops reconnecting; sends stay in the outbox. Start() resumes.
  void Stop();
  // Replaces the token (expired, or refused: kAuthFailed), and reconnects if it had given up.
  void SetToken(std::string token);

  // Queues a message; returns its client_msg_id. OnSendResult follows exactly once. Returns an
  // empty id (and nothing follows) when the client refuses the call because its queue is full
  // (100,000 calls waiting for the network thread): the app is sending faster than it can go.
  std::string Send(const std::string& conv_id, std::string body, int type = 1);
  // A single chat with `to_uid` (the conversation id is derived by the server).
  std::string SendTo(const std::string& to_uid, std::string body, int type = 1);

  // Recalls (deletes for everyone) or edits a message of this user's in `conv_id` (a group admin
  // may also recall others' messages), within the server's window: sent like a message, so it is
  // retried until the server answers and OnSendResult follows exactly once (CHANGE_WINDOW_PASSED,
  // NOT_CHANGEABLE, PERMISSION_DENIED, NOT_FOUND when refused). The change reaches every device
  // as a message of type kMessageRecall or kMessageEdit with ref_seq.
  std::string Recall(const std::string& conv_id, uint64_t seq);
  std::string Edit(const std::string& conv_id, uint64_t seq, std::string body);
  // Tells the others in `conv_id` that this user is typing (their OnTyping). Fire and forget:
  // call it every few seconds while the user types; the server passes on one per 3 s or so.
  void Typing(const std::string& conv_id);

  // Requests answer through `done` exactly once; a refused call (queue full) answers at once,
  // on the calling thread, with RESOURCE_EXHAUSTED.
  // Every conversation with unread counts, most recent first as the server orders them.
  void ListConversations(std::function<void(Status, std::vector<Conversation>)> done);
  // Up to `limit` messages before `before_seq` (0: before the newest delivered), in seq order.
  void LoadHistory(const std::string& conv_id, uint64_t before_seq, uint32_t limit,
                   std::function<void(Status, HistoryPage)> done);
  // Moves the read cursor (the peer and this user's other devices get a read receipt).
  void MarkRead(const std::string& conv_id, uint64_t read_seq,
                std::function<void(Status, uint64_t read_seq)> done);

  void CreateGroup(const std::string& name, const std::vector<std::string>& members,
                   std::function<void(Status, GroupCreated)> done);
  // `uids` empty: this user joins.
  void JoinGroup(const std::string& group_id, const std::vector<std::string>& uids,
                 std::function<void(Status)> done);
  // `uid` empty: this user leaves; else an admin removes uid.
  void LeaveGroup(const std::string& group_id, const std::string& uid,
                  std::function<void(Status)> done);
  void ListGroupMembers(const std::string& group_id,
                        std::function<void(Status, std::vector<GroupMember>)> done);
  // Group read receipts: how many members have read the message at `seq` of a group, and with
  // `names`, who (every page; above the server's limit of 500 members, counts only). Senders also
  // get OnReadReceipt as members read their messages.
  void ListReaders(const std::string& conv_id, uint64_t seq, bool names,
                   std::function<void(Status, GroupReaders)> done);
  // The owner makes `uid` an ADMIN (2) or a MEMBER (1) again, or hands OWNER (3) to it.
  void SetGroupRole(const std::string& group_id, const std::string& uid, int role,
                    std::function<void(Status)> done);

  // Watches whether `uids` are online (OnPresence), replacing the list watched so far; an empty
  // list stops watching. The server refuses users this user shares no conversation with (named
  // in WatchedPresence::refused) and lists longer than its limit (200 by default). The client
  // keeps the list: it sends it again after every login and before the server's watch expires,
  // until the next call. `done` (may be empty) answers this call: the server's answer, or
  // DEADLINE_EXCEEDED when there was none within the request timeout (the list stays watched
  // and goes out once the client is connected), or CANCELLED when a later call replaced it
  // before it was sent or Stop() came first.
  void WatchPresence(std::vector<std::string> uids,
                     std::function<void(Status, WatchedPresence)> done);

  ConnectionState state() const;
  ClientStats stats() const;
  // The uid named by the token (empty when the token cannot be read).
  const std::string& uid() const { return uid_; }

 private:
  std::string Queue(PendingSend send);
  // Sends a request from the network thread; `handler` runs there.
  void Call(im::v1::Frame request, bool resend_on_reconnect,
            std::function<void(const Status&, const im::v1::Frame*)> handler);
  void ListConversationsFrom(const std::string& page_token,
                             std::shared_ptr<std::vector<Conversation>> so_far,
                             std::function<void(Status, std::vector<Conversation>)> done);
  void ListReadersFrom(const std::string& conv_id, uint64_t seq, bool names,
                       const std::string& page_token, std::shared_ptr<GroupReaders> so_far,
                       std::function<void(Status, GroupReaders)> done);
  void ListGroupMembersFrom(const std::string& group_id, const std::string& page_token,
                            std::shared_ptr<std::vector<GroupMember>> so_far,
                            std::function<void(Status, std::vector<GroupMember>)> done);

  std::string uid_;
  std::unique_ptr<ClientCore> core_;
};

// The uid a token names (its payload is readable without the secret); empty when malformed.
std::string UidFromToken(const std::string& token);

}  // namespace im::sdk
