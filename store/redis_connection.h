#pragma once

#include <hiredis/hiredis.h>

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
};

// One blocking hiredis connection, shared by the Redis backends. Thread-safe: calls are serialized
// by a mutex (atomic multi-step operations are Lua scripts). After an I/O error the connection is
// dropped and re-established by the next call; the failed call returns UNAVAILABLE. Calls block,
// so they run on the logic tier's store executor, never on an event loop.
class RedisConnection {
 public:
  struct ReplyDeleter {
    void operator()(redisReply* reply) const { freeReplyObject(reply); }
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
  using Args = std::vector<std::string>;

  explicit RedisConnection(RedisOptions options) : options_(std::move(options)) {}
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
  absl::Status EnsureConnected();            // requires mutex_
  absl::Status Fail(std::string_view what);  // requires mutex_

  const RedisOptions options_;
  std::mutex mutex_;
  redisContext* context_ = nullptr;
};

}  // namespace im::store
