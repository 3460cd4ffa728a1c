// SessionService on in-process backends: token checks, device sessions, the device cap and
// compare-and-delete disconnects.
#include "logic/session/session_service.h"

#include <gtest/gtest.h>

#include <optional>

#include "common/token.h"
#include "logic/tests/logic_fixture.h"

namespace im::logic::testing {
namespace {

class SessionServiceTest : public LogicFixture {
 protected:
  std::string Token(const std::string& uid, int64_t exp_offset_sec = 3600,
                    const std::string& device = {}) {
    return common::SignToken({uid, now_ms_.load() / 1000 + exp_offset_sec, device}, kSecret);
  }

  im::v1::LoginReply Login(const std::string& token, const std::string& device, uint64_t conn_id,
                           const std::string& gateway = "gw-1", const std::string& platform = "") {
    im::v1::LoginRequest request;
    request.mutable_req()->set_token(token);
    request.mutable_req()->set_device(device);
    request.mutable_req()->set_platform(platform);
    request.set_gateway_id(gateway);
    request.set_conn_id(conn_id);
    return session_service_->Login(request);
  }

  std::vector<std::string> DevicesOf(const std::string& uid) {
    std::vector<std::string> devices;
    absl::StatusOr<std::vector<store::Session>> sessions = sessions_->Lookup(uid);
    for (const store::Session& s : *sessions) devices.push_back(s.device);
    return devices;
  }
};

TEST_F(SessionServiceTest, GoodTokenRegistersTheSession) {
  im::v1::LoginReply reply = Login(Token("alice"), "phone", 11);
  ASSERT_EQ(reply.resp().status().code(), im::v1::OK) << reply.resp().status().message();
  EXPECT_EQ(reply.resp().uid(), "alice");
  EXPECT_EQ(reply.device(), "phone");
  EXPECT_EQ(reply.resp().server_time_ms(), kStartMs);
  EXPECT_FALSE(reply.resp().session_id().empty());
  auto sessions = sessions_->Lookup("alice");
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_TRUE((*sessions)[0].IsAt("gw-1", 11));
}

TEST_F(SessionServiceTest, TheSessionKeepsThePlatformAndABadOneIsRefused) {
  ASSERT_EQ(Login(Token("alice"), "phone", 11, "gw-1", "android").resp().status().code(),
            im::v1::OK);
  absl::StatusOr<std::vector<store::Session>> sessions = sessions_->Lookup("alice");
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ((*sessions)[0].platform, "android");
  for (const std::string& bad : {std::string("a|b"), std::string(33, 'x'), std::string("tab\t")}) {
    const im::v1::LoginReply refused = Login(Token("bob"), "phone", 12, "gw-1", bad);
    EXPECT_EQ(refused.resp().status().code(), im::v1::INVALID_ARGUMENT) << bad;
    EXPECT_NE(refused.resp().status().message().find("platform"), std::string::npos);
  }
  EXPECT_TRUE(sessions_->Lookup("bob")->empty());
}

TEST_F(SessionServiceTest, BadTokensAreRefusedWithTheirCode) {
  EXPECT_EQ(Login("not-a-token", "phone", 1).resp().status().code(), im::v1::TOKEN_INVALID);
  EXPECT_EQ(Login(common::SignToken({"alice", kStartMs / 1000 + 60, ""}, "another-secret-xyz"),
                  "phone", 1)
                .resp()
                .status()
                .code(),
            im::v1::TOKEN_INVALID);
  EXPECT_EQ(Login(Token("alice", -10), "phone", 1).resp().status().code(), im::v1::TOKEN_EXPIRED);
  EXPECT_EQ(Login(Token("alice", 60, "tablet"), "phone", 1).resp().status().code(),
            im::v1::TOKEN_INVALID);
  EXPECT_EQ(Login(Token("bad:uid"), "phone", 1).resp().status().code(), im::v1::TOKEN_INVALID);
  EXPECT_EQ(Login(Token("alice"), "", 1).resp().status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_TRUE(sessions_->Lookup("alice")->empty());
}

TEST_F(SessionServiceTest, SameDeviceAgainReplacesTheOldConnectionAndAStaleDisconnectKeepsIt) {
  ASSERT_EQ(Login(Token("alice"), "phone", 1, "gw-1").resp().status().code(), im::v1::OK);
  ASSERT_EQ(Login(Token("alice"), "phone", 2, "gw-2").resp().status().code(), im::v1::OK);
  im::v1::DisconnectRequest stale;
  stale.mutable_caller()->set_uid("alice");
  stale.mutable_caller()->set_device("phone");
  stale.mutable_caller()->set_gateway_id("gw-1");
  stale.mutable_caller()->set_conn_id(1);
  EXPECT_FALSE(session_service_->Disconnect(stale).removed());
  auto sessions = sessions_->Lookup("alice");
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_TRUE((*sessions)[0].IsAt("gw-2", 2));

  im::v1::DisconnectRequest current = stale;
  current.mutable_caller()->set_gateway_id("gw-2");
  current.mutable_caller()->set_conn_id(2);
  EXPECT_TRUE(session_service_->Disconnect(current).removed());
  EXPECT_TRUE(sessions_->Lookup("alice")->empty());
}

TEST_F(SessionServiceTest, DisconnectManyRemovesTheSessionsStillOnTheirConnections) {
  ASSERT_EQ(Login(Token("amy"), "phone", 1).resp().status().code(), im::v1::OK);
  ASSERT_EQ(Login(Token("ben"), "phone", 2).resp().status().code(), im::v1::OK);
  ASSERT_EQ(Login(Token("cat"), "phone", 3).resp().status().code(), im::v1::OK);
  ASSERT_EQ(Login(Token("cat"), "phone", 4).resp().status().code(), im::v1::OK);  // took over
  im::v1::DisconnectManyRequest batch;
  for (auto [uid, conn_id] : {std::pair{"amy", 1}, std::pair{"ben", 2}, std::pair{"cat", 3}}) {
    im::v1::Caller* caller = batch.add_disconnects()->mutable_caller();
    caller->set_uid(uid);
    caller->set_device("phone");
    caller->set_gateway_id("gw-1");
    caller->set_conn_id(conn_id);
  }
  EXPECT_EQ(session_service_->DisconnectMany(batch).removed(), 2u);
  EXPECT_TRUE(DevicesOf("amy").empty());
  EXPECT_TRUE(DevicesOf("ben").empty());
  EXPECT_EQ(DevicesOf("cat"), std::vector<std::string>{"phone"}) << "cat's newer connection";
}

TEST_F(SessionServiceTest, DeviceCapKicksTheLeastRecentDevice) {
  options_.max_devices_per_user = 2;
  Login(Token("alice"), "phone", 1);
  now_ms_ += 10;
  Login(Token("alice"), "tablet", 2);
  now_ms_ += 10;
  ASSERT_EQ(Login(Token("alice"), "laptop", 3).resp().status().code(), im::v1::OK);
  EXPECT_EQ(DevicesOf("alice"), (std::vector<std::string>{"laptop", "tablet"}));
}

TEST_F(SessionServiceTest, DeviceCapCanRefuseTheNewDevice) {
  options_.max_devices_per_user = 1;
  options_.device_limit_policy = DeviceLimitPolicy::kRefuse;
  Login(Token("alice"), "phone", 1);
  EXPECT_EQ(Login(Token("alice"), "tablet", 2).resp().status().code(), im::v1::TOO_MANY_DEVICES);
  EXPECT_EQ(DevicesOf("alice"), (std::vector<std::string>{"phone"}));
  // The same device logging in again is not a new device.
  EXPECT_EQ(Login(Token("alice"), "phone", 3).resp().status().code(), im::v1::OK);
}

// The in-process registry behind a loop's interface, answering at once on the caller's thread:
// what LoginManyOnLoop does with the answers, apart from the Redis client (store tests cover it).
class AnsweringAtOnce final : public store::AsyncSessionRegistry {
 public:
  explicit AnsweringAtOnce(store::SessionRegistry* registry) : registry_(registry) {}
  void LookupMany(const std::vector<std::string>& uids, LookupDone done) override {
    std::move(done)(registry_->LookupMany(uids));
  }
  void RegisterAndList(const std::vector<Registration>& registrations, RegisterDone done) override {
    std::move(done)(registry_->RegisterAndList(registrations));
  }
  void UnregisterAll(const std::vector<Registration>& sessions, Done done) override {
    for (const auto& [uid, session] : sessions) {
      ++unregistered;
      (void)registry_->Unregister(uid, session.device, session.gateway_id, session.conn_id);
    }
    std::move(done)(absl::OkStatus());
  }
  int unregistered = 0;

 private:
  store::SessionRegistry* registry_;
};

class SessionBatchTest : public SessionServiceTest, public ::testing::WithParamInterface<bool> {
 protected:
  static im::v1::LoginRequest Request(const std::string& token, const std::string& device,
                                      uint64_t conn_id) {
    im::v1::LoginRequest login;
    login.mutable_req()->set_token(token);
    login.mutable_req()->set_device(device);
    login.set_gateway_id("gw-1");
    login.set_conn_id(conn_id);
    return login;
  }
  // LoginMany, or LoginManyOnLoop when the test's parameter says so.
  std::vector<im::v1::LoginReply> LoginBatch(const std::vector<im::v1::LoginRequest>& requests) {
    if (!GetParam()) return session_service_->LoginMany(requests);
    std::optional<std::vector<im::v1::LoginReply>> replies;
    session_service_->LoginManyOnLoop(
        requests, &on_loop_,
        [&](std::vector<im::v1::LoginReply> answered) { replies = std::move(answered); });
    EXPECT_TRUE(replies.has_value());
    return replies ? std::move(*replies) : std::vector<im::v1::LoginReply>(requests.size());
  }

  AnsweringAtOnce on_loop_{sessions_.get()};
};

INSTANTIATE_TEST_SUITE_P(BlockingAndOnLoop, SessionBatchTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "OnLoop" : "Blocking";
                         });

// A stream batch's logins: each answered with its own status; the cap applies as if they had
// come one after the other (a user with two logins in the batch keeps the one that came first).
TEST_P(SessionBatchTest, EachLoginIsAnsweredAsIfTheyCameApart) {
  options_.max_devices_per_user = 1;
  options_.device_limit_policy = DeviceLimitPolicy::kRefuse;
  const std::vector<im::v1::LoginReply> replies = LoginBatch({
      Request(Token("alice"), "phone", 1),
      Request("not-a-token", "phone", 2),
      Request(Token("bob"), "phone", 3),
      Request(Token("alice"), "tablet", 4),  // alice's second device: over the cap
      Request(Token("carol"), "laptop", 5),
  });
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_EQ(replies[0].resp().status().code(), im::v1::OK);
  EXPECT_EQ(replies[0].resp().uid(), "alice");
  EXPECT_EQ(replies[1].resp().status().code(), im::v1::TOKEN_INVALID);
  EXPECT_EQ(replies[2].resp().status().code(), im::v1::OK);
  EXPECT_EQ(replies[2].resp().uid(), "bob");
  EXPECT_EQ(replies[3].resp().status().code(), im::v1::TOO_MANY_DEVICES);
  EXPECT_EQ(replies[4].resp().status().code(), im::v1::OK);
  EXPECT_EQ(DevicesOf("alice"), (std::vector<std::string>{"phone"}));
  EXPECT_EQ(DevicesOf("bob"), (std::vector<std::string>{"phone"}));
  EXPECT_EQ(DevicesOf("carol"), (std::vector<std::string>{"laptop"}));
}

// Two new devices of one user in one batch, past a cap that kicks the least recent: the second
// sees what the first took out, so each older device is taken out once and both new ones stay.
TEST_P(SessionBatchTest, TwoNewDevicesInOneBatchTakeOutEachOlderDeviceOnce) {
  options_.max_devices_per_user = 2;
  Login(Token("alice"), "phone", 1);
  now_ms_ += 10;
  Login(Token("alice"), "tablet", 2);
  now_ms_ += 10;
  const std::vector<im::v1::LoginReply> replies =
      LoginBatch({Request(Token("alice"), "laptop", 3), Request(Token("alice"), "watch", 4)});
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].resp().status().code(), im::v1::OK);
  EXPECT_EQ(replies[1].resp().status().code(), im::v1::OK);
  EXPECT_EQ(DevicesOf("alice"), (std::vector<std::string>{"laptop", "watch"}));
  if (GetParam()) {
    EXPECT_EQ(on_loop_.unregistered, 2) << "phone and tablet, once each";
  }
}

TEST_F(SessionServiceTest, RefreshReportsConnectionsThatLostTheirSession) {
  Login(Token("alice"), "phone", 1);
  Login(Token("bob"), "phone", 2);
  Login(Token("bob"), "phone", 3);  // takes over bob's session
  im::v1::RefreshSessionsRequest request;
  request.set_gateway_id("gw-1");
  for (auto [uid, conn] :
       std::vector<std::pair<std::string, uint64_t>>{{"alice", 1}, {"bob", 2}, {"carol", 4}}) {
    auto* ref = request.add_sessions();
    ref->set_uid(uid);
    ref->set_device("phone");
    ref->set_conn_id(conn);
  }
  im::v1::RefreshSessionsReply reply = session_service_->RefreshSessions(request);
  EXPECT_EQ(std::vector<uint64_t>(reply.stale_conn_ids().begin(), reply.stale_conn_ids().end()),
            (std::vector<uint64_t>{2, 4}));
}

TEST_F(SessionServiceTest, GatewayRegistrationIsStoredWithItsTtl) {
  im::v1::RegisterGatewayRequest request;
  request.set_gateway_id("gw-9");
  request.set_push_address("10.0.0.9:7200");
  auto reply = session_service_->RegisterGateway(request);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->ttl_ms(), options_.gateway_ttl_sec * 1000);
  EXPECT_EQ((*gateways_->Get({"gw-9"}))[0], "10.0.0.9:7200");
  now_ms_ += reply->ttl_ms();
  EXPECT_FALSE((*gateways_->Get({"gw-9"}))[0].has_value());

  request.set_gateway_id("bad|id");
  EXPECT_EQ(session_service_->RegisterGateway(request).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace im::logic::testing
