#include "gateway/acceptor.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace im::gateway {
namespace {

constexpr int kMaxAcceptsPerWakeup = 256;
constexpr uint64_t kFdExhaustionPauseMs = 100;

}  // namespace

absl::StatusOr<sockaddr_storage> ParseSocketAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", address, "'"));
  }
  sockaddr_storage storage{};
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&storage)) == 0) {
    return storage;
  }
  if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&storage)) == 0) {
    return storage;
  }
  return absl::InvalidArgumentError(absl::StrCat("bad host in '", address, "'"));
}

absl::StatusOr<std::unique_ptr<Acceptor>> Acceptor::Listen(uv_loop_t* loop,
                                                           const std::string& address,
                                                           uint32_t backlog,
                                                           GatewayMetrics* metrics,
                                                           SocketSink sink) {
  absl::StatusOr<sockaddr_storage> parsed = ParseSocketAddress(address);
  if (!parsed.ok()) return parsed.status();
  const socklen_t length =
      parsed->ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  const int fd = ::socket(parsed->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket(): ", std::strerror(errno)));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*parsed), length) != 0 ||
      ::listen(fd, static_cast<int>(backlog)) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", std::strerror(error)));
  }
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  const uint16_t port =
      ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return std::unique_ptr<Acceptor>(new Acceptor(loop, fd, port, metrics, std::move(sink)));
}

Acceptor::Acceptor(uv_loop_t* loop, int fd, uint16_t port, GatewayMetrics* metrics, SocketSink sink)
    : loop_(loop), fd_(fd), port_(port), metrics_(metrics), sink_(std::move(sink)) {
  uv_poll_init(loop_, &poll_, fd_);
  poll_.data = this;
  uv_timer_init(loop_, &resume_timer_);
  resume_timer_.data = this;
  open_handles_ = 2;
  StartPolling();
}

void Acceptor::StartPolling() {
  uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* handle, int status, int) {
    if (status == 0) static_cast<Acceptor*>(handle->data)->OnReadable();
  });
}

Acceptor::~Acceptor() {
  if (fd_ >= 0) ::close(fd_);
}

void Acceptor::OnReadable() {
  for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      sink_(fd);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    metrics_->accept_errors.Increment();
    IM_LOG_RATE_LIMITED(spdlog::level::err, "accept failed: {}", std::strerror(errno));
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      PauseAfterFdExhaustion();
    }
    return;
  }
}

// Out of descriptors: the pending connection stays in the backlog and the socket stays
// readable, so polling on would spin. Pause briefly; connections closing meanwhile free fds.
void Acceptor::PauseAfterFdExhaustion() {
  uv_poll_stop(&poll_);
  uv_timer_start(
      &resume_timer_,
      [](uv_timer_t* timer) { static_cast<Acceptor*>(timer->data)->StartPolling(); },
      kFdExhaustionPauseMs, 0);
}

void Acceptor::Close(absl::AnyInvocable<void() &&> on_closed) {
  on_closed_ = std::move(on_closed);
  auto closed = [](uv_handle_t* handle) {
    auto* self = static_cast<Acceptor*>(handle->data);
    if (--self->open_handles_ == 0) {
      ::close(self->fd_);
      self->fd_ = -1;
      std::move(self->on_closed_)();
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&resume_timer_), closed);
}

}  // namespace im::gateway
