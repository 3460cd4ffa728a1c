#include "common/http_task_queue.h"

namespace im::common {
namespace {

thread_local bool shed_current = false;

}  // namespace

SheddingTaskQueue::SheddingTaskQueue(size_t threads, size_t max_queued,
                                     std::chrono::milliseconds max_wait)
    : max_queued_(max_queued), max_wait_(max_wait) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

SheddingTaskQueue::~SheddingTaskQueue() { shutdown(); }

void SheddingTaskQueue::enqueue(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    const bool over_capacity = tasks_.size() >= max_queued_;
    tasks_.push_back(Task{std::move(fn), std::chrono::steady_clock::now(), over_capacity});
  }
  wake_.notify_one();
}

void SheddingTaskQueue::shutdown() {
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

bool SheddingTaskQueue::ShouldShed() { return shed_current; }

void SheddingTaskQueue::Work() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return shutting_down_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // shutting down, nothing left to serve
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    shed_current =
        task.over_capacity || std::chrono::steady_clock::now() - task.queued_at > max_wait_;
    task.fn();
    shed_current = false;
  }
}

}  // namespace im::common
