#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/queue_wait_policy.h"

namespace im::common {

// A fixed pool of threads for blocking work (Redis, MySQL) with a bounded queue: when the queue is
// full TrySubmit() refuses, and the caller answers RESOURCE_EXHAUSTED instead of letting memory and
// latency grow without bound (STYLE.md: blocking calls never run on a loop or in a gRPC reaction).
// The queue is bounded by time too: a task submitted with a shed path that waited longer than its
// QueueWaitPolicy allows takes that path instead (a request answered "overloaded" at once rather
// than served late).
class BoundedExecutor {
 public:
  using Task = absl::AnyInvocable<void() &&>;

  using QueueWait = common::QueueWait;

  BoundedExecutor(std::string name, size_t threads, size_t queue_capacity, QueueWait wait = {});
  // Runs what is queued, then joins the threads.
  ~BoundedExecutor();
  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // Any thread. False when the queue is full or the executor is shutting down; the task is then
  // destroyed on the calling thread without running.
  bool TrySubmit(Task task);
  // Like TrySubmit(run), but when the task waited longer than the queue-wait policy allows,
  // `shed` runs instead of `run` (on a worker thread, so it must be quick: answer a refusal).
  bool TrySubmit(Task run, Task shed);

  // Refuses new tasks, lets the queued ones run, and joins the threads. Idempotent.
  void Shutdown();

  size_t depth() const;
  size_t capacity() const { return capacity_; }

 private:
  struct Queued {
    Task run;
    Task shed;  // empty: never shed
    QueueWaitPolicy::Clock::time_point enqueued;
  };

  void Work();

  const std::string name_;
  const size_t capacity_;
  const std::function<void(double)> observe_wait_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Queued> queue_;     // guarded by mutex_
  QueueWaitPolicy wait_policy_;  // guarded by mutex_
  bool stopping_ = false;        // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace im::common
