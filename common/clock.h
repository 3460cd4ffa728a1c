#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace im::common {

// A source of milliseconds, injected where time matters so that tests can move it by hand.
using MillisClock = std::function<int64_t()>;

// Unix milliseconds from the system clock: for what is stored or sent (message times, sessions).
inline int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Milliseconds from the monotonic clock: for timeouts and ages within one process.
inline int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Seconds elapsed on the monotonic clock since `start`: what latency histograms observe.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace im::common
