#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "store/redis_connection.h"
#include "store/restriction_store.h"

namespace im::store {

// RestrictionStore on Redis, shared by every logic node of a cluster: one hash
// <prefix>restrictions, field "<kind number>:<subject>" -> "<since_ms>:<until_ms>" (the kind is
// digits, so the first colon ends it and a subject may hold colons), and a counter
// <prefix>restrictions:version. Put and Remove are Lua scripts that INCR the counter in the same
// step as the HSET or HDEL that changed something, so a node that sees the counter move and then
// reads the hash sees that change. Thread-safe; calls block (network), so they run on the store
// executor.
//
// Put also drops the fields that lapsed more than kPruneGraceMs before `now_ms` (best effort, so
// that the hash holds what is live and little else): the grace keeps a node whose clock runs
// behind from losing one it still counts as live. That changes nothing live: the counter stays.
// LoadLive skips a field or value it cannot read (another writer, a newer build's kind), counts
// it and logs it rate-limited, rather than failing every node's reload.
class RedisRestrictionStore final : public RestrictionStore {
 public:
  static constexpr int64_t kPruneGraceMs = 60'000;

  RedisRestrictionStore(std::shared_ptr<RedisConnection> redis, std::string prefix,
                        common::MillisClock now_ms = common::UnixMillis);

  absl::Status Put(const Restriction& restriction) override;
  absl::StatusOr<bool> Remove(RestrictionKind kind, std::string_view subject) override;
  absl::StatusOr<uint64_t> Version() override;
  absl::StatusOr<std::vector<Restriction>> LoadLive(int64_t now_ms) override;

  // Fields LoadLive skipped as unreadable, since construction. Any thread.
  uint64_t skipped_fields() const { return skipped_fields_.load(std::memory_order_relaxed); }

  const std::string& hash_key() const { return hash_key_; }
  const std::string& version_key() const { return version_key_; }

 private:
  std::shared_ptr<RedisConnection> redis_;
  const std::string hash_key_;
  const std::string version_key_;
  const common::MillisClock now_ms_;
  // EVALSHA names of its scripts, loaded on redis_.
  const std::string put_sha_;
  const std::string remove_sha_;
  std::atomic<uint64_t> skipped_fields_{0};
};

}  // namespace im::store
