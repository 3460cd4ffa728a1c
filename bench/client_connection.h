#pragma once

#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "bench/bench_options.h"
#include "bench/websocket_framing.h"
#include "common/frame_codec.h"
#include "common/tls/tls_channel.h"
#include "im/v1/client.pb.h"

namespace im::bench {

// One client TCP connection on a libuv loop: connect (optionally from a chosen source address),
// frames out through one output buffer flushed once per loop iteration, frames in through
// common::FrameDecoder, or on a WebSocket (Transport::kWebSocket) through WebSocketFraming, one
// Frame per binary message. Reusable: after Close() (or after the peer closed it) Connect() opens
// a new socket. Used on its loop's thread only; callbacks run there.
//
// A socket outlives Close() until libuv's close callback; callbacks of a closed socket never
// reach the handler.
class ClientConnection {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnConnected(ClientConnection* conn) = 0;
    // The connection is gone (connect failed, the peer closed, a read or write failed, the bytes
    // were not frames, the WebSocket upgrade was refused ("ws_refused") or the server closed the
    // WebSocket ("ws_close_<code>")); `reason` is a short metric-style name. Not called after
    // Close().
    virtual void OnDisconnected(ClientConnection* conn, std::string_view reason) = 0;
    // Returns false when the handler closed the connection.
    virtual bool OnFrame(ClientConnection* conn, im::v1::Frame&& frame) = 0;
    // The connection has bytes to write: the handler calls Flush() once per loop iteration.
    virtual void OnDirty(ClientConnection* conn) = 0;
  };

  // Pushes carry up to gateway.max_push_frame_bytes (4 MiB in deploy/local).
  static constexpr uint32_t kMaxFrameBytes = 8 << 20;

  // With `tls` (owned by the caller, outliving the connection), every connection speaks TLS and
  // counts as connected once its handshake is done; on a WebSocket, once the server accepted the
  // upgrade (inside TLS with `tls`: wss).
  ClientConnection(uv_loop_t* loop, Handler* handler, uint32_t index,
                   tls::ClientContext* tls = nullptr, Transport transport = Transport::kTcp)
      : loop_(loop), handler_(handler), index_(index), tls_(tls), transport_(transport) {}
  ~ClientConnection() { Close(); }
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Starts connecting to `target`, from `source` when not null (port 0: the kernel picks the port
  // at connect time, so one source address serves many destinations). Errors here are immediate;
  // later ones come as OnDisconnected.
  absl::Status Connect(const sockaddr_in& target, const sockaddr_in* source);
  void Send(const im::v1::Frame& frame);
  void Flush();
  // Closes the socket at once (pending output is dropped); no callback follows.
  void Close();

  bool open() const { return socket_ != nullptr; }
  bool connected() const { return connected_; }
  uint32_t index() const { return index_; }
  size_t pending_bytes() const { return out_.size(); }

 private:
  struct Socket;
  struct WriteReq;
  struct ConnectReq;

  static void OnConnect(uv_connect_t* req, int status);
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnRawWrite(uv_write_t* req, int status);
  void Fail(std::string_view reason);
  // TLS: the handshake's and the channel's own output, written as it is produced (libuv keeps
  // writes in order).
  void WriteTlsOutput();
  void OnTlsBytes(std::string_view bytes);
  void Decode(std::string_view bytes);
  void DecodeWebSocket(std::string_view bytes);
  // TCP (and TLS) is up: bytes may be written. Connected at once, or on a WebSocket once the
  // upgrade is accepted.
  void OnTransportUp();
  void OnConnected();
  // Has the handler flush this connection in the loop's next pass.
  void MarkDirty();

  uv_loop_t* loop_;
  Handler* handler_;
  uint32_t index_;
  Socket* socket_ = nullptr;
  bool transport_up_ = false;
  bool connected_ = false;
  bool writing_ = false;
  bool dirty_ = false;
  std::string out_;
  im::common::FrameDecoder decoder_{kMaxFrameBytes};
  tls::ClientContext* tls_;
  std::unique_ptr<tls::TlsChannel> tls_channel_;
  std::string tls_host_;  // the target's address, what the certificate must name
  Transport transport_;
  std::string ws_host_;  // the target's "address:port", the upgrade request's Host
  // Replaced by each Connect() (not by Close(), which may run inside its Feed).
  std::unique_ptr<WebSocketFraming> ws_;
};

}  // namespace im::bench
