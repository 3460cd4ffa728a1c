#include "sdk/backoff.h"

#include <algorithm>

namespace im::sdk {

int64_t Backoff::NextDelayMs() {
  int64_t ceiling = initial_ms_;
  for (int i = 0; i < attempt_ && ceiling < max_ms_; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max_ms_);
  ++attempt_;
  return Jitter(ceiling);
}

int64_t Backoff::Jitter(int64_t bound) {
  if (bound <= 0) return 0;
  return std::uniform_int_distribution<int64_t>(0, bound)(random_);
}

}  // namespace im::sdk
