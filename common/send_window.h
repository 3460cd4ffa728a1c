#pragma once

#include <algorithm>
#include <cstdint>

namespace im::common {

// How many sends a client keeps unanswered at once, adapted to the server as TCP adapts its
// congestion window (additive increase, multiplicative decrease): it starts at the configured
// maximum; an overload refusal halves it (once per burst: refusals within `calm_ms` of the last
// halving answer sends made before it); each window's worth of acknowledged sends widens it by one
// again. Without it, every refused device resends its whole window when the retry hint expires,
// and a crowd far above capacity spends the servers' time on refusals instead of messages.
class SendWindow {
 public:
  explicit SendWindow(uint32_t max) : max_(std::max<uint32_t>(max, 1)), size_(max_) {}

  uint32_t size() const { return size_; }

  void OnAcked() {
    if (size_ >= max_) return;
    if (++acked_ >= size_) {
      ++size_;
      acked_ = 0;
    }
  }

  // A send refused for overload at `now_ms`, with the server's retry hint as the calm period.
  void OnRefused(int64_t now_ms, int64_t calm_ms) {
    if (now_ms < calm_until_ms_) return;
    size_ = std::max<uint32_t>(size_ / 2, 1);
    acked_ = 0;
    calm_until_ms_ = now_ms + calm_ms;
  }

 private:
  uint32_t max_;
  uint32_t size_;
  uint32_t acked_ = 0;  // acknowledged since the window last grew
  int64_t calm_until_ms_ = 0;
};

}  // namespace im::common
