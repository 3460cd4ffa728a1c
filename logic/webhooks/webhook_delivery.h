#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "im/v1/logic.pb.h"
#include "logic/logic_metrics.h"
#include "logic/webhooks/webhook_options.h"
#include "logic/webhooks/webhook_signer.h"

namespace im::logic {

// Sends asynchronous webhook events to their endpoints: signed, retried on anything but a 2xx
// answer with an exponential backoff and jitter, given up on after webhooks.max_attempts. The
// buses (WebhookBus) decide what a given-up event becomes (a dead letter) and when an event
// counts as done for their source (a Kafka offset).
class WebhookDelivery {
 public:
  enum class Outcome {
    kDelivered,  // answered 2xx (or its type has no endpoint any more: nothing to send)
    kGaveUp,     // max_attempts failed
    kDeferred,   // the attempts of this Share failed, with attempts left: for the caller to retry
    kAbandoned,  // the node is stopping, or holds too many: neither delivered nor given up
  };
  struct Result {
    Outcome outcome = Outcome::kDelivered;
    uint32_t attempts = 0;
    std::string url;
    std::string last_error;  // "HTTP 500", or the transport's error
  };
  using Done = absl::AnyInvocable<void(Result) &&>;
  // What one Deliver call may spend of the event's max_attempts: up to `attempts` more (counting
  // on from event.attempts(), those made before), the first after `first_delay_ms`.
  struct Share {
    uint32_t attempts = UINT32_MAX;  // all that are left
    int64_t first_delay_ms = 0;
  };

  // `http` outlives this object; `unix_ms` stamps the requests (webhook-timestamp).
  WebhookDelivery(const WebhookOptions& options, WebhookSigner signer, common::HttpClient* http,
                  LogicMetrics* metrics, common::MillisClock unix_ms);

  // Sends `event` until delivered, given up, or (with a Share) deferred; `done` runs once, on the
  // HTTP client's thread (or inside Deliver when there is nothing to send or the client refuses
  // it).
  void Deliver(im::v1::WebhookEvent event, Done done, Share share);
  void Deliver(im::v1::WebhookEvent event, Done done);  // every attempt left
  // The wait before attempt `attempt` (2, 3, ...): backoff_base_ms doubling up to backoff_max_ms,
  // times a random factor in [0.5, 1.5).
  int64_t BackoffMs(uint32_t attempt) const;

 private:
  struct InFlight;
  void Attempt(std::shared_ptr<InFlight> flight, int64_t delay_ms);
  void OnAnswer(std::shared_ptr<InFlight> flight, common::HttpResponse response);

  const WebhookOptions& options_;
  const WebhookSigner signer_;
  common::HttpClient* http_;
  LogicMetrics* metrics_;
  const common::MillisClock unix_ms_;
};

}  // namespace im::logic
