// im-server: the embedded single node. Gateway and logic in one process, messages and groups in
// SQLite, no Redis, MySQL or Kafka to run.
#include <cstdio>
#include <memory>

#include "CLI/CLI.hpp"
#include "common/admin_http_server.h"
#include "common/logging.h"
#include "common/startup.h"
#include "gateway/connection_room.h"
#include "server/embedded_node.h"

int main(int argc, char** argv) {
  CLI::App app{"im-server: the IM service in one process, on SQLite"};
  std::string config_path;
  app.add_option("--config", config_path, "YAML config file (keys overridable by IM_* env)");
  std::string data_dir;
  app.add_option("--data", data_dir, "data directory (overrides server.data_dir)");
  CLI11_PARSE(app, argc, argv);

  std::string effective_config;
  std::optional<im::server::ServerOptions> options =
      im::common::LoadOptionsOrExplain<im::server::ServerOptions>("im-server", config_path,
                                                                  &effective_config);
  if (!options) return 2;
  if (!data_dir.empty()) options->data_dir = data_dir;
  const std::optional<uint64_t> room = im::gateway::RoomForConnections(options->gateway);
  if (!room) return 2;

  auto registry = std::make_shared<prometheus::Registry>();
  // /metrics, /healthz and /readyz: the gateway's and logic's metrics together.
  absl::StatusOr<std::unique_ptr<im::common::AdminHttpServer>> metrics =
      im::common::AdminHttpServer::Start(options->gateway.metrics_address, registry);
  if (!metrics.ok()) {
    spdlog::critical("{}", metrics.status().ToString());
    return 1;
  }
  (*metrics)->ShowConfig(std::move(effective_config));
  absl::StatusOr<std::unique_ptr<im::server::EmbeddedNode>> node =
      im::server::EmbeddedNode::Start(*options, *registry);
  if (!node.ok()) {
    spdlog::critical("cannot start: {}", node.status().ToString());
    return 1;
  }
  im::gateway::Gateway* gateway = &(*node)->gateway();
  (*metrics)->SetLiveness([gateway] { return gateway->Liveness(); });
  (*metrics)->SetReadiness([gateway] { return gateway->Readiness(); });
  spdlog::info(
      "im-server serving clients on port {} (TLS {}, WebSocket {}, WebSocket over TLS {}), "
      "metrics on {}, data in {}",
      gateway->client_port(), gateway->tls_port(), gateway->ws_port(), gateway->wss_port(),
      (*metrics)->port(), options->data_dir);
  // One machine-readable line for scripts and tests that start us on port 0.
  std::printf(
      "im-server ready client_port=%u tls_port=%u ws_port=%u wss_port=%u metrics_port=%u "
      "admin_api_port=%u connection_room=%llu\n",
      gateway->client_port(), gateway->tls_port(), gateway->ws_port(), gateway->wss_port(),
      (*metrics)->port(), (*node)->admin_api_port(), static_cast<unsigned long long>(*room));
  std::fflush(stdout);

  absl::Status status = (*node)->Run();
  // Probes still arriving until exit must not reach the node being destroyed.
  (*metrics)->SetLiveness(nullptr);
  (*metrics)->SetReadiness([] { return im::common::HealthReport{false, "stopped"}; });
  node->reset();
  if (!status.ok()) {
    spdlog::error("im-server stopped with an error: {}", status.ToString());
    return 1;
  }
  return 0;
}
