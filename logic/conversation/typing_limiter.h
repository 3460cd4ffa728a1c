#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace im::logic {

// How often one user's "typing" in one conversation is passed on: at most once per interval;
// the rest is dropped (typing is transient, and the client repeats it while the user types).
// Per node: a user whose requests reach two logic nodes may be passed on twice per interval.
// Bounded: past `max_entries` users typing at once, entries older than the interval are dropped,
// and while it stays full new typers are dropped too. Thread-safe.
class TypingLimiter {
 public:
  TypingLimiter(int64_t interval_ms, size_t max_entries);

  // Whether uid's typing in conv_id at now_ms is passed on (and counted as the latest).
  bool Allow(std::string_view uid, std::string_view conv_id, int64_t now_ms);

  size_t size() const;

 private:
  // Requires mutex_. Drops entries older than the interval.
  void Prune(int64_t now_ms);

  const int64_t interval_ms_;
  const size_t max_entries_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, int64_t, std::less<>> last_passed_ms_;
};

}  // namespace im::logic
