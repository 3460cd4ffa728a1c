#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace im::common {

// Hands on what one thread produces in a burst (a writer answering a batch's messages one by
// one) once, at the burst's end, instead of waking a consumer per item. A stage that would wake
// its consumer asks Defer to do it when the innermost BurstScope open on this thread closes; each
// key's wake-up runs once per scope. Scopes are per thread and nest.
class BurstScope {
 public:
  BurstScope() : outer_(current_) { current_ = this; }
  ~BurstScope() {
    current_ = outer_;
    for (auto& [key, wake] : deferred_) wake();
  }
  BurstScope(const BurstScope&) = delete;
  BurstScope& operator=(const BurstScope&) = delete;

  // True when a scope is open on this thread and will run `wake` (once for `key`) as it closes;
  // false when none is: the caller wakes its consumer itself, now.
  static bool Defer(const void* key, std::function<void()> wake) {
    if (current_ == nullptr) return false;
    for (const auto& deferred : current_->deferred_) {
      if (deferred.first == key) return true;
    }
    current_->deferred_.emplace_back(key, std::move(wake));
    return true;
  }

 private:
  static inline thread_local BurstScope* current_ = nullptr;
  BurstScope* const outer_;
  std::vector<std::pair<const void*, std::function<void()>>> deferred_;
};

}  // namespace im::common
