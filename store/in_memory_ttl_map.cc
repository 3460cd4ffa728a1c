#include "store/in_memory_ttl_map.h"

namespace im::store {

absl::Status InMemoryTtlMap::PutMany(const Entries& entries, int64_t ttl_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, value] : entries) entries_[key] = Entry{value, now_ms_() + ttl_ms};
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> InMemoryTtlMap::PutIfAbsent(std::string_view key,
                                                                       std::string_view value,
                                                                       int64_t ttl_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.expires_ms > now_ms_()) {
    return std::optional<std::string>(it->second.value);
  }
  entries_[std::string(key)] = Entry{std::string(value), now_ms_() + ttl_ms};
  return std::optional<std::string>();
}

absl::Status InMemoryTtlMap::Delete(std::string_view key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end()) entries_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::optional<std::string>>> InMemoryTtlMap::Get(
    const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::optional<std::string>> values(keys.size());
  const int64_t now = now_ms_();
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = entries_.find(keys[i]);
    if (it == entries_.end()) continue;
    if (it->second.expires_ms <= now) {
      entries_.erase(it);
      continue;
    }
    values[i] = it->second.value;
  }
  return values;
}

}  // namespace im::store
