#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "store/restriction_store.h"

namespace im::store {

// RestrictionStore in process memory, for unit tests. Thread-safe: every call holds one mutex;
// nothing blocks. Lapsed restrictions are kept until replaced or removed (LoadLive leaves them
// out): a test store lives too briefly for them to pile up.
class InMemoryRestrictionStore final : public RestrictionStore {
 public:
  absl::Status Put(const Restriction& restriction) override;
  absl::StatusOr<bool> Remove(RestrictionKind kind, std::string_view subject) override;
  absl::StatusOr<uint64_t> Version() override;
  absl::StatusOr<std::vector<Restriction>> LoadLive(int64_t now_ms) override;

 private:
  using Key = std::pair<RestrictionKind, std::string>;

  std::mutex mutex_;
  std::map<Key, Restriction> restrictions_ ABSL_GUARDED_BY(mutex_);
  // Starts at 0: a new store holds nothing, so there is nothing to reload yet.
  uint64_t version_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace im::store
