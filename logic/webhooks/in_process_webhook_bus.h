#pragma once

#include "logic/webhooks/webhook_bus.h"

namespace im::logic {

// The embedded node's bus: events go straight to this node's delivery. They survive an app server
// that is down (retries) but not this process's end; an event refused because webhooks.queue
// events are held already, or given up after max_attempts, is logged at error level with its
// payload and counted.
class InProcessWebhookBus final : public WebhookBus {
 public:
  explicit InProcessWebhookBus(LogicMetrics* metrics) : metrics_(metrics) {}
  absl::Status Start(WebhookDelivery* delivery) override;
  void Publish(im::v1::WebhookEvent event, HandedOver handed_over) override;
  void Stop() override {}

 private:
  WebhookDelivery* delivery_ = nullptr;
  LogicMetrics* metrics_;
};

}  // namespace im::logic
