#pragma once

#include <map>
#include <mutex>
#include <string>

#include "store/seq_allocator.h"

namespace im::store {

// SeqAllocator in process memory, for unit tests and the single-node mode. A new instance is
// what a lost counter store looks like: counters restart from the floor plus the gap.
class InMemorySeqAllocator final : public SeqAllocator {
 public:
  InMemorySeqAllocator(SeqFloor floor, uint64_t restore_gap = kDefaultSeqRestoreGap)
      : floor_(std::move(floor)), restore_gap_(restore_gap) {}

  absl::StatusOr<uint64_t> Next(std::string_view conv_id) override;
  absl::Status Forget(std::string_view conv_id) override;

 private:
  SeqFloor floor_;
  const uint64_t restore_gap_;
  std::mutex mutex_;
  std::map<std::string, uint64_t, std::less<>> counters_;
};

}  // namespace im::store
