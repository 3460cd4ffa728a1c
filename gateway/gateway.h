#pragma once

#include <grpcpp/grpcpp.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/admin_http_server.h"
#include "common/loop_task_queue.h"
#include "gateway/acceptor.h"
#include "gateway/gateway_metrics.h"
#include "gateway/gateway_options.h"
#include "gateway/gateway_service_impl.h"
#include "gateway/logic_client.h"
#include "gateway/reloadable_tls_context.h"
#include "gateway/worker_loop.h"

namespace im::gateway {

// An im-gateway: the acceptor and signal handling on the main loop, N worker loops holding the
// connections, a gRPC client to logic and the GatewayService server for logic.
// Shutdown (SIGTERM, SIGINT, the Drain RPC or RequestDrain()): stop accepting, GoAway to every
// client, wait until they have left or drain_timeout_ms passed, close the rest, stop serving
// gRPC once calls in flight are done, and return from Run(). A second signal skips the wait.
class Gateway {
 public:
  // A cluster's gateway: logic over gRPC at options.logic_target, GatewayService (pushes, drain)
  // served on options.grpc_address.
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(const GatewayOptions& options,
                                                         prometheus::Registry& registry);
  // The embedded node's gateway: logic runs in this process, reached through what `link` makes
  // (given the gateway's metrics), and pushes come in through DeliverPushes; no gRPC server.
  using MakeLink = std::function<std::unique_ptr<LogicLink>(GatewayMetrics* metrics)>;
  static absl::StatusOr<std::unique_ptr<Gateway>> CreateInProcess(const GatewayOptions& options,
                                                                  prometheus::Registry& registry,
                                                                  const MakeLink& link);
  ~Gateway();

  // Any thread: hands each push of `request` to the loops owning its connections (as the
  // GatewayService's Push does); `reply` must live until `done`, which runs once.
  void DeliverPushes(const im::v1::PushBatchRequest& request, im::v1::PushBatchReply* reply,
                     GatewayServiceImpl::BatchDone done) {
    service_->DeliverBatch(request, reply, std::move(done));
  }

  // Runs the main loop on the calling thread until the drain has finished.
  absl::Status Run();

  // Any thread: begins the drain (0: use the configured GoAway hint).
  void RequestDrain(uint32_t reconnect_after_ms = 0);

  // Any thread (the admin HTTP server's). Liveness: the main loop and every worker loop run a
  // posted task within a second. Readiness: accepting (not draining) and the channel to logic is
  // connected (READY); an idle channel is asked to connect and reported not ready meanwhile.
  // Gateways talk to logic at least every register_ms, so a healthy channel is never idle long.
  common::HealthReport Liveness();
  common::HealthReport Readiness();

  uint16_t client_port() const { return acceptor_->port(); }
  // 0 when gateway.tls_listen is not set.
  uint16_t tls_port() const { return tls_acceptor_ ? tls_acceptor_->port() : 0; }
  // 0 when gateway.ws_listen / gateway.wss_listen is not set.
  uint16_t ws_port() const { return ws_acceptor_ ? ws_acceptor_->port() : 0; }
  uint16_t wss_port() const { return wss_acceptor_ ? wss_acceptor_->port() : 0; }
  // Main loop (SIGHUP), or any thread in tests: reads the TLS certificate and key again.
  absl::Status ReloadTls();
  int grpc_port() const { return grpc_port_; }
  size_t connection_count() const;

 private:
  explicit Gateway(const GatewayOptions& options, prometheus::Registry& registry);
  // Starts the worker loops and the acceptor; with `serve_grpc`, GatewayService too.
  absl::Status Init(bool serve_grpc);
  absl::Status ServeGrpc();
  // Starts the TLS and the WebSocket ports that are configured.
  absl::Status ListenTlsAndWebSocket();
  // An acceptor on `address` handing its sockets out with TLS (the current certificate) or not,
  // WebSocket or not.
  absl::StatusOr<std::unique_ptr<Acceptor>> ListenFor(const std::string& address, bool tls,
                                                      bool websocket);
  void HandOut(int fd, std::shared_ptr<const tls::ServerContext> tls, bool websocket);
  void CloseAcceptors();
  // SIGTERM and SIGINT start a drain, SIGHUP reloads the TLS certificate (Create, once Init
  // succeeded).
  void WatchSignals();
  void BeginDrain(uint32_t reconnect_after_ms);
  void CheckDrained();
  void FinishShutdown();
  std::string PushAddress() const;
  // Registers with logic when due: every register_ms, and every second until one succeeded.
  void RegisterIfDue();
  void OnRegistered(bool ok);

  GatewayOptions options_;
  GatewayMetrics metrics_;
  uv_loop_t loop_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_signal_t sighup_;
  uv_timer_t drain_timer_;
  uv_timer_t register_timer_;
  std::unique_ptr<common::LoopTaskQueue> main_tasks_;
  std::unique_ptr<LogicLink> logic_;
  // Logins of this process waiting for logic, over every worker loop
  // (gateway.max_logins_in_flight): past it a login is refused at once with a retry hint instead of
  // queueing behind a storm.
  common::AdmissionLimit logins_;
  SourceLimits sources_;  // the abuse limits by source address, over every worker loop
  std::vector<std::unique_ptr<WorkerLoop>> workers_;
  std::unique_ptr<Acceptor> acceptor_;
  std::unique_ptr<ReloadableTlsContext> tls_;  // null without gateway.tls_listen or wss_listen
  std::unique_ptr<Acceptor> tls_acceptor_;
  std::unique_ptr<Acceptor> ws_acceptor_;
  std::unique_ptr<Acceptor> wss_acceptor_;
  std::unique_ptr<GatewayServiceImpl> service_;
  std::unique_ptr<grpc::Server> grpc_server_;  // null in process
  int grpc_port_ = 0;
  size_t next_worker_ = 0;
  bool draining_ = false;
  // Readiness as other threads see it: false once the drain began.
  std::atomic<bool> accepting_{true};
  bool shutting_down_ = false;
  bool main_loop_closed_ = false;
  uint64_t drain_started_ms_ = 0;
  bool registering_ = false;
  uint64_t registered_ms_ = 0;  // loop time of the last successful registration; 0: none yet
};

}  // namespace im::gateway
