#include "logic/webhooks/webhook_delivery.h"

#include <algorithm>
#include <random>

#include "common/logging.h"
#include "fmt/format.h"

namespace im::logic {
namespace {

double JitterFactor() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.5, 1.5)(generator);
}

std::string FailureOf(const common::HttpResponse& response) {
  if (response.status != 0) return fmt::format("HTTP {}", response.status);
  return response.error;
}

}  // namespace

struct WebhookDelivery::InFlight {
  im::v1::WebhookEvent event;
  const WebhookOptions::Endpoint* endpoint;
  Done done;
  uint32_t attempts = 0;    // made so far, before this call's too
  uint32_t stop_after = 0;  // attempts: this call's share ends there
};

WebhookDelivery::WebhookDelivery(const WebhookOptions& options, WebhookSigner signer,
                                 common::HttpClient* http, LogicMetrics* metrics,
                                 common::MillisClock unix_ms)
    : options_(options),
      signer_(std::move(signer)),
      http_(http),
      metrics_(metrics),
      unix_ms_(std::move(unix_ms)) {}

int64_t WebhookDelivery::BackoffMs(uint32_t attempt) const {
  uint64_t wait = options_.backoff_base_ms;
  for (uint32_t i = 2; i < attempt && wait < options_.backoff_max_ms; ++i) wait *= 2;
  wait = std::min<uint64_t>(wait, options_.backoff_max_ms);
  return static_cast<int64_t>(static_cast<double>(wait) * JitterFactor());
}

void WebhookDelivery::Deliver(im::v1::WebhookEvent event, Done done) {
  Deliver(std::move(event), std::move(done), Share{});
}

void WebhookDelivery::Deliver(im::v1::WebhookEvent event, Done done, Share share) {
  const WebhookOptions::Endpoint* endpoint = options_.EndpointOf(event.type());
  if (endpoint == nullptr || !endpoint->enabled()) {
    // Published while an endpoint was configured, read after it was taken away.
    metrics_->WebhookEvents(event.type(), "skipped").Increment();
    return std::move(done)(Result{Outcome::kDelivered, 0, "", "no endpoint for this event"});
  }
  const uint32_t made = event.attempts();
  const uint32_t stop_after =
      static_cast<uint32_t>(std::min<uint64_t>(uint64_t{made} + share.attempts, UINT32_MAX));
  auto flight = std::make_shared<InFlight>(
      InFlight{std::move(event), endpoint, std::move(done), made, stop_after});
  Attempt(std::move(flight), share.first_delay_ms);
}

void WebhookDelivery::Attempt(std::shared_ptr<InFlight> flight, int64_t delay_ms) {
  ++flight->attempts;
  common::HttpRequest request;
  request.url = flight->endpoint->url;
  request.timeout = std::chrono::milliseconds(flight->endpoint->timeout_ms);
  request.body = flight->event.payload();
  // Signed for the moment it leaves (the receiver checks the timestamp's age).
  request.headers =
      signer_.Sign(flight->event.id(), (unix_ms_() + delay_ms) / 1000, flight->event.payload());
  http_->Post(std::move(request), std::chrono::milliseconds(delay_ms),
              [this, flight](common::HttpResponse response) mutable {
                OnAnswer(std::move(flight), std::move(response));
              });
}

void WebhookDelivery::OnAnswer(std::shared_ptr<InFlight> flight, common::HttpResponse response) {
  const std::string& type = flight->event.type();
  if (response.status >= 200 && response.status < 300) {
    metrics_->WebhookEvents(type, "delivered").Increment();
    return std::move(flight->done)(
        Result{Outcome::kDelivered, flight->attempts, flight->endpoint->url, ""});
  }
  std::string failure = FailureOf(response);
  // The client refuses more work only when stopping or full: the bus keeps the event (Kafka) or
  // counts it dropped (in process); burning its attempts on a full queue would help nobody.
  if (response.status == 0 &&
      (response.error == "client stopped" || response.error == "queue full")) {
    return std::move(flight->done)(
        Result{Outcome::kAbandoned, flight->attempts, flight->endpoint->url, std::move(failure)});
  }
  if (flight->attempts >= options_.max_attempts) {
    metrics_->WebhookEvents(type, "dead").Increment();
    return std::move(flight->done)(
        Result{Outcome::kGaveUp, flight->attempts, flight->endpoint->url, std::move(failure)});
  }
  metrics_->WebhookEvents(type, "retried").Increment();
  if (flight->attempts >= flight->stop_after) {
    return std::move(flight->done)(
        Result{Outcome::kDeferred, flight->attempts, flight->endpoint->url, std::move(failure)});
  }
  const int64_t wait_ms = BackoffMs(flight->attempts + 1);
  IM_LOG_RATE_LIMITED(
      spdlog::level::warn, "webhook {} {} to {}: attempt {} failed ({}); next in {} ms", type,
      flight->event.id(), flight->endpoint->url, flight->attempts, failure, wait_ms);
  Attempt(std::move(flight), wait_ms);
}

}  // namespace im::logic
