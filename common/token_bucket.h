#pragma once

#include <algorithm>
#include <cstdint>

namespace im::common {

// A rate limit: `per_sec` events a second on average, up to `burst` at once after a quiet spell.
// per_sec 0: no limit.
struct RateLimit {
  double per_sec = 0;
  uint32_t burst = 1;

  bool enabled() const { return per_sec > 0; }
  // Microseconds one event's token takes to come back.
  int64_t interval_us() const { return static_cast<int64_t>(1e6 / per_sec); }
};

// A token bucket kept as one number, the time at which it is full again (the generic cell rate
// algorithm's "theoretical arrival time"): 8 bytes, so that every connection can afford one, and
// no refill step. Not thread-safe.
class TokenBucket {
 public:
  // Takes a token at `now_ms`. Returns 0 when there was one; else how many milliseconds until
  // there is (rounded up, at least 1), and takes nothing.
  int64_t Take(const RateLimit& limit, int64_t now_ms) {
    if (!limit.enabled()) return 0;
    const int64_t now_us = now_ms * 1000;
    const int64_t interval_us = limit.interval_us();
    // A bucket this far from full holds no token.
    const int64_t empty_at_us = interval_us * std::max<int64_t>(limit.burst, 1);
    const int64_t full_at_us = std::max(full_at_us_, now_us);
    const int64_t wait_us = full_at_us + interval_us - empty_at_us - now_us;
    if (wait_us > 0) return (wait_us + 999) / 1000;
    full_at_us_ = full_at_us + interval_us;
    return 0;
  }

  // Whether the bucket is full at `now_ms`: it then remembers nothing and can be forgotten.
  bool Full(int64_t now_ms) const { return full_at_us_ <= now_ms * 1000; }

 private:
  int64_t full_at_us_ = 0;
};

}  // namespace im::common
