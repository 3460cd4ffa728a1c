#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/loop_task_queue.h"
#include "common/send_window.h"
#include "im/v1/client.pb.h"
#include "sdk/backoff.h"
#include "sdk/client.h"
#include "sdk/gateway_connection.h"
#include "sdk/inbox.h"
#include "sdk/outbox.h"
#include "sdk/presence_watcher.h"

namespace im::sdk {

// The client's network thread and everything it owns: the connection and its lifecycle
// (connect, login, heartbeat, backoff, GoAway, Kick), the request table, the outbox and the
// inbox. Every member is touched on the network thread only, except Post() and state().
class ClientCore : private GatewayConnection::Listener {
 public:
  // Called on the network thread with the response, or with a failure (frame null).
  using ResponseHandler = std::function<void(const Status& status, const im::v1::Frame* response)>;
  // Answers a WatchPresence call, through the executor.
  using PresenceDone = std::function<void(Status, WatchedPresence)>;

  ClientCore(ClientOptions options, ClientListener* listener, std::unique_ptr<StateStore> store,
             std::string uid);
  // Saves state, closes the connection, stops the thread; no callback runs afterwards.
  ~ClientCore() override;

  // Any thread: runs `task` on the network thread. False (the task destroyed unrun) when the
  // queue is full (the app posts faster than the network thread keeps up) or shutting down.
  bool Post(absl::AnyInvocable<void() &&> task);
  ConnectionState state() const { return state_.load(); }
  ClientStats stats() const;

  // Network thread only (reach them through Post).
  void StartConnecting();
  void StopConnecting();
  void ReplaceToken(std::string token);
  void QueueSend(PendingSend send);
  // Sends `request` once logged in (it waits for a connection up to the request timeout).
  // `resend_on_reconnect`: safe to send again if the connection drops before the answer.
  void Request(im::v1::Frame request, bool resend_on_reconnect, ResponseHandler handler);
  // Writes a frame that has no response (TypingReq) when logged in; else drops it: it is
  // transient, and stale by the time a connection is back.
  void Notice(const im::v1::Frame& frame);
  // Replaces the watched list (Client::WatchPresence); `done` may be empty.
  void WatchPresence(std::vector<std::string> uids, PresenceDone done);
  // Runs `callback` through the executor (or now), unless the client is being destroyed.
  void Notify(std::function<void()> callback);
  uint64_t delivered(const std::string& conv_id) const { return inbox_.delivered(conv_id); }
  const std::string& logged_in_uid() const { return logged_in_uid_; }

 private:
  struct PendingRequest {
    im::v1::Frame frame;
    ResponseHandler handler;
    int64_t deadline_ms = 0;
    bool on_wire = false;
    bool resend_on_reconnect = false;
  };
  struct SendOnWire {
    std::string client_msg_id;
    int64_t sent_ms = 0;
  };
  // A WatchPresence call waiting for the answer to its list.
  struct PresenceCaller {
    uint64_t generation = 0;  // of its list (PresenceWatcher::Watch)
    int64_t deadline_ms = 0;
    PresenceDone done;
  };

  void RunLoop(std::promise<void>* started);
  void Shutdown();
  static void OnTick(uv_timer_t* timer);
  void Tick();

  // Connection lifecycle.
  void Connect();
  // tls_ (or tls_error_) from options_.tls, when a gateway is a "tls://" one.
  void MakeTlsContext();
  void OnConnected() override;
  void OnFrame(im::v1::Frame&& frame) override;
  void OnDisconnected(const std::string& reason) override;
  void Drop(const std::string& reason, int64_t reconnect_after_ms);
  void OnLoginResp(const im::v1::LoginResp& resp);
  void OnLoggedIn(const im::v1::LoginResp& resp);
  void SetState(ConnectionState state, Status reason);
  void Write(const im::v1::Frame& frame);

  // Requests.
  void SendRequest(uint64_t id, PendingRequest& request);
  void FailRequests(bool only_unresendable, const Status& status);
  void ExpireRequests(int64_t now_ms);

  // Sending.
  void LoadState();
  void PumpOutbox();
  void OnSendResp(uint64_t frame_id, const im::v1::SendResp& resp);
  void ReportSendResult(const PendingSend& send, const Status& status,
                        const im::v1::SendResp* resp);
  void ExpireSends();

  // Receiving.
  void OnPush(const im::v1::MessagePush& push);
  void Deliver(Inbox::Delivery delivery);
  // After login: resumes with the last reconciled session's token when there is one (only the
  // conversations changed since), else lists every conversation; either way binds the inbox to
  // what the server holds and starts the syncs that are due.
  void Reconcile();
  void ListConversationsForSync(std::string page_token, std::vector<Conversation> so_far);
  void ResumeForSync(std::string page_token, std::vector<Conversation> so_far);
  // Binds the inbox to a reconciled view and keeps `resume_token` for the next connection.
  void FinishReconcile(const std::vector<Conversation>& view, std::string resume_token);
  // Renews the resume token every half window while connected (ResumeRenewReq).
  void RenewResumeTokenIfDue(int64_t now_ms);
  void StartDueSyncs();
  void FlushAcks();

  // Presence: writes the watched list when PresenceWatcher says it is due (logged in only).
  void PumpPresence(int64_t now_ms);
  void OnPresenceAnswer(uint64_t generation, const Status& transport,
                        const im::v1::Frame* response);
  // Answers (and forgets) the callers `which` picks.
  void AnswerPresenceCallers(const std::function<bool(const PresenceCaller&)>& which,
                             const Status& status, const WatchedPresence& watched);
  void ReportPresence(std::vector<Presence> presences);

  void Log(int level, const std::string& line) const;

  ClientOptions options_;
  ClientListener* listener_;
  std::unique_ptr<StateStore> store_;
  std::string uid_;  // the store's key: the token's uid (or the login's, if the token is opaque)
  std::shared_ptr<std::atomic<bool>> alive_;

  uv_loop_t loop_;
  uv_timer_t tick_timer_;
  std::unique_ptr<common::LoopTaskQueue> tasks_;
  std::thread thread_;
  std::atomic<ConnectionState> state_{ConnectionState::kIdle};
  // ClientStats, written on the network thread, read from any.
  std::atomic<uint64_t> frames_sent_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> frames_received_{0};
  std::atomic<uint64_t> bytes_received_{0};
  ConnectionState notified_state_ = ConnectionState::kIdle;

  bool running_ = false;  // Start()ed and not Stop()ped
  std::unique_ptr<GatewayConnection> connection_;
  // For "tls://" gateways, made from options_.tls at start; null with the reason in tls_error_
  // when it cannot be (a missing CA file, a malformed pin): every TLS attempt then fails with it.
  std::shared_ptr<tls::ClientContext> tls_;
  std::string tls_error_;
  bool logged_in_ = false;
  std::string logged_in_uid_;
  uint64_t login_frame_id_ = 0;
  int64_t attempt_deadline_ms_ = 0;
  int64_t reconnect_at_ms_ = 0;
  size_t gateway_index_ = 0;
  std::string last_error_;  // the last Error frame, to explain the disconnect that follows
  Backoff backoff_;
  common::SendWindow send_window_;  // sends on the wire at once (see max_sends_in_flight)
  int64_t heartbeat_ms_ = 30'000;
  int64_t last_ping_ms_ = 0;
  int64_t last_received_ms_ = 0;

  uint64_t next_frame_id_ = 1;
  std::map<uint64_t, PendingRequest> requests_;
  std::unordered_map<uint64_t, SendOnWire> sends_on_wire_;
  Outbox outbox_;
  bool state_loaded_ = false;
  Inbox inbox_;
  bool listing_ = false;  // the conversation list (or the resume) after login is being read
  // The token of the last session whose conversations were reconciled, for the next resume, and
  // the one this session's login brought (kept once this session has reconciled).
  std::string resume_token_;
  std::string login_resume_token_;
  int64_t resume_window_ms_ = 0;
  int64_t resume_token_since_ms_ = 0;  // steady ms the token was issued or renewed
  bool renewing_ = false;
  int64_t last_ack_ms_ = 0;
  PresenceWatcher presence_;
  std::vector<PresenceCaller> presence_callers_;
};

}  // namespace im::sdk
