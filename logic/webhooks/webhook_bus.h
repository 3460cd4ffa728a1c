#pragma once

#include <chrono>
#include <functional>

#include "absl/status/status.h"
#include "im/v1/logic.pb.h"
#include "logic/webhooks/webhook_delivery.h"

namespace im::logic {

// Carries asynchronous webhook events from where they happen to a node's WebhookDelivery: on
// Kafka in a cluster (durable: a node's death or an app server down for minutes loses none), in
// process in the embedded node.
class WebhookBus {
 public:
  // Runs once, when the event is safe from this node's death (on Kafka), or handed to this node's
  // delivery when it cannot be made so. Must not block.
  using HandedOver = std::function<void()>;

  virtual ~WebhookBus() = default;
  // Starts delivering what is published to `delivery` (which outlives the bus).
  virtual absl::Status Start(WebhookDelivery* delivery) = 0;
  // Thread-safe; never blocks.
  virtual void Publish(im::v1::WebhookEvent event, HandedOver handed_over) = 0;
  // Stops taking events for delivery: a cluster's events not delivered yet stay on Kafka for the
  // other nodes. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace im::logic
