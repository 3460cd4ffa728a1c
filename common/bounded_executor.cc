#include "common/bounded_executor.h"

#include <pthread.h>

#include "common/allocator.h"

namespace im::common {

BoundedExecutor::BoundedExecutor(std::string name, size_t threads, size_t queue_capacity,
                                 QueueWait wait)
    : name_(std::move(name)),
      capacity_(queue_capacity),
      observe_wait_(std::move(wait.observe)),
      wait_policy_(wait.shed) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Work(); });
    // Thread names show up in top and gdb; Linux allows 15 characters.
    pthread_setname_np(threads_.back().native_handle(), name_.substr(0, 15).c_str());
  }
}

BoundedExecutor::~BoundedExecutor() { Shutdown(); }

bool BoundedExecutor::TrySubmit(Task task) { return TrySubmit(std::move(task), Task()); }

bool BoundedExecutor::TrySubmit(Task run, Task shed) {
  const auto now = QueueWaitPolicy::Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() >= capacity_) return false;
    if (queue_.empty()) wait_policy_.OnEmpty(now);  // it was empty until now
    queue_.push_back(Queued{std::move(run), std::move(shed), now});
  }
  wake_.notify_one();
  return true;
}

void BoundedExecutor::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

size_t BoundedExecutor::depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void BoundedExecutor::Work() {
  for (;;) {
    Task task;
    QueueWaitPolicy::Clock::duration waited;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      WaitReleasingCacheWhenIdle(wake_, lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      Queued& next = queue_.front();
      const auto now = QueueWaitPolicy::Clock::now();
      waited = now - next.enqueued;
      const bool shed = next.shed && wait_policy_.ShouldShed(next.enqueued, now);
      task = shed ? std::move(next.shed) : std::move(next.run);
      queue_.pop_front();
      if (queue_.empty()) wait_policy_.OnEmpty(now);
    }
    if (observe_wait_) observe_wait_(std::chrono::duration<double>(waited).count());
    std::move(task)();
  }
}

}  // namespace im::common
