#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "sdk/types.h"

namespace im::sdk {

// One conversation's receive side: turns messages that arrive in any order, more than once, from
// pushes, syncs and the device's own sends, into one stream in seq order with every seq once.
// `delivered` is the highest seq handed to the app such that nothing below it is missing (holes
// the server reported count as present). Pure: no I/O, no clock; used on the client's loop.
class ConversationStream {
 public:
  explicit ConversationStream(uint64_t delivered) : delivered_(delivered) {}

  // Takes messages in any order; returns those that became deliverable, in seq order. Messages
  // at or below the cursor (already delivered) are dropped, as are repeats of held ones.
  std::vector<Message> Add(std::vector<Message> messages);
  // Marks [first, last] as never holding a message; returns what that made deliverable.
  std::vector<Message> AddHole(uint64_t first, uint64_t last);

  uint64_t delivered() const { return delivered_; }
  // True while a message above the cursor is held waiting for a lower one.
  bool has_gap() const { return !held_.empty(); }
  // The highest seq seen so far (held or delivered).
  uint64_t highest_seen() const;
  size_t held_count() const { return held_.size(); }

 private:
  std::vector<Message> Drain();

  uint64_t delivered_;
  std::map<uint64_t, Message> held_;
  // Hole ranges above the cursor: first -> last.
  std::map<uint64_t, uint64_t> holes_;
};

}  // namespace im::sdk
