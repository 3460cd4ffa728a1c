#pragma once

#include <bitset>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"

namespace im::logic {

// Remembers, per conversation, which seqs this node has handed to delivery lately, so that a
// record that reaches delivery again is pushed once: a Kafka batch redelivered after a rebalance
// or a failed commit, a record pushed directly while Kafka was slow and then consumed as well, a
// retried group send published twice. The at-least-once bus so becomes exactly-once per node.
//
// Per conversation it keeps the highest seq seen and which of the kWindow seqs up to it were
// seen; a seq further below is taken as seen (a record that late is a redelivery; were it not,
// the device would find the gap and Sync it). At most `max_conversations` are remembered, the
// least recently used forgotten first: a forgotten conversation's next records all count as new.
// Thread-safe.
class RecentSeqs {
 public:
  static constexpr uint64_t kWindow = 512;

  explicit RecentSeqs(size_t max_conversations);

  // True the first time (conv, seq) is offered, false after that.
  bool FirstTime(const std::string& conv, uint64_t seq);

  size_t conversations() const;

 private:
  struct Window {
    std::string conv;
    uint64_t highest = 0;
    std::bitset<kWindow> seen;  // bit seq % kWindow, for seqs in (highest - kWindow, highest]
  };
  using Recency = std::list<Window>;  // most recently used first

  static bool Offer(Window& window, uint64_t seq);

  const size_t max_conversations_;
  mutable std::mutex mutex_;
  Recency recency_ ABSL_GUARDED_BY(mutex_);
  std::unordered_map<std::string, Recency::iterator> by_conv_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace im::logic
