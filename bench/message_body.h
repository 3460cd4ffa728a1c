#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "im/v1/client.pb.h"

namespace im::bench {

// What the body of every message im-bench sends starts with: the message's id (see BenchLoop)
// and its scheduled send time (uv_hrtime ns; CLOCK_MONOTONIC is system-wide), both u64 in host
// order, so that a receiver in any loop or process measures latency without a lookup. An edit
// carries the header of the message it edits, so the edited message read back by a sync still
// names itself and its schedule.
struct BodyHeader {
  uint64_t message = 0;
  uint64_t scheduled_ns = 0;
};

inline constexpr size_t kBodyHeaderBytes = 16;

// `header`, then `fill` up to `bytes` (at least kBodyHeaderBytes).
std::string MessageBody(const BodyHeader& header, uint32_t bytes, char fill);
// The header of a body written by MessageBody; nullopt for a shorter body (a recalled message's
// body is deleted).
std::optional<BodyHeader> ReadBodyHeader(std::string_view body);

// RECALL and EDIT change an earlier message; they take a seq of their own like any message.
inline bool IsChange(im::v1::MessageType type) {
  return type == im::v1::RECALL || type == im::v1::EDIT;
}

}  // namespace im::bench
