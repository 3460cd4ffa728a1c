#pragma once

#include <chrono>
#include <random>
#include <thread>

#include "absl/status/statusor.h"

namespace im::store {

inline absl::Status StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

// Runs `attempt` (one transaction through MySqlConnectionPool::Run) up to `attempts` times while
// it ends ABORTED: InnoDB picked it as a deadlock victim (1213) or a lock wait timed out (1205),
// nothing of it is left (the pool rolled back), and another attempt usually passes. Between
// attempts it waits a few milliseconds, more each time, with jitter, so that two transactions
// that deadlocked do not meet again in step.
template <typename Attempt>
auto RetryIfAborted(Attempt attempt, int attempts) {
  auto result = attempt();
  thread_local std::minstd_rand jitter(std::random_device{}());
  for (int done = 1; done < attempts && StatusOf(result).code() == absl::StatusCode::kAborted;
       ++done) {
    const int base_ms = 2 << done;  // 4, 8, 16 ms ...
    std::this_thread::sleep_for(std::chrono::milliseconds(base_ms + jitter() % base_ms));
    result = attempt();
  }
  return result;
}

}  // namespace im::store
