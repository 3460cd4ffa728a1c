#include "common/loop_task_queue.h"

#include <utility>

namespace im::common {

LoopTaskQueue::LoopTaskQueue(uv_loop_t* loop, size_t capacity) : loop_(loop), capacity_(capacity) {
  async_.data = this;
}

LoopTaskQueue::~LoopTaskQueue() = default;

void LoopTaskQueue::Start() {
  uv_async_init(loop_, &async_, &LoopTaskQueue::OnAsync);
  started_ = true;
}

bool LoopTaskQueue::Post(Task task) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_ || queued_.size() >= capacity_) return false;
  queued_.push_back(std::move(task));
  // Sent under the lock: once Close() has marked the queue closed no poster can still be about to
  // touch the async handle, so the loop may close and free it.
  uv_async_send(&async_);
  return true;
}

size_t LoopTaskQueue::depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queued_.size();
}

void LoopTaskQueue::OnAsync(uv_async_t* handle) {
  static_cast<LoopTaskQueue*>(handle->data)->Drain();
}

void LoopTaskQueue::Drain() {
  std::vector<Task> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(queued_);
  }
  for (Task& task : batch) std::move(task)();
}

void LoopTaskQueue::Close(absl::AnyInvocable<void() &&> on_closed) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  Drain();
  on_closed_ = std::move(on_closed);
  if (!started_) {
    std::move(on_closed_)();
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* handle) {
    auto* self = static_cast<LoopTaskQueue*>(handle->data);
    std::move(self->on_closed_)();
  });
}

}  // namespace im::common
