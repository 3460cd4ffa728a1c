#pragma once

#include <hiredis/async.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "store/redis_options.h"
#include "store/redis_tls_bridge.h"

namespace im::store {

// One pipelined, asynchronous connection to Redis on a libuv loop (hiredis async with its libuv
// adapter), for code that runs on that loop and must not block a thread per round trip.
// Commands issued in one loop iteration leave in one write and their replies come back in order.
// Every method, and every callback, runs on the loop's thread.
// Failures: an error reply fails its command only (StatusOfErrorReply); a broken connection, or
// a command unanswered for `options.timeout` (not counting time the loop was too busy to write
// or read), fails every pending command UNAVAILABLE and the
// client connects again (backoff from 50 ms to 2 s); while it is not connected, commands fail at
// once. Scripts registered with LoadScript are loaded on every connection before any command;
// a NOSCRIPT reply fails that command UNAVAILABLE and loads them again.
class RedisAsyncClient {
 public:
  using Args = std::vector<std::string>;
  // The reply, valid only during the call (hiredis frees it after), or why there is none.
  using Done = absl::AnyInvocable<void(absl::StatusOr<const redisReply*>) &&>;

  RedisAsyncClient(uv_loop_t* loop, RedisOptions options);
  // Fails what is pending (UNAVAILABLE); the loop must still run for the handles to close (Close).
  ~RedisAsyncClient();
  RedisAsyncClient(const RedisAsyncClient&) = delete;
  RedisAsyncClient& operator=(const RedisAsyncClient&) = delete;

  // Starts connecting. Commands issued before the connection is made wait for it.
  void Start();
  // Registers a script; returns its SHA1 for EVALSHA.
  std::string LoadScript(std::string_view text);
  void Command(const Args& args, Done done);
  // Commands that leave together (one write): `each(i, reply)` runs for each reply in order (a
  // reply valid only during the call; an error reply counts as a failure of its command and is
  // not passed on), then `done` once, with OK or the first failure.
  using EachReply = absl::AnyInvocable<void(size_t index, const redisReply* reply)>;
  using AllDone = absl::AnyInvocable<void(absl::Status) &&>;
  void CommandMany(const std::vector<Args>& commands, EachReply each, AllDone done);
  // Fails what is pending, closes the connection and the timers; `on_closed` runs on the loop
  // once every handle is closed (the loop may then be closed).
  void Close(absl::AnyInvocable<void() &&> on_closed);

  bool connected() const { return state_ == State::kConnected; }
  size_t pending() const { return pending_since_.size(); }
  // How long the oldest unanswered command has waited (as the timeout counts it); zero if none.
  std::chrono::steady_clock::duration oldest_pending_age() const;

 private:
  enum class State { kIdle, kConnecting, kConnected, kWaitingToReconnect, kClosed };
  struct Pending;

  void Connect();
  void LoadScriptsOnConnection();
  // AUTH, when a password is set: the first command written on a new connection.
  void AuthenticateOnConnection();
  void Issue(const Args& args, Done done);
  void OnReply(redisReply* reply, Done done);
  // Drops the connection (failing what is pending) and schedules the next attempt.
  void Drop(std::string_view why);
  void ScheduleReconnect();
  std::chrono::milliseconds CheckPeriod() const;
  void CheckTimeouts();

  // hiredis's error, with the TLS bridge's reason when it had one.
  std::string DescribeError(std::string hiredis_error) const;
  static void OnConnected(const redisAsyncContext* context, int status);
  static void OnDisconnected(const redisAsyncContext* context, int status);
  static void OnReplyThunk(redisAsyncContext* context, void* reply, void* privdata);

  uv_loop_t* loop_;
  const RedisOptions options_;
  // With options_.tls: where connections go (or why they cannot), shared by the process.
  const absl::StatusOr<std::shared_ptr<RedisTlsBridge>> tls_bridge_;
  redisAsyncContext* context_ = nullptr;
  State state_ = State::kIdle;
  std::vector<std::string> scripts_;
  // Per command, in order: when it was issued, moved later by the time the loop was too busy to
  // write it or read its reply (see CheckTimeouts).
  std::deque<std::chrono::steady_clock::time_point> pending_since_;
  std::chrono::steady_clock::time_point last_check_;
  std::string last_error_;
  std::chrono::milliseconds backoff_{50};
  uv_timer_t reconnect_timer_;
  uv_timer_t timeout_timer_;
  int open_handles_ = 0;
  absl::AnyInvocable<void() &&> on_closed_;
};

}  // namespace im::store
