#pragma once

#include <cstdint>
#include <mutex>

#include "common/clock.h"

namespace im::logic {

// Keeps a dead endpoint from costing every caller its timeout: after `failures_to_open` failures
// in a row the breaker opens and callers are told not to call for `open_ms`; then one caller
// probes (half open) while the others still stay away, and its outcome closes the breaker or
// opens it for another `open_ms`. Thread-safe.
class CircuitBreaker {
 public:
  CircuitBreaker(uint32_t failures_to_open, int64_t open_ms, common::MillisClock steady_ms);

  // Whether this call may go to the endpoint; a call allowed must report Succeeded or Failed.
  bool Allow();
  void Succeeded();
  void Failed();
  bool IsOpen() const;

 private:
  const uint32_t failures_to_open_;
  const int64_t open_ms_;
  const common::MillisClock now_ms_;
  mutable std::mutex mutex_;
  uint32_t failures_in_a_row_ = 0;
  int64_t open_until_ms_ = 0;  // 0: closed
  bool probing_ = false;
};

}  // namespace im::logic
