#include "gateway/connection.h"

#include <utility>

#include "common/clock.h"
#include "common/logging.h"
#include "common/retry_hint.h"
#include "fmt/format.h"
#include "gateway/request_frames.h"
#include "gateway/worker_loop.h"

namespace im::gateway {

// See the note on State: one per client connection, in jemalloc's 512-byte class.
static_assert(sizeof(Connection) <= 512, "a Connection past 512 bytes takes 640 per client");

std::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeer:
      return "peer";
    case CloseReason::kLoginTimeout:
      return "login_timeout";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kBadFrame:
      return "bad_frame";
    case CloseReason::kUnauthenticated:
      return "unauthenticated";
    case CloseReason::kSlowConsumer:
      return "slow_consumer";
    case CloseReason::kKicked:
      return "kicked";
    case CloseReason::kDrain:
      return "drain";
    case CloseReason::kLinger:
      return "linger";
    case CloseReason::kLimited:
      return "limited";
    case CloseReason::kTls:
      return "tls";
    case CloseReason::kWebSocket:
      return "websocket";
  }
  return "unknown";
}

namespace {

prometheus::Counter& CloseCounter(GatewayMetrics& m, CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeer:
    case CloseReason::kLinger:
      return m.closed_by_peer;
    case CloseReason::kLoginTimeout:
      return m.closed_login_timeout;
    case CloseReason::kIdleTimeout:
      return m.closed_idle;
    case CloseReason::kBadFrame:
      return m.closed_bad_frame;
    case CloseReason::kUnauthenticated:
      return m.closed_unauthenticated;
    case CloseReason::kSlowConsumer:
      return m.closed_slow_consumer;
    case CloseReason::kKicked:
      return m.closed_kicked;
    case CloseReason::kDrain:
      return m.closed_drain;
    case CloseReason::kLimited:
      return m.closed_limited;
    case CloseReason::kTls:
      return m.closed_tls;
    case CloseReason::kWebSocket:
      return m.closed_websocket;
  }
  return m.closed_by_peer;
}

// The close code a WebSocket client is told when the gateway closes for `reason` (the reason's
// name goes with it).
uint16_t WebSocketCloseCodeFor(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeer:
    case CloseReason::kLinger:
    case CloseReason::kKicked:
      return kWsNormal;
    case CloseReason::kDrain:
      return kWsGoingAway;
    case CloseReason::kBadFrame:
      return kWsInvalidPayload;
    case CloseReason::kWebSocket:
    case CloseReason::kTls:
      return kWsProtocolError;
    case CloseReason::kLoginTimeout:
    case CloseReason::kIdleTimeout:
    case CloseReason::kUnauthenticated:
    case CloseReason::kSlowConsumer:
    case CloseReason::kLimited:
      return kWsPolicyViolation;
  }
  return kWsNormal;
}

std::string PeerAddress(const uv_tcp_t* handle) {
  sockaddr_storage address{};
  int length = sizeof(address);
  if (uv_tcp_getpeername(handle, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "";
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    uv_ip4_name(v4, host, sizeof(host));
    port = ntohs(v4->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    uv_ip6_name(v6, host, sizeof(host));
    port = ntohs(v6->sin6_port);
  }
  return fmt::format("{}:{}", host, port);
}

im::v1::Caller CallerOf(WorkerLoop& loop, common::ConnId id, const std::string& uid,
                        const std::string& device, uint64_t frame_id) {
  const std::string& gateway_id = loop.options().gateway_id;
  im::v1::Caller caller;
  caller.set_uid(uid);
  caller.set_device(device);
  caller.set_gateway_id(gateway_id);
  caller.set_conn_id(id);
  caller.set_request_id(fmt::format("{}-{:x}-{}", gateway_id, id, frame_id));
  return caller;
}

// Tells logic the session of a closed connection is gone (fire and forget; logic removes it only
// if it still points at this connection).
void ReleaseSession(WorkerLoop& loop, common::ConnId id, const std::string& uid,
                    const std::string& device, std::string_view reason) {
  im::v1::DisconnectRequest request;
  *request.mutable_caller() = CallerOf(loop, id, uid, device, 0);
  request.set_reason(std::string(reason));
  loop.QueueDisconnect(std::move(request));
}

// A login that logic accepted for a connection that closed meanwhile: take the session back.
void ReleaseLoginSession(WorkerLoop& loop, common::ConnId id, const im::v1::LoginResp& resp,
                         const std::string& device) {
  if (resp.status().code() != im::v1::OK) return;
  ReleaseSession(loop, id, resp.uid(), device, "closed during login");
}

im::v1::LoginResp FailedLogin(im::v1::Code code, std::string message) {
  im::v1::LoginResp resp;
  resp.mutable_status()->set_code(code);
  resp.mutable_status()->set_message(std::move(message));
  resp.mutable_status()->set_retry_after_ms(common::RetryAfterMsFor(code));
  return resp;
}

// What logic answered a login on the stream: its LoginResp, or the failure in its place.
im::v1::LoginResp LoginRespOf(std::optional<im::v1::Frame> response) {
  if (response && response->has_login_resp()) return std::move(*response->mutable_login_resp());
  if (response && response->has_error()) {
    return FailedLogin(response->error().code(), "logic: " + response->error().message());
  }
  return FailedLogin(im::v1::UNAVAILABLE, "logic: no answer to the login");
}

// Hands a login's answer to its connection, on the loop's thread, or takes the session back when
// the connection is gone.
void DeliverLoginResp(WorkerLoop& loop, common::ConnId id, uint64_t frame_id,
                      const std::string& device, im::v1::LoginResp resp) {
  if (Connection* connection = loop.Find(id)) {
    connection->OnLoginResp(frame_id, std::move(resp));
  } else {
    ReleaseLoginSession(loop, id, resp, device);
  }
}

// The login as a call of its own (LogicService.Login), for a logic node of an earlier version
// that does not take logins on the stream. Its reply arrives on another thread.
void LoginByCall(WorkerLoop* loop, common::ConnId id, uint64_t frame_id,
                 im::v1::LoginRequest request, common::AdmissionLimit::Slot slot) {
  std::string device = request.req().device();
  loop->logic().Login(
      std::move(request), [loop, id, frame_id, device = std::move(device),
                           slot = std::move(slot)](absl::StatusOr<im::v1::LoginReply> reply) {
        auto resp = std::make_shared<im::v1::LoginResp>(
            reply.ok() ? std::move(*reply->mutable_resp())
                       : FailedLogin(CodeFromStatus(reply.status().code()),
                                     "logic: " + std::string(reply.status().message())));
        const bool posted = loop->PostToConnection(
            id, [frame_id, resp](Connection& c) { c.OnLoginResp(frame_id, std::move(*resp)); },
            [loop, id, resp, device] { ReleaseLoginSession(*loop, id, *resp, device); });
        if (!posted) ReleaseLoginSession(*loop, id, *resp, device);
      });
}

}  // namespace

// The frames of a flush that did not leave at once. Holds the bytes until libuv is done with them.
struct Connection::WriteRequest {
  uv_write_t req;
  std::vector<OutFrame> frames;
  std::vector<uv_buf_t> bufs;
  size_t bytes = 0;
};

Connection::Connection(WorkerLoop* loop, common::ConnId id)
    : loop_(loop), id_(id), decoder_(loop->options().max_frame_bytes) {
  handle_.data = this;
}

Connection::~Connection() = default;

int Connection::Open(int fd, const tls::ServerContext* tls,
                     const WebSocketSession::Options* websocket) {
  if (tls != nullptr) tls_ = tls::TlsChannel::ForServer(*tls);
  if (websocket != nullptr) ws_ = std::make_unique<WebSocketSession>(*websocket);
  uv_tcp_init(loop_->loop(), &handle_);
  handle_open_ = true;
  if (int rc = uv_tcp_open(&handle_, fd); rc != 0) return rc;
  uv_tcp_nodelay(&handle_, 1);
  return uv_read_start(stream(), &Connection::OnAlloc, &Connection::OnRead);
}

void Connection::OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  *buf = static_cast<Connection*>(handle->data)->loop_->ReadBuffer();
}

void Connection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(stream->data);
  if (nread < 0) {
    self->Close(CloseReason::kPeer);
    return;
  }
  if (nread == 0) return;
  self->loop_->metrics().bytes_in.Increment(static_cast<double>(nread));
  if (self->state_ == State::kClosing) return;  // draining our output; input no longer matters
  const std::string_view bytes(buf->base, static_cast<size_t>(nread));
  if (self->tls_) {
    self->HandleTlsBytes(bytes);
  } else {
    self->HandleBytes(bytes);
  }
}

void Connection::HandleTlsBytes(std::string_view bytes) {
  const bool handshake_was_done = tls_->handshake_done();
  const tls::TlsChannel::Status status = tls_->Feed(bytes, [this](std::string_view plaintext) {
    HandleBytes(plaintext);
    return state_ != State::kClosing && state_ != State::kClosed;
  });
  if (!handshake_was_done && tls_->handshake_done()) CountTlsHandshake();
  switch (status) {
    case tls::TlsChannel::Status::kOpen:
      break;
    case tls::TlsChannel::Status::kClosedByPeer:
      Close(CloseReason::kPeer);
      return;
    case tls::TlsChannel::Status::kFailed:
      if (!tls_->handshake_done()) loop_->metrics().tls_handshakes_failed.Increment();
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "conn {:x} from {}: TLS: {}, closing", id_,
                          PeerAddress(&handle_), tls_->error());
      CloseAfterFlush(CloseReason::kTls);  // the alert, if OpenSSL wrote one, goes first
      return;
  }
  if (tls_->has_output()) RequestFlush();
}

void Connection::CountTlsHandshake() {
  GatewayMetrics& metrics = loop_->metrics();
  (tls_->resumed() ? metrics.tls_handshakes_resumed : metrics.tls_handshakes_full).Increment();
}

void Connection::HandleBytes(std::string_view bytes) {
  if (ws_) return HandleWebSocketBytes(bytes);
  const common::DecodeError error =
      decoder_.Feed(bytes, [this](im::v1::Frame&& frame) { return HandleFrame(std::move(frame)); });
  if (error == common::DecodeError::kNone) return;
  IM_LOG_RATE_LIMITED(spdlog::level::warn, "conn {:x}: {}, closing", id_,
                      common::DecodeErrorName(error));
  CloseWithError(common::DecodeErrorCode(error), std::string(common::DecodeErrorName(error)),
                 CloseReason::kBadFrame);
}

void Connection::HandleWebSocketBytes(std::string_view bytes) {
  const bool was_open = ws_->open();
  const std::optional<WebSocketSession::Failure> failure = ws_->Feed(
      bytes,
      {.write = [this](std::string answer) { WriteOwned(std::move(answer)); },
       .message = [this](std::string_view message) { return HandleWebSocketMessage(message); },
       .alive =
           [this] {
             if (state_ == State::kActive) loop_->Touch(this, Timeline::kLive);
           }});
  if (!was_open && (ws_->open() || (failure && !failure->in_handshake))) {
    loop_->metrics().websocket_handshakes_ok.Increment();
  }
  if (failure) OnWebSocketFailure(*failure);
}

bool Connection::HandleWebSocketMessage(std::string_view message) {
  im::v1::Frame frame;
  if (message.empty() || !frame.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    const common::DecodeError error =
        message.empty() ? common::DecodeError::kZeroLength : common::DecodeError::kMalformed;
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "conn {:x}: WebSocket message: {}, closing", id_,
                        common::DecodeErrorName(error));
    CloseWithError(common::DecodeErrorCode(error),
                   fmt::format("a binary message that is not an im.v1.Frame ({})",
                               common::DecodeErrorName(error)),
                   CloseReason::kBadFrame);
    return false;
  }
  return HandleFrame(std::move(frame));
}

void Connection::OnWebSocketFailure(const WebSocketSession::Failure& failure) {
  if (failure.in_handshake) {
    loop_->metrics().websocket_handshakes_refused.Increment();
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "conn {:x} from {}: WebSocket handshake refused: {}",
                        id_, PeerAddress(&handle_), failure.reason);
    CloseAfterFlush(CloseReason::kWebSocket);  // after the HTTP answer that says why
    return;
  }
  if (ws_->closed_by_peer()) {
    CloseAfterFlush(CloseReason::kPeer);  // the close was answered already
    return;
  }
  IM_LOG_RATE_LIMITED(spdlog::level::warn, "conn {:x} from {}: WebSocket: {}, closing", id_,
                      PeerAddress(&handle_), failure.reason);
  if (failure.close_code == kWsMessageTooBig) {
    SendError(0, common::DecodeErrorCode(common::DecodeError::kFrameTooLarge), failure.reason);
  }
  QueueWebSocketClose(failure.close_code, failure.reason);
  CloseAfterFlush(failure.close_code == kWsMessageTooBig ? CloseReason::kBadFrame
                                                         : CloseReason::kWebSocket);
}

void Connection::TryWriteWebSocketClose(CloseReason reason) {
  const std::string frame = ws_->Close(WebSocketCloseCodeFor(reason), CloseReasonName(reason));
  if (frame.empty() || pending_write_bytes_ > 0) return;  // it would land inside another write
  uv_buf_t buf = uv_buf_init(const_cast<char*>(frame.data()), frame.size());
  uv_try_write(stream(), &buf, 1);  // best effort: what is queued is dropped anyway
}

void Connection::QueueWebSocketClose(uint16_t code, std::string_view reason) {
  if (!ws_) return;
  std::string frame = ws_->Close(code, reason);
  if (!frame.empty()) WriteOwned(std::move(frame));
}

bool Connection::HandleFrame(im::v1::Frame&& frame) {
  loop_->metrics().frames_in.Increment();
  switch (state_) {
    case State::kAwaitingLogin:
      HandleFirstFrame(std::move(frame));
      break;
    case State::kLoggingIn:
      // The client must wait for LoginResp; anything sent before it is a protocol violation.
      CloseWithError(im::v1::UNAUTHENTICATED, "request before login completed",
                     CloseReason::kUnauthenticated);
      break;
    case State::kActive:
      loop_->Touch(this, Timeline::kLive);
      HandleActiveFrame(std::move(frame));
      break;
    case State::kClosing:
    case State::kClosed:
      break;
  }
  return state_ != State::kClosing && state_ != State::kClosed;
}

void Connection::HandleFirstFrame(im::v1::Frame&& frame) {
  if (frame.body_case() != im::v1::Frame::kLoginReq) {
    CloseWithError(im::v1::UNAUTHENTICATED, "the first frame must be LoginReq",
                   CloseReason::kUnauthenticated);
    return;
  }
  StartLogin(std::move(frame));
}

void Connection::StartLogin(im::v1::Frame&& frame) {
  state_ = State::kLoggingIn;
  loop_->Touch(this, Timeline::kLive);
  in_flight_++;
  if (const int64_t wait_ms = loop_->sources().TakeLogin(source_, loop_->now_ms()); wait_ms > 0) {
    loop_->metrics().limited_logins.Increment();
    im::v1::LoginResp refused =
        FailedLogin(im::v1::RESOURCE_EXHAUSTED, "too many logins from this address or gateway");
    refused.mutable_status()->set_retry_after_ms(static_cast<uint32_t>(wait_ms));
    return OnLoginResp(frame.id(), std::move(refused));
  }
  std::optional<common::AdmissionLimit::Slot> slot = loop_->logins().TryAdmit();
  if (!slot) {
    loop_->metrics().logins_shed.Increment();
    return OnLoginResp(frame.id(), FailedLogin(im::v1::RESOURCE_EXHAUSTED,
                                               "too many logins in flight on this gateway"));
  }
  // The device a session is registered as is the one the client names (logic checks it against
  // the token); the uid comes with logic's answer.
  device_ = frame.login_req().device();
  im::v1::Caller caller = CallerOf(*loop_, id_, "", device_, frame.id());
  caller.set_remote_addr(PeerAddress(&handle_));
  // Kept for a logic node of an earlier version, which answers a login on the stream
  // UNEXPECTED_FRAME: the login is then made as a call of its own.
  im::v1::LoginRequest fallback;
  *fallback.mutable_req() = frame.login_req();
  fallback.set_gateway_id(caller.gateway_id());
  fallback.set_conn_id(id_);
  fallback.set_remote_addr(caller.remote_addr());
  WorkerLoop* loop = loop_;
  const common::ConnId id = id_;
  const uint64_t frame_id = frame.id();
  // Answered on this loop's thread.
  // The slot goes with the login to its answer (or to the call made in its place).
  loop_->logic_stream().Submit(
      std::move(caller), std::move(frame),
      [loop, id, frame_id, fallback = std::move(fallback),
       slot = std::move(*slot)](std::optional<im::v1::Frame> response) mutable {
        if (response && response->has_error() &&
            response->error().code() == im::v1::UNEXPECTED_FRAME) {
          return LoginByCall(loop, id, frame_id, std::move(fallback), std::move(slot));
        }
        DeliverLoginResp(*loop, id, frame_id, fallback.req().device(),
                         LoginRespOf(std::move(response)));
      });
}

void Connection::OnLoginResp(uint64_t frame_id, im::v1::LoginResp resp) {
  in_flight_--;
  if (state_ != State::kLoggingIn) {
    ReleaseLoginSession(*loop_, id_, resp, device_);  // closing already (drain, linger)
    return;
  }
  GatewayMetrics& metrics = loop_->metrics();
  im::v1::Frame frame;
  frame.set_id(frame_id);
  if (resp.status().code() != im::v1::OK) {
    metrics.logins_failed.Increment();
    *frame.mutable_login_resp() = std::move(resp);
    WriteFrame(frame);
    held_pushes_.clear();
    CloseAfterFlush(CloseReason::kUnauthenticated);
    return;
  }
  metrics.logins_ok.Increment();
  uid_ = resp.uid();
  state_ = State::kActive;
  resp.set_heartbeat_sec(loop_->options().heartbeat_sec);
  *frame.mutable_login_resp() = std::move(resp);
  WriteFrame(frame);
  WriteHeldPushes();
}

void Connection::HandleActiveFrame(im::v1::Frame&& frame) {
  using F = im::v1::Frame;
  switch (frame.body_case()) {
    case F::kPing: {
      F pong;
      pong.set_id(frame.id());
      pong.mutable_pong()->set_server_time_ms(common::UnixMillis());
      WriteFrame(pong);
      return;
    }
    case F::kLoginReq:
      SendError(frame.id(), im::v1::UNEXPECTED_FRAME, "already logged in");
      return;
    case F::BODY_NOT_SET:
      SendError(frame.id(), im::v1::UNEXPECTED_FRAME, "frame has no body");
      return;
    default:
      break;
  }
  if (!IsClientRequest(frame)) {
    SendError(frame.id(), im::v1::UNEXPECTED_FRAME,
              "the server does not accept this frame from a client");
    return;
  }
  if (in_flight_ >= loop_->options().max_in_flight_per_connection) {
    loop_->metrics().too_many_in_flight.Increment();
    SendError(frame.id(), im::v1::TOO_MANY_IN_FLIGHT, "too many requests outstanding");
    return;
  }
  if (frame.has_send_req() && !TakeSendToken(frame)) return;
  in_flight_++;
  WorkerLoop* loop = loop_;
  const common::ConnId id = id_;
  // Answered on this loop's thread.
  loop_->logic_stream().Submit(MakeCaller(frame.id()), std::move(frame),
                               [loop, id](std::optional<im::v1::Frame> response) {
                                 if (Connection* connection = loop->Find(id)) {
                                   connection->OnLogicResponse(std::move(response));
                                 } else {
                                   loop->metrics().late_responses.Increment();
                                 }
                               });
}

bool Connection::TakeSendToken(const im::v1::Frame& send) {
  if (source_ == SourceLimits::kExempt) return true;
  const GatewayOptions& options = loop_->options();
  const common::RateLimit limit{options.send_rate_per_connection,
                                options.send_burst_per_connection};
  const int64_t wait_ms = send_tokens_.Take(limit, loop_->now_ms());
  if (wait_ms == 0) {
    send_refusals_ = 0;
    return true;
  }
  loop_->metrics().limited_sends.Increment();
  if (++send_refusals_ >= options.send_refusals_before_close) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "connection {} of {}: closed, kept sending past {}/s",
                        id_, uid_, options.send_rate_per_connection);
    CloseWithError(im::v1::RESOURCE_EXHAUSTED, "kept sending past the rate limit",
                   CloseReason::kLimited);
    return false;
  }
  std::optional<im::v1::Frame> refused = FailureResponse(
      send, im::v1::RESOURCE_EXHAUSTED,
      fmt::format("sending faster than {} messages a second", options.send_rate_per_connection));
  // The k-th refusal in a row waits for the k-th token from now, so that pipelined sends refused
  // together come back one token apart rather than all at once.
  const int64_t queued_ms = (send_refusals_ - 1) * limit.interval_us() / 1000;
  refused->mutable_send_resp()->mutable_status()->set_retry_after_ms(
      static_cast<uint32_t>(wait_ms + queued_ms));
  WriteFrame(*refused);
  return false;
}

void Connection::OnLogicResponse(std::optional<im::v1::Frame> response) {
  in_flight_--;
  if (response && state_ == State::kActive) WriteFrame(*response);
}

im::v1::Caller Connection::MakeCaller(uint64_t frame_id) const {
  return CallerOf(*loop_, id_, uid_, device_, frame_id);
}

void Connection::SendError(uint64_t frame_id, im::v1::Code code, std::string message) {
  im::v1::Frame frame;
  frame.set_id(frame_id);
  frame.mutable_error()->set_code(code);
  frame.mutable_error()->set_message(std::move(message));
  frame.mutable_error()->set_retry_after_ms(common::RetryAfterMsFor(code));
  WriteFrame(frame);
}

void Connection::WriteFrame(const im::v1::Frame& frame) {
  if (state_ == State::kClosed) return;
  if (ws_ && !ws_->open())
    return;  // nothing but the handshake's answer before it, none after close
  loop_->metrics().frames_out.Increment();
  if (!ws_) return WriteOwned(common::EncodeFrame(frame));
  const std::string payload = frame.SerializeAsString();
  std::string message = WebSocketSession::BinaryHeader(payload);
  message.append(payload);
  WriteOwned(std::move(message));
}

bool Connection::WritePush(const std::shared_ptr<const std::string>& encoded) {
  if (state_ == State::kLoggingIn) return HoldPush(encoded);
  if (state_ != State::kActive) return false;
  loop_->metrics().frames_out.Increment();
  if (ws_) {
    // The frame without its length prefix is the message's payload, shared as it is.
    const std::string_view payload = std::string_view(*encoded).substr(common::kFrameHeaderBytes);
    WriteOwned(WebSocketSession::BinaryHeader(payload));
    WriteBuffer(OutFrame{encoded, std::string(), common::kFrameHeaderBytes});
  } else {
    WriteBuffer(OutFrame{encoded, std::string()});
  }
  return state_ == State::kActive;
}

bool Connection::HoldPush(const std::shared_ptr<const std::string>& encoded) {
  // Past the write queue's bound the push is dropped: the client syncs after its login anyway.
  if (held_push_bytes_ + encoded->size() <= loop_->options().max_write_queue_bytes) {
    held_push_bytes_ += encoded->size();
    held_pushes_.push_back(encoded);
  }
  return true;  // the connection is this session's: logic must not drop it
}

void Connection::WriteHeldPushes() {
  for (std::shared_ptr<const std::string>& encoded : std::exchange(held_pushes_, {})) {
    WritePush(encoded);
  }
  held_push_bytes_ = 0;
}

void Connection::WriteOwned(std::string bytes) { WriteBuffer(OutFrame{nullptr, std::move(bytes)}); }

void Connection::WriteBuffer(OutFrame frame) {
  if (state_ == State::kClosed) return;
  const size_t size = frame.bytes().size();
  loop_->metrics().bytes_out.Increment(static_cast<double>(size));
  if (pending_write_bytes_ + out_bytes_ + size > loop_->options().max_write_queue_bytes) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn,
                        "conn {:x} uid {}: {} bytes unread, closing as slow consumer", id_, uid_,
                        pending_write_bytes_ + out_bytes_ + size);
    Close(CloseReason::kSlowConsumer);
    return;
  }
  out_.push_back(std::move(frame));
  out_bytes_ += size;
  // A burst this large goes to the kernel now: the queue then never holds much more than this,
  // and the slow-consumer bound keeps measuring what the kernel would not take.
  if (out_bytes_ >= kFlushAtBytes) {
    Flush();
    return;
  }
  RequestFlush();
}

void Connection::RequestFlush() {
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    loop_->ScheduleFlush(id_);
  }
}

void Connection::EncryptQueued() {
  if (out_.size() == 1) {
    tls_->Write(out_.front().bytes());
  } else if (!out_.empty()) {
    // One TLS write for the whole flush: records are filled instead of one per frame.
    thread_local std::string batch;
    batch.clear();
    for (const OutFrame& frame : out_) batch.append(frame.bytes());
    tls_->Write(batch);
    if (batch.capacity() > 4 * kFlushAtBytes) std::string().swap(batch);  // after a large push
  }
  out_.clear();
  out_bytes_ = 0;
  if (!tls_->has_output()) return;
  out_.push_back(OutFrame{nullptr, tls_->TakeOutput()});
  out_bytes_ = out_.front().owned.size();
}

void Connection::Flush() {
  if (state_ == State::kClosed) return;
  if (tls_) EncryptQueued();
  if (out_.empty()) return;
  std::vector<uv_buf_t> bufs;
  bufs.reserve(out_.size());
  for (const OutFrame& frame : out_) {
    const std::string_view bytes = frame.bytes();
    bufs.push_back(uv_buf_init(const_cast<char*>(bytes.data()), bytes.size()));
  }
  size_t written = 0;
  if (pending_write_bytes_ == 0) {
    // Most flushes leave at once, in one writev: no request, no copy.
    loop_->metrics().writes.Increment();
    const int rc = uv_try_write(stream(), bufs.data(), static_cast<unsigned>(bufs.size()));
    if (rc > 0) {
      written = static_cast<size_t>(rc);
    } else if (rc != UV_EAGAIN) {
      Close(CloseReason::kPeer);
      return;
    }
  }
  const size_t remaining = out_bytes_ - written;
  if (remaining == 0) {
    // Emptied and freed: an idle connection keeps no buffer (48 bytes each, most of the time).
    std::vector<OutFrame>().swap(out_);
    out_bytes_ = 0;
    return;
  }
  auto request = std::make_unique<WriteRequest>();
  request->bytes = remaining;
  request->frames = std::move(out_);
  out_.clear();
  out_bytes_ = 0;
  // Skip what left already; the first frame that remains may have left in part.
  size_t first = 0;
  while (written >= bufs[first].len) written -= bufs[first++].len;
  bufs[first].base += written;
  bufs[first].len -= written;
  request->bufs.assign(bufs.begin() + static_cast<std::ptrdiff_t>(first), bufs.end());
  request->req.data = this;
  loop_->metrics().writes.Increment();
  if (uv_write(&request->req, stream(), request->bufs.data(),
               static_cast<unsigned>(request->bufs.size()), &Connection::OnWriteDone) != 0) {
    Close(CloseReason::kPeer);
    return;
  }
  request.release();  // OnWriteDone owns it
  pending_write_bytes_ += remaining;
}

void Connection::OnWriteDone(uv_write_t* req, int status) {
  std::unique_ptr<WriteRequest> request(reinterpret_cast<WriteRequest*>(req));
  auto* self = static_cast<Connection*>(req->data);
  self->pending_write_bytes_ -= request->bytes;
  if (status < 0 && status != UV_ECANCELED) self->Close(CloseReason::kPeer);
}

void Connection::CloseWithError(im::v1::Code code, std::string message, CloseReason reason) {
  SendError(0, code, std::move(message));
  CloseAfterFlush(reason);
}

void Connection::Kick(im::v1::Kick::Reason reason, std::string message) {
  im::v1::Frame frame;
  frame.mutable_kick()->set_reason(reason);
  frame.mutable_kick()->set_message(std::move(message));
  WriteFrame(frame);
  CloseAfterFlush(CloseReason::kKicked);
}

void Connection::GoAway(uint32_t reconnect_after_ms) {
  im::v1::Frame frame;
  frame.mutable_go_away()->set_reconnect_after_ms(reconnect_after_ms);
  WriteFrame(frame);
}

void Connection::CloseAfterFlush(CloseReason reason) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  const bool was_logged_in = logged_in();
  QueueWebSocketClose(WebSocketCloseCodeFor(reason), CloseReasonName(reason));
  Flush();  // what is queued goes to libuv before the shutdown that waits for it
  if (tls_ && state_ != State::kClosed) {
    tls_->Shutdown();  // close_notify, after what was just flushed
    Flush();
  }
  if (state_ == State::kClosed) return;
  state_ = State::kClosing;
  CloseCounter(loop_->metrics(), reason).Increment();
  loop_->Touch(this, Timeline::kClosing);
  if (was_logged_in) ReleaseSession(*loop_, id_, uid_, device_, CloseReasonName(reason));
  // Shutdown sends FIN once queued writes are out; we keep reading (and discarding) until the
  // peer closes, so the kernel does not answer unread input with a RST that would eat our Error.
  shutdown_ = std::make_unique<uv_shutdown_t>();
  shutdown_->data = this;
  if (uv_shutdown(shutdown_.get(), stream(), &Connection::OnShutdownDone) != 0) {
    shutdown_.reset();
    Close(reason);
  }
}

void Connection::OnShutdownDone(uv_shutdown_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  if (status < 0 && status != UV_ECANCELED) self->Close(CloseReason::kPeer);
}

void Connection::Close(CloseReason reason) {
  if (state_ == State::kClosed) return;
  if (ws_ && !tls_) TryWriteWebSocketClose(reason);
  if (state_ != State::kClosing) {
    CloseCounter(loop_->metrics(), reason).Increment();
    if (logged_in()) ReleaseSession(*loop_, id_, uid_, device_, CloseReasonName(reason));
  }
  state_ = State::kClosed;
  out_.clear();
  out_bytes_ = 0;
  loop_->Touch(this, Timeline::kNone);
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), &Connection::OnClosed);
}

void Connection::OnClosed(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  self->loop_->Forget(self);
}

}  // namespace im::gateway
