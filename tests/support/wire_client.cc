#include "tests/support/wire_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace im::testing {

absl::StatusOr<std::unique_ptr<WireClient>> WireClient::Connect(const std::string& host,
                                                                uint16_t port,
                                                                int receive_buffer_bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  if (receive_buffer_bytes > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("bad host ", host));
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(error)));
  }
  return std::unique_ptr<WireClient>(new WireClient(fd));
}

absl::StatusOr<std::unique_ptr<WireClient>> WireClient::ConnectTls(const std::string& host,
                                                                   uint16_t port,
                                                                   tls::ClientContext& tls,
                                                                   const std::string& server_name,
                                                                   Millis timeout) {
  absl::StatusOr<std::unique_ptr<WireClient>> client = Connect(host, port);
  if (!client.ok()) return client.status();
  WireClient& c = **client;
  c.tls_ = tls::TlsChannel::ForClient(tls, server_name);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!c.tls_->handshake_done() && c.tls_->error().empty() && !c.closed_) {
    if (!c.SendTlsOutput()) return absl::UnavailableError("TLS handshake: the server closed");
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("TLS handshake timed out");
    c.Pump(left);
  }
  c.SendTlsOutput();  // the client's Finished, and an alert after a failure
  if (!c.tls_->error().empty()) return absl::UnavailableError("TLS: " + c.tls_->error());
  if (!c.tls_->handshake_done()) return absl::UnavailableError("TLS handshake: the server closed");
  return client;
}

absl::StatusOr<std::unique_ptr<WireClient>> WireClient::ConnectWebSocket(
    const std::string& host, uint16_t port,
    const common::WebSocketClientCodec::UpgradeRequest& request, Millis timeout,
    tls::ClientContext* tls, const std::string& server_name) {
  absl::StatusOr<std::unique_ptr<WireClient>> client =
      tls ? ConnectTls(host, port, *tls, server_name, timeout) : Connect(host, port);
  if (!client.ok()) return client.status();
  WireClient& c = **client;
  c.ws_ = std::make_unique<common::WebSocketClientCodec>();
  c.awaiting_upgrade_ = true;
  if (!c.SendRaw(common::WebSocketClientCodec::Request(request))) {
    return absl::UnavailableError("the server closed before the upgrade request");
  }
  if (absl::Status status = c.ReadUpgradeAnswer(timeout); !status.ok()) return status;
  return client;
}

absl::Status WireClient::ReadUpgradeAnswer(Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  using Answer = common::WebSocketClientCodec::UpgradeAnswer;
  Answer answer;
  while ((answer = common::WebSocketClientCodec::ReadUpgradeAnswer(http_answer_)).kind ==
         Answer::Kind::kIncomplete) {
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (closed_ || left.count() <= 0) break;
    Pump(left);
  }
  if (answer.kind != Answer::Kind::kAccepted) {
    return absl::FailedPreconditionError(absl::StrCat("WebSocket refused: ", http_answer_));
  }
  const std::string rest = http_answer_.substr(answer.length);
  http_answer_.clear();
  awaiting_upgrade_ = false;
  Decode(rest);
  return absl::OkStatus();
}

WireClient::~WireClient() { ::close(fd_); }

bool WireClient::SendFrame(const im::v1::Frame& frame) {
  if (ws_) return SendRaw(common::WebSocketClientCodec::Frame(0x2, frame.SerializeAsString()));
  return SendRaw(common::EncodeFrame(frame));
}

bool WireClient::SendRaw(std::string_view bytes) {
  if (!tls_) return SendToSocket(bytes);
  tls_->Write(bytes);
  return SendTlsOutput();
}

bool WireClient::SendTlsOutput() { return SendToSocket(tls_->TakeOutput()); }

bool WireClient::SendToSocket(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool WireClient::Pump(Millis timeout) {
  if (closed_) return false;
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return false;
  char buffer[64 * 1024];
  const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  Received(std::string_view(buffer, static_cast<size_t>(n)));
  return true;
}

void WireClient::Received(std::string_view bytes) {
  auto decode = [this](std::string_view plaintext) { return Decode(plaintext); };
  if (!tls_) {
    decode(bytes);
    return;
  }
  if (tls_->Feed(bytes, decode) != tls::TlsChannel::Status::kOpen) closed_ = true;
  SendTlsOutput();  // what TLS answers (a key update, an alert)
}

bool WireClient::Decode(std::string_view plaintext) {
  if (reading_raw_) {
    raw_.append(plaintext);
    return true;
  }
  if (awaiting_upgrade_) {
    http_answer_.append(plaintext);  // the upgrade's answer, read by ReadUpgradeAnswer
    return true;
  }
  if (ws_) {
    if (!ws_->Feed(plaintext, [this](common::WebSocketClientCodec::Message m) {
          OnWebSocketMessage(std::move(m));
        })) {
      closed_ = true;  // the server broke the RFC
    }
    return !closed_;
  }
  const common::DecodeError error = decoder_.Feed(plaintext, [this](im::v1::Frame&& f) {
    queue_.push_back(std::move(f));
    return true;
  });
  if (error != common::DecodeError::kNone) closed_ = true;  // the server sent garbage
  return !closed_;
}

void WireClient::OnWebSocketMessage(common::WebSocketClientCodec::Message message) {
  switch (message.opcode) {
    case 0x2: {
      im::v1::Frame frame;
      if (!frame.ParseFromString(message.payload)) {
        closed_ = true;  // not a Frame: the server sent garbage
        return;
      }
      queue_.push_back(std::move(frame));
      return;
    }
    case 0x8:
      websocket_close_ = std::move(message);
      return;
    case 0xa:
      websocket_pongs_++;
      return;
    default:
      closed_ = true;  // text, or a ping the server never sends
  }
}

uint16_t WireClient::CloseCode(const common::WebSocketClientCodec::Message& close) {
  if (close.payload.size() < 2) return 0;
  return static_cast<uint16_t>((static_cast<uint8_t>(close.payload[0]) << 8) |
                               static_cast<uint8_t>(close.payload[1]));
}

std::optional<im::v1::Frame> WireClient::Receive(Millis timeout) {
  return ReceiveMatching([](const im::v1::Frame&) { return true; }, timeout);
}

std::optional<im::v1::Frame> WireClient::ReceiveMatching(
    const std::function<bool(const im::v1::Frame&)>& match, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool read_once = false;
  while (true) {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (match(*it)) {
        im::v1::Frame frame = std::move(*it);
        queue_.erase(it);
        return frame;
      }
    }
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    // A timeout that has run out (or was too short to survive the rounding to milliseconds)
    // still reads what has already arrived, once.
    if (closed_ || (left.count() <= 0 && read_once)) return std::nullopt;
    read_once = true;
    Pump(std::max(left, Millis(0)));
  }
}

std::optional<im::v1::Frame> WireClient::Call(im::v1::Frame request, Millis timeout) {
  const uint64_t id = next_id_++;
  request.set_id(id);
  if (!SendFrame(request)) return std::nullopt;
  return ReceiveMatching([id](const im::v1::Frame& f) { return f.id() == id; }, timeout);
}

std::optional<im::v1::Frame> WireClient::Login(const std::string& token, const std::string& device,
                                               Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_login_req()->set_token(token);
  frame.mutable_login_req()->set_device(device);
  frame.mutable_login_req()->set_platform("test");
  return Call(std::move(frame), timeout);
}

std::string WireClient::ReadRawUntilClosed(Millis timeout) {
  reading_raw_ = true;
  WaitClosed(timeout);
  reading_raw_ = false;
  return std::exchange(raw_, std::string());
}

bool WireClient::WaitClosed(Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!closed_) {
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    Pump(left);
  }
  return true;
}

}  // namespace im::testing
