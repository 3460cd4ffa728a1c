#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "gateway/gateway_metrics.h"

namespace im::gateway {

// Listens for clients and hands each accepted socket to the next worker loop (round robin).
// Runs on the gateway's main loop; accepts in batches with accept4() on readiness so the
// socket can move to another loop's thread, where uv_tcp_open() adopts it.
class Acceptor {
 public:
  // Receives a connected, non-blocking socket it now owns.
  using SocketSink = absl::AnyInvocable<void(int fd)>;

  // Binds and listens on "host:port" (port 0 picks one). Main loop thread.
  static absl::StatusOr<std::unique_ptr<Acceptor>> Listen(uv_loop_t* loop,
                                                          const std::string& address,
                                                          uint32_t backlog, GatewayMetrics* metrics,
                                                          SocketSink sink);
  ~Acceptor();

  uint16_t port() const { return port_; }
  // Stops accepting and closes the listening socket; `on_closed` runs once handles are closed.
  void Close(absl::AnyInvocable<void() &&> on_closed);

 private:
  Acceptor(uv_loop_t* loop, int fd, uint16_t port, GatewayMetrics* metrics, SocketSink sink);
  void StartPolling();
  void OnReadable();
  void PauseAfterFdExhaustion();

  uv_loop_t* loop_;
  int fd_;
  uint16_t port_;
  GatewayMetrics* metrics_;
  SocketSink sink_;
  uv_poll_t poll_;
  uv_timer_t resume_timer_;
  int open_handles_ = 0;
  absl::AnyInvocable<void() &&> on_closed_;
};

// Splits "host:port" (IPv6 as "[::1]:7000") into a socket address.
absl::StatusOr<sockaddr_storage> ParseSocketAddress(const std::string& address);

}  // namespace im::gateway
