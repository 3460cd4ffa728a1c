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
#include "store/redis_options.h"
#include "store/redis_replies.h"
#include "store/redis_tls_bridge.h"

namespace im::store {

// A few blocking hiredis connections (options.connections), shared by the Redis backends.
// Thread-safe: a call takes a free connection (or waits for one), so threads do not queue on one
// lock; atomic multi-step operations are Lua scripts. After an I/O error that connection is
// dropped and re-established by its next call; the failed call returns UNAVAILABLE, except a
// call on a pooled connection the server had closed before answering (a Redis restart), which is
// sent once more on a fresh connection. Calls block,
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

  // Registers a Lua script and returns its SHA1, for EVALSHA: the text crosses the network once
  // per connection (loaded before the connection's first call after the registration), not
  // with every call, and Redis does not hash it again per call. Any thread. A NOSCRIPT reply (the
  // server's script cache was flushed) fails that call with UNAVAILABLE and reloads the scripts.
  std::string LoadScript(std::string_view text);

  absl::StatusOr<Reply> Command(const Args& args);
  // Sends every command, then reads every reply: one round trip. An error reply fails the call
  // (after all replies were read, so the connection stays in step).
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands);

  static std::string_view TextOf(const redisReply* reply) { return TextOfReply(reply); }

 private:
  struct Slot {
    std::mutex mutex;
    redisContext* context = nullptr;  // guarded by mutex; null until connected
    size_t scripts_loaded = 0;        // guarded by mutex; how many of scripts_ the server has
  };
  // A slot, locked: a free one if any, else the next in turn.
  std::unique_lock<std::mutex> Take(Slot** slot);
  absl::Status EnsureConnected(Slot& slot);              // requires slot.mutex
  absl::Status EnsureScriptsLoaded(Slot& slot);          // requires slot.mutex, connected
  absl::Status Fail(Slot& slot, std::string_view what);  // requires slot.mutex
  // AUTH on a fresh connection, when a password is set; a refusal closes it. Requires slot.mutex.
  absl::Status Authenticate(Slot& slot);
  // Pipeline on `slot` (requires slot.mutex); `closed_before_reply`: it failed because the peer
  // had closed the connection before answering anything.
  absl::StatusOr<std::vector<Reply>> PipelineOn(Slot& slot, const std::vector<Args>& commands,
                                                bool* closed_before_reply);

  const RedisOptions options_;
  // With options_.tls: where connections go (or why they cannot), shared by the process.
  const absl::StatusOr<std::shared_ptr<RedisTlsBridge>> tls_bridge_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex scripts_mutex_;
  std::vector<std::string> scripts_;  // guarded by scripts_mutex_; only grows
  std::atomic<size_t> next_{0};
};

}  // namespace im::store
