#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "im/v1/logic.pb.h"

namespace im::logic {

// Which stream a group message travels on: messages of huge groups have their own, so that
// expanding ten thousand members never holds up a group of five.
enum class FanoutLane { kSmall, kLarge };

// Carries persisted group messages from the node that stored them to the nodes that push them
// (DESIGN.md section 6). Records with the same conv_id reach `deliver` in publish order (from one
// publisher). Delivery is at least once: a record may be delivered again after a node dies, and
// devices drop the duplicate by (conv_id, seq).
class FanoutBus {
 public:
  // Pushes a batch to the members' devices; returns once the pushes were handed over (or failed:
  // members who miss a push get the message by Sync). Runs on the bus's threads, may block.
  using Deliver = std::function<void(const std::vector<im::v1::FanoutRecord>& batch)>;

  virtual ~FanoutBus() = default;

  // Starts delivering records to `deliver`. Called once, before Publish.
  virtual absl::Status Start(Deliver deliver) = 0;

  // Hands one record over for fan-out and returns without waiting. Thread-safe. `handed_over`
  // runs once (on a bus thread or in Publish) when the record is safe from this node's death: on
  // Kafka, or queued for pushing when Kafka did not take it. A record the bus cannot carry is
  // never dropped silently: it is counted and logged (its members then get it by Sync).
  using HandedOver = std::function<void()>;
  virtual void Publish(const im::v1::FanoutRecord& record, FanoutLane lane,
                       HandedOver handed_over) = 0;

  // Delivers what was published (bounded by the bus's own timeouts), then stops. Idempotent.
  virtual void Stop() = 0;

  // Whether the bus's broker answers within `timeout`, for readiness. Any thread, between Start
  // and Stop; blocks up to `timeout`. An in-process bus has nothing to reach.
  virtual absl::Status CheckReachable(std::chrono::milliseconds /*timeout*/) {
    return absl::OkStatus();
  }
};

}  // namespace im::logic
