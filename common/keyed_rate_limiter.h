#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "common/token_bucket.h"

namespace im::common {

// A token bucket per key (a user, a user in a group, a source address), shared by any number of
// threads. Memory is bounded: buckets that are full again are forgotten (a key that paused for
// burst / rate seconds costs nothing), and past `max_keys` keys with partly empty buckets a new
// key is let through untracked and counted in untracked(), rather than refused: a flood of keys
// must not lock out the next honest one (whatever limit sits behind this one still holds).
template <typename Key, typename Hash = std::hash<Key>>
class KeyedRateLimiter {
 public:
  KeyedRateLimiter(RateLimit limit, size_t max_keys)
      : limit_(limit), max_keys_per_shard_(std::max<size_t>(max_keys / kShards, 1)) {}

  // Takes a token of `key`'s bucket at `now_ms`: 0 when it had one, else the milliseconds until
  // it has (nothing taken).
  int64_t Take(const Key& key, int64_t now_ms) {
    if (!limit_.enabled()) return 0;
    Shard& shard = shards_[Hash{}(key) % kShards];
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.buckets.find(key);
    if (it == shard.buckets.end()) {
      if (shard.buckets.size() >= max_keys_per_shard_ && !Prune(shard, now_ms)) {
        ++shard.untracked;
        return 0;
      }
      it = shard.buckets.emplace(key, TokenBucket()).first;
    }
    return it->second.Take(limit_, now_ms);
  }

  const RateLimit& limit() const { return limit_; }
  size_t size() const {
    size_t keys = 0;
    for (const Shard& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard.mutex);
      keys += shard.buckets.size();
    }
    return keys;
  }
  uint64_t untracked() const {
    uint64_t count = 0;
    for (const Shard& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard.mutex);
      count += shard.untracked;
    }
    return count;
  }

 private:
  static constexpr size_t kShards = 16;
  // A full shard is swept at most this often, so that one full of busy keys does not cost a
  // sweep per new key.
  static constexpr int64_t kPruneEveryMs = 1'000;

  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<Key, TokenBucket, Hash> buckets;
    int64_t pruned_at_ms = -kPruneEveryMs;  // the first sweep may come at once
    uint64_t untracked = 0;
  };

  // Forgets the shard's full buckets; whether that made room. Requires shard.mutex.
  bool Prune(Shard& shard, int64_t now_ms) {
    if (now_ms - shard.pruned_at_ms < kPruneEveryMs) return false;
    shard.pruned_at_ms = now_ms;
    std::erase_if(shard.buckets, [now_ms](const auto& entry) { return entry.second.Full(now_ms); });
    return shard.buckets.size() < max_keys_per_shard_;
  }

  const RateLimit limit_;
  const size_t max_keys_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace im::common
