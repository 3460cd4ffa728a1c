#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/loop_task_queue.h"
#include "common/queue_wait_policy.h"
#include "store/member_list_cache.h"
#include "store/redis_async_client.h"
#include "store/redis_options.h"
#include "store/send_ledger.h"
#include "store/session_registry.h"
#include "store/ttl_map.h"

namespace im::logic {

// The stores a LogicLoop works with, all on its one asynchronous Redis client.
struct LoopStores {
  std::unique_ptr<store::AsyncSendLedger> ledger;         // a batch's claims and seqs
  std::unique_ptr<store::AsyncTtlMap> dedup;              // stored sends' answers, for retries
  std::unique_ptr<store::AsyncSessionRegistry> sessions;  // recipients, logins
  // The member lists' version tokens of a batch's groups; null: group sends are not taken on
  // the loop.
  std::unique_ptr<store::AsyncMemberListVersions> versions;
};

// One event loop thread of a logic node, where single-chat send batches take their claims and
// seqs (DESIGN.md section 5), and persisted single-chat messages are delivered, without a thread
// blocked per round trip: it owns the loop's asynchronous Redis client and the stores on it.
// Other threads hand it work with Post(); everything posted, and every Redis reply, runs on the
// loop's thread, in order.
class LogicLoop {
 public:
  using MakeStores = std::function<LoopStores(store::RedisAsyncClient*)>;

  // When RedisBehind() says so: `max_redis_pending` commands unanswered, or the oldest of them
  // unanswered for `max_redis_wait` (zero: no time bound).
  struct RedisLimits {
    size_t max_pending;
    std::chrono::milliseconds max_wait;
  };
  // `queue_wait`: how long work posted with a shed path may wait for the loop (QueueWaitPolicy),
  // and where those waits are reported.
  LogicLoop(std::string name, store::RedisOptions redis, MakeStores make_stores,
            size_t queue_capacity, RedisLimits redis_limits, common::QueueWait queue_wait = {});
  // Stop().
  ~LogicLoop();
  LogicLoop(const LogicLoop&) = delete;
  LogicLoop& operator=(const LogicLoop&) = delete;

  // Starts the thread and connecting to Redis; returns once Post() may be called.
  void Start();
  // Any thread. False when the queue is full or the loop stopped: the task is destroyed
  // without running, and the caller answers RESOURCE_EXHAUSTED.
  bool Post(common::LoopTaskQueue::Task task);
  // Like Post, but when the task waited for the loop longer than the queue-wait policy allows,
  // `shed` runs instead of `run` (on the loop: answer a refusal). The loop's queue is drained a
  // whole batch at a time, so a send batch posted behind thousands of others would otherwise be
  // served seconds late, after its gateway gave up.
  bool PostSheddable(common::LoopTaskQueue::Task run, common::LoopTaskQueue::Task shed);
  // The loop's thread only.
  store::AsyncSendLedger* ledger() { return stores_.ledger.get(); }
  store::AsyncTtlMap* dedup() { return stores_.dedup.get(); }
  store::AsyncSessionRegistry* sessions() { return stores_.sessions.get(); }
  store::AsyncMemberListVersions* versions() { return stores_.versions.get(); }
  // Whether Redis is behind (RedisLimits): new work that would add to its backlog (send batches)
  // is refused rather than queued behind it. The time bound keeps the backlog well inside
  // redis.timeout_ms, past which the connection is dropped and everything pending on it fails
  // (deliveries too, whose pushes are then lost to their recipients until they sync).
  bool RedisBehind() const {
    return redis_->pending() >= redis_limits_.max_pending ||
           (redis_limits_.max_wait.count() > 0 &&
            redis_->oldest_pending_age() >= redis_limits_.max_wait);
  }
  // Any thread: RedisBehind() as the loop saw it at most kBehindWatchMs ago. Lets a caller refuse
  // at once work that would otherwise wait its turn in the queue only to be refused then.
  bool RedisBehindLately() const { return redis_behind_lately_.load(std::memory_order_relaxed); }
  static constexpr uint64_t kBehindWatchMs = 10;
  // Any thread, once started: whether the caller runs on the loop.
  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_; }
  size_t depth() const { return queue_ ? queue_->depth() : 0; }

  // Runs what was posted, waits for the Redis commands still pending to be answered (or to time
  // out, after redis.timeout), closes the loop and joins its thread. Idempotent.
  void Stop();

 private:
  void Run(std::promise<void>* started);
  // On the loop: closes the queue and the stop handle, then the Redis client once nothing is
  // pending on it; the loop then ends.
  void Close();

  const std::string name_;
  const store::RedisOptions redis_options_;
  MakeStores make_stores_;
  const size_t queue_capacity_;
  const RedisLimits redis_limits_;
  common::QueueWaitPolicy queue_wait_;  // the loop's thread only
  std::function<void(double seconds)> observe_wait_;
  uv_loop_t loop_;
  uv_async_t stop_;
  uv_timer_t drain_;         // while stopping: waits for Redis's last replies
  uv_timer_t behind_watch_;  // updates redis_behind_lately_ every kBehindWatchMs
  std::atomic<bool> redis_behind_lately_{false};
  std::unique_ptr<common::LoopTaskQueue> queue_;
  std::unique_ptr<store::RedisAsyncClient> redis_;
  LoopStores stores_;
  std::thread thread_;
  std::thread::id thread_id_;  // set before Start() returns
};

}  // namespace im::logic
