#include "bench/seq_tracker.h"

#include <algorithm>

namespace im::bench {
namespace {

// How far below the highest pushed seq an overtaken arrival looks for the earliest higher
// arrival: bounds the work per arrival; deeper reorders take the wait of this window.
constexpr uint64_t kMaxScan = 4096;

}  // namespace

bool SeqTracker::Grow(uint64_t seq) {
  if (seq == 0 || seq > kMaxSeq) return false;
  if (seq >= at_.size()) at_.resize(std::max<size_t>(seq + 1, at_.size() * 2), 0);
  highest_held_ = std::max(highest_held_, seq);  // every caller holds `seq` next
  return true;
}

SeqTracker::Arrival SeqTracker::OnPush(uint64_t seq, uint32_t now_ms) {
  if (!Grow(seq)) return Arrival::kInvalid;
  uint32_t& slot = at_[seq];
  if (slot & kHole) return CameAfterItsHole();
  if (slot & kPushed) {
    ++duplicates_;
    return Arrival::kDuplicate;
  }
  const bool held = slot != 0;
  const uint32_t stamp = Stamp(now_ms);
  if (seq < highest_pushed_) Overtaken(seq, stamp, held);
  highest_pushed_ = std::max(highest_pushed_, seq);
  slot = held ? (slot | kPushed) : (stamp | kPushed);
  return held ? Arrival::kAlreadyHeld : Arrival::kNew;
}

void SeqTracker::Overtaken(uint64_t seq, uint32_t stamp, bool held) {
  ++overtaken_;
  if (held) return;  // a Sync brought it earlier: nobody waited for this push
  max_depth_ = std::max(max_depth_, highest_pushed_ - seq);
  uint32_t earliest = stamp;
  const uint64_t scan_end = std::min(highest_pushed_, seq + kMaxScan);
  for (uint64_t s = seq + 1; s <= scan_end; ++s) {
    if (at_[s] & kPushed) earliest = std::min(earliest, at_[s] & kStampMask);
  }
  const uint32_t wait = stamp - earliest;
  max_wait_ms_ = std::max(max_wait_ms_, wait);
  if (wait <= window_ms_) return;
  if (ordering_ == Ordering::kHoldsBySeq) {
    ++waited_past_window_;  // held back behind its gap all along: shown in order, late
  } else {
    ++reordered_;
  }
}

SeqTracker::Arrival SeqTracker::CameAfterItsHole() {
  ++reordered_;
  return Arrival::kAfterItsHole;
}

SeqTracker::Arrival SeqTracker::OnHeld(uint64_t seq, uint32_t now_ms) {
  if (!Grow(seq)) return Arrival::kInvalid;
  if (at_[seq] & kHole) return CameAfterItsHole();
  if (at_[seq] != 0) return Arrival::kAlreadyHeld;
  at_[seq] = Stamp(now_ms);
  return Arrival::kNew;
}

void SeqTracker::HoldRange(uint64_t first, uint64_t last, uint32_t now_ms) {
  for (uint64_t s = std::max<uint64_t>(first, 1); s <= last && s <= kMaxSeq; ++s) {
    Grow(s);
    if (at_[s] == 0) at_[s] = Stamp(now_ms) | kHole;
  }
}

uint64_t SeqTracker::Contiguous() {
  while (contiguous_ + 1 < at_.size() && at_[contiguous_ + 1] != 0) ++contiguous_;
  return contiguous_;
}

}  // namespace im::bench
