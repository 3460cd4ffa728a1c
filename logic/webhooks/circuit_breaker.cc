#include "logic/webhooks/circuit_breaker.h"

namespace im::logic {

CircuitBreaker::CircuitBreaker(uint32_t failures_to_open, int64_t open_ms,
                               common::MillisClock steady_ms)
    : failures_to_open_(failures_to_open), open_ms_(open_ms), now_ms_(std::move(steady_ms)) {}

bool CircuitBreaker::Allow() {
  std::lock_guard lock(mutex_);
  if (open_until_ms_ == 0) return true;
  if (probing_ || now_ms_() < open_until_ms_) return false;
  probing_ = true;
  return true;
}

void CircuitBreaker::Succeeded() {
  std::lock_guard lock(mutex_);
  failures_in_a_row_ = 0;
  open_until_ms_ = 0;
  probing_ = false;
}

void CircuitBreaker::Failed() {
  std::lock_guard lock(mutex_);
  ++failures_in_a_row_;
  if (probing_ || failures_in_a_row_ >= failures_to_open_) {
    open_until_ms_ = now_ms_() + open_ms_;
    probing_ = false;
  }
}

bool CircuitBreaker::IsOpen() const {
  std::lock_guard lock(mutex_);
  return open_until_ms_ != 0;
}

}  // namespace im::logic
