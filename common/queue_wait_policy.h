#pragma once

#include <chrono>
#include <functional>

namespace im::common {

// When a queued request has waited too long to be worth serving: controlled delay (CoDel) as
// servers apply it to request queues ("Fail at Scale", Facebook 2015). A queue that empties now
// and then only absorbs bursts, and a request may wait up to `interval` in it. A queue that has
// not been empty for a whole `interval` is standing: the node is behind, every request would wait
// as long, and anything that waited longer than `target` is shed at once, so that the queue drains
// to fresh requests instead of serving callers who are about to give up. Not thread-safe: its
// queue's lock guards it. Times come from the caller (a fake clock in tests).
class QueueWaitPolicy {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::chrono::milliseconds target{0};    // the longest wait in a standing queue
    std::chrono::milliseconds interval{0};  // the longest wait; a queue full this long stands
    bool enabled() const { return interval.count() > 0; }  // a zero interval never sheds
  };

  explicit QueueWaitPolicy(Options options, Clock::time_point now = Clock::now())
      : options_(options), last_empty_(now) {}

  // The queue was found empty (nothing left after a dequeue, or nothing to dequeue).
  void OnEmpty(Clock::time_point now) { last_empty_ = now; }

  // Whether a request dequeued at `now` after waiting since `enqueued` is shed instead of served.
  bool ShouldShed(Clock::time_point enqueued, Clock::time_point now) const {
    if (!options_.enabled()) return false;
    const bool standing = now - last_empty_ >= options_.interval;
    return now - enqueued > (standing ? options_.target : options_.interval);
  }

 private:
  const Options options_;
  Clock::time_point last_empty_;
};

// How a queue sheds by wait and reports it: BoundedExecutor's and LogicLoop's.
struct QueueWait {
  QueueWaitPolicy::Options shed;                // the default never sheds
  std::function<void(double seconds)> observe;  // if set: each dequeued task's wait
};

}  // namespace im::common
