#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace im::testing {
namespace {

using Clock = std::chrono::steady_clock;

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Closes with a reset rather than a FIN, as a dropped mobile connection looks to the server.
void Reset(int fd) {
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  close(fd);
}

// Bytes read from one side, waiting for their release time before they go to the other side.
struct Direction {
  int from = -1;
  int to = -1;
  std::deque<std::pair<Clock::time_point, std::string>> held;
  bool eof = false;
};

struct Pair {
  Direction up;            // client -> server
  Direction down;          // server -> client
  bool connected = false;  // the server side finished connecting
  bool dead = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(uint16_t target_port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("listen: ", std::strerror(errno)));
  }
  SetNonBlocking(fd);
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(fd, ntohs(address.sin_port), target_port));
  return proxy;
}

TcpProxy::TcpProxy(int listen_fd, uint16_t port, uint16_t target_port)
    : listen_fd_(listen_fd), port_(port), target_port_(target_port) {
  if (pipe(wake_fds_) == 0) {
    SetNonBlocking(wake_fds_[0]);
  }
  thread_ = std::thread([this] { Run(); });
}

TcpProxy::~TcpProxy() {
  stop_.store(true);
  const char byte = 1;
  if (write(wake_fds_[1], &byte, 1) < 0) {
    // The thread still sees stop_ within its poll timeout.
  }
  thread_.join();
  close(listen_fd_);
  close(wake_fds_[0]);
  close(wake_fds_[1]);
}

void TcpProxy::Run() {
  std::vector<std::unique_ptr<Pair>> pairs;
  std::mt19937_64 random(port_);
  char buffer[16 * 1024];

  auto close_pair = [&](Pair& pair) {
    if (pair.dead) return;
    pair.dead = true;
    Reset(pair.up.from);
    Reset(pair.up.to);
  };
  auto release_time = [&] {
    const int64_t max_delay = max_delay_ms_.load();
    const int64_t delay =
        max_delay <= 0 ? 0 : std::uniform_int_distribution<int64_t>(0, max_delay)(random);
    return Clock::now() + std::chrono::milliseconds(delay);
  };

  while (!stop_.load()) {
    if (cut_requested_.exchange(false)) {
      for (auto& pair : pairs) {
        if (!pair->dead) cut_.fetch_add(1);
        close_pair(*pair);
      }
    }
    std::erase_if(pairs, [](const std::unique_ptr<Pair>& pair) { return pair->dead; });

    // Forward what is due; find the next release time.
    Clock::time_point next_release = Clock::now() + std::chrono::milliseconds(100);
    for (auto& pair : pairs) {
      for (Direction* direction : {&pair->up, &pair->down}) {
        if (!pair->connected || pair->dead) continue;
        while (!direction->held.empty() && direction->held.front().first <= Clock::now()) {
          std::string& bytes = direction->held.front().second;
          const ssize_t sent = send(direction->to, bytes.data(), bytes.size(), MSG_NOSIGNAL);
          if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (sent < 0) {
            close_pair(*pair);
            break;
          }
          bytes.erase(0, static_cast<size_t>(sent));
          if (!bytes.empty()) break;
          direction->held.pop_front();
        }
        if (!pair->dead && direction->held.empty() && direction->eof) close_pair(*pair);
        if (!direction->held.empty()) {
          next_release = std::min(next_release, direction->held.front().first);
        }
      }
    }

    std::vector<pollfd> fds;
    fds.push_back(pollfd{listen_fd_, POLLIN, 0});
    fds.push_back(pollfd{wake_fds_[0], POLLIN, 0});
    for (auto& pair : pairs) {
      if (pair->dead) continue;
      fds.push_back(pollfd{pair->up.from, POLLIN, 0});
      short server_events = pair->connected ? POLLIN : POLLOUT;
      if (pair->connected && !pair->up.held.empty()) server_events |= POLLOUT;
      fds.push_back(pollfd{pair->up.to, server_events, 0});
    }
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_release - Clock::now());
    poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, wait.count())));

    if (fds[0].revents & POLLIN) {
      while (true) {
        const int client = accept(listen_fd_, nullptr, nullptr);
        if (client < 0) break;
        accepted_.fetch_add(1);
        if (refusing_.load()) {
          Reset(client);
          continue;
        }
        const int server = socket(AF_INET, SOCK_STREAM, 0);
        SetNonBlocking(client);
        SetNonBlocking(server);
        int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in target{};
        target.sin_family = AF_INET;
        target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        target.sin_port = htons(target_port_.load());
        if (connect(server, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0 &&
            errno != EINPROGRESS) {
          Reset(client);
          close(server);
          continue;
        }
        auto pair = std::make_unique<Pair>();
        pair->up.from = client;
        pair->up.to = server;
        pair->down.from = server;
        pair->down.to = client;
        pairs.push_back(std::move(pair));
      }
    }
    if (fds[1].revents & POLLIN) {
      char drain[16];
      while (read(wake_fds_[0], drain, sizeof drain) > 0) {
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      for (auto& pair : pairs) {
        if (pair->dead) continue;
        if (fds[i].fd == pair->up.to && !pair->connected &&
            (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
          int error = 0;
          socklen_t length = sizeof error;
          getsockopt(pair->up.to, SOL_SOCKET, SO_ERROR, &error, &length);
          if (error != 0) {
            close_pair(*pair);
            break;
          }
          pair->connected = true;
        }
        for (Direction* direction : {&pair->up, &pair->down}) {
          if (fds[i].fd != direction->from || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
            continue;
          }
          if (direction == &pair->down && !pair->connected) continue;
          const ssize_t got = recv(direction->from, buffer, sizeof buffer, 0);
          if (got > 0) {
            direction->held.emplace_back(release_time(), std::string(buffer, got));
          } else if (got == 0) {
            direction->eof = true;
          } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            close_pair(*pair);
          }
        }
      }
    }
  }
  for (auto& pair : pairs) close_pair(*pair);
}

}  // namespace im::testing
