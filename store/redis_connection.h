#pragma once

#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace im::store {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds timeout{1000};  // connect and per-command
  // Connections each RedisConnection keeps: callers on different threads use different ones
  // instead of queueing on one lock.
  size_t connections = 4;
};

// A few blocking hiredis connections (options.connections), shared by the Redis backends.
// Thread-safe: a call takes a free connection (or waits for one), so threads do not queue on one
// lock; atomic multi-step operations are Lua scripts. After an I/O error that connection is
// dropped and re-established by its next call; the failed call returns UNAVAILABLE. Calls block,
// so they run on the logic tier's store executor, never on an event loop.
class RedisConnection {
 public:
  struct ReplyDeleter {
    void operator()(redisReply* reply) const { freeReplyObject(reply); }
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
  using Args = std::vector<std::string>;

  explicit RedisConnection(RedisOptions options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  absl::StatusOr<Reply> Command(const Args& args);
  // Sends every command, then reads every reply: one round trip. An error reply fails the call
  // (after all replies were read, so the connection stays in step).
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands);

  static std::string_view TextOf(const redisReply* reply) {
    return std::string_view(reply->str, reply->len);
  }

 private:
  struct Slot {
    std::mutex mutex;
    redisContext* context = nullptr;  // guarded by mutex; null until connected
  };
  // A slot, locked: a free one if any, else the next in turn.
  std::unique_lock<std::mutex> Take(Slot** slot);
  absl::Status EnsureConnected(Slot& slot);              // requires slot.mutex
  absl::Status Fail(Slot& slot, std::string_view what);  // requires slot.mutex

  const RedisOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<size_t> next_{0};
};

}  // namespace im::store
