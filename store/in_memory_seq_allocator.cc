#include "store/in_memory_seq_allocator.h"

namespace im::store {

absl::StatusOr<uint64_t> InMemorySeqAllocator::Next(std::string_view conv_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = counters_.find(conv_id);
  if (it == counters_.end()) {
    absl::StatusOr<uint64_t> floor = floor_(conv_id);
    if (!floor.ok()) return floor.status();
    // A conversation with nothing persisted starts dense at 1; otherwise leave the gap.
    const uint64_t restored = *floor == 0 ? 0 : *floor + restore_gap_;
    it = counters_.emplace(std::string(conv_id), restored).first;
  }
  return ++it->second;
}

}  // namespace im::store
