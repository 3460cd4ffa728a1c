#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace im::logic {

// What an app server hears from the cluster (docs/callbacks.md): one endpoint per event, each off
// until given a URL. Every request is signed with `secret` the Standard Webhooks way.
struct WebhookOptions {
  struct Endpoint {
    std::string url;  // http:// or https://; empty: the event is not sent
    uint32_t timeout_ms = 2'000;
    bool enabled() const { return !url.empty(); }
  };
  // What a send gets when the before-send endpoint does not answer usably in time, or its
  // breaker is open.
  enum class OnFailure { kAllow, kRefuse };
  struct BeforeSend : Endpoint {
    OnFailure on_failure = OnFailure::kAllow;
    // This many failures in a row open the breaker: for breaker_open_ms every send gets the
    // failure mode at once, then one send tries the endpoint again.
    uint32_t breaker_failures = 5;
    uint32_t breaker_open_ms = 10'000;
    // Checks waiting for an answer at once; more are answered with the failure mode.
    uint32_t max_in_flight = 2'000;
  };

  // "whsec_" + base64 of the key (24 to 64 bytes); required once any endpoint is set.
  std::string secret;
  BeforeSend before_send;
  Endpoint after_send;
  Endpoint offline_message;  // a message for a user with no online device (offline push)
  Endpoint user_online;
  Endpoint user_offline;
  Endpoint group_events;  // created, member joined/left/removed, role changed, dismissed

  // The asynchronous events: attempts per event, then a dead letter; between attempts an
  // exponential backoff from backoff_base_ms to backoff_max_ms, each wait jittered by +-50%.
  uint32_t max_attempts = 8;
  // Attempts a Kafka dispatcher makes while it holds the event's batch. An event still failing
  // then is set aside on the retry topic, so that one endpoint's outage does not hold the other
  // events (docs/callbacks.md, Delivery).
  uint32_t hold_attempts = 2;
  uint32_t backoff_base_ms = 500;
  uint32_t backoff_max_ms = 30'000;
  uint32_t concurrency = 256;  // requests in flight from one node
  // Events a node holds undelivered (retries waiting included) before it refuses more: new ones
  // are then dropped and counted in the embedded node; in a cluster they wait in Kafka.
  uint32_t queue = 100'000;
  uint32_t batch_max = 500;  // events a dispatcher takes from Kafka at once
  std::string consumer_group = "im-webhooks";
  // How long Kafka keeps events and dead letters (the topics' retention.ms): an app server down
  // longer than this loses the oldest undelivered events.
  uint32_t retention_ms = 7 * 86'400'000;
  std::string ca_file;  // TLS roots for https endpoints; empty: the system's

  bool AnyAsyncEnabled() const {
    return after_send.enabled() || offline_message.enabled() || user_online.enabled() ||
           user_offline.enabled() || group_events.enabled();
  }
  bool AnyEnabled() const { return before_send.enabled() || AnyAsyncEnabled(); }
  // The endpoint of an asynchronous event type ("message.after_send", "group.created", ...); null
  // for a type with none.
  const Endpoint* EndpointOf(std::string_view event_type) const;
  // The longest a dispatcher may spend on one event, every attempt and wait included: Kafka's
  // max.poll.interval.ms must exceed it.
  uint64_t WorstCaseDeliveryMs() const;

  // Reads the "webhooks." keys; INVALID_ARGUMENT for a bad URL, secret, mode or limit.
  static absl::StatusOr<WebhookOptions> FromConfig(common::Config& config);
};

}  // namespace im::logic
