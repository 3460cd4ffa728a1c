// The admin API (logic/admin, docs/admin-api.md) against the real binaries, as an app server uses
// it: sends as the system and as a user reach online devices by push and offline ones by sync;
// a muted user's (and a muted group's members') sends are refused MUTED until the mute is lifted;
// revoked tokens are kicked and refused while newer ones log in; group changes appear in the
// group as SYSTEM notices, in order. On the cluster there are two logic nodes, and the admin
// calls go to the first while the devices' requests may reach either: what one node puts in
// force, the other applies within logic.restrictions_reload_ms.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/clock.h"
#include "common/token.h"
#include "im/v1/client.pb.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/admin_client.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {
namespace {

constexpr Millis kInForce(10'000);  // a restriction reaches every node well within this

class AdminApiTest : public DeploymentTest {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.logic_nodes = 2;
    deployment_ = Deploy(options);
    ASSERT_TRUE(deployment_->Start());
    admin_ =
        std::make_unique<AdminClient>(deployment_->admin_api_port(0), ChatDeployment::kAdminKey);
  }

  std::string Uid(const std::string& name) const { return deployment_->Uid(name); }
  std::unique_ptr<TestDevice> Online(const std::string& name) {
    std::unique_ptr<TestDevice> device = deployment_->Device(name, "phone");
    EXPECT_TRUE(device->Login(deployment_->client_port(0))) << name;
    return device;
  }
  // Creates group `name` owned by `owner` with `members`; returns its id.
  std::string CreateGroup(const std::string& name, const std::string& owner,
                          const std::vector<std::string>& members) {
    const std::string group_id = Uid(name);
    AdminAnswer created = admin_->Post(
        "/v1/groups",
        {{"group_id", group_id}, {"name", name}, {"owner", owner}, {"members", members}});
    EXPECT_EQ(created.status, 201) << created.body.dump();
    return group_id;
  }
  // Sends until the answer's code is `code` (a restriction put through one node reaches the
  // others within the reload interval); returns the last answer's code.
  im::v1::Code SendUntil(TestDevice& device, const std::string& conv_id, im::v1::Code code) {
    im::v1::Code last = im::v1::UNKNOWN;
    device.WaitUntil(
        [&] {
          std::optional<im::v1::SendResp> sent =
              device.SendToConv(conv_id, "try-" + std::to_string(++attempts_), "hello");
          last = sent ? sent->status().code() : im::v1::UNKNOWN;
          return last == code;
        },
        kInForce);
    return last;
  }

  std::unique_ptr<ChatDeployment> deployment_;
  std::unique_ptr<AdminClient> admin_;
  int attempts_ = 0;
};

nlohmann::json NoticeOf(const im::v1::Message& message) {
  EXPECT_EQ(message.type(), im::v1::SYSTEM);
  EXPECT_EQ(message.sender(), "@system");
  return nlohmann::json::parse(message.body(), nullptr, /*allow_exceptions=*/false);
}

bool WaitForNotices(TestDevice& device, const std::string& conv_id, size_t count) {
  return device.WaitUntil([&] { return device.Notices(conv_id).size() >= count; }, Millis(10'000));
}

std::string SingleConv(const std::string& a, const std::string& b) {
  return a < b ? "s:" + a + ":" + b : "s:" + b + ":" + a;
}

TEST_P(AdminApiTest, SendsReachOnlineDevicesByPushAndOfflineOnesBySync) {
  std::unique_ptr<TestDevice> alice = Online("alice");
  const std::string system_conv = SingleConv("@system", Uid("alice"));
  // Ids are unique per sender, and the system is one sender for every test run: prefixed.
  AdminAnswer sent = admin_->Post("/v1/messages", {{"id", Uid("welcome")},
                                                   {"to_uid", Uid("alice")},
                                                   {"type", "SYSTEM"},
                                                   {"body", "welcome aboard"}});
  ASSERT_EQ(sent.status, 200) << sent.body.dump();
  EXPECT_EQ(sent.body["conv_id"], system_conv);
  ASSERT_TRUE(WaitForNotices(*alice, system_conv, 1));
  const im::v1::Message pushed = alice->Notices(system_conv).front();
  EXPECT_EQ(pushed.sender(), "@system");
  EXPECT_EQ(pushed.type(), im::v1::SYSTEM);
  EXPECT_EQ(pushed.body(), "welcome aboard");
  EXPECT_EQ(std::to_string(pushed.msg_id()), sent.body["msg_id"]);

  // bob is offline: he gets the group's messages by sync when he comes.
  const std::string group_id = CreateGroup("team", Uid("alice"), {Uid("bob")});
  const std::string group_conv = "g:" + group_id;
  const nlohmann::json hello = {
      {"id", "hello-1"}, {"from", Uid("alice")}, {"group_id", group_id}, {"body", "hi team"}};
  AdminAnswer first = admin_->Post("/v1/messages", hello);
  ASSERT_EQ(first.status, 200) << first.body.dump();
  AdminAnswer repeated = admin_->Post("/v1/messages", hello);
  ASSERT_EQ(repeated.status, 200) << repeated.body.dump();
  EXPECT_EQ(repeated.body["seq"], first.body["seq"]) << "the same id is the same message";
  EXPECT_EQ(repeated.body["msg_id"], first.body["msg_id"]);
  // alice sent it through the API, not from this device: the device is pushed it too.
  ASSERT_TRUE(alice->WaitForPushed(group_conv, 1, Millis(10'000)));
  EXPECT_TRUE(WaitForNotices(*alice, group_conv, 1)) << "group_created";

  std::unique_ptr<TestDevice> bob = Online("bob");
  TestDevice::SyncResult synced = bob->SyncAll(group_conv, 0, 50);
  ASSERT_TRUE(synced.ok) << synced.error;
  ASSERT_EQ(synced.messages.size(), 2u);
  EXPECT_EQ(NoticeOf(synced.messages[0])["event"], "group_created");
  EXPECT_EQ(synced.messages[1].sender(), Uid("alice"));
  EXPECT_EQ(synced.messages[1].body(), "hi team");
  EXPECT_EQ(synced.messages[1].seq(), first.body["seq"].get<uint64_t>());
  EXPECT_EQ(synced.messages[1].client_msg_id(), "api:hello-1");

  // As a user to a user: both devices are pushed, and history shows it.
  AdminAnswer direct = admin_->Post(
      "/v1/messages",
      {{"id", "dm-1"}, {"from", Uid("alice")}, {"to_uid", Uid("bob")}, {"body_base64", "AAEC"}});
  ASSERT_EQ(direct.status, 200) << direct.body.dump();
  const std::string dm_conv = SingleConv(Uid("alice"), Uid("bob"));
  ASSERT_TRUE(bob->WaitForPushed(dm_conv, 1, Millis(10'000)));
  EXPECT_EQ(bob->Pushed(dm_conv).front().message.body(), std::string("\0\1\2", 3));
  AdminAnswer history = admin_->Get("/v1/conversations/" + dm_conv + "/messages?limit=10");
  ASSERT_EQ(history.status, 200) << history.body.dump();
  ASSERT_EQ(history.body["messages"].size(), 1u);
  EXPECT_EQ(history.body["messages"][0]["body_base64"], "AAEC");

  // The system is no member of a group that does not exist.
  AdminAnswer nowhere = admin_->Post(
      "/v1/messages", {{"id", "x"}, {"group_id", Uid("no-such-group")}, {"body", "anyone?"}});
  EXPECT_EQ(nowhere.status, 404) << nowhere.body.dump();
  // A user sends only where it is a member.
  AdminAnswer stranger = admin_->Post(
      "/v1/messages",
      {{"id", "x"}, {"from", Uid("carol")}, {"group_id", group_id}, {"body", "let me in"}});
  EXPECT_EQ(stranger.status, 403) << stranger.body.dump();
  EXPECT_EQ(stranger.body["error"]["code"], "NOT_MEMBER");
}

TEST_P(AdminApiTest, MutedUsersAndMutedGroupsMembersAreRefusedUntilLifted) {
  std::unique_ptr<TestDevice> alice = Online("alice");
  std::unique_ptr<TestDevice> bob = Online("bob");
  const std::string dm_conv = SingleConv(Uid("alice"), Uid("bob"));

  AdminAnswer muted = admin_->Put("/v1/users/" + Uid("bob") + "/mute", {{"duration_sec", 600}});
  ASSERT_EQ(muted.status, 200) << muted.body.dump();
  EXPECT_GT(muted.body["muted_until_ms"].get<int64_t>(), common::UnixMillis());
  EXPECT_EQ(SendUntil(*bob, dm_conv, im::v1::MUTED), im::v1::MUTED);
  AdminAnswer state = admin_->Get("/v1/users/" + Uid("bob") + "/state");
  ASSERT_EQ(state.status, 200);
  EXPECT_EQ(state.body["muted_until_ms"], muted.body["muted_until_ms"]);
  EXPECT_TRUE(state.body["online"].get<bool>());
  // The app server speaking for a muted user is muted too; the system speaks.
  AdminAnswer for_bob = admin_->Post(
      "/v1/messages", {{"id", "m"}, {"from", Uid("bob")}, {"to_uid", Uid("alice")}, {"body", "x"}});
  EXPECT_EQ(for_bob.status, 403) << for_bob.body.dump();
  EXPECT_EQ(for_bob.body["error"]["code"], "MUTED");
  EXPECT_EQ(admin_->Post("/v1/messages", {{"id", Uid("to-bob")}, {"to_uid", Uid("bob")}}).status,
            200);

  AdminAnswer lifted = admin_->Delete("/v1/users/" + Uid("bob") + "/mute");
  ASSERT_EQ(lifted.status, 200);
  EXPECT_TRUE(lifted.body["lifted"].get<bool>());
  EXPECT_EQ(SendUntil(*bob, dm_conv, im::v1::OK), im::v1::OK);
  EXPECT_FALSE(admin_->Delete("/v1/users/" + Uid("bob") + "/mute").body["lifted"].get<bool>());

  // A muted group: its MEMBERs are refused, its OWNER speaks.
  const std::string group_id = CreateGroup("quiet", Uid("alice"), {Uid("bob")});
  const std::string group_conv = "g:" + group_id;
  ASSERT_EQ(admin_->Put("/v1/groups/" + group_id + "/mute", {{"duration_sec", 600}}).status, 200);
  EXPECT_EQ(SendUntil(*bob, group_conv, im::v1::MUTED), im::v1::MUTED);
  std::optional<im::v1::SendResp> owner = alice->SendToConv(group_conv, "owner-1", "announcement");
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->status().code(), im::v1::OK) << owner->status().message();
  EXPECT_GT(admin_->Get("/v1/groups/" + group_id).body["muted_until_ms"].get<int64_t>(), 0);
  ASSERT_EQ(admin_->Delete("/v1/groups/" + group_id + "/mute").status, 200);
  EXPECT_EQ(SendUntil(*bob, group_conv, im::v1::OK), im::v1::OK);
}

TEST_P(AdminApiTest, RevokedTokensAreKickedAndRefusedNewerOnesLogIn) {
  const std::string uid = Uid("alice");
  const int64_t now_sec = common::UnixMillis() / 1000;
  common::TokenClaims old_claims{uid, now_sec + 3600, "", now_sec - 120};
  const std::string old_token = common::SignToken(old_claims, ChatDeployment::kTokenSecret);
  TestDevice alice(uid, "phone", old_token);
  ASSERT_TRUE(alice.Login(deployment_->client_port(0)));

  AdminAnswer revoked = admin_->Post("/v1/users/" + uid + "/revoke-tokens",
                                     {{"issued_before_ms", (now_sec - 60) * 1000}});
  ASSERT_EQ(revoked.status, 200) << revoked.body.dump();
  EXPECT_EQ(revoked.body["kicked"], 1);
  ASSERT_TRUE(alice.WaitClosed(Millis(10'000))) << "the revoked connection stays open";
  ASSERT_FALSE(alice.kicks().empty());
  EXPECT_EQ(alice.kicks().back().reason(), im::v1::Kick::TOKEN_REVOKED);

  // The old token is refused (on every node, once the revocation reached it).
  im::v1::Code refused = im::v1::UNKNOWN;
  alice.WaitUntil(
      [&] {
        std::optional<im::v1::LoginResp> login = alice.Connect(deployment_->client_port(1));
        refused = login ? login->status().code() : im::v1::UNKNOWN;
        alice.Disconnect();
        return refused == im::v1::TOKEN_REVOKED;
      },
      kInForce);
  EXPECT_EQ(refused, im::v1::TOKEN_REVOKED);
  // A token issued after the revocation's time logs in.
  alice.set_token(ChatDeployment::Token(uid));
  EXPECT_TRUE(alice.Login(deployment_->client_port(0)));
  AdminAnswer state = admin_->Get("/v1/users/" + uid + "/state");
  EXPECT_EQ(state.body["tokens_revoked_before_ms"], (now_sec - 60) * 1000);
}

TEST_P(AdminApiTest, GroupChangesAppearAsSystemNoticesInOrder) {
  std::unique_ptr<TestDevice> alice = Online("alice");
  std::unique_ptr<TestDevice> bob = Online("bob");
  const std::string group_id = CreateGroup("club", Uid("alice"), {Uid("bob")});
  const std::string conv = "g:" + group_id;
  const std::string members = "/v1/groups/" + group_id + "/members";
  ASSERT_EQ(admin_->Post(members, {{"uids", {Uid("carol"), Uid("dave")}}}).status, 200);
  ASSERT_EQ(admin_->Put(members + "/" + Uid("bob") + "/role", {{"role", "ADMIN"}}).status, 200);
  ASSERT_EQ(admin_->Post(members + "/remove", {{"uids", {Uid("dave")}}}).status, 200);
  // A client's own change is announced as well, naming who made it.
  std::optional<im::v1::GroupJoinResp> invited = alice->GroupJoin(group_id, {Uid("erin")});
  ASSERT_TRUE(invited.has_value());
  ASSERT_EQ(invited->status().code(), im::v1::OK);

  const std::vector<std::string> expected = {"group_created", "member_joined", "role_changed",
                                             "member_removed", "member_joined"};
  ASSERT_TRUE(WaitForNotices(*bob, conv, expected.size()));
  std::vector<im::v1::Message> pushed = bob->Notices(conv);
  ASSERT_EQ(pushed.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(NoticeOf(pushed[i])["event"], expected[i]) << i;
    if (i > 0) {
      EXPECT_GT(pushed[i].seq(), pushed[i - 1].seq());
    }
  }
  EXPECT_EQ(NoticeOf(pushed[1])["uids"], nlohmann::json::array({Uid("carol"), Uid("dave")}));
  EXPECT_EQ(NoticeOf(pushed[2])["role"], "ADMIN");
  EXPECT_EQ(NoticeOf(pushed[4])["by"], Uid("alice"));

  // Dismissal: the last notice, then the group is gone and history stays readable here.
  AdminAnswer dismissed = admin_->Delete("/v1/groups/" + group_id);
  ASSERT_EQ(dismissed.status, 200) << dismissed.body.dump();
  EXPECT_EQ(dismissed.body["members"], 4);  // alice, bob, carol, erin
  EXPECT_EQ(admin_->Get("/v1/groups/" + group_id).status, 404);
  AdminAnswer history = admin_->Get("/v1/conversations/" + conv + "/messages?limit=50");
  ASSERT_EQ(history.status, 200);
  const std::string last_body = history.body["messages"].back()["body_base64"].get<std::string>();
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(last_body, &decoded));
  EXPECT_EQ(nlohmann::json::parse(decoded)["event"], "group_dismissed");
  std::optional<im::v1::SendResp> after = bob->SendToConv(conv, "after-1", "anyone?");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status().code(), im::v1::NOT_MEMBER);
}

IM_INSTANTIATE_DEPLOYMENTS(AdminApiTest);

}  // namespace
}  // namespace im::e2e
