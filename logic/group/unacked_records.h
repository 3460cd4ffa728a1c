#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/group/fanout_bus.h"

namespace im::logic {

// The fan-out records this node handed to Kafka's producer that Kafka has not acknowledged yet,
// and the rule for when the node pushes them itself instead: only when the producer has stalled,
// that is when a record has waited `fallback_after` and no record at all was acknowledged during
// that time. A broker that is slow but acknowledging keeps every record on Kafka, so a healthy
// cluster never pushes a record both directly and through Kafka; a broker that is down or
// unreachable costs a group send at most `fallback_after` plus one check period.
// Thread-safe.
class UnackedRecords {
 public:
  struct Entry {
    im::v1::FanoutRecord record;
    FanoutLane lane = FanoutLane::kSmall;
    FanoutBus::HandedOver handed_over;
    int64_t added_ms = 0;
  };

  // `now_ms`: steady milliseconds (common::SteadyMillis).
  UnackedRecords(std::chrono::milliseconds fallback_after, common::MillisClock now_ms);

  // Keeps `entry` until Take; returns its id (never 0).
  uint64_t Add(Entry entry);
  // Removes and returns the entry of `id`; nullopt when it is gone already (it fell back).
  // `acknowledged`: Kafka took this record, which proves the producer is making progress.
  std::optional<Entry> Take(uint64_t id, bool acknowledged);
  // Removes and returns, oldest first, the entries to push directly now: those that waited
  // `fallback_after` while nothing was acknowledged for as long.
  std::vector<Entry> TakeStalled();
  // Removes and returns every entry, oldest first.
  std::vector<Entry> TakeAll();
  size_t size() const;

 private:
  const int64_t fallback_after_ms_;
  const common::MillisClock now_ms_;
  mutable std::mutex mutex_;
  uint64_t next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  int64_t last_ack_ms_ ABSL_GUARDED_BY(mutex_);
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mutex_);  // by id: oldest first
};

}  // namespace im::logic
