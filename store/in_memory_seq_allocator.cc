#include "store/in_memory_seq_allocator.h"

#include "common/status_macros.h"

namespace im::store {

absl::StatusOr<uint64_t> InMemorySeqAllocator::Next(std::string_view conv_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = counters_.find(conv_id);
  if (it == counters_.end()) {
    IM_ASSIGN_OR_RETURN(const uint64_t floor, floor_(conv_id));
    // A conversation with nothing persisted starts dense at 1; otherwise leave the gap.
    const uint64_t restored = floor == 0 ? 0 : floor + restore_gap_;
    it = counters_.emplace(std::string(conv_id), restored).first;
  }
  return ++it->second;
}

absl::Status InMemorySeqAllocator::Forget(std::string_view conv_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = counters_.find(conv_id); it != counters_.end()) counters_.erase(it);
  return absl::OkStatus();
}

}  // namespace im::store
