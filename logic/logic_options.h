#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "store/mysql_connection_pool.h"
#include "store/redis_connection.h"

namespace im::logic {

enum class DeviceLimitPolicy {
  kKickOldest,  // a login beyond the cap kicks the user's least recently logged-in device
  kRefuse,      // a login beyond the cap is refused with TOO_MANY_DEVICES
};

// Everything an im-logic process is told at start-up. Defaults serve a local run.
struct LogicOptions {
  std::string logic_id = "logic-1";
  uint32_t node_number = 1;  // 0..1023, unique per logic node: part of every msg_id
  std::string grpc_address = "127.0.0.1:7100";
  std::string metrics_address = "0.0.0.0:9200";
  std::string token_secret = "dev-secret-change-me";

  uint32_t max_devices_per_user = 5;
  DeviceLimitPolicy device_limit_policy = DeviceLimitPolicy::kKickOldest;
  uint32_t max_body_bytes = 16 * 1024;
  uint32_t sync_page_default = 50;
  uint32_t sync_page_max = 200;
  uint32_t conversations_page_max = 200;
  uint32_t max_ack_cursors = 1000;
  // A gap in a conversation younger than this may still be filled by a write in flight, so Sync
  // stops before it; older gaps are reported as holes.
  uint32_t hole_grace_ms = 15'000;
  // A message not persisted this long after its seq was allocated is failed, never written late
  // (a late write could fill a gap already reported as a hole).
  uint32_t write_deadline_ms = 5'000;
  uint32_t session_ttl_sec = 120;
  uint32_t gateway_ttl_sec = 30;
  uint32_t dedup_ttl_sec = 24 * 3600;
  uint32_t push_timeout_ms = 2'000;
  uint32_t shutdown_grace_ms = 10'000;  // after SIGTERM, how long calls in flight may take

  uint32_t executor_threads = 16;
  uint32_t executor_queue = 10'000;
  uint32_t writers = 2;  // group-commit threads: while some commit (fsync), others gather
  uint32_t write_batch_max = 256;
  uint32_t write_queue = 20'000;

  store::RedisOptions redis;
  store::MySqlOptions mysql;

  std::string log_level = "info";
  std::string log_format = "text";

  // Reads every key under "logic.", "redis.", "mysql." and "log."; all errors reported at once.
  static absl::StatusOr<LogicOptions> FromConfig(common::Config& config);
};

}  // namespace im::logic
