#pragma once

#include <uv.h>

#include <cstddef>
#include <mutex>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace im::common {

// The only way into an event loop from another thread (muduo's runInLoop, Envoy's post()).
// Tasks are queued under a mutex and the loop is woken by uv_async_send, which coalesces: one
// wake-up drains everything queued so far, in order.
// The queue is bounded: Post() refuses work beyond `capacity` so that a stalled loop cannot make
// memory grow without bound; the caller counts the refusal and answers RESOURCE_EXHAUSTED.
class LoopTaskQueue {
 public:
  using Task = absl::AnyInvocable<void() &&>;

  // Construct and Start() on the loop's thread, before any other thread may Post().
  LoopTaskQueue(uv_loop_t* loop, size_t capacity);
  ~LoopTaskQueue();
  LoopTaskQueue(const LoopTaskQueue&) = delete;
  LoopTaskQueue& operator=(const LoopTaskQueue&) = delete;

  void Start();

  // Any thread. Returns false when the queue is full or closed; the task is then destroyed
  // on the calling thread without running.
  bool Post(Task task);

  // Loop thread. Refuses further posts, runs what is queued, and closes the async handle;
  // `on_closed` runs on the loop once the handle is closed (the loop may then be closed).
  void Close(absl::AnyInvocable<void() &&> on_closed);

  size_t depth() const;
  size_t capacity() const { return capacity_; }

 private:
  static void OnAsync(uv_async_t* handle);
  void Drain();

  uv_loop_t* loop_;
  uv_async_t async_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<Task> queued_;  // guarded by mutex_
  bool closed_ = false;       // guarded by mutex_
  bool started_ = false;
  absl::AnyInvocable<void() &&> on_closed_;
};

}  // namespace im::common
