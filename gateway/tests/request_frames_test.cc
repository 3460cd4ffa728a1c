#include "gateway/request_frames.h"

#include <gtest/gtest.h>

#include "common/retry_hint.h"

namespace im::gateway {
namespace {

TEST(RequestFramesTest, LoginsAndSendsMaySeeLogicTwiceGroupChangesMayNot) {
  im::v1::Frame login;
  login.mutable_login_req()->set_device("phone");
  im::v1::Frame send;
  send.mutable_send_req()->set_client_msg_id("m1");
  im::v1::Frame create;
  create.mutable_group_create_req();
  im::v1::Frame join;
  join.mutable_group_join_req();
  EXPECT_TRUE(IsIdempotent(login));
  EXPECT_TRUE(IsIdempotent(send));
  EXPECT_FALSE(IsIdempotent(create));
  EXPECT_FALSE(IsIdempotent(join));
}

TEST(RequestFramesTest, ReadsAndRenewalsMaySeeLogicTwiceAResumeMayNot) {
  im::v1::Frame readers;
  readers.mutable_readers_req()->set_conv_id("g:team");
  im::v1::Frame renew;
  renew.mutable_resume_renew_req();
  im::v1::Frame resume;
  resume.mutable_resume_req();
  im::v1::Frame typing;
  typing.mutable_typing_req();
  im::v1::Frame watch;
  watch.mutable_presence_subscribe_req()->add_uids("bob");
  EXPECT_TRUE(IsIdempotent(readers));
  EXPECT_TRUE(IsIdempotent(renew));
  EXPECT_TRUE(IsIdempotent(watch)) << "it replaces the device's list";
  EXPECT_FALSE(IsIdempotent(resume)) << "its first page spends the token";
  EXPECT_FALSE(IsIdempotent(typing)) << "transient: not worth a second trip";
}

TEST(RequestFramesTest, AFailedLoginIsAnsweredWithALoginRespOfThatCode) {
  im::v1::Frame login;
  login.set_id(9);
  login.mutable_login_req()->set_device("phone");
  std::optional<im::v1::Frame> answer =
      FailureResponse(login, im::v1::UNAVAILABLE, "logic is unreachable");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->id(), 9u);
  ASSERT_TRUE(answer->has_login_resp());
  EXPECT_EQ(answer->login_resp().status().code(), im::v1::UNAVAILABLE);
  EXPECT_EQ(answer->login_resp().status().message(), "logic is unreachable");
  EXPECT_EQ(answer->login_resp().status().retry_after_ms(), 0u) << "no hint but for overload";
}

TEST(RequestFramesTest, AnOverloadRefusalCarriesARetryHint) {
  im::v1::Frame send;
  send.set_id(4);
  send.mutable_send_req()->set_client_msg_id("c-1");
  std::optional<im::v1::Frame> answer = FailureResponse(
      send, im::v1::RESOURCE_EXHAUSTED, "too many requests waiting for logic on this gateway");
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->has_send_resp());
  EXPECT_EQ(answer->send_resp().status().code(), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_EQ(answer->send_resp().status().retry_after_ms(), common::kOverloadRetryAfterMs);
}

}  // namespace
}  // namespace im::gateway
