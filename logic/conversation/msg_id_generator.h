#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

#include "common/clock.h"

namespace im::logic {

// Cluster-unique, time-ordered 64-bit message ids (DESIGN.md section 5):
//   41 bits of milliseconds since 2024-01-01 UTC | 10 bits node number | 12 bits sequence.
// 4096 ids per millisecond per node; beyond that the generator borrows from the next
// millisecond, and a clock that steps back never produces an id twice (it keeps counting from the
// last one it issued). Thread-safe.
class MsgIdGenerator {
 public:
  using Clock = common::MillisClock;  // Unix milliseconds

  static constexpr int kNodeBits = 10;
  static constexpr int kSequenceBits = 12;
  static constexpr int64_t kEpochMs = 1'704'067'200'000;  // 2024-01-01T00:00:00Z

  MsgIdGenerator(uint32_t node_number, Clock now_ms);

  uint64_t Next();

 private:
  const uint64_t node_;
  Clock now_ms_;
  std::mutex mutex_;
  int64_t last_ms_ = -1;   // guarded by mutex_
  uint32_t sequence_ = 0;  // guarded by mutex_
};

}  // namespace im::logic
