#include "sdk/tests/fake_gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"

namespace im::sdk {
namespace {

constexpr uint32_t kHeartbeatSec = 30;

// What is left of `deadline_ms` (steady), at least 0.
FakeGateway::Millis Until(int64_t deadline_ms) {
  return FakeGateway::Millis(std::max<int64_t>(0, deadline_ms - common::SteadyMillis()));
}

}  // namespace

FakeGateway::FrameMatch FakeGateway::Is(im::v1::Frame::BodyCase body) {
  return [body](const im::v1::Frame& frame) { return frame.body_case() == body; };
}

absl::StatusOr<std::unique_ptr<FakeGateway>> FakeGateway::Start(std::string uid) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("listen: ", std::strerror(error)));
  }
  return std::unique_ptr<FakeGateway>(new FakeGateway(fd, ntohs(address.sin_port), std::move(uid)));
}

FakeGateway::~FakeGateway() {
  Disconnect();
  ::close(listen_fd_);
}

std::string FakeGateway::address() const { return absl::StrCat("127.0.0.1:", port_); }

bool FakeGateway::AcceptLogin(Millis timeout) {
  const int64_t deadline_ms = common::SteadyMillis() + timeout.count();
  Disconnect();
  pollfd listening{listen_fd_, POLLIN, 0};
  if (::poll(&listening, 1, static_cast<int>(timeout.count())) <= 0) return false;
  fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd_ < 0) return false;
  decoder_ = std::make_unique<common::FrameDecoder>();
  std::optional<im::v1::Frame> login = Receive(Is(im::v1::Frame::kLoginReq), Until(deadline_ms));
  if (!login) return false;
  im::v1::Frame answer;
  answer.set_id(login->id());
  im::v1::LoginResp* resp = answer.mutable_login_resp();
  resp->mutable_status()->set_code(im::v1::OK);
  resp->set_uid(uid_);
  resp->set_server_time_ms(common::UnixMillis());
  resp->set_heartbeat_sec(kHeartbeatSec);
  return Send(answer);
}

std::optional<im::v1::Frame> FakeGateway::Receive(const FrameMatch& match, Millis timeout) {
  const int64_t deadline_ms = common::SteadyMillis() + timeout.count();
  while (true) {
    while (!queue_.empty()) {
      im::v1::Frame frame = std::move(queue_.front());
      queue_.pop_front();
      if (match(frame)) return frame;
      AnswerRoutine(frame);
    }
    if (!Pump(Until(deadline_ms))) return std::nullopt;
  }
}

void FakeGateway::AnswerRoutine(const im::v1::Frame& frame) {
  im::v1::Frame answer;
  answer.set_id(frame.id());
  switch (frame.body_case()) {
    case im::v1::Frame::kPing:
      answer.mutable_pong()->set_server_time_ms(common::UnixMillis());
      break;
    case im::v1::Frame::kConversationsReq:
      answer.mutable_conversations_resp()->mutable_status()->set_code(im::v1::OK);
      break;
    default:
      return;
  }
  Send(answer);
}

bool FakeGateway::Send(const im::v1::Frame& frame) {
  if (fd_ < 0) return false;
  const std::string bytes = common::EncodeFrame(frame);
  std::string_view rest = bytes;
  while (!rest.empty()) {
    const ssize_t n = ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void FakeGateway::Disconnect() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  queue_.clear();
}

bool FakeGateway::Pump(Millis timeout) {
  if (fd_ < 0) return false;
  pollfd connection{fd_, POLLIN, 0};
  if (::poll(&connection, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buffer[64 * 1024];
  const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
  if (n <= 0) return false;
  const common::DecodeError error =
      decoder_->Feed(std::string_view(buffer, static_cast<size_t>(n)), [this](im::v1::Frame&& f) {
        queue_.push_back(std::move(f));
        return true;
      });
  return error == common::DecodeError::kNone;
}

}  // namespace im::sdk
