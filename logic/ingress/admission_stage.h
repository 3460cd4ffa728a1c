#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <utility>

#include "common/bounded_executor.h"
#include "logic/logic_metrics.h"
#include "logic/reply_status.h"

namespace im::logic {

// An executor that requests are admitted to, and how its overload refusals are named and
// counted: a request finding the queue full is refused at once, and one that waited longer than
// the executor's QueueWaitPolicy allows is shed on a worker instead of run. The gateways' stream
// (RequestDispatcher) and the unary LogicService calls admit requests through the same stages.
class AdmissionStage {
 public:
  // Every request but logins.
  static AdmissionStage Store(common::BoundedExecutor* executor, LogicMetrics* metrics) {
    return AdmissionStage(executor, kExecutorFullReason, &metrics->overloaded_executor,
                          &metrics->overloaded_executor_wait, &metrics->executor_depth);
  }
  // Sends without a send loop, on their one-thread executor (RequestDispatcher::Executors);
  // refused and shed as the store executor's requests are, and counted with them.
  static AdmissionStage Sends(common::BoundedExecutor* executor, LogicMetrics* metrics) {
    return AdmissionStage(executor, kExecutorFullReason, &metrics->overloaded_executor,
                          &metrics->overloaded_executor_wait, /*depth=*/nullptr);
  }
  // Logins, on their own executor so that a send flood cannot lock users out (nor a login
  // storm starve sends).
  static AdmissionStage Logins(common::BoundedExecutor* executor, LogicMetrics* metrics) {
    return AdmissionStage(executor, kLoginQueueFullReason, &metrics->overloaded_login_queue,
                          &metrics->overloaded_login_wait, /*depth=*/nullptr);
  }

  // Queues `run`. When the queue is full (here, at once) or the task waited too long (on a
  // worker, instead of `run`), `refuse(reason, counter)` answers RESOURCE_EXHAUSTED and counts
  // the refusal in `counter` (by as many requests as `run` served).
  template <typename Refuse>
  void Submit(common::BoundedExecutor::Task run, Refuse refuse) const {
    const bool queued = executor_->TrySubmit(std::move(run), [refuse, waited = waited_]() mutable {
      refuse(kWaitedTooLongReason, *waited);
    });
    if (depth_ != nullptr) depth_->Set(static_cast<double>(executor_->depth()));
    if (!queued) refuse(full_reason_, *full_);
  }

 private:
  AdmissionStage(common::BoundedExecutor* executor, const char* full_reason,
                 prometheus::Counter* full, prometheus::Counter* waited, prometheus::Gauge* depth)
      : executor_(executor),
        full_reason_(full_reason),
        full_(full),
        waited_(waited),
        depth_(depth) {}

  common::BoundedExecutor* executor_;
  const char* full_reason_;
  prometheus::Counter* full_;    // refused: its queue was full
  prometheus::Counter* waited_;  // shed: waited longer than its QueueWaitPolicy allows
  prometheus::Gauge* depth_;     // null: not watched
};

}  // namespace im::logic
