#include "logic/logic_options.h"

#include <cctype>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace im::logic {
namespace {

absl::StatusOr<store::RedisOptions> RedisFromConfig(common::Config& config) {
  store::RedisOptions redis;
  const std::string address = config.GetString("redis.address", "127.0.0.1:16379");
  redis.timeout = std::chrono::milliseconds(config.GetU32("redis.timeout_ms", 1000, 10, 60'000));
  redis.connections = config.GetU32("redis.connections", redis.connections, 1, 256);
  redis.username = config.GetString("redis.username", "");
  redis.password = config.GetSecret("redis.password", "");
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon != std::string::npos) port = std::atoi(address.c_str() + colon + 1);
  if (colon == std::string::npos || colon == 0 || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis.address must be host:port, got '", address, "'"));
  }
  redis.host = address.substr(0, colon);
  redis.port = port;
  redis.tls_ca_file = config.GetString("redis.tls_ca_file", "");
  redis.tls_server_name = config.GetString("redis.tls_server_name", "");
  redis.tls = config.GetBool("redis.tls", !redis.tls_ca_file.empty());
  if (!redis.tls && (!redis.tls_ca_file.empty() || !redis.tls_server_name.empty())) {
    return absl::InvalidArgumentError(
        "redis.tls_ca_file and redis.tls_server_name need redis.tls (it is off)");
  }
  return redis;
}

store::MySqlOptions MySqlFromConfig(common::Config& config) {
  store::MySqlOptions mysql;
  mysql.host = config.GetString("mysql.host", "127.0.0.1");
  mysql.port = static_cast<int>(config.GetInt("mysql.port", 13306, 1, 65535));
  mysql.user = config.GetString("mysql.user", "im");
  mysql.password = config.GetSecret("mysql.password", kDefaultMySqlPassword);
  mysql.database = config.GetString("mysql.database", "im");
  mysql.pool_size = config.GetU32("mysql.pool_size", 8, 1, 256);
  const auto timeout =
      std::chrono::milliseconds(config.GetU32("mysql.timeout_ms", 5000, 100, 600'000));
  mysql.connect_timeout = timeout;
  mysql.read_write_timeout = timeout;
  mysql.tls_ca_file = config.GetString("mysql.tls_ca_file", "");
  mysql.tls_cert_file = config.GetString("mysql.tls_cert_file", "");
  mysql.tls_key_file = config.GetString("mysql.tls_key_file", "");
  return mysql;
}

absl::Status CheckMySqlTls(const store::MySqlOptions& mysql) {
  if (mysql.tls_cert_file.empty() != mysql.tls_key_file.empty()) {
    return absl::InvalidArgumentError("mysql.tls_cert_file and mysql.tls_key_file go together");
  }
  if (!mysql.tls_cert_file.empty() && mysql.tls_ca_file.empty()) {
    return absl::InvalidArgumentError("mysql.tls_cert_file needs mysql.tls_ca_file (TLS on)");
  }
  return absl::OkStatus();
}

absl::Status RefuseDefaultCredentials(const LogicOptions& o, common::Deployment deployment) {
  if (o.dev_mode) return absl::OkStatus();
  std::vector<std::string> defaults;
  if (o.token_secret == kDefaultTokenSecret) defaults.push_back("logic.token_secret");
  if (o.admin_api.key == kLocalAdminApiKey) defaults.push_back("admin_api.key");
  if (deployment == common::Deployment::kCluster && o.mysql.password == kDefaultMySqlPassword) {
    defaults.push_back("mysql.password");
  }
  if (deployment == common::Deployment::kCluster && o.redis.password == kLocalRedisPassword) {
    defaults.push_back("redis.password");
  }
  if (deployment == common::Deployment::kCluster && o.kafka.password == kLocalKafkaPassword) {
    defaults.push_back("kafka.password");
  }
  if (defaults.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      absl::StrJoin(defaults, " and "),
      " left at the value published with the code: set your own (IM_LOGIC_TOKEN_SECRET, "
      "IM_ADMIN_API_KEY, IM_MYSQL_PASSWORD, IM_REDIS_PASSWORD, IM_KAFKA_PASSWORD), or "
      "dev_mode: true "
      "(IM_DEV_MODE=true) for a local "
      "run"));
}

// The keys of a cluster node only: its network, its backends and the tuning of its links.
absl::Status ReadClusterKeys(common::Config& config, LogicOptions& o) {
  absl::StatusOr<common::GrpcTlsOptions> grpc_tls = common::GrpcTlsOptions::FromConfig(config);
  if (!grpc_tls.ok()) return grpc_tls.status();
  absl::StatusOr<common::GrpcCredentials> credentials = common::GrpcCredentials::Load(*grpc_tls);
  if (!credentials.ok()) return credentials.status();
  o.grpc_credentials = std::move(*credentials);
  o.gateway_ttl_sec = config.GetU32("logic.gateway_ttl_sec", o.gateway_ttl_sec, 1);
  o.push_calls_per_gateway =
      config.GetU32("logic.push_calls_per_gateway", o.push_calls_per_gateway, 1, 64);
  o.health_check_ms = config.GetU32("logic.health_check_ms", o.health_check_ms, 100, 600'000);
  o.shutdown_delay_ms = config.GetU32("logic.shutdown_delay_ms", o.shutdown_delay_ms, 0, 600'000);
  o.send_loop = config.GetBool("logic.send_loop", o.send_loop);
  o.send_loop_queue = config.GetU32("logic.send_loop_queue", o.send_loop_queue, 1, 1'000'000);
  o.send_loop_max_pending =
      config.GetU32("logic.send_loop_max_pending", o.send_loop_max_pending, 1, 10'000'000);
  o.stream_max_in_flight = config.GetU32("logic.stream_max_in_flight", o.stream_max_in_flight, 1);
  o.max_connection_age_ms =
      config.GetU32("logic.max_connection_age_ms", o.max_connection_age_ms, 0, 86'400'000);
  o.max_connection_age_grace_ms = config.GetU32("logic.max_connection_age_grace_ms",
                                                o.max_connection_age_grace_ms, 0, 3'600'000);
  o.group_cache_ttl_sec = config.GetU32("group.cache_ttl_sec", o.group_cache_ttl_sec, 1);
  o.kafka.brokers = config.GetString("kafka.brokers", o.kafka.brokers);
  o.kafka.security_protocol =
      config.GetString("kafka.security_protocol", o.kafka.security_protocol);
  o.kafka.sasl_mechanism = config.GetString("kafka.sasl_mechanism", o.kafka.sasl_mechanism);
  o.kafka.username = config.GetString("kafka.username", "");
  o.kafka.password = config.GetSecret("kafka.password", "");
  o.kafka.tls_ca_file = config.GetString("kafka.tls_ca_file", "");
  o.kafka.tls_cert_file = config.GetString("kafka.tls_cert_file", "");
  o.kafka.tls_key_file = config.GetString("kafka.tls_key_file", "");
  o.kafka.topic_prefix = config.GetString("kafka.topic_prefix", o.kafka.topic_prefix);
  o.kafka.consumer_group = config.GetString("kafka.consumer_group", o.kafka.consumer_group);
  o.kafka.partitions = config.GetU32("kafka.partitions", o.kafka.partitions, 1, 10'000);
  o.kafka.replication_factor =
      config.GetU32("kafka.replication_factor", o.kafka.replication_factor, 1, 100);
  o.kafka.fallback_after_ms =
      config.GetU32("kafka.fallback_after_ms", o.kafka.fallback_after_ms, 100, 3'600'000);
  o.kafka.session_timeout_ms =
      config.GetU32("kafka.session_timeout_ms", o.kafka.session_timeout_ms, 1'000, 3'600'000);
  o.kafka.startup_timeout_ms =
      config.GetU32("kafka.startup_timeout_ms", o.kafka.startup_timeout_ms, 100, 3'600'000);
  o.kafka.retention_ms =
      config.GetU32("kafka.retention_ms", o.kafka.retention_ms, 60'000, 7 * 86'400'000);
  o.mysql = MySqlFromConfig(config);
  absl::StatusOr<store::RedisOptions> redis = RedisFromConfig(config);
  if (absl::Status status = config.status(); !status.ok()) return status;
  if (!redis.ok()) return redis.status();
  if (absl::Status tls = CheckMySqlTls(o.mysql); !tls.ok()) return tls;
  o.redis = *redis;
  // By default a quarter of Redis's timeout (read above).
  o.send_loop_max_redis_wait_ms =
      config.GetU32("logic.send_loop_max_redis_wait_ms",
                    static_cast<uint32_t>(o.redis.timeout.count() / 4), 0, 600'000);
  return absl::OkStatus();
}

absl::Status ReadAdminApiKeys(common::Config& config, LogicOptions& o) {
  LogicOptions::AdminApi& api = o.admin_api;
  api.listen = config.GetString("admin_api.listen", api.listen);
  api.key = config.GetSecret("admin_api.key", api.key);
  api.max_body_bytes = config.GetU32("admin_api.max_body_bytes", api.max_body_bytes, 1024, 1 << 30);
  api.timeout_ms = config.GetU32("admin_api.timeout_ms", api.timeout_ms, 100, 600'000);
  api.threads = config.GetU32("admin_api.threads", api.threads, 1, 256);
  o.restrictions_reload_ms =
      config.GetU32("logic.restrictions_reload_ms", o.restrictions_reload_ms, 100, 600'000);
  o.revocation_keep_sec =
      config.GetU32("logic.revocation_keep_sec", o.revocation_keep_sec, 60, 10 * 365 * 86'400);
  if (!api.listen.empty() && api.key.size() < 16) {
    return absl::InvalidArgumentError(
        "admin_api.listen is set, so admin_api.key must be set too (at least 16 bytes; "
        "IM_ADMIN_API_KEY)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LogicOptions> LogicOptions::FromConfig(common::Config& config,
                                                      common::Deployment deployment) {
  const bool cluster = deployment == common::Deployment::kCluster;
  LogicOptions o;
  o.logic_id = config.GetString("logic.id", o.logic_id);
  o.node_number = config.GetU32("logic.node_number", o.node_number, 0, 1023);
  if (cluster) {
    o.grpc_address = config.GetString("logic.grpc_listen", o.grpc_address);
    o.metrics_address = config.GetString("logic.metrics_listen", o.metrics_address);
  }
  o.token_secret = config.GetSecret("logic.token_secret", o.token_secret);
  o.dev_mode = config.GetBool("dev_mode", o.dev_mode);
  o.max_devices_per_user =
      config.GetU32("logic.max_devices_per_user", o.max_devices_per_user, 1, 1000);
  const std::string policy = config.GetString("logic.device_limit_policy", "kick_oldest");
  o.max_body_bytes = config.GetU32("logic.max_body_bytes", o.max_body_bytes, 1, 16 << 20);
  o.recall_window_ms = config.GetU32("logic.recall_window_ms", o.recall_window_ms, 0);
  o.edit_window_ms = config.GetU32("logic.edit_window_ms", o.edit_window_ms, 0);
  o.typing_interval_ms = config.GetU32("logic.typing_interval_ms", o.typing_interval_ms, 0);
  o.send_rate_per_user = config.GetDouble("logic.send_rate_per_user", o.send_rate_per_user, 0, 1e6);
  o.send_burst_per_user =
      config.GetU32("logic.send_burst_per_user", o.send_burst_per_user, 1, 1'000'000);
  o.group_send_rate_per_user =
      config.GetDouble("logic.group_send_rate_per_user", o.group_send_rate_per_user, 0, 1e6);
  o.group_send_burst_per_user =
      config.GetU32("logic.group_send_burst_per_user", o.group_send_burst_per_user, 1, 1'000'000);
  o.typing_max_group_members =
      config.GetU32("logic.typing_max_group_members", o.typing_max_group_members, 0);
  o.receipt_max_group_members =
      config.GetU32("logic.receipt_max_group_members", o.receipt_max_group_members, 0, 100'000);
  o.presence_max_watch = config.GetU32("logic.presence_max_watch", o.presence_max_watch, 0, 10'000);
  o.presence_watch_ttl_sec =
      config.GetU32("logic.presence_watch_ttl_sec", o.presence_watch_ttl_sec, 10, 86'400);
  o.presence_push_interval_ms =
      config.GetU32("logic.presence_push_interval_ms", o.presence_push_interval_ms, 0, 600'000);
  o.presence_sweep_interval_ms =
      config.GetU32("logic.presence_sweep_interval_ms", o.presence_sweep_interval_ms, 10, 600'000);
  o.presence_max_pending =
      config.GetU32("logic.presence_max_pending", o.presence_max_pending, 1, 10'000'000);
  o.presence_last_seen_days =
      config.GetU32("logic.presence_last_seen_days", o.presence_last_seen_days, 1, 3'650);
  o.resume_margin_ms = config.GetU32("logic.resume_margin_ms", o.resume_margin_ms, 0);
  o.resume_window_sec = config.GetU32("logic.resume_window_sec", o.resume_window_sec, 1, 86'400);
  o.sync_page_default = config.GetU32("logic.sync_page_default", o.sync_page_default, 1, 10'000);
  o.sync_page_max = config.GetU32("logic.sync_page_max", o.sync_page_max, 1, 10'000);
  o.conversations_page_max =
      config.GetU32("logic.conversations_page_max", o.conversations_page_max, 1, 10'000);
  o.max_ack_cursors = config.GetU32("logic.max_ack_cursors", o.max_ack_cursors, 1, 100'000);
  o.hole_grace_ms = config.GetU32("logic.hole_grace_ms", o.hole_grace_ms, 0);
  o.write_deadline_ms = config.GetU32("logic.write_deadline_ms", o.write_deadline_ms, 10);
  o.session_ttl_sec = config.GetU32("logic.session_ttl_sec", o.session_ttl_sec, 1);
  o.dedup_ttl_sec = config.GetU32("logic.dedup_ttl_sec", o.dedup_ttl_sec, 1);
  o.push_timeout_ms = config.GetU32("logic.push_timeout_ms", o.push_timeout_ms, 10);
  o.shutdown_grace_ms = config.GetU32("logic.shutdown_grace_ms", o.shutdown_grace_ms, 0);
  o.executor_threads = config.GetU32("logic.executor_threads", o.executor_threads, 1, 1024);
  o.executor_queue = config.GetU32("logic.executor_queue", o.executor_queue, 1);
  o.login_threads = config.GetU32("logic.login_threads", o.login_threads, 1, 1024);
  o.login_queue = config.GetU32("logic.login_queue", o.login_queue, 1);
  o.queue_wait_target_ms =
      config.GetU32("logic.queue_wait_target_ms", o.queue_wait_target_ms, 1, 600'000);
  o.queue_wait_interval_ms =
      config.GetU32("logic.queue_wait_interval_ms", o.queue_wait_interval_ms, 0, 600'000);
  o.writers = config.GetU32("logic.writers", o.writers, 1, 64);
  o.write_batch_max = config.GetU32("logic.write_batch_max", o.write_batch_max, 1, 10'000);
  o.write_queue = config.GetU32("logic.write_queue", o.write_queue, 1);
  o.delivery_queue = config.GetU32("logic.delivery_queue", o.delivery_queue, 1);
  o.group_member_cap = config.GetU32("group.member_cap", o.group_member_cap, 2, 1'000'000);
  o.group_large_threshold =
      config.GetU32("group.large_threshold", o.group_large_threshold, 1, 1'000'000);
  o.group_members_page_max =
      config.GetU32("group.members_page_max", o.group_members_page_max, 1, 10'000);
  o.group_local_cache_groups =
      config.GetU32("group.local_cache_groups", o.group_local_cache_groups, 1);
  o.fanout_batch_max = config.GetU32("fanout.batch_max", o.fanout_batch_max, 1, 100'000);
  o.fanout_lookup_page = config.GetU32("fanout.lookup_page", o.fanout_lookup_page, 1, 100'000);
  o.fanout_queue = config.GetU32("fanout.queue", o.fanout_queue, 1);
  o.fanout_remembered_conversations = config.GetU32(
      "fanout.remembered_conversations", o.fanout_remembered_conversations, 1, 100'000'000);
  if (absl::Status status = ReadAdminApiKeys(config, o); !status.ok()) return status;
  absl::StatusOr<WebhookOptions> webhooks = WebhookOptions::FromConfig(config);
  if (!webhooks.ok()) return webhooks.status();
  o.webhooks = *std::move(webhooks);
  o.log_level = config.GetString("log.level", o.log_level);
  o.log_format = config.GetString("log.format", o.log_format);
  if (cluster) {
    if (absl::Status status = ReadClusterKeys(config, o); !status.ok()) return status;
  }
  if (absl::Status status = config.status(); !status.ok()) return status;
  if (policy == "kick_oldest") {
    o.device_limit_policy = DeviceLimitPolicy::kKickOldest;
  } else if (policy == "refuse") {
    o.device_limit_policy = DeviceLimitPolicy::kRefuse;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "logic.device_limit_policy must be kick_oldest or refuse, got '", policy, "'"));
  }
  for (const char c : o.kafka.topic_prefix) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "kafka.topic_prefix may hold only [A-Za-z0-9._-], got '", o.kafka.topic_prefix, "'"));
    }
  }
  if (absl::Status status = CheckKafkaConnection(o.kafka); !status.ok()) return status;
  if (o.send_loop_max_redis_wait_ms >= o.redis.timeout.count()) {
    return absl::InvalidArgumentError(
        "logic.send_loop_max_redis_wait_ms must be below redis.timeout_ms: a backlog that old "
        "times the send loop's Redis connection out");
  }
  if (o.queue_wait_interval_ms != 0 && o.queue_wait_target_ms > o.queue_wait_interval_ms) {
    return absl::InvalidArgumentError(
        "logic.queue_wait_target_ms must not exceed logic.queue_wait_interval_ms");
  }
  if (o.token_secret.size() < 16) {
    return absl::InvalidArgumentError("logic.token_secret must be at least 16 bytes");
  }
  if (absl::Status status = RefuseDefaultCredentials(o, deployment); !status.ok()) return status;
  // A write may start up to write_deadline_ms after its seq was taken and then run for the MySQL
  // timeout; a gap younger than both together may still be filled.
  if (o.hole_grace_ms <= o.write_deadline_ms + o.mysql.read_write_timeout.count()) {
    return absl::InvalidArgumentError(
        "logic.hole_grace_ms must exceed logic.write_deadline_ms + mysql.timeout_ms, or a late "
        "write could fill a gap already reported as a hole");
  }
  if (o.resume_margin_ms < o.write_deadline_ms) {
    return absl::InvalidArgumentError(
        "logic.resume_margin_ms must be at least logic.write_deadline_ms, or a resume could miss "
        "a message written late");
  }
  return o;
}

}  // namespace im::logic
