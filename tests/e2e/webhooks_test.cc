// Business callbacks (logic/webhooks, docs/callbacks.md) against the real binaries and a real
// receiver that checks every signature with the PyPI standardwebhooks library
// (tests/webhooks/receiver.py): the before-send check allows, refuses and rewrites sends, and on
// timeout fails open or closed as configured, with a breaker that stops calling a failing
// endpoint; the asynchronous events (after send, offline message, devices, groups) arrive signed;
// an endpoint that fails for a while and a logic node killed meanwhile lose no after-send event;
// an event that keeps failing is given up after webhooks.max_attempts.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "im/v1/client.pb.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/admin_client.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"
#include "tests/e2e/webhook_receiver.h"

namespace im::e2e {
namespace {

constexpr Millis kArrival(30'000);  // an event reaches the receiver well within this

using Env = std::map<std::string, std::string>;

std::string TextOf(const nlohmann::json& data) {
  std::string text;
  EXPECT_TRUE(absl::Base64Unescape(data.value("body_base64", ""), &text)) << data.dump();
  return text;
}

// The events of `hook` about user `uid` (its sender, recipient or subject): the harness's own
// traffic (a cluster's readiness messages) is left out.
std::vector<nlohmann::json> EventsAbout(const WebhookReceiver& receiver, const std::string& hook,
                                        const std::string& uid) {
  std::vector<nlohmann::json> about;
  for (nlohmann::json& event : receiver.Events(hook)) {
    const nlohmann::json& data = event["payload"]["data"];
    for (const char* field : {"sender", "to_uid", "uid", "by"}) {
      if (data.value(field, "") == uid) {
        about.push_back(std::move(event));
        break;
      }
    }
  }
  return about;
}

using Events = std::vector<nlohmann::json>;

// Waits until what `read` returns is such that `enough` holds; returns it.
Events Await(const std::function<Events()>& read, const std::function<bool(const Events&)>& enough,
             Millis timeout = kArrival) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  Events events = read();
  while (!enough(events) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(Millis(100));
    events = read();
  }
  return events;
}

// Waits until the events of `hook` about `uid` are such that `enough` holds; returns them.
Events AwaitEvents(const WebhookReceiver& receiver, const std::string& hook, const std::string& uid,
                   const std::function<bool(const Events&)>& enough, Millis timeout = kArrival) {
  return Await([&] { return EventsAbout(receiver, hook, uid); }, enough, timeout);
}

bool AnyRefused(const Events& events) {
  return std::any_of(events.begin(), events.end(),
                     [](const nlohmann::json& event) { return event["status"] == 500; });
}

// The seqs of the messages whose after-send events were delivered (answered 200).
std::set<uint64_t> DeliveredSeqs(const Events& events) {
  std::set<uint64_t> seqs;
  for (const nlohmann::json& event : events) {
    if (event["status"] == 200) seqs.insert(event["payload"]["data"]["seq"].get<uint64_t>());
  }
  return seqs;
}

// Every attempt at a message's after-send event, on whichever node, carries the same id.
void ExpectOneIdPerSeq(const Events& events) {
  std::map<uint64_t, std::set<std::string>> ids_by_seq;
  for (const nlohmann::json& event : events) {
    ids_by_seq[event["payload"]["data"]["seq"].get<uint64_t>()].insert(event["id"]);
  }
  for (const auto& [seq, ids] : ids_by_seq) {
    EXPECT_EQ(ids.size(), 1u) << "seq " << seq;
  }
}

// Starts `cluster`, and once the after-send event of its readiness message was delivered, makes
// the after-send endpoint answer 500. Delivered first: a dispatcher retrying that event would take
// no other batch until it set it aside, and the test's own events might then meet no outage.
void StartThenFailAfterSend(LocalCluster& cluster, WebhookReceiver& receiver) {
  ASSERT_TRUE(cluster.Start());
  ASSERT_FALSE(Await([&] { return receiver.Events("after_send"); },
                     [](const Events& events) { return !events.empty(); })
                   .empty())
      << "the readiness message's event";
  ASSERT_TRUE(receiver.AnswerWith("after_send", 500));
}

class WebhooksTest : public DeploymentTest {
 protected:
  // Starts the receiver and a deployment that sends it every event, with `env` on top.
  void StartWith(const Env& env) {
    receiver_ = WebhookReceiver::Start();
    ASSERT_NE(receiver_, nullptr);
    ClusterOptions options;
    options.logic_env = receiver_->Env();
    for (const auto& [key, value] : env) options.logic_env[key] = value;
    deployment_ = Deploy(options);
    ASSERT_TRUE(deployment_->Start());
  }
  std::unique_ptr<TestDevice> Online(const std::string& name, int gateway = 0) {
    std::unique_ptr<TestDevice> device = deployment_->Device(name, "phone");
    EXPECT_TRUE(device->Login(deployment_->client_port(gateway))) << name;
    return device;
  }
  void TearDown() override {
    if (receiver_) {
      EXPECT_EQ(receiver_->Stats()["bad_signatures"], 0) << receiver_->Stats();
    }
  }

  std::unique_ptr<WebhookReceiver> receiver_;
  std::unique_ptr<ChatDeployment> deployment_;
};

TEST_P(WebhooksTest, BeforeSendAllowsRefusesAndRewrites) {
  ASSERT_NO_FATAL_FAILURE(StartWith({}));
  auto alice = Online("alice");
  auto bob = Online("bob", 1);
  const std::string conv = SingleConvId(alice->uid(), bob->uid());

  std::optional<im::v1::SendResp> allowed = alice->SendTo(bob->uid(), "m1", "hello");
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status().code(), im::v1::OK);
  std::optional<im::v1::SendResp> refused = alice->SendTo(bob->uid(), "m2", "refuse:spam");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status().code(), im::v1::PERMISSION_DENIED);
  EXPECT_EQ(refused->status().message(), "refused by the test app");
  std::optional<im::v1::SendResp> rewritten = alice->SendTo(bob->uid(), "m3", "rewrite:abc");
  ASSERT_TRUE(rewritten);
  EXPECT_EQ(rewritten->status().code(), im::v1::OK);

  ASSERT_TRUE(bob->WaitForPushed(conv, 2, Millis(10'000)));
  std::vector<std::string> bodies;
  for (const PushedMessage& pushed : bob->Pushed(conv)) bodies.push_back(pushed.message.body());
  EXPECT_EQ(bodies, (std::vector<std::string>{"hello", "rewritten:abc"}));

  // The app server's own sends are not asked about.
  AdminClient admin(deployment_->admin_api_port(0), ChatDeployment::kAdminKey);
  EXPECT_EQ(
      admin.Post("/v1/messages", {{"id", "admin-1"}, {"to_uid", bob->uid()}, {"body", "x"}}).status,
      200);
  const std::vector<nlohmann::json> checks = EventsAbout(*receiver_, "before_send", alice->uid());
  ASSERT_EQ(checks.size(), 3u);
  const std::vector<std::string> texts = {"hello", "refuse:spam", "rewrite:abc"};
  for (size_t i = 0; i < checks.size(); ++i) {
    const nlohmann::json& payload = checks[i]["payload"];
    EXPECT_EQ(payload["type"], "message.before_send");
    EXPECT_EQ(payload["data"]["sender"], alice->uid());
    EXPECT_EQ(payload["data"]["device"], "phone");
    EXPECT_EQ(payload["data"]["to_uid"], bob->uid());
    EXPECT_EQ(payload["data"]["conv_id"], conv);
    EXPECT_EQ(TextOf(payload["data"]), texts[i]);
  }
}

TEST_P(WebhooksTest, ACheckThatTimesOutFailsOpenAndTheBreakerThenSkipsTheEndpoint) {
  ASSERT_NO_FATAL_FAILURE(StartWith({{"IM_WEBHOOKS_BEFORE_SEND_TIMEOUT_MS", "500"},
                                     {"IM_WEBHOOKS_BEFORE_SEND_ON_FAILURE", "allow"},
                                     {"IM_WEBHOOKS_BEFORE_SEND_BREAKER_FAILURES", "3"},
                                     {"IM_WEBHOOKS_BEFORE_SEND_BREAKER_OPEN_MS", "600000"}}));
  auto alice = Online("alice");
  auto bob = Online("bob");
  // The receiver sleeps 3 s on "slow:" and answers 500 on "error:": three failures, each let
  // through.
  for (const char* body : {"slow:1", "error:1", "error:2"}) {
    std::optional<im::v1::SendResp> sent = alice->SendTo(bob->uid(), body, body);
    ASSERT_TRUE(sent) << body;
    EXPECT_EQ(sent->status().code(), im::v1::OK) << body;
  }
  // The breaker is open: these are allowed without asking (a refusal would ask and be obeyed).
  const auto started = std::chrono::steady_clock::now();
  for (const char* body : {"refuse:1", "refuse:2"}) {
    std::optional<im::v1::SendResp> sent = alice->SendTo(bob->uid(), body, body);
    ASSERT_TRUE(sent) << body;
    EXPECT_EQ(sent->status().code(), im::v1::OK) << body;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, Millis(2'000));
  std::this_thread::sleep_for(Millis(3'500));  // the slow check's answer is recorded when sent
  EXPECT_EQ(EventsAbout(*receiver_, "before_send", alice->uid()).size(), 3u);
  EXPECT_GE(deployment_->LogicMetric(0, "im_logic_before_send_total{verdict=\"breaker_allow\"}")
                .value_or(0),
            2);
}

TEST_P(WebhooksTest, ACheckThatTimesOutFailsClosedWhenConfiguredSo) {
  ASSERT_NO_FATAL_FAILURE(StartWith({{"IM_WEBHOOKS_BEFORE_SEND_TIMEOUT_MS", "500"},
                                     {"IM_WEBHOOKS_BEFORE_SEND_ON_FAILURE", "refuse"}}));
  auto alice = Online("alice");
  auto bob = Online("bob");
  std::optional<im::v1::SendResp> slow = alice->SendTo(bob->uid(), "s1", "slow:1");
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status().code(), im::v1::UNAVAILABLE) << slow->status().message();
  EXPECT_GT(slow->status().retry_after_ms(), 0u);
  std::optional<im::v1::SendResp> fine = alice->SendTo(bob->uid(), "s2", "hello");
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->status().code(), im::v1::OK);
  // The refused send was not stored: bob syncs only the second.
  const std::string conv = SingleConvId(alice->uid(), bob->uid());
  TestDevice::SyncResult synced = bob->SyncAll(conv, 0, 100);
  ASSERT_TRUE(synced.ok) << synced.error;
  ASSERT_EQ(synced.messages.size(), 1u);
  EXPECT_EQ(synced.messages[0].body(), "hello");
}

TEST_P(WebhooksTest, EventsOfMessagesDevicesAndGroupsReachTheApp) {
  ASSERT_NO_FATAL_FAILURE(StartWith({}));
  auto alice = Online("alice");
  const std::string bob = deployment_->Uid("bob");  // never online
  std::optional<im::v1::SendResp> sent = alice->SendTo(bob, "m1", "for bob");
  ASSERT_TRUE(sent);
  ASSERT_EQ(sent->status().code(), im::v1::OK);

  auto first = [](const std::vector<nlohmann::json>& events) { return !events.empty(); };
  const std::vector<nlohmann::json> after =
      AwaitEvents(*receiver_, "after_send", alice->uid(), first);
  ASSERT_EQ(after.size(), 1u);
  const nlohmann::json& message = after[0]["payload"]["data"];
  EXPECT_EQ(after[0]["payload"]["type"], "message.after_send");
  EXPECT_EQ(message["conv_id"], sent->conv_id());
  EXPECT_EQ(message["seq"], sent->seq());
  EXPECT_EQ(message["msg_id"], std::to_string(sent->msg_id()));
  EXPECT_EQ(message["sender"], alice->uid());
  EXPECT_EQ(message["to_uid"], bob);
  EXPECT_EQ(TextOf(message), "for bob");

  const std::vector<nlohmann::json> offline =
      AwaitEvents(*receiver_, "offline_message", alice->uid(), first);
  ASSERT_EQ(offline.size(), 1u);
  EXPECT_EQ(offline[0]["payload"]["type"], "message.offline");
  EXPECT_EQ(offline[0]["payload"]["data"]["offline_uids"], nlohmann::json::array({bob}));
  EXPECT_EQ(offline[0]["payload"]["data"]["seq"], sent->seq());

  auto carol = Online("carol");
  std::optional<im::v1::GroupCreateResp> group = alice->GroupCreate("team", {bob, carol->uid()});
  ASSERT_TRUE(group);
  ASSERT_EQ(group->status().code(), im::v1::OK);
  const std::vector<nlohmann::json> groups =
      AwaitEvents(*receiver_, "group_events", alice->uid(), first);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0]["payload"]["type"], "group.created");
  EXPECT_EQ(groups[0]["payload"]["data"]["group_id"], group->group_id());
  EXPECT_EQ(groups[0]["payload"]["data"]["by"], alice->uid());

  // A group message: of its members, bob has no online device; carol has, and alice sent it.
  std::optional<im::v1::SendResp> to_group =
      alice->SendToConv(GroupConvId(group->group_id()), "g1", "for the team");
  ASSERT_TRUE(to_group);
  ASSERT_EQ(to_group->status().code(), im::v1::OK);
  const std::vector<nlohmann::json> offline_in_group =
      AwaitEvents(*receiver_, "offline_message", alice->uid(),
                  [](const std::vector<nlohmann::json>& events) { return events.size() >= 2; });
  ASSERT_EQ(offline_in_group.size(), 2u);
  const nlohmann::json& group_offline = offline_in_group[1]["payload"]["data"];
  EXPECT_EQ(group_offline["group_id"], group->group_id());
  EXPECT_EQ(group_offline["seq"], to_group->seq());
  EXPECT_EQ(group_offline["offline_uids"], nlohmann::json::array({bob}));
  EXPECT_EQ(TextOf(group_offline), "for the team");
  EXPECT_EQ(offline_in_group[1]["id"],
            absl::StrCat("offline_g-", group->group_id(), "_", to_group->seq(), "_0"));

  alice->Disconnect();
  const std::vector<nlohmann::json> online =
      AwaitEvents(*receiver_, "user_online", alice->uid(), first);
  ASSERT_EQ(online.size(), 1u);
  EXPECT_EQ(online[0]["payload"]["type"], "user.online");
  EXPECT_EQ(online[0]["payload"]["data"]["device"], "phone");
  const std::vector<nlohmann::json> left =
      AwaitEvents(*receiver_, "user_offline", alice->uid(), first);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]["payload"]["type"], "user.offline");
  EXPECT_EQ(left[0]["payload"]["data"]["device"], "phone");
}

TEST_P(WebhooksTest, AnEventThatKeepsFailingIsGivenUpAfterMaxAttempts) {
  ASSERT_NO_FATAL_FAILURE(StartWith({{"IM_WEBHOOKS_MAX_ATTEMPTS", "3"},
                                     {"IM_WEBHOOKS_BACKOFF_BASE_MS", "100"},
                                     {"IM_WEBHOOKS_BACKOFF_MAX_MS", "200"}}));
  ASSERT_TRUE(receiver_->AnswerWith("after_send", 500));
  auto alice = Online("alice");
  std::optional<im::v1::SendResp> sent = alice->SendTo(deployment_->Uid("bob"), "m1", "x");
  ASSERT_TRUE(sent);
  ASSERT_EQ(sent->status().code(), im::v1::OK);
  const std::vector<nlohmann::json> attempts =
      AwaitEvents(*receiver_, "after_send", alice->uid(),
                  [](const auto& events) { return events.size() >= 3; });
  ASSERT_EQ(attempts.size(), 3u);
  for (const nlohmann::json& attempt : attempts) {
    EXPECT_EQ(attempt["id"], attempts[0]["id"]);  // one event, the same id on every attempt
    EXPECT_EQ(attempt["status"], 500);
  }
  const std::string dead =
      "im_logic_webhook_events_total{outcome=\"dead\",type=\"message.after_send\"}";
  const auto give_up = std::chrono::steady_clock::now() + kArrival;
  while (deployment_->LogicMetric(0, dead).value_or(0) < 1 &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(Millis(100));
  }
  EXPECT_GE(deployment_->LogicMetric(0, dead).value_or(0), 1);
  std::this_thread::sleep_for(Millis(1'000));
  EXPECT_EQ(EventsAbout(*receiver_, "after_send", alice->uid()).size(), 3u);  // no fourth
}

IM_INSTANTIATE_DEPLOYMENTS(WebhooksTest);

// An endpoint that is down holds the other endpoints' events for its first hold_attempts only:
// then its event is set aside on the retry topic, and the dispatcher goes on; once the endpoint
// is back the events set aside arrive, each with its one webhook-id.
TEST(WebhooksRetryTopicTest, AnEndpointThatIsDownDoesNotHoldTheOtherEndpointsEvents) {
  std::unique_ptr<WebhookReceiver> receiver = WebhookReceiver::Start();
  ASSERT_NE(receiver, nullptr);
  ClusterOptions options;
  options.logic_nodes = 1;
  options.gateways = 1;
  options.logic_env = receiver->Env();
  // Held alone, the failing events would take 40 attempts of up to a second each.
  for (const auto& [key, value] : Env{{"IM_WEBHOOKS_MAX_ATTEMPTS", "40"},
                                      {"IM_WEBHOOKS_HOLD_ATTEMPTS", "2"},
                                      {"IM_WEBHOOKS_BACKOFF_BASE_MS", "200"},
                                      {"IM_WEBHOOKS_BACKOFF_MAX_MS", "1000"},
                                      {"IM_WEBHOOKS_AFTER_SEND_TIMEOUT_MS", "1000"}}) {
    options.logic_env[key] = value;
  }
  LocalCluster cluster(options);
  ASSERT_NO_FATAL_FAILURE(StartThenFailAfterSend(cluster, *receiver));
  auto alice = cluster.Device("alice", "phone");
  ASSERT_TRUE(alice->Login(cluster.client_port(0)));
  const std::string bob = cluster.Uid("bob");
  std::set<uint64_t> acknowledged;
  for (int i = 0; i < 5; ++i) {
    std::optional<im::v1::SendResp> sent =
        alice->SendTo(bob, "m" + std::to_string(i), "message " + std::to_string(i));
    ASSERT_TRUE(sent && sent->status().code() == im::v1::OK) << i;
    acknowledged.insert(sent->seq());
  }
  ASSERT_TRUE(AnyRefused(AwaitEvents(*receiver, "after_send", alice->uid(), AnyRefused)))
      << "the outage met none of these events";

  // Bob comes online while after-send still fails: his event is not held behind alice's.
  auto bob_phone = cluster.Device("bob", "phone");
  ASSERT_TRUE(bob_phone->Login(cluster.client_port(0)));
  const Events online = AwaitEvents(
      *receiver, "user_online", bob, [](const Events& got) { return !got.empty(); },
      Millis(10'000));
  ASSERT_EQ(online.size(), 1u) << "held behind the failing endpoint's events";
  EXPECT_EQ(online[0]["status"], 200);
  const std::string set_aside =
      "im_logic_webhook_events_total{outcome=\"set_aside\",type=\"message.after_send\"}";
  EXPECT_GE(MetricAt(cluster.logic_metrics_port(0), set_aside).value_or(0), 1);

  ASSERT_TRUE(receiver->AnswerWith("after_send", std::nullopt));
  const Events events = AwaitEvents(*receiver, "after_send", alice->uid(), [&](const Events& got) {
    return DeliveredSeqs(got) == acknowledged;
  });
  EXPECT_EQ(DeliveredSeqs(events), acknowledged);
  ExpectOneIdPerSeq(events);
  EXPECT_EQ(receiver->Stats()["bad_signatures"], 0);
}

// The durable path: the receiver answers 500 for a while, a logic node is killed in the middle of
// the sends, then the receiver recovers: every acknowledged message's after-send event arrives.
TEST(WebhooksDurabilityTest, AfterSendEventsSurviveAnOutageAndAKilledLogicNode) {
  std::unique_ptr<WebhookReceiver> receiver = WebhookReceiver::Start();
  ASSERT_NE(receiver, nullptr);
  ClusterOptions options;
  options.logic_nodes = 2;
  options.gateways = 1;
  options.logic_env = {{"IM_WEBHOOKS_SECRET", WebhookReceiver::kSecret},
                       {"IM_WEBHOOKS_AFTER_SEND_URL", receiver->Url("after_send")},
                       {"IM_WEBHOOKS_AFTER_SEND_TIMEOUT_MS", "1000"},
                       {"IM_WEBHOOKS_MAX_ATTEMPTS", "100"},
                       {"IM_WEBHOOKS_BACKOFF_BASE_MS", "200"},
                       {"IM_WEBHOOKS_BACKOFF_MAX_MS", "1000"},
                       // The dead node's partitions move to the other one sooner.
                       {"IM_KAFKA_SESSION_TIMEOUT_MS", "6000"}};
  LocalCluster cluster(options);
  ASSERT_NO_FATAL_FAILURE(StartThenFailAfterSend(cluster, *receiver));
  auto alice = cluster.Device("alice", "phone");
  ASSERT_TRUE(alice->Login(cluster.client_port(0)));
  const std::string bob = cluster.Uid("bob");

  constexpr int kMessages = 40;
  std::set<uint64_t> acknowledged;
  for (int i = 0; i < kMessages; ++i) {
    if (i == kMessages / 2) {
      ASSERT_TRUE(cluster.KillLogic(1));
    }
    const std::string id = "m" + std::to_string(i);
    // A send on the killed node's stream fails; sent again (same id) it reaches the other one.
    std::optional<im::v1::SendResp> sent;
    alice->WaitUntil(
        [&] {
          sent = alice->SendTo(bob, id, "message " + std::to_string(i));
          return sent && sent->status().code() == im::v1::OK;
        },
        Millis(30'000));
    ASSERT_TRUE(sent && sent->status().code() == im::v1::OK) << id;
    acknowledged.insert(sent->seq());
  }
  ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kMessages));
  // The outage must meet these events, not only the harness's: a dispatcher retrying an earlier
  // batch (the cluster's readiness message) takes its next one only when it set that aside.
  ASSERT_TRUE(
      AnyRefused(AwaitEvents(*receiver, "after_send", alice->uid(), AnyRefused, Millis(60'000))))
      << "no event of these messages met the outage";
  ASSERT_TRUE(receiver->AnswerWith("after_send", std::nullopt));

  const std::vector<nlohmann::json> events = AwaitEvents(
      *receiver, "after_send", alice->uid(),
      [&](const auto& got) { return DeliveredSeqs(got) == acknowledged; }, Millis(90'000));
  EXPECT_EQ(DeliveredSeqs(events), acknowledged);
  EXPECT_TRUE(AnyRefused(events)) << "the outage was not seen";
  ExpectOneIdPerSeq(events);
  EXPECT_EQ(receiver->Stats()["bad_signatures"], 0);
}

}  // namespace
}  // namespace im::e2e
