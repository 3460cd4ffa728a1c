#include "logic/conversation/msg_id_generator.h"

#include <algorithm>

namespace im::logic {

MsgIdGenerator::MsgIdGenerator(uint32_t node_number, Clock now_ms)
    : node_(node_number & ((1u << kNodeBits) - 1)), now_ms_(std::move(now_ms)) {}

uint64_t MsgIdGenerator::Next() {
  const int64_t now = std::max<int64_t>(0, now_ms_() - kEpochMs);
  std::lock_guard<std::mutex> lock(mutex_);
  // Never behind the last id: a clock stepping back keeps counting in the last millisecond, and a
  // millisecond whose sequence is used up borrows the next one.
  int64_t ms = std::max(now, last_ms_);
  if (ms == last_ms_) {
    if (++sequence_ == (1u << kSequenceBits)) {
      ++ms;
      sequence_ = 0;
    }
  } else {
    sequence_ = 0;
  }
  last_ms_ = ms;
  return (static_cast<uint64_t>(ms) << (kNodeBits + kSequenceBits)) | (node_ << kSequenceBits) |
         sequence_;
}

}  // namespace im::logic
