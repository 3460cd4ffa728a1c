#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"

namespace im::testing {

// A TCP proxy for tests that play a bad network between a client and a server: it listens on
// 127.0.0.1 (port 0) and forwards each connection to 127.0.0.1:<target>. It can cut every open
// connection at once (both sides see a reset), refuse new connections, and hold each chunk of
// bytes for a random delay (order within a direction is kept). One thread does all the I/O; the
// control methods may be called from any thread.
class TcpProxy {
 public:
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(uint16_t target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const { return port_; }
  void set_target_port(uint16_t port) { target_port_.store(port); }
  // Resets every open connection.
  void CutAll() { cut_requested_.store(true); }
  // While refusing, accepted connections are closed at once (a gateway that is unreachable).
  void set_refusing(bool refusing) { refusing_.store(refusing); }
  // Each chunk read is forwarded after a uniform random delay in [0, max_delay].
  void set_max_delay(std::chrono::milliseconds max_delay) {
    max_delay_ms_.store(max_delay.count());
  }

  int connections_accepted() const { return accepted_.load(); }
  int connections_cut() const { return cut_.load(); }

 private:
  TcpProxy(int listen_fd, uint16_t port, uint16_t target_port);
  void Run();

  int listen_fd_;
  uint16_t port_;
  std::atomic<uint16_t> target_port_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_requested_{false};
  std::atomic<bool> refusing_{false};
  std::atomic<int64_t> max_delay_ms_{0};
  std::atomic<int> accepted_{0};
  std::atomic<int> cut_{0};
  int wake_fds_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace im::testing
