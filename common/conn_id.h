#pragma once

#include <cstdint>

namespace im::common {

// A connection is named across threads and processes by a 64-bit id, never by pointer. The top
// bits say which worker loop owns it, the rest is a sequence that never repeats within a gateway
// instance, so a push for a connection that is gone finds nothing instead of a stranger.
using ConnId = uint64_t;

inline constexpr int kConnIdLoopBits = 8;
inline constexpr int kConnIdSequenceBits = 64 - kConnIdLoopBits;
inline constexpr uint32_t kMaxLoops = 1u << kConnIdLoopBits;
inline constexpr uint64_t kConnIdSequenceMask = (uint64_t{1} << kConnIdSequenceBits) - 1;

constexpr ConnId MakeConnId(uint32_t loop_index, uint64_t sequence) {
  return (uint64_t{loop_index} << kConnIdSequenceBits) | (sequence & kConnIdSequenceMask);
}
constexpr uint32_t LoopIndexOf(ConnId id) {
  return static_cast<uint32_t>(id >> kConnIdSequenceBits);
}
constexpr uint64_t SequenceOf(ConnId id) { return id & kConnIdSequenceMask; }

// Hands out the ids of one loop. `instance_seed` differs per process start (the gateway uses its
// start time) so that ids of a restarted gateway do not collide with sessions of its previous life.
// Used only on the owning loop's thread.
class ConnIdAllocator {
 public:
  ConnIdAllocator(uint32_t loop_index, uint64_t instance_seed)
      : loop_index_(loop_index), next_(((instance_seed & 0xFFFFFF) << 32) | 1) {}

  ConnId Next() { return MakeConnId(loop_index_, next_++); }

 private:
  uint32_t loop_index_;
  uint64_t next_;
};

}  // namespace im::common
