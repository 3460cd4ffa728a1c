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
#include "logic/dependency_health.h"
#include "logic/logic_options.h"
#include "logic/logic_server.h"
#include "store/mysql_group_store.h"
#include "store/mysql_message_store.h"
#include "store/redis_member_list_cache.h"
#include "store/redis_send_ledger.h"
#include "store/redis_seq_allocator.h"
#include "store/redis_session_registry.h"
#include "store/redis_ttl_map.h"
#include "store/schema_migrator.h"

namespace {

using im::logic::LogicOptions;

// MySQL may still be starting (a fresh pod, a local cluster coming up): retry for a while.
absl::Status MigrateWithRetry(im::store::MySqlConnectionPool& pool, std::chrono::seconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    absl::Status status = im::store::ApplyMigrations(pool);
    if (status.ok() || status.code() != absl::StatusCode::kUnavailable ||
        std::chrono::steady_clock::now() >= give_up) {
      return status;
    }
    spdlog::warn("database not reachable yet ({}); retrying", status.ToString());
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

im::logic::LogicStores RealStores(const LogicOptions& options, im::store::MessageStore* messages) {
  im::logic::LogicStores stores;
  stores.sessions = std::make_unique<im::store::RedisSessionRegistry>(
      options.redis, int64_t{options.session_ttl_sec} * 1000);
  stores.seqs = std::make_unique<im::store::RedisSeqAllocator>(
      options.redis, [messages](std::string_view conv_id) { return messages->MaxSeq(conv_id); });
  stores.gateways = std::make_unique<im::store::RedisTtlMap>(options.redis, "im:gw:");
  constexpr char kDedupPrefix[] = "im:dedup:";
  stores.dedup = std::make_unique<im::store::RedisTtlMap>(options.redis, kDedupPrefix);
  stores.ledger =
      std::make_unique<im::store::RedisSendLedger>(options.redis, kDedupPrefix, stores.seqs.get());
  stores.member_lists = std::make_unique<im::store::RedisMemberListCache>(
      options.redis, int64_t{options.group_cache_ttl_sec} * 1000);
  return stores;
}

// Readiness checks on connections of their own, so that a probe never queues behind (or takes a
// connection from) the calls the node serves.
std::vector<im::logic::DependencyHealth::Dependency> Dependencies(const LogicOptions& options,
                                                                  im::logic::LogicServer* server) {
  im::store::RedisOptions redis_options = options.redis;
  redis_options.connections = 1;
  auto redis = std::make_shared<im::store::RedisConnection>(redis_options);
  im::store::MySqlOptions mysql_options = options.mysql;
  mysql_options.pool_size = 1;
  auto mysql = std::make_shared<im::store::MySqlConnectionPool>(mysql_options);
  std::vector<im::logic::DependencyHealth::Dependency> dependencies;
  dependencies.push_back(
      {"redis", [redis]() -> absl::Status { return redis->Command({"PING"}).status(); }});
  dependencies.push_back({"mysql", [mysql] {
                            return mysql->Run([](im::store::MySqlConnection& connection) {
                              connection.Execute("DO 1");
                              return absl::OkStatus();
                            });
                          }});
  if (!options.kafka.brokers.empty()) {
    const auto timeout =
        std::chrono::milliseconds(std::max<uint32_t>(options.health_check_ms, 1000));
    dependencies.push_back(
        {"kafka", [server, timeout] { return server->CheckFanoutBus(timeout); }});
  }
  return dependencies;
}

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

  std::optional<LogicOptions> options =
      im::common::LoadOptionsOrExplain<LogicOptions>("im-logic", config_path);
  if (!options) return 2;

  // Every thread started from here on inherits the blocked signals; main collects them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto pool = std::make_unique<im::store::MySqlConnectionPool>(options->mysql);
  if (absl::Status status = MigrateWithRetry(*pool, std::chrono::seconds(30)); !status.ok()) {
    spdlog::critical("schema migrations failed: {}", status.ToString());
    return 1;
  }
  if (migrate_only) {
    spdlog::info("schema is up to date");
    return 0;
  }
  auto messages = std::make_unique<im::store::MySqlMessageStore>(*pool);
  im::logic::LogicStores stores = RealStores(*options, messages.get());

  auto registry = std::make_shared<prometheus::Registry>();
  // /metrics, /healthz and /readyz.
  absl::StatusOr<std::unique_ptr<im::common::AdminHttpServer>> metrics =
      im::common::AdminHttpServer::Start(options->metrics_address, registry);
  if (!metrics.ok()) {
    spdlog::critical("{}", metrics.status().ToString());
    return 1;
  }
  // The server owns the message store through LogicStores; the pool outlives it.
  stores.messages = std::move(messages);
  stores.groups = std::make_unique<im::store::MySqlGroupStore>(*pool);
  absl::StatusOr<std::unique_ptr<im::logic::LogicServer>> server =
      im::logic::LogicServer::Start(*options, std::move(stores), *registry);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  im::logic::DependencyHealth health(Dependencies(*options, server->get()),
                                     std::chrono::milliseconds(options->health_check_ms),
                                     *registry);
  health.Start();
  (*metrics)->SetLiveness([&health] { return health.Liveness(); });
  (*metrics)->SetReadiness([&health] { return health.Readiness(); });
  spdlog::info("logic {} serving LogicService on port {}, metrics on {}", options->logic_id,
               (*server)->grpc_port(), (*metrics)->port());
  std::printf("im-logic ready id=%s grpc_port=%d metrics_port=%u\n", options->logic_id.c_str(),
              (*server)->grpc_port(), (*metrics)->port());
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
