#pragma once

#include <cstdint>
#include <vector>

namespace im::bench {

// What one device holds of one conversation, checked the way it shows them. Pushes of different
// messages may overtake each other on the way (each is its own Push call, and two writes of one
// conversation may commit in either order), so an arrival below a seq already pushed is
// "overtaken": a figure, not an error. Whether it is also "reordered" (an error: the user saw it
// out of order, or never) depends on the device:
// - kShowsOnArrival, a plain client: when it came more than `reorder_window_ms` after the first
//   higher seq.
// - kHoldsBySeq, the SDK (DESIGN.md section 8: "no gaps except reported holes"): it holds what
//   came above a gap until the gap fills or Sync reports it a hole, so a late arrival is only held
//   back (counted in waited_past_window()). It is reordered when it comes for a seq the device had
//   already passed as a reported hole.
// A seq pushed twice is a duplicate; seqs that came by Sync or as the device's own acknowledged
// sends are held without counting. Not thread-safe: owned by the device's loop.
class SeqTracker {
 public:
  // kAfterItsHole: a message for a seq Sync had reported a hole (also counted as reordered).
  enum class Arrival { kNew, kAlreadyHeld, kDuplicate, kInvalid, kAfterItsHole };
  enum class Ordering { kShowsOnArrival, kHoldsBySeq };

  explicit SeqTracker(uint32_t reorder_window_ms = 1000,
                      Ordering ordering = Ordering::kShowsOnArrival)
      : window_ms_(reorder_window_ms), ordering_(ordering) {}

  // A push of `seq` at `now_ms` (milliseconds on any clock that only grows, below 2^30).
  Arrival OnPush(uint64_t seq, uint32_t now_ms);
  // A message that came by Sync, or one of the device's own acknowledged sends.
  Arrival OnHeld(uint64_t seq, uint32_t now_ms);

  bool Has(uint64_t seq) const { return seq < at_.size() && at_[seq] != 0; }
  // When `seq` came (the `now_ms` it was held or pushed at); only for a seq it Has().
  uint32_t HeldAtMs(uint64_t seq) const { return (at_[seq] & kStampMask) - 1; }
  // The highest seq up to which every seq is held (what a SyncReq continues after).
  uint64_t Contiguous();
  // A seq is held above a missing one: what the SDK holds back and syncs for.
  bool HasGap() { return Contiguous() < highest_held_; }
  // Counts seqs first..last as held, for the holes a SyncResp reports: the device passes them.
  void HoldRange(uint64_t first, uint64_t last, uint32_t now_ms);

  uint64_t overtaken() const { return overtaken_; }
  uint64_t reordered() const { return reordered_; }
  uint64_t duplicates() const { return duplicates_; }
  // Of overtaken arrivals not held before (by Sync): the largest highest-pushed minus seq, and
  // the longest one came after the first higher seq.
  uint64_t max_depth() const { return max_depth_; }
  uint32_t max_wait_ms() const { return max_wait_ms_; }
  // Overtaken arrivals later than the window that a kHoldsBySeq device held back for.
  uint64_t waited_past_window() const { return waited_past_window_; }

 private:
  static constexpr uint32_t kPushed = 1u << 31;
  static constexpr uint32_t kHole = 1u << 30;  // passed as a hole Sync reported
  static constexpr uint32_t kStampMask = kHole - 1;
  // Seqs above this are refused (kInvalid): a bad seq must not make us allocate gigabytes.
  static constexpr uint64_t kMaxSeq = uint64_t{1} << 28;

  bool Grow(uint64_t seq);
  // A message came for a seq already passed as a hole.
  Arrival CameAfterItsHole();
  // An arrival (stamped `stamp`) below the highest pushed seq: judged by `ordering_`.
  void Overtaken(uint64_t seq, uint32_t stamp, bool held);
  static uint32_t Stamp(uint32_t now_ms) { return (now_ms & kStampMask) + 1; }

  uint32_t window_ms_;
  Ordering ordering_;
  // By seq: 0 = not held, else (arrival ms + 1) with kPushed set when it came by push and kHole
  // when Sync reported it a hole.
  std::vector<uint32_t> at_;
  uint64_t contiguous_ = 0;
  uint64_t highest_held_ = 0;  // however it came
  uint64_t highest_pushed_ = 0;
  uint64_t overtaken_ = 0;
  uint64_t reordered_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t waited_past_window_ = 0;
  uint64_t max_depth_ = 0;
  uint32_t max_wait_ms_ = 0;
};

}  // namespace im::bench
