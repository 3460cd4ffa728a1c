#pragma once

#include <cstdint>
#include <vector>

namespace im::bench {

// What one device holds of one conversation, checked the way the SDK would show it (DESIGN.md
// section 8). Pushes of different messages may overtake each other on the way (each is its own
// Push call); like the SDK, the device holds a message that arrives above a gap until the gap
// fills. So an arrival below a seq already pushed is "overtaken" (a figure, not an error), and
// becomes "reordered" (an error: the user would have seen it out of order, or the SDK would have
// given up waiting) only when it arrived more than `reorder_window_ms` after the first higher seq.
// A seq pushed twice is a duplicate; seqs that came by Sync or as the device's own acknowledged
// sends are held without counting. Not thread-safe: owned by the device's loop.
class SeqTracker {
 public:
  enum class Arrival { kNew, kAlreadyHeld, kDuplicate, kInvalid };

  explicit SeqTracker(uint32_t reorder_window_ms = 1000) : window_ms_(reorder_window_ms) {}

  // A push of `seq` at `now_ms` (milliseconds on any clock that only grows, below 2^31).
  Arrival OnPush(uint64_t seq, uint32_t now_ms);
  // A message that came by Sync, or one of the device's own acknowledged sends.
  Arrival OnHeld(uint64_t seq, uint32_t now_ms);

  bool Has(uint64_t seq) const { return seq < at_.size() && at_[seq] != 0; }
  // When `seq` came (the `now_ms` it was held or pushed at); only for a seq it Has().
  uint32_t HeldAtMs(uint64_t seq) const { return (at_[seq] & ~kPushed) - 1; }
  // The highest seq up to which every seq is held (what a SyncReq continues after).
  uint64_t Contiguous();
  // A seq is held above a missing one: what the SDK holds back and syncs for.
  bool HasGap() { return Contiguous() < highest_held_; }
  // Counts seqs first..last as held, for the holes a SyncResp reports.
  void HoldRange(uint64_t first, uint64_t last, uint32_t now_ms);

  uint64_t overtaken() const { return overtaken_; }
  uint64_t reordered() const { return reordered_; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t max_depth() const { return max_depth_; }      // largest highest-pushed minus seq
  uint32_t max_wait_ms() const { return max_wait_ms_; }  // longest an overtaken seq came late

 private:
  static constexpr uint32_t kPushed = 1u << 31;
  // Seqs above this are refused (kInvalid): a bad seq must not make us allocate gigabytes.
  static constexpr uint64_t kMaxSeq = uint64_t{1} << 28;

  bool Grow(uint64_t seq);

  uint32_t window_ms_;
  // By seq: 0 = not held, else (arrival ms + 1) with kPushed set when it came by push.
  std::vector<uint32_t> at_;
  uint64_t contiguous_ = 0;
  uint64_t highest_held_ = 0;  // however it came
  uint64_t highest_pushed_ = 0;
  uint64_t overtaken_ = 0;
  uint64_t reordered_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t max_depth_ = 0;
  uint32_t max_wait_ms_ = 0;
};

}  // namespace im::bench
