#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "common/bounded_executor.h"
#include "common/burst_scope.h"

namespace im::logic {

// Hands items to `process` in batches, on the executor or an event loop (`submit` runs a task
// there, or refuses it). Items added while a batch is queued or being processed wait and go in the
// next one, so a burst costs one task (and whatever round trips `process` makes once per batch
// instead of once per item); batches are processed one at a time, each in the order its items
// were added. When `submit` refuses the task (full, or shutting down), the adding thread
// processes the batch itself. Items added inside a common::BurstScope are handed on when the
// scope closes, as one batch. At most `max_waiting` items wait: past that TryAdd refuses, and the
// caller does what must not be skipped itself.
template <typename Item>
class CoalescingStage {
 public:
  using Process = std::function<void(std::vector<Item>& batch)>;
  using Submit = std::function<bool(common::BoundedExecutor::Task)>;

  CoalescingStage(Submit submit, size_t max_waiting, Process process)
      : submit_(std::move(submit)), max_waiting_(max_waiting), process_(std::move(process)) {}
  CoalescingStage(common::BoundedExecutor* executor, size_t max_waiting, Process process)
      : CoalescingStage(
            [executor](common::BoundedExecutor::Task task) {
              return executor->TrySubmit(std::move(task));
            },
            max_waiting, std::move(process)) {}

  // Any thread. False, with `item` left as it was, when max_waiting items wait already.
  [[nodiscard]] bool TryAdd(Item&& item) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (waiting_.size() >= max_waiting_) return false;
      waiting_.push_back(std::move(item));
      if (scheduled_) return true;
      scheduled_ = true;
    }
    if (!common::BurstScope::Defer(this, [this] { Schedule(); })) Schedule();
    return true;
  }

 private:
  void Schedule() {
    if (!submit_([this] { Drain(); })) Drain();
  }

  void Drain() {
    for (;;) {
      std::vector<Item> batch;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (waiting_.empty()) {
          scheduled_ = false;
          return;
        }
        batch.swap(waiting_);
      }
      process_(batch);
    }
  }

  Submit submit_;
  const size_t max_waiting_;
  Process process_;
  std::mutex mutex_;
  std::vector<Item> waiting_;  // guarded by mutex_
  bool scheduled_ = false;     // guarded by mutex_: a drain is queued or running
};

}  // namespace im::logic
