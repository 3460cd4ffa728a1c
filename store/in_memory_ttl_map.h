#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "store/ttl_map.h"

namespace im::store {

// TtlMap in process memory, for unit tests and the single-node mode; expiry follows an injected
// clock (milliseconds). Expired entries are dropped when read or overwritten.
class InMemoryTtlMap final : public TtlMap {
 public:
  using Clock = common::MillisClock;
  explicit InMemoryTtlMap(Clock now_ms) : now_ms_(std::move(now_ms)) {}

  absl::Status PutMany(const Entries& entries, int64_t ttl_ms) override;
  absl::StatusOr<std::optional<std::string>> PutIfAbsent(std::string_view key,
                                                         std::string_view value,
                                                         int64_t ttl_ms) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) override;

 private:
  struct Entry {
    std::string value;
    int64_t expires_ms = 0;
  };
  Clock now_ms_;
  std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace im::store
