// im-gateway: holds client connections and forwards their requests to logic.
#include <cstdio>
#include <memory>

#include "CLI/CLI.hpp"
#include "common/admin_http_server.h"
#include "common/logging.h"
#include "common/startup.h"
#include "gateway/connection_room.h"
#include "gateway/gateway.h"

int main(int argc, char** argv) {
  CLI::App app{"im-gateway: client connections for the IM cluster"};
  std::string config_path;
  app.add_option("--config", config_path, "YAML config file (keys overridable by IM_* env)");
  CLI11_PARSE(app, argc, argv);

  std::string effective_config;
  std::optional<im::gateway::GatewayOptions> options =
      im::common::LoadOptionsOrExplain<im::gateway::GatewayOptions>("im-gateway", config_path,
                                                                    &effective_config);
  if (!options) return 2;
  const std::optional<uint64_t> room = im::gateway::RoomForConnections(*options);
  if (!room) return 2;

  auto registry = std::make_shared<prometheus::Registry>();
  // /metrics, /healthz and /readyz.
  absl::StatusOr<std::unique_ptr<im::common::AdminHttpServer>> metrics =
      im::common::AdminHttpServer::Start(options->metrics_address, registry);
  if (!metrics.ok()) {
    spdlog::critical("{}", metrics.status().ToString());
    return 1;
  }
  (*metrics)->ShowConfig(std::move(effective_config));
  absl::StatusOr<std::unique_ptr<im::gateway::Gateway>> gateway =
      im::gateway::Gateway::Create(*options, *registry);
  if (!gateway.ok()) {
    spdlog::critical("cannot start: {}", gateway.status().ToString());
    return 1;
  }
  im::gateway::Gateway* raw_gateway = gateway->get();
  (*metrics)->SetLiveness([raw_gateway] { return raw_gateway->Liveness(); });
  (*metrics)->SetReadiness([raw_gateway] { return raw_gateway->Readiness(); });
  const auto port_or_off = [](uint16_t port) { return port != 0 ? std::to_string(port) : "off"; };
  spdlog::info(
      "gateway {} serving clients on port {} (TLS: {}, WebSocket: {}, WebSocket over TLS: {}), "
      "GatewayService on port {}, metrics on {}",
      options->gateway_id, (*gateway)->client_port(), port_or_off((*gateway)->tls_port()),
      port_or_off((*gateway)->ws_port()), port_or_off((*gateway)->wss_port()),
      (*gateway)->grpc_port(), (*metrics)->port());
  // One machine-readable line for scripts and tests that start us on port 0.
  std::printf(
      "im-gateway ready id=%s client_port=%u tls_port=%u ws_port=%u wss_port=%u grpc_port=%d "
      "metrics_port=%u connection_room=%llu\n",
      options->gateway_id.c_str(), (*gateway)->client_port(), (*gateway)->tls_port(),
      (*gateway)->ws_port(), (*gateway)->wss_port(), (*gateway)->grpc_port(), (*metrics)->port(),
      static_cast<unsigned long long>(*room));
  std::fflush(stdout);

  absl::Status status = (*gateway)->Run();
  // Probes still arriving until exit must not reach the gateway being destroyed.
  (*metrics)->SetLiveness(nullptr);
  (*metrics)->SetReadiness([] { return im::common::HealthReport{false, "stopped"}; });
  gateway->reset();
  if (!status.ok()) {
    spdlog::error("gateway stopped with an error: {}", status.ToString());
    return 1;
  }
  return 0;
}
