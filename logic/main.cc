// im-logic: the LogicService (login, sessions, send, sync) on Redis and MySQL.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "CLI/CLI.hpp"
#include "common/admin_http_server.h"
#include "common/logging.h"
#include "common/startup.h"
#include "logic/backends/cluster_stores.h"
#include "logic/dependency_health.h"
#include "logic/logic_options.h"
#include "logic/logic_server.h"

namespace {

using im::logic::LogicOptions;

int WaitForTerminationSignal(const sigset_t& signals) {
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  return signal_number;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"im-logic: sessions, messages and sync for the IM cluster"};
  std::string config_path;
  app.add_option("--config", config_path, "YAML config file (keys overridable by IM_* env)");
  bool migrate_only = false;
  app.add_flag("--migrate-only", migrate_only, "apply the schema migrations and exit");
  CLI11_PARSE(app, argc, argv);

  std::string effective_config;
  std::optional<LogicOptions> options =
      im::common::LoadOptionsOrExplain<LogicOptions>("im-logic", config_path, &effective_config);
  if (!options) return 2;

  // Every thread started from here on inherits the blocked signals; main collects them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (absl::Status status = im::logic::MigrateSchema(*options, std::chrono::seconds(30));
      !status.ok()) {
    spdlog::critical("schema migrations failed: {}", status.ToString());
    return 1;
  }
  if (migrate_only) {
    spdlog::info("schema is up to date");
    return 0;
  }

  auto registry = std::make_shared<prometheus::Registry>();
  // /metrics, /healthz and /readyz.
  absl::StatusOr<std::unique_ptr<im::common::AdminHttpServer>> metrics =
      im::common::AdminHttpServer::Start(options->metrics_address, registry);
  if (!metrics.ok()) {
    spdlog::critical("{}", metrics.status().ToString());
    return 1;
  }
  (*metrics)->ShowConfig(std::move(effective_config));
  im::logic::LogicMetrics logic_metrics(*registry);
  absl::StatusOr<std::unique_ptr<im::logic::LogicServer>> server = im::logic::LogicServer::Start(
      *options, im::logic::ClusterStores(*options, &logic_metrics), &logic_metrics);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  im::logic::LogicServer* running = server->get();
  im::logic::DependencyHealth health(
      im::logic::ClusterDependencies(
          *options, [running](auto timeout) { return running->CheckFanoutBus(timeout); }),
      std::chrono::milliseconds(options->health_check_ms), *registry);
  health.Start();
  (*metrics)->SetLiveness([&health] { return health.Liveness(); });
  (*metrics)->SetReadiness([&health] { return health.Readiness(); });
  spdlog::info("logic {} serving LogicService on port {}, metrics on {}", options->logic_id,
               (*server)->grpc_port(), (*metrics)->port());
  std::printf("im-logic ready id=%s grpc_port=%d metrics_port=%u admin_api_port=%u\n",
              options->logic_id.c_str(), (*server)->grpc_port(), (*metrics)->port(),
              (*server)->admin_api_port());
  std::fflush(stdout);

  const int signal_number = WaitForTerminationSignal(signals);
  health.SetShuttingDown();
  if (options->shutdown_delay_ms > 0) {
    spdlog::info("received signal {}: unready, taking calls for {} ms more", signal_number,
                 options->shutdown_delay_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(options->shutdown_delay_ms));
  }
  spdlog::info("received signal {}: finishing calls in flight", signal_number);
  // The checks use the server (Kafka) and must end before it does; readiness stays failed.
  (*metrics)->SetLiveness(nullptr);
  (*metrics)->SetReadiness([] { return im::common::HealthReport{false, "shutting down"}; });
  health.Stop();
  (*server)->Shutdown(std::chrono::milliseconds(options->shutdown_grace_ms));
  server->reset();
  return 0;
}
