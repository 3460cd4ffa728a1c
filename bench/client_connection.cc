#include "bench/client_connection.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace im::bench {
namespace {

// One read buffer per thread: every connection of a loop reads into it and decodes at once.
constexpr size_t kReadBufferBytes = 256 * 1024;
thread_local char read_buffer[kReadBufferBytes];

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

}  // namespace

struct ClientConnection::Socket {
  uv_tcp_t tcp;
  ClientConnection* conn;  // null once closed: late callbacks are dropped
};

struct ClientConnection::WriteReq {
  uv_write_t req;
  std::string data;
  Socket* socket;
};

struct ClientConnection::ConnectReq {
  uv_connect_t req;
  Socket* socket;
};

absl::Status ClientConnection::Connect(const sockaddr_in& target, const sockaddr_in* source) {
  Close();
  char host[INET_ADDRSTRLEN] = {};
  uv_ip4_name(&target, host, sizeof(host));
  if (tls_ != nullptr) tls_host_ = host;
  if (transport_ == Transport::kWebSocket) {
    ws_host_ = absl::StrCat(host, ":", ntohs(target.sin_port));
    ws_ = std::make_unique<WebSocketFraming>(kMaxFrameBytes);
  }
  auto* socket = new Socket{};
  socket->conn = this;
  int rc = uv_tcp_init_ex(loop_, &socket->tcp, AF_INET);
  if (rc != 0) {
    delete socket;
    return absl::UnavailableError(absl::StrCat("uv_tcp_init_ex: ", uv_strerror(rc)));
  }
  socket->tcp.data = socket;
  socket_ = socket;
  uv_tcp_nodelay(&socket->tcp, 1);
  if (source != nullptr) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&socket->tcp), &fd) == 0) {
      // Without it bind() reserves a port per source address for every destination.
      const int one = 1;
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    }
    rc = uv_tcp_bind(&socket->tcp, reinterpret_cast<const sockaddr*>(source), 0);
    if (rc != 0) {
      Close();
      return absl::UnavailableError(absl::StrCat("bind: ", uv_strerror(rc)));
    }
  }
  auto* req = new ConnectReq{};
  req->socket = socket;
  rc = uv_tcp_connect(&req->req, &socket->tcp, reinterpret_cast<const sockaddr*>(&target),
                      &ClientConnection::OnConnect);
  if (rc != 0) {
    delete req;
    Close();
    return absl::UnavailableError(absl::StrCat("connect: ", uv_strerror(rc)));
  }
  decoder_ = im::common::FrameDecoder(kMaxFrameBytes);
  return absl::OkStatus();
}

void ClientConnection::OnConnect(uv_connect_t* uv_req, int status) {
  auto* req = reinterpret_cast<ConnectReq*>(uv_req);
  Socket* socket = req->socket;
  delete req;
  ClientConnection* self = socket->conn;
  if (self == nullptr) return;
  if (status != 0)
    return self->Fail(status == UV_ECONNREFUSED ? "connect_refused" : "connect_failed");
  const int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&socket->tcp),
                               &ClientConnection::OnAlloc, &ClientConnection::OnRead);
  if (rc != 0) return self->Fail("read_start_failed");
  if (self->tls_ == nullptr) return self->OnTransportUp();
  self->tls_channel_ = tls::TlsChannel::ForClient(*self->tls_, self->tls_host_);
  self->WriteTlsOutput();  // the ClientHello
}

void ClientConnection::OnTransportUp() {
  transport_up_ = true;
  if (!ws_) return OnConnected();
  out_ = WebSocketFraming::UpgradeRequest(ws_host_);
  MarkDirty();
}

void ClientConnection::OnConnected() {
  connected_ = true;
  handler_->OnConnected(this);
}

void ClientConnection::MarkDirty() {
  if (dirty_) return;
  dirty_ = true;
  handler_->OnDirty(this);
}

void ClientConnection::OnAlloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(read_buffer, kReadBufferBytes);
}

void ClientConnection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  ClientConnection* self = static_cast<Socket*>(stream->data)->conn;
  if (self == nullptr || nread == 0) return;
  if (nread < 0) return self->Fail(nread == UV_EOF ? "closed_by_server" : "read_failed");
  const std::string_view bytes(buf->base, static_cast<size_t>(nread));
  if (self->tls_channel_) return self->OnTlsBytes(bytes);
  self->Decode(bytes);
}

void ClientConnection::Decode(std::string_view bytes) {
  if (ws_) return DecodeWebSocket(bytes);
  Socket* socket = socket_;
  const im::common::DecodeError error = decoder_.Feed(bytes, [&](im::v1::Frame&& frame) {
    return handler_->OnFrame(this, std::move(frame)) && socket_ == socket;
  });
  if (error != im::common::DecodeError::kNone && socket_ == socket) Fail("bad_frame_from_server");
}

void ClientConnection::DecodeWebSocket(std::string_view bytes) {
  Socket* socket = socket_;
  const size_t pending = out_.size();
  const std::string failure =
      ws_->Feed(bytes,
                {.upgraded =
                     [&] {
                       OnConnected();
                       return socket_ == socket;
                     },
                 .frame =
                     [&](im::v1::Frame&& frame) {
                       return handler_->OnFrame(this, std::move(frame)) && socket_ == socket;
                     }},
                &out_);
  if (socket_ != socket) return;  // closed by the handler
  if (!failure.empty()) return Fail(failure);
  if (out_.size() > pending) MarkDirty();  // pongs
}

void ClientConnection::OnTlsBytes(std::string_view bytes) {
  Socket* socket = socket_;
  const bool was_up = tls_channel_->handshake_done();
  const tls::TlsChannel::Status status = tls_channel_->Feed(bytes, [&](std::string_view plain) {
    Decode(plain);
    return socket_ == socket;
  });
  if (socket_ != socket) return;  // closed by the handler
  WriteTlsOutput();
  if (status == tls::TlsChannel::Status::kFailed) return Fail("tls_failed");
  if (status == tls::TlsChannel::Status::kClosedByPeer) return Fail("closed_by_server");
  if (!was_up && tls_channel_->handshake_done()) OnTransportUp();
}

void ClientConnection::WriteTlsOutput() {
  if (!tls_channel_->has_output() || socket_ == nullptr) return;
  auto* req = new WriteReq{};
  req->data = tls_channel_->TakeOutput();
  req->socket = socket_;
  uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  if (uv_write(&req->req, reinterpret_cast<uv_stream_t*>(&socket_->tcp), &buf, 1,
               &ClientConnection::OnRawWrite) != 0) {
    delete req;
    Fail("write_failed");
  }
}

void ClientConnection::OnRawWrite(uv_write_t* uv_req, int status) {
  auto* req = reinterpret_cast<WriteReq*>(uv_req);
  ClientConnection* self = req->socket->conn;
  delete req;
  if (self != nullptr && status != 0) self->Fail("write_failed");
}

void ClientConnection::Send(const im::v1::Frame& frame) {
  if (!connected_) return;
  if (ws_) {
    WebSocketFraming::AppendFrame(frame, &out_);
  } else {
    im::common::AppendFrame(frame, &out_);
  }
  MarkDirty();
}

void ClientConnection::Flush() {
  dirty_ = false;
  if (!transport_up_ || writing_ || out_.empty()) return;
  auto* req = new WriteReq{};
  if (tls_channel_) {
    if (tls_channel_->Write(out_) != tls::TlsChannel::Status::kOpen) {
      delete req;
      return Fail("tls_failed");
    }
    out_.clear();
    req->data = tls_channel_->TakeOutput();
  } else {
    req->data.swap(out_);
  }
  req->socket = socket_;
  uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  const int rc = uv_write(&req->req, reinterpret_cast<uv_stream_t*>(&socket_->tcp), &buf, 1,
                          &ClientConnection::OnWrite);
  if (rc != 0) {
    delete req;
    return Fail("write_failed");
  }
  writing_ = true;
}

void ClientConnection::OnWrite(uv_write_t* uv_req, int status) {
  auto* req = reinterpret_cast<WriteReq*>(uv_req);
  ClientConnection* self = req->socket->conn;
  delete req;
  if (self == nullptr) return;
  self->writing_ = false;
  if (status != 0) return self->Fail("write_failed");
  if (!self->out_.empty()) self->MarkDirty();
}

void ClientConnection::Close() {
  if (socket_ == nullptr) return;
  socket_->conn = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&socket_->tcp),
           [](uv_handle_t* handle) { delete static_cast<Socket*>(handle->data); });
  socket_ = nullptr;
  transport_up_ = false;
  connected_ = false;
  writing_ = false;
  out_.clear();
  // The TLS channel and the WebSocket framing stay until the next connect replaces them: Close
  // may run inside their Feed.
}

void ClientConnection::Fail(std::string_view reason) {
  Close();
  handler_->OnDisconnected(this, reason);
}

}  // namespace im::bench
