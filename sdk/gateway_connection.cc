#include "sdk/gateway_connection.h"

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/tls/tls_channel.h"

namespace im::sdk {
namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;

struct WriteRequest {
  uv_write_t request;
  std::string bytes;
};

}  // namespace

// Owned by libuv once the owner lets go: freed when the handle is closed and the resolver is
// done. libuv cancels pending connect and write requests before it runs the close callback.
struct GatewayConnection::Socket {
  uv_tcp_t tcp;
  uv_getaddrinfo_t resolve;
  uv_connect_t connect;
  Listener* listener;  // null once the owner is gone or after OnDisconnected
  common::FrameDecoder decoder;
  std::shared_ptr<tls::ClientContext> tls_context;  // null: plain TCP
  std::unique_ptr<tls::TlsChannel> tls;             // from the TCP connect on
  std::string host;                                 // checked against the certificate
  std::string read_buffer;
  bool resolving = false;
  bool closing = false;
  bool handle_closed = false;

  Socket(Listener* owner, uint32_t max_frame_bytes, std::shared_ptr<tls::ClientContext> context)
      : listener(owner), decoder(max_frame_bytes), tls_context(std::move(context)) {}

  // Reports the end once and starts closing.
  void Fail(const std::string& reason) {
    Listener* owner = listener;
    listener = nullptr;
    Close();
    if (owner != nullptr) owner->OnDisconnected(reason);
  }

  void Close() {
    if (closing) return;
    closing = true;
    if (resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve));
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), &Socket::OnClosed);
  }

  void FreeWhenIdle() {
    if (handle_closed && !resolving) delete this;
  }

  static void OnClosed(uv_handle_t* handle) {
    Socket* socket = static_cast<Socket*>(handle->data);
    socket->handle_closed = true;
    socket->FreeWhenIdle();
  }

  static void OnResolved(uv_getaddrinfo_t* request, int status, addrinfo* result) {
    Socket* socket = static_cast<Socket*>(request->data);
    socket->resolving = false;
    if (socket->closing) {
      uv_freeaddrinfo(result);
      return socket->FreeWhenIdle();
    }
    if (status != 0 || result == nullptr) {
      uv_freeaddrinfo(result);
      return socket->Fail(absl::StrCat("cannot resolve: ", uv_strerror(status)));
    }
    const int rc = uv_tcp_connect(&socket->connect, &socket->tcp, result->ai_addr, &OnConnect);
    uv_freeaddrinfo(result);
    if (rc != 0) socket->Fail(absl::StrCat("connect: ", uv_strerror(rc)));
  }

  static void OnConnect(uv_connect_t* request, int status) {
    Socket* socket = static_cast<Socket*>(request->data);
    if (socket->closing) return;
    if (status != 0) return socket->Fail(absl::StrCat("connect: ", uv_strerror(status)));
    uv_tcp_nodelay(&socket->tcp, 1);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&socket->tcp), &OnAlloc, &OnRead);
    if (socket->tls_context) {
      socket->tls = tls::TlsChannel::ForClient(*socket->tls_context, socket->host);
      socket->WriteTlsOutput();  // the ClientHello; OnConnected waits for the handshake
      return;
    }
    if (socket->listener != nullptr) socket->listener->OnConnected();
  }

  // Writes `bytes` (owned by the request from here on).
  void WriteBytes(std::string bytes) {
    if (bytes.empty() || closing) return;
    auto* write = new WriteRequest;
    write->bytes = std::move(bytes);
    write->request.data = this;
    uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned int>(write->bytes.size()));
    const int rc = uv_write(&write->request, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1,
                            &Socket::OnWritten);
    if (rc != 0) {
      delete write;
      Fail(absl::StrCat("write: ", uv_strerror(rc)));
    }
  }

  void WriteTlsOutput() {
    if (tls->has_output()) WriteBytes(tls->TakeOutput());
  }

  // Decodes frames out of plaintext; false once the connection is done with.
  bool Decode(std::string_view bytes) {
    const common::DecodeError error = decoder.Feed(bytes, [this](im::v1::Frame&& frame) {
      if (listener == nullptr) return false;
      listener->OnFrame(std::move(frame));
      return listener != nullptr;
    });
    if (error != common::DecodeError::kNone && !closing) {
      Fail("undecodable bytes from the gateway: " + std::string(common::DecodeErrorName(error)));
    }
    return !closing && listener != nullptr;
  }

  void DecryptAndDecode(std::string_view bytes) {
    const bool was_connected = tls->handshake_done();
    const tls::TlsChannel::Status status =
        tls->Feed(bytes, [this](std::string_view plaintext) { return Decode(plaintext); });
    if (closing) return;
    WriteTlsOutput();  // the client's Finished, or an alert
    if (status == tls::TlsChannel::Status::kFailed) return Fail("TLS: " + tls->error());
    if (status == tls::TlsChannel::Status::kClosedByPeer) return Fail("closed by the gateway");
    if (!was_connected && tls->handshake_done() && listener != nullptr) listener->OnConnected();
  }

  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    Socket* socket = static_cast<Socket*>(handle->data);
    socket->read_buffer.resize(kReadBufferBytes);
    *buf = uv_buf_init(socket->read_buffer.data(), kReadBufferBytes);
  }

  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    Socket* socket = static_cast<Socket*>(stream->data);
    if (nread == 0 || socket->closing) return;
    if (nread < 0) {
      return socket->Fail(nread == UV_EOF
                              ? std::string("closed by the gateway")
                              : absl::StrCat("read: ", uv_strerror(static_cast<int>(nread))));
    }
    const std::string_view bytes(buf->base, static_cast<size_t>(nread));
    if (socket->tls) {
      socket->DecryptAndDecode(bytes);
    } else {
      socket->Decode(bytes);
    }
  }

  static void OnWritten(uv_write_t* request, int status) {
    std::unique_ptr<WriteRequest> done(reinterpret_cast<WriteRequest*>(request));
    Socket* socket = static_cast<Socket*>(request->data);
    if (status != 0 && !socket->closing) {
      socket->Fail(absl::StrCat("write: ", uv_strerror(status)));
    }
  }
};

GatewayConnection::GatewayConnection(uv_loop_t* loop, std::string address, uint32_t max_frame_bytes,
                                     Listener* listener, std::shared_ptr<tls::ClientContext> tls)
    : address_(std::move(address)), socket_(new Socket(listener, max_frame_bytes, std::move(tls))) {
  uv_tcp_init(loop, &socket_->tcp);
  socket_->tcp.data = socket_;
  socket_->resolve.data = socket_;
  socket_->connect.data = socket_;
  // "host:port" or "[v6]:port"; anything else fails in the resolver, reported from the loop.
  const size_t colon = address_.rfind(':');
  std::string host = address_.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : address_.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  socket_->host = host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  socket_->resolving = true;
  const int rc = uv_getaddrinfo(loop, &socket_->resolve, &Socket::OnResolved, host.c_str(),
                                port.c_str(), &hints);
  if (rc != 0) {
    socket_->resolving = false;
    socket_->listener = nullptr;  // the owner learns of it from the state it is in: never connected
    socket_->Close();
    failed_at_start_ = absl::StrCat("cannot resolve ", address_, ": ", uv_strerror(rc));
  }
}

GatewayConnection::~GatewayConnection() {
  socket_->listener = nullptr;
  socket_->Close();
}

void GatewayConnection::Send(const im::v1::Frame& frame) {
  if (socket_->closing) return;
  std::string bytes;
  common::AppendFrame(frame, &bytes);
  if (!socket_->tls) return socket_->WriteBytes(std::move(bytes));
  if (socket_->tls->Write(bytes) == tls::TlsChannel::Status::kFailed) {
    return socket_->Fail("TLS: " + socket_->tls->error());
  }
  socket_->WriteTlsOutput();
}

}  // namespace im::sdk
