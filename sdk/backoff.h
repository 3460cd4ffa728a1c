#pragma once

#include <cstdint>
#include <random>

namespace im::sdk {

// Exponential backoff with full jitter: attempt n waits a uniform random time in
// [0, min(max, initial * 2^n)], so that clients cut off together do not come back together.
class Backoff {
 public:
  Backoff(int64_t initial_ms, int64_t max_ms, uint64_t seed)
      : initial_ms_(initial_ms), max_ms_(max_ms), random_(seed) {}

  // The wait before the next attempt; each call doubles the ceiling up to the maximum.
  int64_t NextDelayMs();
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }
  // A uniform random value in [0, bound], from the same generator (hint spreading).
  int64_t Jitter(int64_t bound);
  // The wait after the server refused with a retry hint (Status.retry_after_ms > 0): the hint
  // plus a random part as long again, so that a refused crowd comes back spread over
  // [hint, 2 x hint] instead of all at the hint.
  int64_t AfterHintMs(int64_t hint_ms) { return hint_ms + Jitter(hint_ms); }

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  int attempt_ = 0;
  std::mt19937_64 random_;
};

}  // namespace im::sdk
