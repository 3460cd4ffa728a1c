#include "logic/group/recent_seqs.h"

namespace im::logic {

RecentSeqs::RecentSeqs(size_t max_conversations)
    : max_conversations_(max_conversations == 0 ? 1 : max_conversations) {}

bool RecentSeqs::FirstTime(const std::string& conv, uint64_t seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_conv_.find(conv);
  if (found != by_conv_.end()) {
    recency_.splice(recency_.begin(), recency_, found->second);
    return Offer(*found->second, seq);
  }
  if (recency_.size() >= max_conversations_) {
    by_conv_.erase(recency_.back().conv);
    recency_.pop_back();
  }
  recency_.push_front(Window{conv, seq, {}});
  recency_.front().seen.set(seq % kWindow);
  by_conv_.emplace(conv, recency_.begin());
  return true;
}

bool RecentSeqs::Offer(Window& window, uint64_t seq) {
  if (seq > window.highest) {
    if (seq - window.highest >= kWindow) {
      window.seen.reset();
    } else {
      for (uint64_t s = window.highest + 1; s < seq; ++s) window.seen.reset(s % kWindow);
    }
    window.highest = seq;
    window.seen.set(seq % kWindow);
    return true;
  }
  if (window.highest - seq >= kWindow) return false;
  if (window.seen.test(seq % kWindow)) return false;
  window.seen.set(seq % kWindow);
  return true;
}

size_t RecentSeqs::conversations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return recency_.size();
}

}  // namespace im::logic
