#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace im::common {

// httplib's request threads, with load shedding: a connection that waited for a thread longer
// than `max_wait`, or arrived while `max_queued` others were waiting, is still served (httplib's
// task is what reads and closes its socket) but its handler is told to refuse at once
// (ShouldShed) instead of doing work for a caller that has given up or will.
class SheddingTaskQueue final : public httplib::TaskQueue {
 public:
  SheddingTaskQueue(size_t threads, size_t max_queued, std::chrono::milliseconds max_wait);
  ~SheddingTaskQueue() override;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

  // On a request thread: whether the request being served is to be refused (overload).
  static bool ShouldShed();

 private:
  struct Task {
    std::function<void()> fn;
    std::chrono::steady_clock::time_point queued_at;
    bool over_capacity = false;
  };
  void Work();

  const size_t max_queued_;
  const std::chrono::milliseconds max_wait_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task> tasks_;      // guarded by mutex_
  bool shutting_down_ = false;  // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace im::common
