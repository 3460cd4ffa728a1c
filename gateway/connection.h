#pragma once

#include <uv.h>

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/conn_id.h"
#include "common/frame_codec.h"
#include "common/tls/tls_channel.h"
#include "common/token_bucket.h"
#include "gateway/websocket/websocket_session.h"
#include "im/v1/client.pb.h"
#include "im/v1/logic.pb.h"

namespace im::gateway {

class WorkerLoop;

enum class CloseReason {
  kPeer,  // EOF or a read/write error
  kLoginTimeout,
  kIdleTimeout,
  kBadFrame,         // oversized, zero-length or unparsable frame
  kUnauthenticated,  // a frame before login, or login refused
  kSlowConsumer,     // write queue over its bound
  kKicked,
  kDrain,      // gateway shutting down
  kLinger,     // a closing connection that did not drain in time
  kLimited,    // refused by an abuse limit at accept, or kept sending past its rate
  kTls,        // TLS handshake refused, or a record that does not decrypt
  kWebSocket,  // WebSocket handshake refused, or a frame that breaks RFC 6455
};
std::string_view CloseReasonName(CloseReason reason);

// One client socket. Owned by its WorkerLoop and used only on that loop's thread; other threads
// refer to it by ConnId and reach it through WorkerLoop::PostToConnection.
// Lifecycle: kAwaitingLogin -> kLoggingIn -> kActive -> kClosing (final frames flushing, input
// discarded) -> kClosed (handle closing; the loop deletes the object in the close callback).
class Connection {
 public:
  // One byte each, packed with the flags below: a Connection is 512 bytes, filling jemalloc's
  // 512-byte size class (the gateway holds one per client connection; past 512 it takes 640, so
  // a new member must take the place of another). A WebSocket's state is 160 bytes apart.
  enum class State : uint8_t { kAwaitingLogin, kLoggingIn, kActive, kClosing, kClosed };
  // Which of the loop's timeout lists the connection sits in.
  enum class Timeline : uint8_t { kNone, kUnauthenticated, kLive, kClosing };

  Connection(WorkerLoop* loop, common::ConnId id);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Takes ownership of a connected, non-blocking socket and starts reading. With `tls`, the
  // client speaks TLS: frames travel inside it, and nothing is written before its handshake.
  // With `websocket`, the client speaks WebSocket (inside TLS, with both): one frame per binary
  // message, no length prefix, and no frame is written before the handshake's answer.
  int Open(int fd, const tls::ServerContext* tls = nullptr,
           const WebSocketSession::Options* websocket = nullptr);

  // Queues one frame; the frames queued in one loop iteration leave together, in one write, when
  // the loop is about to wait (WorkerLoop calls Flush). A connection whose queued and unwritten
  // bytes pass max_write_queue_bytes is closed as a slow consumer.
  void WriteFrame(const im::v1::Frame& frame);
  // Writes a pre-encoded frame shared with other connections (push fan-out). Returns false when
  // the connection cannot take it (not logged in, closing, or just closed as a slow consumer).
  // While its login is at logic the push is held and written after the LoginResp: logic
  // registered the session before answering, so pushes may come first.
  bool WritePush(const std::shared_ptr<const std::string>& encoded);

  // Sends Error{code} and closes once it is flushed.
  void CloseWithError(im::v1::Code code, std::string message, CloseReason reason);
  // Sends Kick and closes once it is flushed.
  void Kick(im::v1::Kick::Reason reason, std::string message);
  // Sends GoAway; the client is expected to leave on its own.
  void GoAway(uint32_t reconnect_after_ms);
  // Stops reading, lets queued frames flush (bounded by the linger timeout), then closes.
  void CloseAfterFlush(CloseReason reason);
  // Closes now; queued writes are dropped.
  void Close(CloseReason reason);
  // Writes what was queued since the last flush, in one writev when the socket takes it (else
  // one uv_write). Loop thread; WorkerLoop calls it once per iteration for the connections that
  // queued something.
  void Flush();
  // Flush() for WorkerLoop's flush list, which holds the connection once until this call.
  void FlushScheduled() {
    flush_scheduled_ = false;
    Flush();
  }

  // A response from logic for a request this connection forwarded.
  void OnLogicResponse(std::optional<im::v1::Frame> response);
  // Logic's answer to this connection's login (or the failure in its place).
  void OnLoginResp(uint64_t frame_id, im::v1::LoginResp resp);

  common::ConnId id() const { return id_; }
  State state() const { return state_; }
  bool logged_in() const { return state_ == State::kActive; }
  const std::string& uid() const { return uid_; }
  const std::string& device() const { return device_; }
  uint64_t pending_write_bytes() const { return pending_write_bytes_; }
  // Where it comes from, once counted against its source's cap (SourceLimits::Open).
  uint64_t source() const { return source_; }
  void set_source(uint64_t source) { source_ = source; }
  // Loop time (ms) of accept, last frame received, or start of closing, by timeline.
  uint64_t timeline_since_ms() const { return timeline_since_ms_; }

  // Bookkeeping of WorkerLoop's timeout lists.
  Timeline timeline() const { return timeline_; }
  std::list<Connection*>::iterator timeline_position() const { return timeline_position_; }
  void set_timeline(Timeline timeline, std::list<Connection*>::iterator position,
                    uint64_t since_ms) {
    timeline_ = timeline;
    timeline_position_ = position;
    timeline_since_ms_ = since_ms;
  }

 private:
  // WritePush while logging in; the held pushes once the login is answered OK.
  bool HoldPush(const std::shared_ptr<const std::string>& encoded);
  void WriteHeldPushes();
  struct WriteRequest;
  // Queued bytes that are written at once rather than at the end of the loop iteration.
  static constexpr uint64_t kFlushAtBytes = 64 * 1024;
  // Queued bytes: shared by many connections (a push, serialized once; from `offset` on, which
  // skips the length prefix on WebSocket) or this one's own.
  struct OutFrame {
    std::shared_ptr<const std::string> shared;
    std::string owned;
    uint32_t offset = 0;
    std::string_view bytes() const {
      return shared ? std::string_view(*shared).substr(offset) : std::string_view(owned);
    }
  };

  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWriteDone(uv_write_t* req, int status);
  static void OnShutdownDone(uv_shutdown_t* req, int status);
  static void OnClosed(uv_handle_t* handle);

  void HandleBytes(std::string_view bytes);
  // What a WebSocket connection read (after TLS): the handshake, then messages into HandleFrame.
  void HandleWebSocketBytes(std::string_view bytes);
  // Returns false when reading must stop (the connection began closing).
  bool HandleWebSocketMessage(std::string_view message);
  void OnWebSocketFailure(const WebSocketSession::Failure& failure);
  // Queues the WebSocket close frame, unless one went already or the socket is not WebSocket.
  void QueueWebSocketClose(uint16_t code, std::string_view reason);
  // Closing at once (plain WebSocket): the close frame, if the socket takes it now in one piece.
  void TryWriteWebSocketClose(CloseReason reason);
  // What a TLS connection read: decrypted into HandleBytes, the handshake's answers queued.
  void HandleTlsBytes(std::string_view bytes);
  void CountTlsHandshake();
  // Moves the frames queued in out_ into the TLS channel and out_ to what it produced.
  void EncryptQueued();
  void RequestFlush();
  // Returns false when decoding must stop (the connection began closing).
  bool HandleFrame(im::v1::Frame&& frame);
  void HandleFirstFrame(im::v1::Frame&& frame);
  void HandleActiveFrame(im::v1::Frame&& frame);
  void StartLogin(im::v1::Frame&& frame);
  // Whether a send may go on under gateway.send_rate_per_connection; if not, it is answered
  // (RESOURCE_EXHAUSTED, the wait as retry hint), or the connection closed when it kept at it.
  bool TakeSendToken(const im::v1::Frame& send);
  void SendError(uint64_t frame_id, im::v1::Code code, std::string message);
  void WriteOwned(std::string bytes);
  void WriteBuffer(OutFrame frame);
  im::v1::Caller MakeCaller(uint64_t frame_id) const;
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&handle_); }

  uv_tcp_t handle_;
  WorkerLoop* loop_;
  const common::ConnId id_;
  State state_ = State::kAwaitingLogin;
  Timeline timeline_ = Timeline::kNone;
  uint16_t in_flight_ = 0;
  uint16_t send_refusals_ = 0;  // in a row, by the send rate limit
  bool handle_open_ = false;
  bool flush_scheduled_ = false;
  std::list<Connection*>::iterator timeline_position_;
  uint64_t timeline_since_ms_ = 0;
  uint64_t pending_write_bytes_ = 0;  // handed to libuv, not written yet
  std::vector<OutFrame> out_;         // queued since the last flush
  // Pushes that came while the login was at logic (its session registered, its answer not back
  // yet): written after the LoginResp, so the client hears them in order and logic, told they
  // were delivered, keeps the session. Dropped if the login fails.
  std::vector<std::shared_ptr<const std::string>> held_pushes_;
  size_t held_push_bytes_ = 0;
  uint64_t out_bytes_ = 0;
  common::FrameDecoder decoder_;
  // Where the connection comes from (SourceLimits::SourceOf), counted in SourceLimits while it is
  // open; kExempt: not counted, and exempt from the send rate limit.
  uint64_t source_ = 0;
  common::TokenBucket send_tokens_;
  std::string uid_;
  std::string device_;
  std::unique_ptr<uv_shutdown_t> shutdown_;
  std::unique_ptr<tls::TlsChannel> tls_;  // on the TLS ports only
  std::unique_ptr<WebSocketSession> ws_;  // on the WebSocket ports only
};

}  // namespace im::gateway
