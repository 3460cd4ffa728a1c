#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "absl/status/statusor.h"

namespace im::store {

// The highest seq of a conversation that may already be persisted (MySQL MAX(seq); 0 if none).
using SeqFloor = std::function<absl::StatusOr<uint64_t>(std::string_view conv_id)>;

// Per-conversation sequence numbers (DESIGN.md section 5): each call returns a number greater
// than every number returned before for that conversation, dense in the normal case.
// When a counter is missing (first use, or its storage lost its data) it is restored from the
// floor plus `restore_gap` before use: a seq allocated before the loss may be persisted after the
// floor was read, and the gap keeps it from being handed out twice. The skipped numbers are holes,
// which Sync reports. Thread-safe; may block.
class SeqAllocator {
 public:
  virtual ~SeqAllocator() = default;
  virtual absl::StatusOr<uint64_t> Next(std::string_view conv_id) = 0;
  // Drops the counter, found behind the store (it handed out a seq a stored message holds, as
  // when Redis lost its last writes): the next Next() restores it from the floor plus the gap.
  virtual absl::Status Forget(std::string_view conv_id) = 0;
};

inline constexpr uint64_t kDefaultSeqRestoreGap = 1000;

}  // namespace im::store
