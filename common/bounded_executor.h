#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace im::common {

// A fixed pool of threads for blocking work (Redis, MySQL) with a bounded queue: when the queue is
// full TrySubmit() refuses, and the caller answers RESOURCE_EXHAUSTED instead of letting memory and
// latency grow without bound (STYLE.md: blocking calls never run on a loop or in a gRPC reaction).
class BoundedExecutor {
 public:
  using Task = absl::AnyInvocable<void() &&>;

  BoundedExecutor(std::string name, size_t threads, size_t queue_capacity);
  // Runs what is queued, then joins the threads.
  ~BoundedExecutor();
  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // Any thread. False when the queue is full or the executor is shutting down; the task is then
  // destroyed on the calling thread without running.
  bool TrySubmit(Task task);

  // Refuses new tasks, lets the queued ones run, and joins the threads. Idempotent.
  void Shutdown();

  size_t depth() const;
  size_t capacity() const { return capacity_; }

 private:
  void Work();

  const std::string name_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task> queue_;  // guarded by mutex_
  bool stopping_ = false;   // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace im::common
