#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "logic/backends/logic_stores.h"
#include "logic/dependency_health.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"

namespace im::logic {

// Applies the schema migrations to options.mysql, retrying for up to `patience` while MySQL is
// not reachable yet (a fresh pod, a local cluster coming up).
absl::Status MigrateSchema(const LogicOptions& options, std::chrono::seconds patience);

// The cluster's backends: every Redis-backed store on the process's one RedisConnection, the
// message and group stores on one MySQL pool (migrate first), and the group fan-out through Kafka
// when kafka.brokers is set, else within this process (which serves a single logic node).
LogicStores ClusterStores(const LogicOptions& options, LogicMetrics* metrics);

// The send loop's stores on its asynchronous Redis client, dedup entries under `dedup_prefix`
// (the cluster's is "im:dedup:"); member list version tokens live `group_cache_ttl_ms`, sessions
// `session_ttl_ms`.
LoopStores RedisLoopStores(store::RedisAsyncClient* client, const std::string& dedup_prefix,
                           int64_t group_cache_ttl_ms, int64_t session_ttl_ms);
// The login loop's one store: the session registry on its asynchronous Redis client.
LoopStores RedisLoginLoopStores(store::RedisAsyncClient* client, int64_t session_ttl_ms);

// Readiness checks of Redis, MySQL and (when set) Kafka, on connections of their own so that a
// probe never queues behind, or takes a connection from, the calls the node serves.
// `check_fanout_bus` asks the running node's bus whether its broker answers.
using FanoutBusCheck = std::function<absl::Status(std::chrono::milliseconds timeout)>;
std::vector<DependencyHealth::Dependency> ClusterDependencies(const LogicOptions& options,
                                                              FanoutBusCheck check_fanout_bus);

}  // namespace im::logic
