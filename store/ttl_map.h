#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace im::store {

// Small values that expire: the gateway directory (im:gw:<id> -> push address) and the send
// dedup entries (im:dedup:<uid>:<client_msg_id>). Each instance owns one key namespace (prefix).
// Thread-safe; calls may block (network), so they run on the store executor.
class TtlMap {
 public:
  virtual ~TtlMap() = default;

  using Entries = std::vector<std::pair<std::string, std::string>>;  // key, value

  // Sets `key` to `value`, expiring after `ttl_ms` (> 0).
  absl::Status Put(std::string_view key, std::string_view value, int64_t ttl_ms) {
    return PutMany({{std::string(key), std::string(value)}}, ttl_ms);
  }
  // Put for every entry, in one round trip.
  virtual absl::Status PutMany(const Entries& entries, int64_t ttl_ms) = 0;

  // Sets `key` to `value` only if it has no live value; returns nullopt when it set it, else the
  // value already there (left unchanged). Atomic: of concurrent callers exactly one sets it.
  virtual absl::StatusOr<std::optional<std::string>> PutIfAbsent(std::string_view key,
                                                                 std::string_view value,
                                                                 int64_t ttl_ms) = 0;

  virtual absl::Status Delete(std::string_view key) = 0;

  // The live value of each key, in the order of `keys` (nullopt: absent or expired).
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) = 0;
};

// TtlMap's writes without blocking, for code on a logic event loop (which owns the client; used on
// its thread only). `done` runs on that thread.
class AsyncTtlMap {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  virtual ~AsyncTtlMap() = default;
  // TtlMap::PutMany.
  virtual void PutMany(const TtlMap::Entries& entries, int64_t ttl_ms, Done done) = 0;
  // TtlMap::Delete.
  virtual void Delete(std::string_view key, Done done) = 0;
};

}  // namespace im::store
