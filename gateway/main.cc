// im-gateway: holds client connections and forwards their requests to logic.
#include <cstdio>
#include <memory>

#include "CLI/CLI.hpp"
#include "common/config.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "gateway/gateway.h"
#include "google/protobuf/stubs/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"im-gateway: client connections for the IM cluster"};
  std::string config_path;
  app.add_option("--config", config_path, "YAML config file (keys overridable by IM_* env)");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<im::common::Config> config = im::common::Config::LoadFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "im-gateway: %s\n", config.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<im::gateway::GatewayOptions> options =
      im::gateway::GatewayOptions::FromConfig(*config);
  if (!options.ok()) {
    std::fprintf(stderr, "im-gateway: bad configuration: %s\n",
                 options.status().ToString().c_str());
    return 2;
  }
  if (absl::Status status = im::common::InitLogging(options->log_level, options->log_format);
      !status.ok()) {
    std::fprintf(stderr, "im-gateway: %s\n", status.ToString().c_str());
    return 2;
  }

  // libprotobuf logs every bad UTF-8 string it parses; clients control that, so rate-limit it.
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string& message) {
        IM_LOG_RATE_LIMITED(spdlog::level::warn, "protobuf: {}", message);
      });

  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<im::common::MetricsServer>> metrics =
      im::common::MetricsServer::Start(options->metrics_address, registry);
  if (!metrics.ok()) {
    spdlog::critical("{}", metrics.status().ToString());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<im::gateway::Gateway>> gateway =
      im::gateway::Gateway::Create(*options, *registry);
  if (!gateway.ok()) {
    spdlog::critical("cannot start: {}", gateway.status().ToString());
    return 1;
  }
  spdlog::info("gateway {} serving clients on port {}, GatewayService on port {}, metrics on {}",
               options->gateway_id, (*gateway)->client_port(), (*gateway)->grpc_port(),
               (*metrics)->port());
  // One machine-readable line for scripts and tests that start us on port 0.
  std::printf("im-gateway ready id=%s client_port=%u grpc_port=%d metrics_port=%u\n",
              options->gateway_id.c_str(), (*gateway)->client_port(), (*gateway)->grpc_port(),
              (*metrics)->port());
  std::fflush(stdout);

  absl::Status status = (*gateway)->Run();
  gateway->reset();
  if (!status.ok()) {
    spdlog::error("gateway stopped with an error: {}", status.ToString());
    return 1;
  }
  return 0;
}
