#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "im/v1/logic.pb.h"
#include "logic/logic_metrics.h"
#include "logic/webhooks/circuit_breaker.h"
#include "logic/webhooks/webhook_options.h"
#include "logic/webhooks/webhook_signer.h"

namespace im::logic {

// The app's say on a send before it is stored (webhooks.before_send, docs/callbacks.md): a signed
// POST of the send; the app answers {"action":"allow"}, {"action":"refuse","code":<Code name>,
// "message":...} or {"action":"replace","body"|"body_base64":...}. An endpoint that does not
// answer so within its timeout gets the configured failure mode (allow, or refuse UNAVAILABLE),
// and after breaker_failures such answers in a row the breaker gives that mode at once.
class BeforeSendHook {
 public:
  struct Verdict {
    enum class Kind { kAllow, kRefuse, kReplace };
    Kind kind = Kind::kAllow;
    im::v1::Code code = im::v1::OK;  // kRefuse
    std::string reason;              // kRefuse
    uint32_t retry_after_ms = 0;     // kRefuse when the app did not answer
    std::string body;                // kReplace
  };
  using Done = absl::AnyInvocable<void(Verdict) &&>;

  // `http` outlives this object.
  BeforeSendHook(const WebhookOptions::BeforeSend& options, WebhookSigner signer,
                 common::HttpClient* http, LogicMetrics* metrics, common::MillisClock unix_ms,
                 common::MillisClock steady_ms);

  // Asks about `send` by `caller`; `done` runs once, on the HTTP client's thread, or inside
  // Check when the breaker is open or too many checks are waiting.
  void Check(const im::v1::Caller& caller, const im::v1::SendReq& send, Done done);

  // The verdict an answer carries; nullopt when the answer is no usable verdict (a status other
  // than 200, JSON that is not one of the three forms, an unknown code, bad base64).
  static std::optional<Verdict> ParseAnswer(const common::HttpResponse& response,
                                            std::string* problem);

 private:
  Verdict Failed(const std::string& why, const char* counted_as);
  void OnAnswer(const common::HttpResponse& response, Done done);

  const WebhookOptions::BeforeSend& options_;
  const WebhookSigner signer_;
  common::HttpClient* http_;
  LogicMetrics* metrics_;
  const common::MillisClock unix_ms_;
  CircuitBreaker breaker_;
  std::atomic<uint32_t> in_flight_{0};
};

}  // namespace im::logic
