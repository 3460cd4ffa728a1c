#pragma once

#include <uv.h>

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/loop_task_queue.h"
#include "store/redis_async_client.h"
#include "store/redis_options.h"
#include "store/send_ledger.h"

namespace im::logic {

// One event loop thread of a logic node, where single-chat send batches take their claims and
// seqs (DESIGN.md section 5) without a thread blocked per round trip: it owns the loop's
// asynchronous Redis client and the send ledger on it. Other threads hand it work with Post();
// everything posted, and every Redis reply, runs on the loop's thread, in order.
class LogicLoop {
 public:
  using MakeLedger =
      std::function<std::unique_ptr<store::AsyncSendLedger>(store::RedisAsyncClient*)>;

  LogicLoop(std::string name, store::RedisOptions redis, MakeLedger make_ledger,
            size_t queue_capacity);
  // Stop().
  ~LogicLoop();
  LogicLoop(const LogicLoop&) = delete;
  LogicLoop& operator=(const LogicLoop&) = delete;

  // Starts the thread and connecting to Redis; returns once Post() may be called.
  void Start();
  // Any thread. False when the queue is full or the loop stopped: the task is destroyed
  // without running, and the caller answers RESOURCE_EXHAUSTED.
  bool Post(common::LoopTaskQueue::Task task);
  // The loop's thread only.
  store::AsyncSendLedger* ledger() { return ledger_.get(); }
  size_t depth() const { return queue_ ? queue_->depth() : 0; }

  // Runs what was posted, fails the Redis commands still pending (UNAVAILABLE: their callers
  // answer), closes the loop and joins its thread. Idempotent.
  void Stop();

 private:
  void Run(std::promise<void>* started);
  // On the loop: closes the queue, the Redis client and the stop handle; the loop then ends.
  void Close();

  const std::string name_;
  const store::RedisOptions redis_options_;
  MakeLedger make_ledger_;
  const size_t queue_capacity_;
  uv_loop_t loop_;
  uv_async_t stop_;
  std::unique_ptr<common::LoopTaskQueue> queue_;
  std::unique_ptr<store::RedisAsyncClient> redis_;
  std::unique_ptr<store::AsyncSendLedger> ledger_;
  std::thread thread_;
};

}  // namespace im::logic
