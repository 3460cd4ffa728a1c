#include "sdk/conversation_stream.h"

#include <algorithm>
#include <utility>

namespace im::sdk {

std::vector<Message> ConversationStream::Add(std::vector<Message> messages) {
  for (Message& message : messages) {
    if (message.seq <= delivered_) continue;
    held_.try_emplace(message.seq, std::move(message));
  }
  return Drain();
}

std::vector<Message> ConversationStream::AddHole(uint64_t first, uint64_t last) {
  if (last < first || last <= delivered_) return {};
  first = std::max(first, delivered_ + 1);
  uint64_t& known_last = holes_[first];
  known_last = std::max(known_last, last);
  return Drain();
}

uint64_t ConversationStream::highest_seen() const {
  return held_.empty() ? delivered_ : std::max(delivered_, held_.rbegin()->first);
}

std::vector<Message> ConversationStream::Drain() {
  std::vector<Message> ready;
  while (true) {
    // A hole starting at or below the next seq moves the cursor past it.
    auto hole = holes_.begin();
    if (hole != holes_.end() && hole->first <= delivered_ + 1) {
      delivered_ = std::max(delivered_, hole->second);
      holes_.erase(hole);
      continue;
    }
    auto next = held_.begin();
    if (next == held_.end() || next->first > delivered_ + 1) break;
    if (next->first == delivered_ + 1) {
      delivered_ = next->first;
      ready.push_back(std::move(next->second));
    }
    held_.erase(next);  // at or below the cursor: a message inside a hole, or a repeat
  }
  return ready;
}

}  // namespace im::sdk
