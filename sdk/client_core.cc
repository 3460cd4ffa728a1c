#include "sdk/client_core.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/block_sigpipe.h"
#include "common/clock.h"
#include "common/frame_codec.h"
#include "common/retry_hint.h"
#include "sdk/wire_conversions.h"

namespace im::sdk {
namespace {

constexpr uint64_t kTickMs = 50;
constexpr size_t kTaskQueueCapacity = 100'000;
constexpr uint32_t kConversationPage = 100;
constexpr uint64_t kLengthPrefixBytes = 4;
// A gateway address naming its TLS port.
constexpr std::string_view kTlsScheme = "tls://";

bool IsTlsAddress(const std::string& address) { return address.rfind(kTlsScheme, 0) == 0; }
// Room in a frame beside the body (ids, conversation, framing).
constexpr size_t kSendOverheadBytes = 1024;
// A presence watch the server did not answer, or refused for a while, is sent again after this
// and a random part as long again, unless the server's hint says when.
constexpr int64_t kPresenceRetryMs = 1000;

// Codes after which the same send may succeed later; it is retried with the same client_msg_id.
bool IsRetryable(int code) { return common::IsRetryable(static_cast<im::v1::Code>(code)); }

bool IsAuthFailure(int code) {
  return code == im::v1::TOKEN_EXPIRED || code == im::v1::TOKEN_INVALID ||
         code == im::v1::TOKEN_REVOKED || code == im::v1::UNAUTHENTICATED;
}

std::vector<Presence> PresencesOf(
    const google::protobuf::RepeatedPtrField<im::v1::Presence>& presences) {
  std::vector<Presence> out;
  out.reserve(presences.size());
  for (const im::v1::Presence& presence : presences) out.push_back(PresenceOf(presence));
  return out;
}

uint64_t Seed() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

}  // namespace

ClientCore::ClientCore(ClientOptions options, ClientListener* listener,
                       std::unique_ptr<StateStore> store, std::string uid)
    : options_(std::move(options)),
      listener_(listener),
      store_(std::move(store)),
      uid_(std::move(uid)),
      alive_(std::make_shared<std::atomic<bool>>(true)),
      backoff_(options_.reconnect_initial_ms, options_.reconnect_max_ms, Seed()),
      send_window_(options_.max_sends_in_flight),
      inbox_(options_.gap_wait_ms) {
  MakeTlsContext();
  if (options_.start_at_random_gateway && !options_.gateways.empty()) {
    gateway_index_ =
        static_cast<size_t>(backoff_.Jitter(static_cast<int64_t>(options_.gateways.size()) - 1));
  }
  std::promise<void> started;
  std::future<void> ready = started.get_future();
  thread_ = std::thread([this, &started] { RunLoop(&started); });
  ready.wait();
}

ClientCore::~ClientCore() {
  alive_->store(false);
  // Only Shutdown closes the queue, so a refusal means it is full: it drains, try again.
  while (!Post([this]() { Shutdown(); })) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  thread_.join();
}

void ClientCore::RunLoop(std::promise<void>* started) {
  common::BlockSigpipeInThisThread();  // an app must not die of a dropped connection
  uv_loop_init(&loop_);
  tasks_ = std::make_unique<common::LoopTaskQueue>(&loop_, kTaskQueueCapacity);
  tasks_->Start();
  uv_timer_init(&loop_, &tick_timer_);
  tick_timer_.data = this;
  uv_timer_start(&tick_timer_, &ClientCore::OnTick, kTickMs, kTickMs);
  Post([this]() { LoadState(); });
  started->set_value();
  uv_run(&loop_, UV_RUN_DEFAULT);
  tasks_.reset();
  const int closed = uv_loop_close(&loop_);
  if (closed != 0) Log(2, "network loop closed with handles still open");
}

void ClientCore::Shutdown() {
  if (store_ != nullptr && !uid_.empty()) {
    absl::Status saved = store_->SaveCursors(uid_, inbox_.Cursors());
    if (!saved.ok()) Log(2, "cursors not saved: " + saved.ToString());
  }
  running_ = false;
  connection_.reset();
  requests_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), nullptr);
  tasks_->Close([] {});
}

bool ClientCore::Post(absl::AnyInvocable<void() &&> task) {
  if (tasks_->Post(std::move(task))) return true;
  Log(2, "the network thread's queue is full: call refused");
  return false;
}

void ClientCore::Notify(std::function<void()> callback) {
  if (!options_.executor) return callback();
  std::shared_ptr<std::atomic<bool>> alive = alive_;
  options_.executor([alive, callback = std::move(callback)] {
    if (alive->load()) callback();
  });
}

void ClientCore::Log(int level, const std::string& line) const {
  if (options_.log) options_.log(level, line);
}

void ClientCore::SetState(ConnectionState state, Status reason) {
  state_.store(state);
  if (state == notified_state_) return;
  notified_state_ = state;
  Log(1, absl::StrCat("state ", ConnectionStateName(state),
                      reason.message.empty() ? "" : ": " + reason.message));
  Notify([this, state, reason = std::move(reason)] { listener_->OnStateChanged(state, reason); });
}

void ClientCore::OnTick(uv_timer_t* timer) { static_cast<ClientCore*>(timer->data)->Tick(); }

void ClientCore::Tick() {
  const int64_t now = common::SteadyMillis();
  ExpireRequests(now);
  ExpireSends();
  if (!presence_callers_.empty()) {
    AnswerPresenceCallers([now](const PresenceCaller& caller) { return caller.deadline_ms <= now; },
                          Status{im::v1::DEADLINE_EXCEEDED, "no answer within the request timeout"},
                          {});
  }
  if (running_ && connection_ == nullptr && reconnect_at_ms_ <= now &&
      state_.load() == ConnectionState::kConnecting) {
    Connect();
    return;
  }
  if (connection_ == nullptr) return;
  if (!logged_in_) {
    if (now > attempt_deadline_ms_) Drop("connecting and logging in timed out", -1);
    return;
  }
  if (now - last_received_ms_ > heartbeat_ms_ + options_.request_timeout_ms) {
    return Drop("the gateway went silent", -1);
  }
  for (const auto& [frame_id, send] : sends_on_wire_) {
    if (now - send.sent_ms > options_.request_timeout_ms) {
      return Drop("a send went unanswered", -1);
    }
  }
  if (now - last_ping_ms_ >= heartbeat_ms_) {
    last_ping_ms_ = now;
    im::v1::Frame ping;
    ping.set_id(next_frame_id_++);
    ping.mutable_ping()->set_client_time_ms(common::UnixMillis());
    Write(ping);
  }
  StartDueSyncs();
  if (now - last_ack_ms_ >= options_.ack_interval_ms) FlushAcks();
  PumpOutbox();
  RenewResumeTokenIfDue(now);
  PumpPresence(now);
}

// ---- connection lifecycle ----

void ClientCore::StartConnecting() {
  if (running_) return;
  running_ = true;
  if (options_.gateways.empty()) {
    return SetState(ConnectionState::kAuthFailed,
                    Status{im::v1::INVALID_ARGUMENT, "no gateway address configured"});
  }
  reconnect_at_ms_ = 0;
  SetState(ConnectionState::kConnecting, {});
}

void ClientCore::StopConnecting() {
  running_ = false;
  if (connection_ != nullptr) Drop("stopped by the app", -1);
  const Status stopped{im::v1::CANCELLED, "the client was stopped"};
  FailRequests(false, stopped);
  AnswerPresenceCallers([](const PresenceCaller&) { return true; }, stopped, {});
  SetState(ConnectionState::kIdle, {});
}

void ClientCore::ReplaceToken(std::string token) {
  options_.token = std::move(token);
  const ConnectionState state = state_.load();
  if (running_ && (state == ConnectionState::kAuthFailed || state == ConnectionState::kKicked)) {
    backoff_.Reset();
    reconnect_at_ms_ = 0;
    SetState(ConnectionState::kConnecting, {});
  }
}

void ClientCore::MakeTlsContext() {
  const bool any_tls = std::any_of(options_.gateways.begin(), options_.gateways.end(),
                                   [](const std::string& g) { return IsTlsAddress(g); });
  if (!any_tls) return;
  tls::ClientTlsOptions trust;
  trust.ca_file = options_.tls.ca_file;
  trust.pinned_keys = options_.tls.pinned_keys;
  trust.server_name = options_.tls.server_name;
  absl::StatusOr<std::shared_ptr<tls::ClientContext>> context = tls::ClientContext::Create(trust);
  if (context.ok()) {
    tls_ = std::move(*context);
  } else {
    tls_error_ = std::string(context.status().message());
    Log(2, "TLS settings refused: " + tls_error_);
  }
}

void ClientCore::Connect() {
  std::string address = options_.gateways[gateway_index_ % options_.gateways.size()];
  Log(0, "connecting to " + address);
  attempt_deadline_ms_ = common::SteadyMillis() + options_.connect_timeout_ms;
  last_error_.clear();
  const bool use_tls = IsTlsAddress(address);
  if (use_tls && !tls_) return Drop("TLS settings refused: " + tls_error_, -1);
  if (use_tls) address.erase(0, kTlsScheme.size());
  connection_ = std::make_unique<GatewayConnection>(
      &loop_, std::move(address), options_.max_frame_bytes,
      static_cast<GatewayConnection::Listener*>(this), use_tls ? tls_ : nullptr);
  if (!connection_->failed_at_start().empty()) Drop(connection_->failed_at_start(), -1);
}

void ClientCore::OnConnected() {
  im::v1::Frame login;
  login_frame_id_ = next_frame_id_++;
  login.set_id(login_frame_id_);
  im::v1::LoginReq* req = login.mutable_login_req();
  req->set_token(options_.token);
  req->set_device(options_.device);
  req->set_platform(options_.platform);
  req->set_client_version(options_.client_version);
  Write(login);
}

void ClientCore::OnDisconnected(const std::string& reason) {
  Drop(last_error_.empty() ? reason : absl::StrCat(reason, " (", last_error_, ")"), -1);
}

// Ends the connection. `reconnect_after_ms` < 0: after the backoff, at the next gateway.
void ClientCore::Drop(const std::string& reason, int64_t reconnect_after_ms) {
  const bool was_logged_in = logged_in_;
  connection_.reset();
  logged_in_ = false;
  listing_ = false;
  outbox_.RequeueAll();
  sends_on_wire_.clear();
  inbox_.AbortSyncs();
  FailRequests(true, Status{im::v1::UNAVAILABLE, "connection lost: " + reason});
  for (auto& [id, request] : requests_) request.on_wire = false;
  Log(1, (was_logged_in ? "disconnected: " : "connection attempt failed: ") + reason);
  if (!options_.gateways.empty()) gateway_index_ = (gateway_index_ + 1) % options_.gateways.size();
  reconnect_at_ms_ = common::SteadyMillis() +
                     (reconnect_after_ms >= 0 ? reconnect_after_ms : backoff_.NextDelayMs());
  const ConnectionState state = state_.load();
  if (running_ && state != ConnectionState::kKicked && state != ConnectionState::kAuthFailed) {
    SetState(ConnectionState::kConnecting, Status{im::v1::UNAVAILABLE, reason});
  }
}

void ClientCore::Write(const im::v1::Frame& frame) {
  if (connection_ == nullptr) return;
  connection_->Send(frame);
  frames_sent_.fetch_add(1, std::memory_order_relaxed);
  bytes_sent_.fetch_add(kLengthPrefixBytes + frame.ByteSizeLong(), std::memory_order_relaxed);
}

ClientStats ClientCore::stats() const {
  return ClientStats{frames_sent_.load(), bytes_sent_.load(), frames_received_.load(),
                     bytes_received_.load()};
}

void ClientCore::Notice(const im::v1::Frame& frame) {
  if (logged_in_) Write(frame);
}

void ClientCore::OnFrame(im::v1::Frame&& frame) {
  last_received_ms_ = common::SteadyMillis();
  frames_received_.fetch_add(1, std::memory_order_relaxed);
  bytes_received_.fetch_add(kLengthPrefixBytes + frame.ByteSizeLong(), std::memory_order_relaxed);
  switch (frame.body_case()) {
    case im::v1::Frame::kLoginResp:
      if (frame.id() == login_frame_id_) OnLoginResp(frame.login_resp());
      return;
    case im::v1::Frame::kPong:
      return;
    case im::v1::Frame::kSendResp:
      return OnSendResp(frame.id(), frame.send_resp());
    case im::v1::Frame::kMessagePush:
      return OnPush(frame.message_push());
    case im::v1::Frame::kReadPush: {
      ReadReceipt receipt{frame.read_push().conv_id(), frame.read_push().reader(),
                          frame.read_push().read_seq()};
      return Notify([this, receipt] { listener_->OnReadReceipt(receipt); });
    }
    case im::v1::Frame::kReceiptsPush:
      for (const im::v1::ReadPush& push : frame.receipts_push().receipts()) {
        ReadReceipt receipt{push.conv_id(), push.reader(), push.read_seq()};
        Notify([this, receipt] { listener_->OnReadReceipt(receipt); });
      }
      return;
    case im::v1::Frame::kTypingPush: {
      TypingNotice notice{frame.typing_push().conv_id(), frame.typing_push().uid()};
      return Notify([this, notice] { listener_->OnTyping(notice); });
    }
    case im::v1::Frame::kPresencePush:
      return ReportPresence(presence_.OnPush(PresencesOf(frame.presence_push().presences())));
    case im::v1::Frame::kKick: {
      Status reason{im::v1::UNAVAILABLE,
                    absl::StrCat("kicked (", im::v1::Kick::Reason_Name(frame.kick().reason()),
                                 "): ", frame.kick().message())};
      SetState(ConnectionState::kKicked, reason);
      return Drop(reason.message, -1);
    }
    case im::v1::Frame::kGoAway: {
      // The gateway is draining: go elsewhere after its hint, spread so that its clients do not
      // all land on the next gateway in the same instant.
      const int64_t hint = frame.go_away().reconnect_after_ms();
      return Drop("the gateway is draining (GoAway)",
                  hint + backoff_.Jitter(std::max<int64_t>(hint / 2, 200)));
    }
    case im::v1::Frame::kError:
      last_error_ =
          absl::StrCat(im::v1::Code_Name(frame.error().code()), ": ", frame.error().message());
      Log(2, "error from the gateway: " + last_error_);
      return;
    default:
      break;
  }
  auto request = requests_.find(frame.id());
  if (request == requests_.end()) return;  // late answer to a request that timed out
  ResponseHandler handler = std::move(request->second.handler);
  requests_.erase(request);
  handler(Status{}, &frame);
}

void ClientCore::OnLoginResp(const im::v1::LoginResp& resp) {
  const int code = resp.status().code();
  if (code == im::v1::OK) return OnLoggedIn(resp);
  Status reason = StatusOf(resp.status());
  if (IsAuthFailure(code)) {
    SetState(ConnectionState::kAuthFailed, reason);
  } else if (code == im::v1::TOO_MANY_DEVICES) {
    SetState(ConnectionState::kKicked, reason);
  }
  // An overloaded cluster says when to come back; otherwise the backoff decides.
  const int64_t hint = resp.status().retry_after_ms();
  Drop(absl::StrCat("login refused: ", im::v1::Code_Name(resp.status().code()), " ",
                    resp.status().message()),
       hint > 0 ? std::max(backoff_.AfterHintMs(hint), backoff_.NextDelayMs()) : -1);
}

void ClientCore::OnLoggedIn(const im::v1::LoginResp& resp) {
  logged_in_ = true;
  logged_in_uid_ = resp.uid();
  backoff_.Reset();
  heartbeat_ms_ = std::max<int64_t>(1000, int64_t{resp.heartbeat_sec()} * 1000);
  last_ping_ms_ = common::SteadyMillis();
  if (uid_.empty()) {
    uid_ = resp.uid();
    LoadState();
  }
  SetState(ConnectionState::kConnected, {});
  for (auto& [id, request] : requests_) {
    if (!request.on_wire) SendRequest(id, request);
  }
  login_resume_token_ = resp.resume_token();
  resume_window_ms_ = int64_t{resp.resume_window_sec()} * 1000;
  Reconcile();
  // A watch lasts its ttl and the device may have been away longer: this session asks again.
  presence_.OnLoggedIn();
  PumpPresence(common::SteadyMillis());
  PumpOutbox();
}

// ---- requests ----

void ClientCore::Request(im::v1::Frame request, bool resend_on_reconnect, ResponseHandler handler) {
  const uint64_t id = next_frame_id_++;
  request.set_id(id);
  PendingRequest& pending = requests_[id];
  pending.frame = std::move(request);
  pending.handler = std::move(handler);
  pending.deadline_ms = common::SteadyMillis() + options_.request_timeout_ms;
  pending.resend_on_reconnect = resend_on_reconnect;
  if (logged_in_) SendRequest(id, pending);
}

void ClientCore::SendRequest(uint64_t id, PendingRequest& request) {
  request.on_wire = true;
  request.frame.set_id(id);
  Write(request.frame);
}

void ClientCore::FailRequests(bool only_unresendable, const Status& status) {
  std::vector<ResponseHandler> failed;
  for (auto it = requests_.begin(); it != requests_.end();) {
    const PendingRequest& request = it->second;
    if (only_unresendable && (!request.on_wire || request.resend_on_reconnect)) {
      ++it;
      continue;
    }
    failed.push_back(std::move(it->second.handler));
    it = requests_.erase(it);
  }
  for (ResponseHandler& handler : failed) handler(status, nullptr);
}

void ClientCore::ExpireRequests(int64_t now_ms) {
  std::vector<ResponseHandler> expired;
  for (auto it = requests_.begin(); it != requests_.end();) {
    if (it->second.deadline_ms > now_ms) {
      ++it;
      continue;
    }
    expired.push_back(std::move(it->second.handler));
    it = requests_.erase(it);
  }
  for (ResponseHandler& handler : expired) {
    handler(Status{im::v1::DEADLINE_EXCEEDED, "no answer within the request timeout"}, nullptr);
  }
}

// ---- sending ----

void ClientCore::LoadState() {
  if (state_loaded_ || uid_.empty()) return;
  state_loaded_ = true;
  if (store_ == nullptr) return;
  std::map<std::string, uint64_t> cursors;
  std::vector<PendingSend> outbox;
  if (absl::Status loaded = store_->Load(uid_, &cursors, &outbox); !loaded.ok()) {
    Log(2, "saved state not loaded: " + loaded.ToString());
    return;
  }
  inbox_.Restore(cursors);
  for (PendingSend& send : outbox) outbox_.Add(std::move(send));
  if (!outbox.empty() || !cursors.empty()) {
    Log(1, absl::StrCat("resumed ", cursors.size(), " conversation cursors and ", outbox.size(),
                        " unsent messages"));
  }
}

void ClientCore::QueueSend(PendingSend send) {
  if (send.deadline_ms == 0 && options_.send_timeout_ms > 0) {
    send.deadline_ms = send.created_ms + options_.send_timeout_ms;
  }
  const size_t frame_estimate =
      send.body.size() + send.conv_id.size() + send.to_uid.size() + kSendOverheadBytes;
  if (send.conv_id.empty() == send.to_uid.empty()) {
    return ReportSendResult(send, Status{im::v1::INVALID_ARGUMENT, "name a conversation or a peer"},
                            nullptr);
  }
  if (frame_estimate > options_.max_frame_bytes) {
    return ReportSendResult(
        send, Status{im::v1::BODY_TOO_LARGE, "the message does not fit in one frame"}, nullptr);
  }
  if (store_ != nullptr && !uid_.empty()) {
    if (absl::Status saved = store_->AddPending(uid_, send); !saved.ok()) {
      return ReportSendResult(send, Status{im::v1::INTERNAL, saved.ToString()}, nullptr);
    }
  }
  if (!outbox_.Add(send)) {
    return ReportSendResult(send, Status{im::v1::ALREADY_EXISTS, "client_msg_id already queued"},
                            nullptr);
  }
  PumpOutbox();
}

void ClientCore::PumpOutbox() {
  if (!logged_in_) return;
  const size_t room = send_window_.size() > outbox_.in_flight_count()
                          ? send_window_.size() - outbox_.in_flight_count()
                          : 0;
  if (room == 0) return;
  const int64_t now = common::SteadyMillis();
  for (PendingSend& send : outbox_.TakeReady(now, room)) {
    im::v1::Frame frame;
    frame.set_id(next_frame_id_++);
    im::v1::SendReq* req = frame.mutable_send_req();
    req->set_conv_id(send.conv_id);
    req->set_to_uid(send.to_uid);
    req->set_client_msg_id(send.client_msg_id);
    req->set_type(static_cast<im::v1::MessageType>(send.type));
    req->set_body(std::move(send.body));
    req->set_ref_seq(send.ref_seq);
    sends_on_wire_[frame.id()] = SendOnWire{send.client_msg_id, now};
    Write(frame);
  }
}

void ClientCore::OnSendResp(uint64_t frame_id, const im::v1::SendResp& resp) {
  auto on_wire = sends_on_wire_.find(frame_id);
  if (on_wire == sends_on_wire_.end()) return;
  const std::string client_msg_id = std::move(on_wire->second.client_msg_id);
  sends_on_wire_.erase(on_wire);
  const int code = resp.status().code();
  if (IsRetryable(code)) {
    Log(0, absl::StrCat("send ", client_msg_id, " will be retried: ", im::v1::Code_Name(code)));
    const int64_t hint = resp.status().retry_after_ms();
    const int64_t wait = hint > 0 ? backoff_.AfterHintMs(hint)
                                  : options_.reconnect_initial_ms + backoff_.Jitter(1000);
    if (common::IsOverloadRefusal(static_cast<im::v1::Code>(code))) {
      send_window_.OnRefused(common::SteadyMillis(), wait);
    }
    outbox_.Requeue(client_msg_id, common::SteadyMillis() + wait);
    return;
  }
  if (code == im::v1::OK) send_window_.OnAcked();
  std::optional<PendingSend> send = outbox_.Remove(client_msg_id);
  if (!send) return;
  if (store_ != nullptr && !uid_.empty()) {
    absl::Status removed = store_->RemovePending(uid_, client_msg_id);
    if (!removed.ok()) Log(2, "outbox entry not removed: " + removed.ToString());
  }
  ReportSendResult(*send, StatusOf(resp.status()), &resp);
  if (code == im::v1::OK) {
    // The device's own message joins its conversation's stream like any other.
    Message own;
    own.conv_id = resp.conv_id();
    own.seq = resp.seq();
    own.msg_id = resp.msg_id();
    own.sender = logged_in_uid_;
    own.client_msg_id = client_msg_id;
    own.type = send->type;
    own.body = std::move(send->body);
    own.created_ms = resp.server_time_ms();
    std::vector<Message> messages;
    messages.push_back(std::move(own));
    if (std::optional<Inbox::Delivery> delivery =
            inbox_.Receive(resp.conv_id(), std::move(messages), common::SteadyMillis())) {
      Deliver(std::move(*delivery));
    }
  }
  PumpOutbox();
}

void ClientCore::ReportSendResult(const PendingSend& send, const Status& status,
                                  const im::v1::SendResp* resp) {
  SendResult result;
  result.client_msg_id = send.client_msg_id;
  result.status = status;
  result.conv_id = send.conv_id;
  if (resp != nullptr) {
    result.conv_id = resp->conv_id();
    result.seq = resp->seq();
    result.msg_id = resp->msg_id();
    result.server_time_ms = resp->server_time_ms();
  }
  if (!status.ok()) {
    Log(2,
        absl::StrCat("send ", send.client_msg_id, " failed: ", status.code, " ", status.message));
  }
  Notify([this, result = std::move(result)] { listener_->OnSendResult(result); });
}

void ClientCore::ExpireSends() {
  for (const PendingSend& send : outbox_.TakeExpired(common::UnixMillis())) {
    if (store_ != nullptr && !uid_.empty())
      store_->RemovePending(uid_, send.client_msg_id).IgnoreError();
    ReportSendResult(send, Status{im::v1::DEADLINE_EXCEEDED, "not sent within the send timeout"},
                     nullptr);
  }
}

// ---- receiving ----

void ClientCore::OnPush(const im::v1::MessagePush& push) {
  // Group the frame's messages by conversation, keeping their order.
  std::map<std::string, std::vector<Message>> by_conversation;
  for (const im::v1::Message& message : push.messages()) {
    by_conversation[message.conv_id()].push_back(MessageOf(message));
  }
  const int64_t now = common::SteadyMillis();
  for (auto& [conv_id, messages] : by_conversation) {
    if (std::optional<Inbox::Delivery> delivery =
            inbox_.Receive(conv_id, std::move(messages), now)) {
      Deliver(std::move(*delivery));
    }
  }
}

void ClientCore::Deliver(Inbox::Delivery delivery) {
  auto shared = std::make_shared<Inbox::Delivery>(std::move(delivery));
  Notify([this, shared] { listener_->OnMessages(shared->conv_id, shared->messages); });
}

void ClientCore::Reconcile() {
  // A client that has not bound its inbox yet (its first login in this process) knows no
  // conversation to keep: it lists them all.
  if (!options_.resume_sessions || resume_token_.empty() || !inbox_.bound()) {
    return ListConversationsForSync("", {});
  }
  ResumeForSync("", {});
}

void ClientCore::ResumeForSync(std::string page_token, std::vector<Conversation> so_far) {
  Log(0, "resuming the last session");
  listing_ = true;
  im::v1::Frame frame;
  frame.mutable_resume_req()->set_resume_token(resume_token_);
  frame.mutable_resume_req()->set_limit(kConversationPage);
  frame.mutable_resume_req()->set_page_token(std::move(page_token));
  auto collected = std::make_shared<std::vector<Conversation>>(std::move(so_far));
  Request(std::move(frame), false,
          [this, collected](const Status& status, const im::v1::Frame* response) {
            if (!listing_) return;  // the connection that asked is gone
            const int code = status.ok() ? response->resume_resp().status().code() : -1;
            if (code < 0 && !logged_in_) return;  // the next login reconciles
            if (code != im::v1::OK) {
              // Spent, expired, or not answered: the token is no use now. List instead.
              Log(1, absl::StrCat("resume refused (",
                                  code < 0 ? status.message : im::v1::Code_Name(code),
                                  "); listing every conversation"));
              resume_token_.clear();
              return ListConversationsForSync("", {});
            }
            const im::v1::ResumeResp& resp = response->resume_resp();
            for (const im::v1::Conversation& item : resp.conversations()) {
              collected->push_back(ConversationOf(item));
            }
            if (!resp.next_page_token().empty()) {
              return ResumeForSync(resp.next_page_token(), std::move(*collected));
            }
            FinishReconcile(*collected, resp.resume_token());
          });
}

void ClientCore::FinishReconcile(const std::vector<Conversation>& view, std::string resume_token) {
  Log(0, absl::StrCat("reconciled ", view.size(), " conversations"));
  listing_ = false;
  resume_token_ = std::move(resume_token);
  resume_token_since_ms_ = common::SteadyMillis();
  for (Inbox::Delivery& delivery : inbox_.Bind(view, common::SteadyMillis())) {
    Deliver(std::move(delivery));
  }
  StartDueSyncs();
}

void ClientCore::RenewResumeTokenIfDue(int64_t now_ms) {
  if (resume_token_.empty() || listing_ || renewing_ || resume_window_ms_ <= 0 ||
      now_ms - resume_token_since_ms_ < resume_window_ms_ / 2) {
    return;
  }
  renewing_ = true;
  im::v1::Frame frame;
  frame.mutable_resume_renew_req()->set_resume_token(resume_token_);
  Request(std::move(frame), false, [this](const Status& status, const im::v1::Frame* response) {
    renewing_ = false;
    if (!status.ok()) return;  // tried again at a later tick
    const im::v1::ResumeRenewResp& resp = response->resume_renew_resp();
    if (resp.status().code() == im::v1::OK) {
      resume_token_ = resp.resume_token();
      resume_token_since_ms_ = common::SteadyMillis();
    } else {
      resume_token_.clear();  // expired: the next login lists every conversation
    }
  });
}

void ClientCore::ListConversationsForSync(std::string page_token,
                                          std::vector<Conversation> so_far) {
  listing_ = true;
  im::v1::Frame frame;
  frame.mutable_conversations_req()->set_limit(kConversationPage);
  frame.mutable_conversations_req()->set_page_token(std::move(page_token));
  auto collected = std::make_shared<std::vector<Conversation>>(std::move(so_far));
  Request(std::move(frame), false,
          [this, collected](const Status& status, const im::v1::Frame* response) {
            if (!listing_) return;  // the connection that asked is gone
            if (!status.ok() || response->conversations_resp().status().code() != im::v1::OK) {
              Log(2, "conversation list after login failed; retrying");
              return ListConversationsForSync("", {});
            }
            const im::v1::ConversationsResp& resp = response->conversations_resp();
            for (const im::v1::Conversation& item : resp.conversations()) {
              collected->push_back(ConversationOf(item));
            }
            if (!resp.next_page_token().empty()) {
              return ListConversationsForSync(resp.next_page_token(), std::move(*collected));
            }
            FinishReconcile(*collected, login_resume_token_);
          });
}

void ClientCore::StartDueSyncs() {
  if (!logged_in_ || !inbox_.bound()) return;
  for (Inbox::SyncRequest& sync : inbox_.TakeDueSyncs(common::SteadyMillis())) {
    im::v1::Frame frame;
    frame.mutable_sync_req()->set_conv_id(sync.conv_id);
    frame.mutable_sync_req()->set_after_seq(sync.after_seq);
    frame.mutable_sync_req()->set_limit(options_.sync_page);
    Request(std::move(frame), false,
            [this, conv_id = sync.conv_id](const Status& status, const im::v1::Frame* response) {
              const int64_t now = common::SteadyMillis();
              if (!status.ok()) return inbox_.OnSyncFailed(conv_id, true, now);
              const im::v1::SyncResp& resp = response->sync_resp();
              const int code = resp.status().code();
              if (code != im::v1::OK) {
                Log(2, absl::StrCat("sync of ", conv_id, " failed: ", im::v1::Code_Name(code)));
                // A refused crowd comes back spread over the hint, not all at once.
                const int64_t hint = resp.status().retry_after_ms();
                return inbox_.OnSyncFailed(conv_id, IsRetryable(code), now,
                                           hint > 0 ? backoff_.AfterHintMs(hint) : 0);
              }
              Inbox::SyncPage page;
              for (const im::v1::Message& message : resp.messages()) {
                page.messages.push_back(MessageOf(message));
              }
              for (const im::v1::SeqRange& hole : resp.holes()) {
                page.holes.emplace_back(hole.first(), hole.last());
              }
              page.has_more = resp.has_more();
              page.max_seq = resp.max_seq();
              if (std::optional<Inbox::Delivery> delivery =
                      inbox_.OnSynced(conv_id, std::move(page), now)) {
                Deliver(std::move(*delivery));
              }
            });
  }
}

void ClientCore::FlushAcks() {
  last_ack_ms_ = common::SteadyMillis();
  std::map<std::string, uint64_t> moved = inbox_.TakeMovedCursors();
  if (moved.empty()) return;
  im::v1::Frame frame;
  for (const auto& [conv_id, seq] : moved) {
    im::v1::AckReq::Cursor* cursor = frame.mutable_ack_req()->add_cursors();
    cursor->set_conv_id(conv_id);
    cursor->set_seq(seq);
  }
  Write(frame);
  if (store_ != nullptr && !uid_.empty()) {
    absl::Status saved = store_->SaveCursors(uid_, moved);
    if (!saved.ok()) Log(2, "cursors not saved: " + saved.ToString());
  }
}

// ---- presence ----

void ClientCore::WatchPresence(std::vector<std::string> uids, PresenceDone done) {
  // A list not sent yet never will be: this one replaces it.
  const uint64_t on_wire = presence_.on_wire_generation();
  AnswerPresenceCallers(
      [on_wire](const PresenceCaller& caller) { return caller.generation != on_wire; },
      Status{im::v1::CANCELLED, "replaced by a later WatchPresence before it was sent"}, {});
  const uint64_t generation = presence_.Watch(std::move(uids));
  const int64_t now = common::SteadyMillis();
  if (done) {
    presence_callers_.push_back(
        PresenceCaller{generation, now + options_.request_timeout_ms, std::move(done)});
  }
  PumpPresence(now);
}

void ClientCore::PumpPresence(int64_t now_ms) {
  if (!logged_in_) return;
  std::optional<PresenceWatcher::Request> due = presence_.TakeDue(now_ms);
  if (!due) return;
  im::v1::Frame frame;
  im::v1::PresenceSubscribeReq* req = frame.mutable_presence_subscribe_req();
  for (std::string& uid : due->uids) req->add_uids(std::move(uid));
  // Not resent by the request table after a lost connection: the next login sends the list
  // that is current then.
  Request(
      std::move(frame), false,
      [this, generation = due->generation](const Status& status, const im::v1::Frame* response) {
        OnPresenceAnswer(generation, status, response);
      });
}

void ClientCore::OnPresenceAnswer(uint64_t generation, const Status& transport,
                                  const im::v1::Frame* response) {
  const int64_t now = common::SteadyMillis();
  if (!transport.ok()) {
    // Lost with its connection (the next login sends it) or unanswered: its caller waits on.
    presence_.OnFailed(true, now + kPresenceRetryMs + backoff_.Jitter(kPresenceRetryMs));
    return;
  }
  const im::v1::PresenceSubscribeResp& resp = response->presence_subscribe_resp();
  const Status status = StatusOf(resp.status());
  WatchedPresence watched;
  std::vector<Presence> report;
  if (status.ok()) {
    watched.presences = PresencesOf(resp.presences());
    watched.refused.assign(resp.refused().begin(), resp.refused().end());
    report = presence_.OnAnswered(watched.presences, resp.ttl_sec(), now);
  } else {
    Log(2, absl::StrCat("presence watch refused: ", im::v1::Code_Name(resp.status().code()), " ",
                        resp.status().message()));
    const int64_t hint = resp.status().retry_after_ms();
    presence_.OnFailed(IsRetryable(status.code),
                       now + (hint > 0 ? backoff_.AfterHintMs(hint)
                                       : kPresenceRetryMs + backoff_.Jitter(kPresenceRetryMs)));
  }
  AnswerPresenceCallers(
      [generation](const PresenceCaller& caller) { return caller.generation == generation; },
      status, watched);
  ReportPresence(std::move(report));
  PumpPresence(now);
}

void ClientCore::AnswerPresenceCallers(const std::function<bool(const PresenceCaller&)>& which,
                                       const Status& status, const WatchedPresence& watched) {
  for (auto it = presence_callers_.begin(); it != presence_callers_.end();) {
    if (!which(*it)) {
      ++it;
      continue;
    }
    Notify([done = std::move(it->done), status, watched] { done(status, watched); });
    it = presence_callers_.erase(it);
  }
}

void ClientCore::ReportPresence(std::vector<Presence> presences) {
  if (presences.empty()) return;
  Notify([this, presences = std::move(presences)] { listener_->OnPresence(presences); });
}

}  // namespace im::sdk
