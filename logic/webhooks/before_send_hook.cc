#include "logic/webhooks/before_send_hook.h"

#include "absl/strings/escaping.h"
#include "common/logging.h"
#include "fmt/format.h"
#include "logic/webhooks/webhook_payloads.h"
#include "nlohmann/json.hpp"

namespace im::logic {
namespace {

// A send refused because the app's check did not answer is worth sending again soon.
constexpr uint32_t kRetryAfterFailureMs = 1'000;

using Verdict = BeforeSendHook::Verdict;

// The string at `key`, `fallback` when absent, nullopt when it is no string.
std::optional<std::string> StringField(const nlohmann::json& answer, const char* key,
                                       const char* fallback) {
  const auto found = answer.find(key);
  if (found == answer.end()) return fallback;
  if (!found->is_string()) return std::nullopt;
  return found->get<std::string>();
}

std::optional<Verdict> Refusal(const nlohmann::json& answer, std::string* problem) {
  Verdict verdict;
  verdict.kind = Verdict::Kind::kRefuse;
  const std::optional<std::string> code_name = StringField(answer, "code", "PERMISSION_DENIED");
  const std::optional<std::string> message = StringField(answer, "message", "refused by the app");
  if (!code_name || !message) {
    *problem = "a refuse whose code or message is no string";
    return std::nullopt;
  }
  if (!im::v1::Code_Parse(*code_name, &verdict.code) || verdict.code == im::v1::OK) {
    *problem = fmt::format("code '{}' is no refusal code", *code_name);
    return std::nullopt;
  }
  verdict.reason = *message;
  return verdict;
}

std::optional<Verdict> Replacement(const nlohmann::json& answer, std::string* problem) {
  Verdict verdict;
  verdict.kind = Verdict::Kind::kReplace;
  const std::optional<std::string> text = StringField(answer, "body", "");
  const std::optional<std::string> base64 = StringField(answer, "body_base64", "");
  if (text && answer.contains("body")) {
    verdict.body = *text;
  } else if (!base64 || !answer.contains("body_base64") ||
             !absl::Base64Unescape(*base64, &verdict.body)) {
    *problem = "a replace without a string body or a base64 body_base64";
    return std::nullopt;
  }
  return verdict;
}

}  // namespace

BeforeSendHook::BeforeSendHook(const WebhookOptions::BeforeSend& options, WebhookSigner signer,
                               common::HttpClient* http, LogicMetrics* metrics,
                               common::MillisClock unix_ms, common::MillisClock steady_ms)
    : options_(options),
      signer_(std::move(signer)),
      http_(http),
      metrics_(metrics),
      unix_ms_(std::move(unix_ms)),
      breaker_(options.breaker_failures, options.breaker_open_ms, std::move(steady_ms)) {}

void BeforeSendHook::Check(const im::v1::Caller& caller, const im::v1::SendReq& send, Done done) {
  if (in_flight_.fetch_add(1) >= options_.max_in_flight) {
    in_flight_.fetch_sub(1);
    return std::move(done)(Failed("too many checks are waiting", "failed"));
  }
  if (!breaker_.Allow()) {
    in_flight_.fetch_sub(1);
    return std::move(done)(Failed("its breaker is open", "breaker"));
  }
  const int64_t now_ms = unix_ms_();
  im::v1::WebhookEvent event = BeforeSendEvent(caller, send, now_ms);
  common::HttpRequest request;
  request.url = options_.url;
  request.timeout = std::chrono::milliseconds(options_.timeout_ms);
  request.headers = signer_.Sign(event.id(), now_ms / 1000, event.payload());
  request.body = std::move(*event.mutable_payload());
  http_->Post(std::move(request), std::chrono::milliseconds(0),
              [this, done = std::move(done)](common::HttpResponse response) mutable {
                in_flight_.fetch_sub(1);
                OnAnswer(response, std::move(done));
              });
}

void BeforeSendHook::OnAnswer(const common::HttpResponse& response, Done done) {
  std::string problem;
  std::optional<Verdict> verdict = ParseAnswer(response, &problem);
  if (!verdict) {
    breaker_.Failed();
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "before-send check at {}: {}", options_.url, problem);
    return std::move(done)(Failed(problem, "failed"));
  }
  breaker_.Succeeded();
  static constexpr const char* kCounted[] = {"allow", "refuse", "replace"};
  metrics_->before_send.Add({{"verdict", kCounted[static_cast<int>(verdict->kind)]}}).Increment();
  std::move(done)(std::move(*verdict));
}

std::optional<Verdict> BeforeSendHook::ParseAnswer(const common::HttpResponse& response,
                                                   std::string* problem) {
  if (response.status != 200) {
    *problem = response.status == 0 ? response.error : fmt::format("HTTP {}", response.status);
    return std::nullopt;
  }
  const nlohmann::json answer = nlohmann::json::parse(response.body, nullptr, false);
  if (!answer.is_object() || !answer.contains("action") || !answer["action"].is_string()) {
    *problem = "the answer is not a JSON object with an action";
    return std::nullopt;
  }
  const std::string action = answer["action"].get<std::string>();
  if (action == "allow") return Verdict{};
  if (action == "refuse") return Refusal(answer, problem);
  if (action == "replace") return Replacement(answer, problem);
  *problem = fmt::format("unknown action '{}'", action);
  return std::nullopt;
}

Verdict BeforeSendHook::Failed(const std::string& why, const char* counted_as) {
  const bool allow = options_.on_failure == WebhookOptions::OnFailure::kAllow;
  metrics_->before_send
      .Add({{"verdict", fmt::format("{}_{}", counted_as, allow ? "allow" : "refuse")}})
      .Increment();
  if (allow) return Verdict{};
  Verdict refused;
  refused.kind = Verdict::Kind::kRefuse;
  refused.code = im::v1::UNAVAILABLE;
  refused.reason = fmt::format("the app's before-send check did not answer ({})", why);
  refused.retry_after_ms = kRetryAfterFailureMs;
  return refused;
}

}  // namespace im::logic
