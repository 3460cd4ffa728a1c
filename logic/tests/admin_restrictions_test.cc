// What the admin API puts on users and groups, as the services apply it (in-process backends, a
// fake clock): mutes refuse sends with MUTED until they lapse or are lifted, a muted group
// refuses its MEMBERs only, revoked tokens are refused TOKEN_REVOKED while newer ones log in,
// SYSTEM messages are the admin's alone, and the system speaks in any group without being a
// member. Restrictions put through another node are picked up on reload.
#include <gtest/gtest.h>

#include <thread>

#include "logic/admin/restrictions.h"
#include "logic/conversation/conversation_id.h"
#include "logic/ingress/request_dispatcher.h"
#include "logic/tests/logic_fixture.h"

namespace im::logic::testing {
namespace {

using store::Restriction;
using store::RestrictionKind;

class AdminRestrictionsTest : public LogicFixture {
 protected:
  void Mute(RestrictionKind kind, const std::string& subject, int64_t for_ms) {
    const int64_t now = now_ms_.load();
    ASSERT_TRUE(restrictions_->Put(Restriction{kind, subject, now, now + for_ms}).ok());
  }
  im::v1::SendResp SendAs(const im::v1::Caller& caller, const std::string& conv_id,
                          const std::string& client_msg_id,
                          im::v1::MessageType type = im::v1::TEXT) {
    im::v1::SendRequest request;
    *request.mutable_caller() = caller;
    request.mutable_req()->set_conv_id(conv_id);
    request.mutable_req()->set_client_msg_id(client_msg_id);
    request.mutable_req()->set_type(type);
    request.mutable_req()->set_body("hello");
    return Call(&ChatService::Send, request);
  }
  static im::v1::Caller Admin(const std::string& uid) {
    im::v1::Caller caller;
    caller.set_uid(uid);
    caller.set_admin(true);
    return caller;
  }
  std::string Group(const std::string& owner, const std::vector<std::string>& members) {
    im::v1::GroupCreateRequest request;
    *request.mutable_caller() = CallerOf(owner);
    request.mutable_req()->set_name("team");
    for (const std::string& uid : members) request.mutable_req()->add_members(uid);
    im::v1::GroupCreateResp created = Call(&GroupService::Create, request);
    EXPECT_EQ(created.status().code(), im::v1::OK) << created.status().message();
    return created.group_id();
  }
  im::v1::Code LoginCode(const common::TokenClaims& claims) {
    im::v1::LoginRequest request;
    request.mutable_req()->set_token(common::SignToken(claims, kSecret));
    request.mutable_req()->set_device("phone");
    request.set_gateway_id("gw-1");
    request.set_conn_id(7);
    return session_service_->Login(request).resp().status().code();
  }
};

TEST_F(AdminRestrictionsTest, AMutedUserIsRefusedUntilTheMuteLapsesTheSystemStillSpeaks) {
  Mute(RestrictionKind::kUserMute, "bob", 60'000);
  EXPECT_EQ(Send("bob", "alice", "m1").status().code(), im::v1::MUTED);
  EXPECT_EQ(Send("alice", "bob", "m2").status().code(), im::v1::OK) << "only bob is muted";
  EXPECT_EQ(SendAs(Admin("bob"), "s:alice:bob", "api:1").status().code(), im::v1::MUTED)
      << "the app server speaking for a muted user is muted too";
  EXPECT_EQ(SendAs(Admin(kSystemUid), "s:@system:bob", "api:2").status().code(), im::v1::OK);
  now_ms_ += 60'000;
  EXPECT_EQ(Send("bob", "alice", "m3").status().code(), im::v1::OK) << "the mute lapsed";
  Mute(RestrictionKind::kUserMute, "bob", 60'000);
  ASSERT_TRUE(*restrictions_->Remove(RestrictionKind::kUserMute, "bob"));
  EXPECT_EQ(Send("bob", "alice", "m4").status().code(), im::v1::OK) << "the mute was lifted";
}

TEST_F(AdminRestrictionsTest, AMutedGroupRefusesItsMembersButNotItsOwnerOrAdmins) {
  const std::string group = Group("owner", {"member"});
  Mute(RestrictionKind::kGroupMute, group, 60'000);
  EXPECT_EQ(SendAs(CallerOf("member"), "g:" + group, "a").status().code(), im::v1::MUTED);
  EXPECT_EQ(SendAs(CallerOf("owner"), "g:" + group, "b").status().code(), im::v1::OK);
  EXPECT_EQ(SendAs(Admin(kSystemUid), "g:" + group, "c").status().code(), im::v1::OK);
}

TEST_F(AdminRestrictionsTest, SystemMessagesAreTheAdminsAndTheSystemSpeaksInAnyGroup) {
  const std::string group = Group("owner", {"member"});
  EXPECT_EQ(SendAs(CallerOf("member"), "g:" + group, "s1", im::v1::SYSTEM).status().code(),
            im::v1::INVALID_ARGUMENT);
  im::v1::SendResp notice = SendAs(Admin(kSystemUid), "g:" + group, "s2", im::v1::SYSTEM);
  ASSERT_EQ(notice.status().code(), im::v1::OK) << notice.status().message();
  // A client that names itself the system is a client: no member of the group.
  EXPECT_EQ(SendAs(CallerOf(kSystemUid), "g:" + group, "s3").status().code(), im::v1::NOT_MEMBER);
  im::v1::SyncResp synced = Sync("member", "g:" + group, 0);
  ASSERT_EQ(synced.messages_size(), 1);
  EXPECT_EQ(synced.messages(0).sender(), kSystemUid);
  EXPECT_EQ(synced.messages(0).type(), im::v1::SYSTEM);
}

TEST_F(AdminRestrictionsTest, RevokedTokensAreRefusedNewerOnesAndTheSystemUidNever) {
  const int64_t now_sec = now_ms_.load() / 1000;
  ASSERT_TRUE(restrictions_
                  ->Put(Restriction{RestrictionKind::kTokenRevocation, "alice",
                                    (now_sec - 10) * 1000, now_ms_.load() + 86'400'000})
                  .ok());
  EXPECT_EQ(LoginCode({"alice", now_sec + 3600, "", now_sec - 20}), im::v1::TOKEN_REVOKED);
  EXPECT_EQ(LoginCode({"alice", now_sec + 3600, "", 0}), im::v1::TOKEN_REVOKED)
      << "a token without iat was issued at an unknown time";
  EXPECT_EQ(LoginCode({"alice", now_sec + 3600, "", now_sec - 10}), im::v1::OK);
  EXPECT_EQ(LoginCode({"bob", now_sec + 3600, "", now_sec - 20}), im::v1::OK);
  EXPECT_EQ(LoginCode({kSystemUid, now_sec + 3600, "", now_sec}), im::v1::TOKEN_INVALID);
}

TEST_F(AdminRestrictionsTest, ClientsCannotClaimTheAdminFlagThroughTheDispatcher) {
  RequestDispatcher dispatcher(
      session_service_.get(), chat_.get(), group_service_.get(),
      /*presence=*/nullptr, /*sender_limits=*/nullptr,
      RequestDispatcher::Executors{executor_.get(), executor_.get()}, metrics_.get(),
      [this] { return now_ms_.load(); }, RequestDispatcher::Loops{});
  im::v1::Ingress entry;
  *entry.mutable_caller() = Admin(kSystemUid);
  entry.mutable_request()->set_id(1);
  im::v1::SendReq* send = entry.mutable_request()->mutable_send_req();
  send->set_conv_id("s:alice:bob");
  send->set_client_msg_id("forged");
  send->set_type(im::v1::SYSTEM);
  std::promise<im::v1::Frame> answer;
  dispatcher.Dispatch(entry, [&answer](std::optional<im::v1::Frame> frame) {
    answer.set_value(frame.value_or(im::v1::Frame()));
  });
  const im::v1::Frame answered = answer.get_future().get();
  EXPECT_EQ(answered.send_resp().status().code(), im::v1::INVALID_ARGUMENT)
      << "a gateway's caller is never admin: no SYSTEM, and the system is no participant";
}

TEST(RestrictionsReloadTest, WhatAnotherNodePutIsInForceAfterAReload) {
  store::InMemoryRestrictionStore store;
  std::atomic<int64_t> now_ms{kStartMs};
  Restrictions restrictions(
      &store, [&now_ms] { return now_ms.load(); }, std::chrono::milliseconds(20));
  restrictions.Start();
  EXPECT_EQ(restrictions.UserMutedUntil("bob"), 0);
  // Another node's Put: straight into the shared store.
  ASSERT_TRUE(store.Put({RestrictionKind::kUserMute, "bob", kStartMs, kStartMs + 5'000}).ok());
  for (int i = 0; i < 500 && restrictions.UserMutedUntil("bob") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(restrictions.UserMutedUntil("bob"), kStartMs + 5'000);
  ASSERT_TRUE(*store.Remove(RestrictionKind::kUserMute, "bob"));
  for (int i = 0; i < 500 && restrictions.UserMutedUntil("bob") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(restrictions.UserMutedUntil("bob"), 0);
  restrictions.Stop();
}

}  // namespace
}  // namespace im::logic::testing
