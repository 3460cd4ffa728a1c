// The abuse limits that follow a sender over all their devices (logic.send_rate_per_user,
// logic.group_send_rate_per_user), on the real cluster: two gateways, so that a user's devices
// reach logic through different gateways. The per-connection and per-address limits of the
// gateway have their own tests (gateway/tests/abuse_limits_test.cc).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {
namespace {

constexpr int kUserBurst = 4;   // and 2 a second
constexpr int kGroupBurst = 2;  // and 1 a second

ClusterOptions Limited() {
  ClusterOptions options;
  options.gateways = 2;
  options.logic_env = {{"IM_LOGIC_SEND_RATE_PER_USER", "2"},
                       {"IM_LOGIC_SEND_BURST_PER_USER", std::to_string(kUserBurst)},
                       {"IM_LOGIC_GROUP_SEND_RATE_PER_USER", "1"},
                       {"IM_LOGIC_GROUP_SEND_BURST_PER_USER", std::to_string(kGroupBurst)}};
  return options;
}

std::vector<im::v1::SendReq> Sends(const std::string& conv_id, const std::string& prefix,
                                   int count) {
  std::vector<im::v1::SendReq> reqs(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    reqs[i].set_conv_id(conv_id);
    reqs[i].set_client_msg_id(prefix + std::to_string(i));
    reqs[i].set_type(im::v1::TEXT);
    reqs[i].set_body("m" + std::to_string(i));
  }
  return reqs;
}

struct Tally {
  int ok = 0;
  int limited = 0;
  int other = 0;
};

// Counts the answers; every refusal must carry a retry hint of at most `max_hint_ms`.
Tally Count(const std::vector<std::optional<im::v1::SendResp>>& answers, uint32_t max_hint_ms) {
  Tally tally;
  for (const auto& answer : answers) {
    if (!answer) {
      ++tally.other;
    } else if (answer->status().code() == im::v1::OK) {
      ++tally.ok;
    } else if (answer->status().code() == im::v1::RESOURCE_EXHAUSTED) {
      ++tally.limited;
      EXPECT_GT(answer->status().retry_after_ms(), 0u) << answer->ShortDebugString();
      EXPECT_LE(answer->status().retry_after_ms(), max_hint_ms) << answer->ShortDebugString();
    } else {
      ++tally.other;
      ADD_FAILURE() << answer->ShortDebugString();
    }
  }
  return tally;
}

std::string SingleChat(const std::string& a, const std::string& b) {
  return "s:" + std::min(a, b) + ":" + std::max(a, b);
}

TEST(AbuseLimitsTest, AUsersSendsOverAllTheirDevicesShareOneRateAndOthersAreUnaffected) {
  LocalCluster cluster(Limited());
  ASSERT_TRUE(cluster.Start());
  auto phone = cluster.Device("alice", "phone");
  auto laptop = cluster.Device("alice", "laptop");
  auto bob = cluster.Device("bob", "phone");
  ASSERT_TRUE(phone->Login(cluster.client_port(0)));
  ASSERT_TRUE(laptop->Login(cluster.client_port(1)));
  ASSERT_TRUE(bob->Login(cluster.client_port(1)));
  const std::string conv = SingleChat(cluster.Uid("alice"), cluster.Uid("bob"));

  Tally alice;
  std::thread other_device([&] {
    const Tally laptop_tally = Count(laptop->SendPipelined(Sends(conv, "laptop-", 4), 4), 500);
    alice.ok += laptop_tally.ok;
    alice.limited += laptop_tally.limited;
  });
  const Tally phone_tally = Count(phone->SendPipelined(Sends(conv, "phone-", 4), 4), 500);
  other_device.join();
  alice.ok += phone_tally.ok;
  alice.limited += phone_tally.limited;
  // The burst, and a token or two that came back while the eight were answered.
  EXPECT_GE(alice.ok, kUserBurst);
  EXPECT_LE(alice.ok, kUserBurst + 2);
  EXPECT_EQ(alice.ok + alice.limited, 8);
  EXPECT_GE(alice.limited, 2);

  const Tally bob_tally = Count(bob->SendPipelined(Sends(conv, "bob-", kUserBurst), 4), 500);
  EXPECT_EQ(bob_tally.ok, kUserBurst) << "alice's rate costs bob nothing";

  // After the hint, alice sends again; a refused send was never stored, so its retry is new.
  std::this_thread::sleep_for(std::chrono::milliseconds(1'100));
  const std::optional<im::v1::SendResp> retry = phone->SendToConv(conv, "phone-3", "m3");
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->status().code(), im::v1::OK) << retry->ShortDebugString();
}

TEST(AbuseLimitsTest, AGroupHasARatePerSenderThatLeavesTheirOtherChatsAlone) {
  LocalCluster cluster(Limited());
  ASSERT_TRUE(cluster.Start());
  auto carol = cluster.Device("carol", "phone");
  auto dave = cluster.Device("dave", "phone");
  ASSERT_TRUE(carol->Login(cluster.client_port(0)));
  ASSERT_TRUE(dave->Login(cluster.client_port(1)));
  const std::optional<im::v1::GroupCreateResp> created =
      carol->GroupCreate("limits", {cluster.Uid("dave")});
  ASSERT_TRUE(created && created->status().code() == im::v1::OK);
  const std::string group = created->conv_id();

  const Tally in_group = Count(carol->SendPipelined(Sends(group, "g-", 4), 4), 1'000);
  EXPECT_GE(in_group.ok, kGroupBurst);
  EXPECT_LE(in_group.ok, kGroupBurst + 1);
  EXPECT_EQ(in_group.ok + in_group.limited, 4);
  // Her own rate has room left for a single chat, and dave's for the group.
  const std::optional<im::v1::SendResp> single =
      carol->SendToConv(SingleChat(cluster.Uid("carol"), cluster.Uid("dave")), "s-0", "hi");
  ASSERT_TRUE(single.has_value());
  EXPECT_EQ(single->status().code(), im::v1::OK) << single->ShortDebugString();
  const std::optional<im::v1::SendResp> from_dave = dave->SendToConv(group, "d-0", "hello");
  ASSERT_TRUE(from_dave.has_value());
  EXPECT_EQ(from_dave->status().code(), im::v1::OK) << from_dave->ShortDebugString();
}

}  // namespace
}  // namespace im::e2e
