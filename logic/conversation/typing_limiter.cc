#include "logic/conversation/typing_limiter.h"

namespace im::logic {

TypingLimiter::TypingLimiter(int64_t interval_ms, size_t max_entries)
    : interval_ms_(interval_ms), max_entries_(max_entries) {}

bool TypingLimiter::Allow(std::string_view uid, std::string_view conv_id, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto key = std::pair<std::string, std::string>(uid, conv_id);
  auto it = last_passed_ms_.find(key);
  if (it != last_passed_ms_.end()) {
    if (now_ms - it->second < interval_ms_) return false;
    it->second = now_ms;
    return true;
  }
  if (last_passed_ms_.size() >= max_entries_) Prune(now_ms);
  if (last_passed_ms_.size() >= max_entries_) return false;
  last_passed_ms_.emplace(std::move(key), now_ms);
  return true;
}

size_t TypingLimiter::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_passed_ms_.size();
}

void TypingLimiter::Prune(int64_t now_ms) {
  std::erase_if(last_passed_ms_,
                [&](const auto& entry) { return now_ms - entry.second >= interval_ms_; });
}

}  // namespace im::logic
