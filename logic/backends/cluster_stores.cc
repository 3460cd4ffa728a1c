#include "logic/backends/cluster_stores.h"

#include <thread>

#include "common/logging.h"
#include "logic/group/in_process_fanout_bus.h"
#include "logic/group/kafka_fanout_bus.h"
#include "logic/webhooks/in_process_webhook_bus.h"
#include "logic/webhooks/kafka_webhook_bus.h"
#include "store/mysql_group_store.h"
#include "store/mysql_message_store.h"
#include "store/redis_member_list_cache.h"
#include "store/redis_presence_store.h"
#include "store/redis_restriction_store.h"
#include "store/redis_send_ledger.h"
#include "store/redis_seq_allocator.h"
#include "store/redis_session_registry.h"
#include "store/redis_ttl_map.h"
#include "store/schema_migrator.h"

namespace im::logic {
namespace {

constexpr char kGatewayDirectoryPrefix[] = "im:gw:";
// The dedup map and the send ledger's claims are the same keys.
constexpr char kDedupPrefix[] = "im:dedup:";
constexpr char kRestrictionsPrefix[] = "im:";  // im:restrictions and im:restrictions:version
constexpr char kSpentResumeTokenPrefix[] = "im:resume:";

std::unique_ptr<FanoutBus> FanoutBusFor(const LogicOptions& options, LogicMetrics* metrics) {
  if (!options.kafka.brokers.empty()) return std::make_unique<KafkaFanoutBus>(options, metrics);
  spdlog::warn(
      "kafka.brokers is empty: group messages fan out in this process only, which serves a "
      "single logic node");
  return std::make_unique<InProcessFanoutBus>(options.fanout_queue, options.fanout_batch_max,
                                              metrics);
}

std::unique_ptr<WebhookBus> WebhookBusFor(const LogicOptions& options, LogicMetrics* metrics) {
  // Without Kafka, or without an asynchronous endpoint (no topics then), events stay in process.
  if (!options.kafka.brokers.empty() && options.webhooks.AnyAsyncEnabled()) {
    return std::make_unique<KafkaWebhookBus>(options, metrics);
  }
  return std::make_unique<InProcessWebhookBus>(metrics);
}

}  // namespace

absl::Status MigrateSchema(const LogicOptions& options, std::chrono::seconds patience) {
  store::MySqlOptions mysql_options = options.mysql;
  mysql_options.pool_size = 1;
  store::MySqlConnectionPool pool(mysql_options);
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    absl::Status status = store::ApplyMigrations(pool);
    if (status.ok() || status.code() != absl::StatusCode::kUnavailable ||
        std::chrono::steady_clock::now() >= give_up) {
      return status;
    }
    spdlog::warn("database not reachable yet ({}); retrying", status.ToString());
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

LogicStores ClusterStores(const LogicOptions& options, LogicMetrics* metrics) {
  LogicStores stores;
  stores.mysql = std::make_shared<store::MySqlConnectionPool>(options.mysql);
  auto messages = std::make_unique<store::MySqlMessageStore>(*stores.mysql);
  store::MessageStore* message_floor = messages.get();
  stores.messages = std::move(messages);
  stores.groups = std::make_unique<store::MySqlGroupStore>(*stores.mysql);

  auto redis = std::make_shared<store::RedisConnection>(options.redis);
  stores.sessions =
      std::make_unique<store::RedisSessionRegistry>(redis, int64_t{options.session_ttl_sec} * 1000);
  stores.seqs = std::make_unique<store::RedisSeqAllocator>(
      redis, [message_floor](std::string_view conv_id) { return message_floor->MaxSeq(conv_id); });
  stores.gateways = std::make_unique<store::RedisTtlMap>(redis, kGatewayDirectoryPrefix);
  stores.dedup = std::make_unique<store::RedisTtlMap>(redis, kDedupPrefix);
  stores.resumes = std::make_unique<store::RedisTtlMap>(redis, kSpentResumeTokenPrefix);
  stores.presence = std::make_unique<store::RedisPresenceStore>(redis);
  stores.ledger = std::make_unique<store::RedisSendLedger>(redis, kDedupPrefix, stores.seqs.get());
  stores.member_lists = std::make_unique<store::RedisMemberListCache>(
      redis, int64_t{options.group_cache_ttl_sec} * 1000);
  stores.fanout = FanoutBusFor(options, metrics);
  stores.webhooks = WebhookBusFor(options, metrics);
  stores.restrictions = std::make_unique<store::RedisRestrictionStore>(redis, kRestrictionsPrefix);
  if (options.send_loop) {
    const int64_t group_cache_ttl_ms = int64_t{options.group_cache_ttl_sec} * 1000;
    const int64_t session_ttl_ms = int64_t{options.session_ttl_sec} * 1000;
    stores.loop_redis = LogicStores::LoopRedis{
        options.redis,
        [group_cache_ttl_ms, session_ttl_ms](store::RedisAsyncClient* client) {
          return RedisLoopStores(client, kDedupPrefix, group_cache_ttl_ms, session_ttl_ms);
        },
        [session_ttl_ms](store::RedisAsyncClient* client) {
          return RedisLoginLoopStores(client, session_ttl_ms);
        }};
  }
  return stores;
}

LoopStores RedisLoopStores(store::RedisAsyncClient* client, const std::string& dedup_prefix,
                           int64_t group_cache_ttl_ms, int64_t session_ttl_ms) {
  return LoopStores{
      std::make_unique<store::RedisAsyncSendLedger>(client, dedup_prefix),
      std::make_unique<store::RedisAsyncTtlMap>(client, dedup_prefix),
      std::make_unique<store::RedisAsyncSessionRegistry>(client, session_ttl_ms),
      std::make_unique<store::RedisAsyncMemberListVersions>(client, group_cache_ttl_ms)};
}

LoopStores RedisLoginLoopStores(store::RedisAsyncClient* client, int64_t session_ttl_ms) {
  LoopStores stores;
  stores.sessions = std::make_unique<store::RedisAsyncSessionRegistry>(client, session_ttl_ms);
  return stores;
}

std::vector<DependencyHealth::Dependency> ClusterDependencies(const LogicOptions& options,
                                                              FanoutBusCheck check_fanout_bus) {
  store::RedisOptions redis_options = options.redis;
  redis_options.connections = 1;
  auto redis = std::make_shared<store::RedisConnection>(redis_options);
  store::MySqlOptions mysql_options = options.mysql;
  mysql_options.pool_size = 1;
  auto mysql = std::make_shared<store::MySqlConnectionPool>(mysql_options);
  std::vector<DependencyHealth::Dependency> dependencies;
  dependencies.push_back(
      {"redis", [redis]() -> absl::Status { return redis->Command({"PING"}).status(); }});
  dependencies.push_back({"mysql", [mysql] {
                            return mysql->Run([](store::MySqlConnection& connection) {
                              connection.Execute("DO 1");
                              return absl::OkStatus();
                            });
                          }});
  if (!options.kafka.brokers.empty()) {
    const auto timeout =
        std::chrono::milliseconds(std::max<uint32_t>(options.health_check_ms, 1000));
    dependencies.push_back(
        {"kafka", [check_fanout_bus, timeout] { return check_fanout_bus(timeout); }});
  }
  return dependencies;
}

}  // namespace im::logic
