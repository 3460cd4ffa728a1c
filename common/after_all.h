#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

namespace im::common {

// A completion to hand to `count` asynchronous operations: the last of the `count` calls runs
// `then`, on its caller's thread. `count` must be at least 1. Thread-safe; copies share the count.
inline std::function<void()> AfterAll(size_t count, std::function<void()> then) {
  auto left = std::make_shared<std::atomic<size_t>>(count);
  return [left, then = std::move(then)] {
    if (left->fetch_sub(1) == 1) then();
  };
}

}  // namespace im::common
