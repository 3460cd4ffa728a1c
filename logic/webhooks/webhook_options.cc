#include "logic/webhooks/webhook_options.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "logic/webhooks/webhook_signer.h"

namespace im::logic {
namespace {

// The gateway waits 5 s for logic (gateway.logic_timeout_ms): a check must leave the send time
// to be stored after it.
constexpr uint32_t kMaxBeforeSendTimeoutMs = 3'000;
// The dispatcher's consumer may go this long between polls (max.poll.interval.ms) while it
// retries a batch; longer and Kafka hands its partitions to another node.
constexpr uint64_t kMaxDeliveryMs = 540'000;

absl::Status ReadEndpoint(common::Config& config, const std::string& name,
                          WebhookOptions::Endpoint& endpoint, uint32_t max_timeout_ms) {
  const std::string prefix = absl::StrCat("webhooks.", name, ".");
  endpoint.url = config.GetString(prefix + "url", endpoint.url);
  endpoint.timeout_ms =
      config.GetU32(prefix + "timeout_ms", endpoint.timeout_ms, 50, max_timeout_ms);
  if (!endpoint.url.empty() && !absl::StartsWith(endpoint.url, "http://") &&
      !absl::StartsWith(endpoint.url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "url must start with http:// or https://, got '", endpoint.url, "'"));
  }
  return absl::OkStatus();
}

absl::Status ReadBeforeSend(common::Config& config, WebhookOptions::BeforeSend& hook) {
  if (absl::Status status = ReadEndpoint(config, "before_send", hook, kMaxBeforeSendTimeoutMs);
      !status.ok()) {
    return status;
  }
  const std::string mode = config.GetString("webhooks.before_send.on_failure", "allow");
  hook.breaker_failures =
      config.GetU32("webhooks.before_send.breaker_failures", hook.breaker_failures, 1, 10'000);
  hook.breaker_open_ms =
      config.GetU32("webhooks.before_send.breaker_open_ms", hook.breaker_open_ms, 100, 3'600'000);
  hook.max_in_flight =
      config.GetU32("webhooks.before_send.max_in_flight", hook.max_in_flight, 1, 1'000'000);
  if (mode == "allow") {
    hook.on_failure = WebhookOptions::OnFailure::kAllow;
  } else if (mode == "refuse") {
    hook.on_failure = WebhookOptions::OnFailure::kRefuse;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("webhooks.before_send.on_failure must be allow or refuse, got '", mode, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

const WebhookOptions::Endpoint* WebhookOptions::EndpointOf(std::string_view event_type) const {
  if (event_type == "message.after_send") return &after_send;
  if (event_type == "message.offline") return &offline_message;
  if (event_type == "user.online") return &user_online;
  if (event_type == "user.offline") return &user_offline;
  if (event_type.starts_with("group.")) return &group_events;
  return nullptr;
}

uint64_t WebhookOptions::WorstCaseDeliveryMs() const {
  const uint32_t longest_timeout =
      std::max({after_send.timeout_ms, offline_message.timeout_ms, user_online.timeout_ms,
                user_offline.timeout_ms, group_events.timeout_ms});
  uint64_t total = uint64_t{max_attempts} * longest_timeout;
  uint64_t wait = backoff_base_ms;
  for (uint32_t attempt = 1; attempt < max_attempts; ++attempt) {
    total += std::min<uint64_t>(wait, backoff_max_ms) * 3 / 2;  // the jitter's upper end
    wait = std::min<uint64_t>(wait * 2, backoff_max_ms);
  }
  return total;
}

absl::StatusOr<WebhookOptions> WebhookOptions::FromConfig(common::Config& config) {
  WebhookOptions o;
  o.secret = config.GetSecret("webhooks.secret", o.secret);
  const std::pair<const char*, Endpoint*> events[] = {{"after_send", &o.after_send},
                                                      {"offline_message", &o.offline_message},
                                                      {"user_online", &o.user_online},
                                                      {"user_offline", &o.user_offline},
                                                      {"group_events", &o.group_events}};
  for (const auto& [name, endpoint] : events) {
    if (absl::Status status = ReadEndpoint(config, name, *endpoint, 60'000); !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = ReadBeforeSend(config, o.before_send); !status.ok()) return status;
  o.max_attempts = config.GetU32("webhooks.max_attempts", o.max_attempts, 1, 100);
  o.hold_attempts = config.GetU32("webhooks.hold_attempts", o.hold_attempts, 1, 100);
  o.backoff_base_ms = config.GetU32("webhooks.backoff_base_ms", o.backoff_base_ms, 10, 600'000);
  o.backoff_max_ms = config.GetU32("webhooks.backoff_max_ms", o.backoff_max_ms, 10, 600'000);
  o.concurrency = config.GetU32("webhooks.concurrency", o.concurrency, 1, 10'000);
  o.queue = config.GetU32("webhooks.queue", o.queue, 1, 100'000'000);
  o.batch_max = config.GetU32("webhooks.batch_max", o.batch_max, 1, 100'000);
  o.consumer_group = config.GetString("webhooks.consumer_group", o.consumer_group);
  o.ca_file = config.GetString("webhooks.ca_file", o.ca_file);
  o.retention_ms = config.GetU32("webhooks.retention_ms", o.retention_ms, 60'000);
  if (!config.status().ok()) return config.status();
  if (o.AnyEnabled()) {
    if (absl::StatusOr<WebhookSigner> signer = WebhookSigner::FromSecret(o.secret); !signer.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("a webhooks endpoint is set, so webhooks.secret must be a signing secret: ",
                       signer.status().message()));
    }
  }
  if (o.backoff_base_ms > o.backoff_max_ms) {
    return absl::InvalidArgumentError("webhooks.backoff_base_ms must not exceed backoff_max_ms");
  }
  if (o.WorstCaseDeliveryMs() > kMaxDeliveryMs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "webhooks.max_attempts, backoff and endpoint timeouts let one event take up to ",
        o.WorstCaseDeliveryMs() / 1000, " s; at most ", kMaxDeliveryMs / 1000,
        " s (fewer attempts, shorter waits or timeouts)"));
  }
  return o;
}

}  // namespace im::logic
