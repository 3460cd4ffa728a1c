#pragma once

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>

#include "store/redis_async_client.h"

namespace im::store::testing {

// Runs `loop` until `done()` or `limit` passed; returns done(). A timer wakes the loop so that
// the limit is checked even when nothing else happens.
inline bool RunLoopUntil(uv_loop_t* loop, const std::function<bool()>& done,
                         std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 10, 10);
  while (!done() && std::chrono::steady_clock::now() < give_up) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return done();
}

// Closes `closable` (a RedisAsyncClient), runs `loop` until it is closed, then closes the loop;
// returns uv_loop_close's result: 0 when no handle was left open.
template <typename Closable>
int CloseThenCloseLoop(uv_loop_t* loop, Closable& closable) {
  bool closed = false;
  closable.Close([&] { closed = true; });
  while (!closed) uv_run(loop, UV_RUN_ONCE);
  uv_run(loop, UV_RUN_NOWAIT);  // handles closed by what closable closed
  return uv_loop_close(loop);
}

// A libuv loop the test runs, with a started RedisAsyncClient on it; at the end the client is
// closed, then the loop, which must have no handle left open.
class AsyncRedisOnLoop {
 public:
  explicit AsyncRedisOnLoop(RedisOptions options) {
    uv_loop_init(&loop_);
    client_ = std::make_unique<RedisAsyncClient>(&loop_, std::move(options));
    client_->Start();
  }
  ~AsyncRedisOnLoop() {
    EXPECT_EQ(CloseThenCloseLoop(&loop_, *client_), 0) << "a handle was left open";
  }
  AsyncRedisOnLoop(const AsyncRedisOnLoop&) = delete;
  AsyncRedisOnLoop& operator=(const AsyncRedisOnLoop&) = delete;

  RedisAsyncClient& client() { return *client_; }
  // RunLoopUntil on this loop.
  bool RunUntil(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    return RunLoopUntil(&loop_, done, limit);
  }

 private:
  uv_loop_t loop_;
  std::unique_ptr<RedisAsyncClient> client_;
};

}  // namespace im::store::testing
