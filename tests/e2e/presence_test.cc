// Presence over the wire against the real binaries: a device watches the users it shares a
// conversation with (strangers are refused), gets their state at once and a push on each change,
// with last seen when they leave; on the cluster, a user whose gateway is killed shows offline
// within the session TTL (plus the sweep's interval) without anyone disconnecting it.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "im/v1/client.pb.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {
namespace {

constexpr int kMaxWatch = 3;

im::v1::Frame WatchFrame(const std::vector<std::string>& uids) {
  im::v1::Frame frame;
  im::v1::PresenceSubscribeReq* watch = frame.mutable_presence_subscribe_req();  // even if empty
  for (const std::string& uid : uids) watch->add_uids(uid);
  return frame;
}

std::optional<im::v1::PresenceSubscribeResp> Watch(TestDevice& device,
                                                   const std::vector<std::string>& uids) {
  std::optional<im::v1::Frame> answer = device.Call(WatchFrame(uids));
  if (!answer || !answer->has_presence_subscribe_resp()) return std::nullopt;
  return answer->presence_subscribe_resp();
}

// Waits until `device` was pushed a state of `uid` with `online`; returns it (nullopt: none came).
std::optional<im::v1::Presence> WaitForPresence(TestDevice& device, const std::string& uid,
                                                bool online, Millis timeout) {
  std::optional<im::v1::Presence> found;
  device.WaitUntil(
      [&] {
        for (const im::v1::Presence& presence : device.presences()) {
          if (presence.uid() == uid && presence.online() == online) found = presence;
        }
        return found.has_value();
      },
      timeout);
  return found;
}

class PresenceTest : public DeploymentTest {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.logic_env = {{"IM_LOGIC_PRESENCE_MAX_WATCH", std::to_string(kMaxWatch)}};
    cluster_ = Deploy(options);
    ASSERT_TRUE(cluster_->Start());
    alice_ = cluster_->Device("alice", "phone");
    bob_ = cluster_->Device("bob", "phone");
    ASSERT_TRUE(alice_->Login(cluster_->client_port(0)));
    // alice and bob talk; carol talks with nobody.
    std::optional<im::v1::SendResp> sent = alice_->SendTo(cluster_->Uid("bob"), "hello-1", "hi");
    ASSERT_TRUE(sent.has_value());
    ASSERT_EQ(sent->status().code(), im::v1::OK);
  }

  std::unique_ptr<ChatDeployment> cluster_;
  std::unique_ptr<TestDevice> alice_;
  std::unique_ptr<TestDevice> bob_;
};

TEST_P(PresenceTest, AWatcherGetsThePeersStateAndEveryChangeStrangersAreRefused) {
  const std::string bob = cluster_->Uid("bob");
  const std::string carol = cluster_->Uid("carol");
  std::optional<im::v1::PresenceSubscribeResp> watched = Watch(*alice_, {carol, bob});
  ASSERT_TRUE(watched.has_value());
  ASSERT_EQ(watched->status().code(), im::v1::OK) << watched->status().message();
  EXPECT_GT(watched->ttl_sec(), 0u);
  ASSERT_EQ(watched->presences_size(), 1);
  EXPECT_EQ(watched->presences(0).uid(), bob);
  EXPECT_FALSE(watched->presences(0).online());
  ASSERT_EQ(watched->refused_size(), 1);
  EXPECT_EQ(watched->refused(0), carol) << "carol shares no conversation with alice";

  ASSERT_TRUE(bob_->Login(cluster_->client_port(0)));
  std::optional<im::v1::Presence> online = WaitForPresence(*alice_, bob, true, Millis(10'000));
  ASSERT_TRUE(online.has_value()) << "no push of bob coming online";
  EXPECT_EQ(std::vector<std::string>(online->devices().begin(), online->devices().end()),
            std::vector<std::string>{"phone"});
  // The platform the device logged in with (WireClient::Login says "test").
  EXPECT_EQ(std::vector<std::string>(online->platforms().begin(), online->platforms().end()),
            std::vector<std::string>{"test"});

  const int64_t before_leaving_ms = common::UnixMillis();
  bob_->Disconnect();
  std::optional<im::v1::Presence> offline = WaitForPresence(*alice_, bob, false, Millis(10'000));
  ASSERT_TRUE(offline.has_value()) << "no push of bob going offline";
  EXPECT_GE(offline->last_seen_ms(), before_leaving_ms - 1'000);
  EXPECT_LE(offline->last_seen_ms(), common::UnixMillis() + 1'000);

  // A watch made later is told when bob was last seen.
  std::optional<im::v1::PresenceSubscribeResp> again = Watch(*alice_, {bob});
  ASSERT_TRUE(again.has_value());
  ASSERT_EQ(again->presences_size(), 1);
  EXPECT_EQ(again->presences(0).last_seen_ms(), offline->last_seen_ms());
}

TEST_P(PresenceTest, BadWatchesAreRefusedWithTheirCode) {
  std::vector<std::string> too_many;
  for (int i = 0; i <= kMaxWatch; ++i) too_many.push_back(cluster_->Uid("u" + std::to_string(i)));
  std::optional<im::v1::PresenceSubscribeResp> refused = Watch(*alice_, too_many);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_NE(refused->status().message().find("at most 3"), std::string::npos)
      << refused->status().message();
  std::optional<im::v1::PresenceSubscribeResp> invalid = Watch(*alice_, {"no|pipes", ""});
  ASSERT_TRUE(invalid.has_value());
  EXPECT_EQ(invalid->status().code(), im::v1::INVALID_ARGUMENT);
  // An empty list stops watching, and is answered OK.
  std::optional<im::v1::PresenceSubscribeResp> none = Watch(*alice_, {});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->status().code(), im::v1::OK);
  EXPECT_EQ(none->presences_size(), 0);
  // The connection is still good.
  EXPECT_EQ(alice_->SendTo(cluster_->Uid("bob"), "hello-2", "still here")->status().code(),
            im::v1::OK);
}

IM_INSTANTIATE_DEPLOYMENTS(PresenceTest);

// A killed gateway tells logic nothing: its sessions lapse after the session TTL, and the sweep
// finds them.
TEST(PresenceFailureTest, AUserWhoseGatewayIsKilledShowsOfflineWithinTheSessionTtl) {
  constexpr int kSessionTtlSec = 3;
  constexpr int kSweepIntervalMs = 200;
  ClusterOptions options;
  options.logic_env = {{"IM_LOGIC_SESSION_TTL_SEC", std::to_string(kSessionTtlSec)},
                       {"IM_LOGIC_PRESENCE_SWEEP_INTERVAL_MS", std::to_string(kSweepIntervalMs)}};
  options.gateway_env = {{"IM_GATEWAY_SESSION_REFRESH_MS", "500"}};
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  std::unique_ptr<TestDevice> alice = cluster.Device("alice", "phone");
  std::unique_ptr<TestDevice> bob = cluster.Device("bob", "tablet");
  ASSERT_TRUE(alice->Login(cluster.client_port(0)));
  ASSERT_TRUE(bob->Login(cluster.client_port(1)));
  const std::string bob_uid = cluster.Uid("bob");
  ASSERT_EQ(alice->SendTo(bob_uid, "hello-1", "hi")->status().code(), im::v1::OK);
  std::optional<im::v1::PresenceSubscribeResp> watched = Watch(*alice, {bob_uid});
  ASSERT_TRUE(watched.has_value());
  ASSERT_EQ(watched->presences_size(), 1);
  ASSERT_TRUE(watched->presences(0).online());
  // Past a refresh or two of bob's session, so that the kill does not land on a fresh login.
  alice->Poll(Millis(1'200));

  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(cluster.KillGateway(1));
  std::optional<im::v1::Presence> offline =
      WaitForPresence(*alice, bob_uid, false, Millis(kSessionTtlSec * 1000 + 10'000));
  ASSERT_TRUE(offline.has_value()) << "bob never showed offline";
  const auto took = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - killed);
  // The TTL from bob's last refresh (before the kill), the check's margin, one sweep interval,
  // and the push: within the TTL and a second.
  EXPECT_LE(took.count(), kSessionTtlSec * 1000 + 1'000) << "offline after " << took.count();
  EXPECT_GT(offline->last_seen_ms(), 0);
}

}  // namespace
}  // namespace im::e2e
