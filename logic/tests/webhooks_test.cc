// The webhooks' parts that need no network: the Standard Webhooks signature (against the value
// the PyPI standardwebhooks library computes for the same input), the options' checks, the
// circuit breaker, the before-send answers, the retry waits and the payloads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "logic/webhooks/before_send_hook.h"
#include "logic/webhooks/circuit_breaker.h"
#include "logic/webhooks/webhook_delivery.h"
#include "logic/webhooks/webhook_options.h"
#include "logic/webhooks/webhook_payloads.h"
#include "logic/webhooks/webhook_signer.h"
#include "nlohmann/json.hpp"
#include "prometheus/registry.h"

namespace im::logic {
namespace {

using ::testing::HasSubstr;

constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw0hKqJ0cD9v0=";

TEST(WebhookSignerTest, SignsAsTheStandardWebhooksLibraryDoes) {
  absl::StatusOr<WebhookSigner> signer = WebhookSigner::FromSecret(kSecret);
  ASSERT_TRUE(signer.ok()) << signer.status();
  // Webhook(kSecret).sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
  // with the PyPI standardwebhooks library.
  const WebhookSigner::Headers headers =
      signer->Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})");
  const std::map<std::string, std::string> by_name(headers.begin(), headers.end());
  EXPECT_EQ(by_name.at("webhook-id"), "msg_p5jXN8AQM9LWM0D4loKWxJek");
  EXPECT_EQ(by_name.at("webhook-timestamp"), "1614265330");
  EXPECT_EQ(by_name.at("webhook-signature"), "v1,JrGHSb3tpFrb7ipU1C83OiOc+pDBb9StonyyPZoBOrc=");
}

TEST(WebhookSignerTest, RefusesSecretsTheLibrariesWouldNotTake) {
  EXPECT_FALSE(WebhookSigner::FromSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw0hKqJ0cD9v0=").ok());
  EXPECT_FALSE(WebhookSigner::FromSecret("whsec_not base64!").ok());
  EXPECT_FALSE(WebhookSigner::FromSecret("whsec_" + absl::Base64Escape("short")).ok());
  EXPECT_TRUE(WebhookSigner::FromSecret("whsec_" + absl::Base64Escape(std::string(24, 'k'))).ok());
}

absl::StatusOr<WebhookOptions> OptionsWith(std::map<std::string, std::string> env) {
  absl::StatusOr<common::Config> config = common::Config::FromYamlString("", std::move(env));
  EXPECT_TRUE(config.ok()) << config.status();
  return WebhookOptions::FromConfig(*config);
}

TEST(WebhookOptionsTest, EverythingIsOffByDefaultAndNeedsNoSecret) {
  absl::StatusOr<WebhookOptions> options = OptionsWith({});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_FALSE(options->AnyEnabled());
}

TEST(WebhookOptionsTest, AnEndpointNeedsAUsableSecret) {
  absl::StatusOr<WebhookOptions> options =
      OptionsWith({{"IM_WEBHOOKS_AFTER_SEND_URL", "http://app/events"}});
  ASSERT_FALSE(options.ok());
  EXPECT_THAT(options.status().message(), HasSubstr("webhooks.secret"));
  options = OptionsWith(
      {{"IM_WEBHOOKS_AFTER_SEND_URL", "http://app/events"}, {"IM_WEBHOOKS_SECRET", kSecret}});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->AnyAsyncEnabled());
  EXPECT_EQ(options->EndpointOf("message.after_send"), &options->after_send);
  EXPECT_EQ(options->EndpointOf("group.member_joined"), &options->group_events);
  EXPECT_EQ(options->EndpointOf("message.before_send"), nullptr);
}

TEST(WebhookOptionsTest, RefusesBadUrlsModesAndRetriesThatOutlastAKafkaBatch) {
  const std::map<std::string, std::string> base = {{"IM_WEBHOOKS_SECRET", kSecret}};
  auto with = [&](std::map<std::string, std::string> env) {
    env.insert(base.begin(), base.end());
    return OptionsWith(env).status();
  };
  EXPECT_THAT(with({{"IM_WEBHOOKS_USER_ONLINE_URL", "ftp://app"}}).message(), HasSubstr("http"));
  EXPECT_THAT(with({{"IM_WEBHOOKS_BEFORE_SEND_URL", "http://app"},
                    {"IM_WEBHOOKS_BEFORE_SEND_ON_FAILURE", "maybe"}})
                  .message(),
              HasSubstr("allow or refuse"));
  EXPECT_FALSE(with({{"IM_WEBHOOKS_BEFORE_SEND_URL", "http://app"},
                     {"IM_WEBHOOKS_BEFORE_SEND_TIMEOUT_MS", "4000"}})
                   .ok());
  EXPECT_THAT(with({{"IM_WEBHOOKS_AFTER_SEND_URL", "http://app"},
                    {"IM_WEBHOOKS_MAX_ATTEMPTS", "100"},
                    {"IM_WEBHOOKS_BACKOFF_MAX_MS", "60000"}})
                  .message(),
              HasSubstr("at most 540 s"));
  EXPECT_FALSE(with({{"IM_WEBHOOKS_HOLD_ATTEMPTS", "0"}}).ok());  // every event set aside unsent
  EXPECT_TRUE(with({{"IM_WEBHOOKS_AFTER_SEND_URL", "http://app"}}).ok());
}

TEST(WebhookOptionsTest, AKafkaDispatcherHoldsAnEventForTwoAttemptsUnlessToldOtherwise) {
  absl::StatusOr<WebhookOptions> options = OptionsWith({});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->hold_attempts, 2u);
  options = OptionsWith({{"IM_WEBHOOKS_HOLD_ATTEMPTS", "5"}});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->hold_attempts, 5u);
}

TEST(CircuitBreakerTest, OpensAfterFailuresInARowThenLetsOneProbeThrough) {
  int64_t now = 0;
  CircuitBreaker breaker(3, 1'000, [&] { return now; });
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker.Allow());
    breaker.Failed();
  }
  ASSERT_TRUE(breaker.Allow());
  breaker.Succeeded();  // a success in between: the count starts again
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(breaker.Allow());
    breaker.Failed();
  }
  EXPECT_TRUE(breaker.IsOpen());
  EXPECT_FALSE(breaker.Allow());
  now = 1'000;
  EXPECT_TRUE(breaker.Allow());   // the probe
  EXPECT_FALSE(breaker.Allow());  // the others wait for it
  breaker.Failed();               // it failed: open for another period
  EXPECT_FALSE(breaker.Allow());
  now = 2'000;
  EXPECT_TRUE(breaker.Allow());
  breaker.Succeeded();
  EXPECT_FALSE(breaker.IsOpen());
  EXPECT_TRUE(breaker.Allow());
  EXPECT_TRUE(breaker.Allow());
}

std::optional<BeforeSendHook::Verdict> Parse(long status, const std::string& body,
                                             std::string* problem) {
  common::HttpResponse response;
  response.status = status;
  response.body = body;
  return BeforeSendHook::ParseAnswer(response, problem);
}

TEST(BeforeSendHookTest, ReadsTheThreeAnswers) {
  std::string problem;
  std::optional<BeforeSendHook::Verdict> verdict = Parse(200, R"({"action":"allow"})", &problem);
  ASSERT_TRUE(verdict) << problem;
  EXPECT_EQ(verdict->kind, BeforeSendHook::Verdict::Kind::kAllow);

  verdict = Parse(200, R"({"action":"refuse","code":"MUTED","message":"quiet"})", &problem);
  ASSERT_TRUE(verdict) << problem;
  EXPECT_EQ(verdict->kind, BeforeSendHook::Verdict::Kind::kRefuse);
  EXPECT_EQ(verdict->code, im::v1::MUTED);
  EXPECT_EQ(verdict->reason, "quiet");
  verdict = Parse(200, R"({"action":"refuse"})", &problem);
  ASSERT_TRUE(verdict) << problem;
  EXPECT_EQ(verdict->code, im::v1::PERMISSION_DENIED);

  verdict = Parse(200, R"({"action":"replace","body":"hi ***"})", &problem);
  ASSERT_TRUE(verdict) << problem;
  EXPECT_EQ(verdict->kind, BeforeSendHook::Verdict::Kind::kReplace);
  EXPECT_EQ(verdict->body, "hi ***");
  verdict = Parse(200, R"({"action":"replace","body_base64":"AAEC"})", &problem);
  ASSERT_TRUE(verdict) << problem;
  EXPECT_EQ(verdict->body, std::string("\x00\x01\x02", 3));
}

TEST(BeforeSendHookTest, AnythingElseIsAFailure) {
  for (const auto& [status, body] : std::vector<std::pair<long, std::string>>{
           {500, R"({"action":"allow"})"},
           {200, "not json"},
           {200, R"(["allow"])"},
           {200, R"({"action":"maybe"})"},
           {200, R"({"action":7})"},
           {200, R"({"action":"refuse","code":"OK"})"},
           {200, R"({"action":"refuse","code":"NO_SUCH_CODE"})"},
           {200, R"({"action":"refuse","code":5})"},
           {200, R"({"action":"refuse","message":["x"]})"},
           {200, R"({"action":"replace"})"},
           {200, R"({"action":"replace","body":3})"},
           {200, R"({"action":"replace","body_base64":"**"})"},
           {0, ""}}) {
    std::string problem;
    EXPECT_FALSE(Parse(status, body, &problem)) << status << " " << body;
    EXPECT_FALSE(problem.empty() && status != 0) << body;
  }
}

TEST(WebhookDeliveryTest, WaitsGrowExponentiallyWithJitterUpToTheMaximum) {
  WebhookOptions options;
  options.backoff_base_ms = 100;
  options.backoff_max_ms = 1'000;
  prometheus::Registry registry;
  LogicMetrics metrics(registry);
  WebhookDelivery delivery(options, *WebhookSigner::FromSecret(kSecret), nullptr, &metrics,
                           [] { return int64_t{0}; });
  const std::map<uint32_t, int64_t> nominal = {{2, 100}, {3, 200},   {4, 400},
                                               {5, 800}, {6, 1'000}, {20, 1'000}};
  for (const auto& [attempt, wait] : nominal) {
    for (int i = 0; i < 50; ++i) {
      const int64_t jittered = delivery.BackoffMs(attempt);
      EXPECT_GE(jittered, wait / 2) << attempt;
      EXPECT_LT(jittered, wait * 3 / 2) << attempt;
    }
  }
}

TEST(WebhookPayloadsTest, AMessageEventCarriesTheMessageAndAnIdMadeFromIt) {
  im::v1::Message message;
  message.set_conv_id("s:alice:bob");
  message.set_seq(7);
  message.set_msg_id(123456789012345678);
  message.set_sender("bob");
  message.set_type(im::v1::TEXT);
  message.set_body("hi");
  const im::v1::WebhookEvent event = AfterSendEvent(message, 1'700'000'000'123);
  EXPECT_EQ(event.id(), "sent_s-alice-bob_7");
  EXPECT_EQ(event.type(), "message.after_send");
  const nlohmann::json body = nlohmann::json::parse(event.payload());
  EXPECT_EQ(body["type"], "message.after_send");
  EXPECT_EQ(body["timestamp"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(body["data"]["to_uid"], "alice");
  EXPECT_EQ(body["data"]["msg_id"], "123456789012345678");
  EXPECT_EQ(body["data"]["body_base64"], "aGk=");
  EXPECT_EQ(OfflineMessageEvent(message, {"alice"}, 0).id(), "offline_s-alice-bob_7");
}

TEST(WebhookPayloadsTest, AGroupMessagesOfflineMembersComeInEventsOfAThousand) {
  im::v1::Message message;
  message.set_conv_id("g:team");
  message.set_seq(9);
  message.set_sender("alice");
  std::vector<std::string> uids;
  for (int i = 0; i < 2'500; ++i) uids.push_back(absl::StrCat("u", 10'000 + i));
  const std::vector<im::v1::WebhookEvent> events = GroupOfflineMessageEvents(message, uids, 0);
  ASSERT_EQ(events.size(), 3u);
  std::vector<std::string> listed;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].id(), absl::StrCat("offline_g-team_9_", i));
    EXPECT_EQ(events[i].type(), "message.offline");
    const nlohmann::json data = nlohmann::json::parse(events[i].payload())["data"];
    EXPECT_EQ(data["group_id"], "team");
    EXPECT_EQ(data["seq"], 9);
    for (const auto& uid : data["offline_uids"]) listed.push_back(uid);
  }
  EXPECT_EQ(nlohmann::json::parse(events[2].payload())["data"]["offline_uids"].size(), 500u);
  EXPECT_EQ(listed, uids);
  EXPECT_TRUE(GroupOfflineMessageEvents(message, {}, 0).empty());
}

TEST(WebhookPayloadsTest, AGroupEventIsNamedAfterItsNotice) {
  im::v1::SendResp posted;
  posted.set_conv_id("g:team");
  posted.set_seq(3);
  const im::v1::WebhookEvent event = GroupEvent(
      {{"event", "group_created"}, {"group_id", "team"}, {"by", "alice"}}, "notice:42", posted, 0);
  EXPECT_EQ(event.type(), "group.created");
  EXPECT_EQ(event.id(), "notice_42");
  const nlohmann::json body = nlohmann::json::parse(event.payload());
  EXPECT_EQ(body["data"]["group_id"], "team");
  EXPECT_EQ(body["data"]["seq"], 3);
  EXPECT_FALSE(body["data"].contains("event"));
  EXPECT_EQ(GroupEvent({{"event", "member_joined"}}, "n", posted, 0).type(), "group.member_joined");
}

}  // namespace
}  // namespace im::logic
