#include "store/in_memory_restriction_store.h"

#include "store/restriction_rules.h"

namespace im::store {

absl::Status InMemoryRestrictionStore::Put(const Restriction& restriction) {
  if (absl::Status status = CheckRestrictionKey(restriction.kind, restriction.subject);
      !status.ok()) {
    return status;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] =
      restrictions_.try_emplace(Key(restriction.kind, restriction.subject), restriction);
  if (!inserted) {
    Restriction& stored = it->second;
    if (stored.since_ms == restriction.since_ms && stored.until_ms == restriction.until_ms) {
      return absl::OkStatus();  // the same again changes nothing: no reload is due
    }
    stored = restriction;
  }
  ++version_;
  return absl::OkStatus();
}

absl::StatusOr<bool> InMemoryRestrictionStore::Remove(RestrictionKind kind,
                                                      std::string_view subject) {
  if (absl::Status status = CheckRestrictionKey(kind, subject); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  if (restrictions_.erase(Key(kind, std::string(subject))) == 0) return false;
  ++version_;
  return true;
}

absl::StatusOr<uint64_t> InMemoryRestrictionStore::Version() {
  std::lock_guard<std::mutex> lock(mutex_);
  return version_;
}

absl::StatusOr<std::vector<Restriction>> InMemoryRestrictionStore::LoadLive(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Restriction> live;
  for (const auto& [key, restriction] : restrictions_) {
    if (restriction.until_ms > now_ms) live.push_back(restriction);
  }
  return live;
}

}  // namespace im::store
