#pragma once

#include <memory>
#include <string>

#include "store/redis_async_client.h"
#include "store/redis_connection.h"
#include "store/ttl_map.h"

namespace im::store {

// TtlMap on Redis: SET <prefix><key> PX, and one MGET for any number of keys.
class RedisTtlMap final : public TtlMap {
 public:
  RedisTtlMap(std::shared_ptr<RedisConnection> redis, std::string prefix)
      : redis_(std::move(redis)), prefix_(std::move(prefix)) {}

  absl::Status PutMany(const Entries& entries, int64_t ttl_ms) override;
  absl::StatusOr<std::optional<std::string>> PutIfAbsent(std::string_view key,
                                                         std::string_view value,
                                                         int64_t ttl_ms) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) override;

 private:
  std::shared_ptr<RedisConnection> redis_;
  const std::string prefix_;
};

// The same writes (same keys) on a logic event loop's RedisAsyncClient: a PutMany's SETs leave
// in one write with whatever else the loop issues in that iteration. `redis` outlives it.
class RedisAsyncTtlMap final : public AsyncTtlMap {
 public:
  RedisAsyncTtlMap(RedisAsyncClient* redis, std::string prefix)
      : redis_(redis), prefix_(std::move(prefix)) {}

  void PutMany(const TtlMap::Entries& entries, int64_t ttl_ms, Done done) override;
  void Delete(std::string_view key, Done done) override;

 private:
  RedisAsyncClient* redis_;
  const std::string prefix_;
};

}  // namespace im::store
