#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace im::common {

// Counts asynchronous calls in flight so that their owner can wait, at shutdown, until none is
// left: no completion may outlive the objects it uses. Thread-safe.
class InFlightCalls {
 public:
  void Started() { count_.fetch_add(1); }
  void Finished() {
    if (count_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_.notify_all();
    }
  }
  // Blocks until no call is in flight or `timeout` passed; returns whether idle.
  bool WaitIdle(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return idle_.wait_for(lock, timeout, [this] { return count_.load() == 0; });
  }
  size_t count() const { return count_.load(); }

 private:
  std::atomic<size_t> count_{0};
  std::mutex mutex_;
  std::condition_variable idle_;
};

}  // namespace im::common
