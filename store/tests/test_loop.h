#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

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

}  // namespace im::store::testing
