// End-to-end refusals: each bad login or request gets its own status code, the node keeps
// serving, and nothing is stored (DESIGN.md sections 3 to 5).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/token.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {
namespace {

constexpr uint32_t kMaxBodyBytes = 16384;  // logic.max_body_bytes, set explicitly below

bool IsOk(const std::optional<im::v1::SendResp>& resp) {
  return resp && resp->status().code() == im::v1::OK;
}

std::string Describe(const std::optional<im::v1::SendResp>& resp) {
  return resp ? resp->ShortDebugString() : "no SendResp";
}

ClusterOptions OneGateway() {
  ClusterOptions options;
  options.gateways = 1;
  options.logic_env = {{"IM_LOGIC_MAX_BODY_BYTES", std::to_string(kMaxBodyBytes)}};
  return options;
}

// Logs in with `token` and expects LoginResp.status == `code`, then the connection closed.
void ExpectLoginRefused(uint16_t port, const std::string& uid, const std::string& token,
                        im::v1::Code code, const char* what) {
  SCOPED_TRACE(what);
  TestDevice device(uid, "phone", token);
  const std::optional<im::v1::LoginResp> resp = device.Connect(port);
  ASSERT_TRUE(resp.has_value()) << "no LoginResp";
  EXPECT_EQ(resp->status().code(), code) << resp->ShortDebugString();
  EXPECT_TRUE(device.WaitClosed(Millis(10'000))) << "the refused connection stayed open";
}

TEST(BadInputTest, BadAndExpiredTokensAreRefused) {
  LocalCluster cluster(OneGateway());
  ASSERT_TRUE(cluster.Start());
  const uint16_t port = cluster.client_port(0);
  const std::string uid = cluster.Uid("mallory");

  common::TokenClaims claims;
  claims.uid = uid;
  claims.exp_unix_sec = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() +
                        3600;
  ExpectLoginRefused(port, uid, common::SignToken(claims, "not-the-cluster-secret"),
                     im::v1::TOKEN_INVALID, "signed with another secret");
  ExpectLoginRefused(port, uid, "not-a-token", im::v1::TOKEN_INVALID, "garbage");
  std::string tampered = LocalCluster::Token(uid);
  tampered[2] = tampered[2] == 'A' ? 'B' : 'A';
  ExpectLoginRefused(port, uid, tampered, im::v1::TOKEN_INVALID, "payload changed");
  ExpectLoginRefused(port, uid, LocalCluster::Token(uid, -60), im::v1::TOKEN_EXPIRED, "expired");
  ExpectLoginRefused(port, uid, LocalCluster::Token(uid, 3600, "laptop"), im::v1::TOKEN_INVALID,
                     "bound to another device");

  // The node still serves: a good token logs in and a send works.
  auto good = cluster.Device("mallory", "phone");
  ASSERT_TRUE(good->Login(port));
  const std::optional<im::v1::SendResp> resp = good->SendTo(cluster.Uid("bob"), "ok", "fine");
  ASSERT_TRUE(IsOk(resp)) << Describe(resp);
  EXPECT_EQ(resp->seq(), 1u);
}

TEST(BadInputTest, RequestBeforeLoginIsRefusedByTheGateway) {
  LocalCluster cluster(OneGateway());
  ASSERT_TRUE(cluster.Start());
  const uint16_t port = cluster.client_port(0);
  const std::string alice = cluster.Uid("alice");
  const std::string bob = cluster.Uid("bob");

  absl::StatusOr<std::unique_ptr<im::testing::WireClient>> client =
      im::testing::WireClient::Connect("127.0.0.1", port);
  ASSERT_TRUE(client.ok()) << client.status();
  im::v1::Frame send;
  send.set_id(7);
  send.mutable_send_req()->set_to_uid(bob);
  send.mutable_send_req()->set_client_msg_id("sneaky");
  send.mutable_send_req()->set_body("not logged in");
  ASSERT_TRUE((*client)->SendFrame(send));
  // gateway/connection.cc: anything but LoginReq first gets Error{UNAUTHENTICATED} (id 0) and
  // the connection is closed.
  const std::optional<im::v1::Frame> error = (*client)->Receive(Millis(10'000));
  ASSERT_TRUE(error.has_value()) << "no answer";
  ASSERT_TRUE(error->has_error()) << error->ShortDebugString();
  EXPECT_EQ(error->error().code(), im::v1::UNAUTHENTICATED);
  EXPECT_EQ(error->id(), 0u);
  EXPECT_TRUE((*client)->WaitClosed(Millis(10'000)));

  // Nothing was stored for anyone, and the node still serves.
  auto bob_phone = cluster.Device("bob", "phone");
  ASSERT_TRUE(bob_phone->Login(port));
  const TestDevice::ConversationsResult listed = bob_phone->ListConversations(10);
  ASSERT_TRUE(listed.ok) << listed.error;
  EXPECT_TRUE(listed.conversations.empty()) << listed.conversations.front().ShortDebugString();
  auto alice_phone = cluster.Device("alice", "phone");
  ASSERT_TRUE(alice_phone->Login(port));
  const std::optional<im::v1::SendResp> resp = alice_phone->SendTo(bob, "sneaky", "now I may");
  ASSERT_TRUE(IsOk(resp)) << Describe(resp);
  EXPECT_EQ(resp->seq(), 1u);
  EXPECT_EQ(resp->conv_id(), SingleConvId(alice, bob));
}

TEST(BadInputTest, InvalidSendsGetTheirCodesAndStoreNothing) {
  LocalCluster cluster(OneGateway());
  ASSERT_TRUE(cluster.Start());
  const uint16_t port = cluster.client_port(0);
  auto alice_phone = cluster.Device("alice", "phone");
  ASSERT_TRUE(alice_phone->Login(port));
  const std::string alice = alice_phone->uid();
  const std::string bob = cluster.Uid("bob");
  const std::string carol = cluster.Uid("carol");
  const std::string dave = cluster.Uid("dave");
  const std::string conv = SingleConvId(alice, bob);

  auto expect_code = [&](const std::optional<im::v1::SendResp>& resp, im::v1::Code code,
                         const std::string& what) {
    ASSERT_TRUE(resp.has_value()) << what << ": no SendResp";
    EXPECT_EQ(resp->status().code(), code) << what << ": " << resp->ShortDebugString();
    EXPECT_EQ(resp->seq(), 0u) << what;
  };
  for (const std::string& bad : {std::string("x:") + alice + ":" + bob, std::string("s:") + alice,
                                 std::string("s:"), std::string("g:"), std::string("hello")}) {
    expect_code(alice_phone->SendToConv(bad, "bad-conv", "hi"), im::v1::INVALID_CONVERSATION,
                "conv_id '" + bad + "'");
  }
  expect_code(alice_phone->SendToConv(SingleConvId(carol, dave), "not-mine", "hi"),
              im::v1::PERMISSION_DENIED, "a chat between two other users");
  expect_code(alice_phone->SendTo(bob, "too-big", std::string(kMaxBodyBytes + 1, 'x')),
              im::v1::BODY_TOO_LARGE, "body of max_body_bytes + 1");
  expect_code(alice_phone->SendTo(bob, "", "no id"), im::v1::INVALID_ARGUMENT,
              "empty client_msg_id");
  ASSERT_TRUE(alice_phone->connected()) << "a refused send closed the connection";

  // Nothing stored: no conversation for anyone involved.
  for (const char* name : {"alice", "bob", "carol", "dave"}) {
    auto device = cluster.Device(name, "tablet");
    ASSERT_TRUE(device->Login(port));
    const TestDevice::ConversationsResult listed = device->ListConversations(10);
    ASSERT_TRUE(listed.ok) << name << ": " << listed.error;
    EXPECT_TRUE(listed.conversations.empty())
        << name << " has " << listed.conversations.front().ShortDebugString();
  }

  // The node keeps serving. The client_msg_id of the refused oversized send is free (it was not
  // stored), no seq was spent on the refusals, and a body of exactly max_body_bytes is accepted.
  const std::optional<im::v1::SendResp> ok =
      alice_phone->SendTo(bob, "too-big", std::string(kMaxBodyBytes, 'y'));
  ASSERT_TRUE(IsOk(ok)) << Describe(ok);
  EXPECT_EQ(ok->seq(), 1u);
  EXPECT_EQ(ok->conv_id(), conv);
  const TestDevice::SyncResult synced = alice_phone->SyncAll(conv, 0, 10);
  ASSERT_TRUE(synced.ok) << synced.error;
  ASSERT_EQ(synced.messages.size(), 1u);
  EXPECT_EQ(synced.messages[0].body(), std::string(kMaxBodyBytes, 'y'));
  const TestDevice::ConversationsResult listed = alice_phone->ListConversations(10);
  ASSERT_TRUE(listed.ok) << listed.error;
  ASSERT_EQ(listed.conversations.size(), 1u);
  EXPECT_EQ(listed.conversations[0].conv_id(), conv);
  EXPECT_EQ(listed.conversations[0].max_seq(), 1u);
}

}  // namespace
}  // namespace im::e2e
