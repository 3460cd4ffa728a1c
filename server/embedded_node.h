#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "gateway/gateway.h"
#include "logic/logic_metrics.h"
#include "logic/logic_server.h"
#include "prometheus/registry.h"
#include "server/data_dir.h"
#include "server/server_options.h"

namespace im::server {

// The embedded node: one process holding a gateway and a logic node wired in process (requests
// through InProcessLogicLink, pushes through InProcessPusher), with messages and groups in SQLite
// under the data directory and everything else in memory. Same services, same rules as the
// cluster; only the wiring differs.
class EmbeddedNode {
 public:
  // Locks the data directory, opens the database (applying its migrations), starts logic, then
  // the gateway (listening, signals watched).
  static absl::StatusOr<std::unique_ptr<EmbeddedNode>> Start(const ServerOptions& options,
                                                             prometheus::Registry& registry);
  // Stops what Run did not: the gateway first, then logic (what it was handed is persisted).
  ~EmbeddedNode();

  // Serves until SIGTERM or SIGINT drained the gateway (GoAway to clients, waiting for them up to
  // gateway.drain_timeout_ms); then logic finishes its work in hand and stops. Calling thread.
  absl::Status Run();

  gateway::Gateway& gateway() { return *gateway_; }
  uint16_t admin_api_port() const { return logic_->admin_api_port(); }

 private:
  EmbeddedNode(const ServerOptions& options, prometheus::Registry& registry, DataDir data)
      : options_(options), logic_metrics_(registry), data_(std::move(data)) {}
  // Logic's pushes go to this process's gateway from now on.
  void AttachPushes();
  void StopLogic();

  const ServerOptions options_;
  logic::LogicMetrics logic_metrics_;
  DataDir data_;
  std::unique_ptr<logic::LogicServer> logic_;
  std::unique_ptr<gateway::Gateway> gateway_;
  bool logic_stopped_ = false;
};

}  // namespace im::server
