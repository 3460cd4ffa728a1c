#include "logic/webhooks/in_process_webhook_bus.h"

#include "common/logging.h"

namespace im::logic {

absl::Status InProcessWebhookBus::Start(WebhookDelivery* delivery) {
  delivery_ = delivery;
  return absl::OkStatus();
}

void InProcessWebhookBus::Publish(im::v1::WebhookEvent event, HandedOver handed_over) {
  const std::string id = event.id();
  const std::string type = event.type();
  std::string payload = event.payload();
  delivery_->Deliver(std::move(event), [this, id, type, payload = std::move(payload)](
                                           WebhookDelivery::Result result) {
    if (result.outcome == WebhookDelivery::Outcome::kDelivered) return;
    if (result.outcome == WebhookDelivery::Outcome::kAbandoned) {
      metrics_->WebhookEvents(type, "dropped").Increment();
    }
    IM_LOG_RATE_LIMITED(
        spdlog::level::err, "webhook {} {} {} after {} attempts ({}): {}", type, id,
        result.outcome == WebhookDelivery::Outcome::kGaveUp ? "given up" : "dropped",
        result.attempts, result.last_error, payload);
  });
  if (handed_over) handed_over();
}

}  // namespace im::logic
