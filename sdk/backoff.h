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

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  int attempt_ = 0;
  std::mt19937_64 random_;
};

}  // namespace im::sdk
