// ChatService::Resume and ResumeRenew on in-process backends with a fake clock: only the
// conversations changed since the token's baseline (less the margin), each token good once.
#include <gtest/gtest.h>

#include "logic/conversation/chat_service.h"
#include "logic/session/resume_tokens.h"
#include "logic/tests/logic_fixture.h"

namespace im::logic::testing {
namespace {

class SessionResumeTest : public LogicFixture {
 protected:
  SessionResumeTest() : tokens_(kSecret, int64_t{options_.resume_window_sec} * 1000) {}

  im::v1::ResumeResp Resume(const std::string& uid, const std::string& token,
                            const std::string& page_token = "", uint32_t limit = 0,
                            uint64_t conn_id = 1) {
    im::v1::ResumeRequest request;
    *request.mutable_caller() = CallerOf(uid, conn_id);
    request.mutable_req()->set_resume_token(token);
    request.mutable_req()->set_page_token(page_token);
    request.mutable_req()->set_limit(limit);
    return Call(&ChatService::Resume, request);
  }
  static std::vector<std::string> ConvIds(const im::v1::ResumeResp& resp) {
    std::vector<std::string> ids;
    for (const im::v1::Conversation& c : resp.conversations()) ids.push_back(c.conv_id());
    return ids;
  }
  // The margin a resume reaches back by, past the baseline.
  int64_t MarginMs() const { return options_.resume_margin_ms; }

  ResumeTokens tokens_;
};

TEST_F(SessionResumeTest, OnlyConversationsChangedSinceTheBaselineComeBack) {
  for (const char* peer : {"bob", "carol", "dan"}) {
    ASSERT_EQ(Send("alice", peer, std::string("to-") + peer).status().code(), im::v1::OK);
  }
  now_ms_ += MarginMs() + 60'000;
  const std::string token = tokens_.Issue("alice", "phone", now_ms_, now_ms_);
  now_ms_ += 1'000;
  ASSERT_EQ(Send("carol", "alice", "while-away").status().code(), im::v1::OK);

  const im::v1::ResumeResp resp = Resume("alice", token);
  ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
  EXPECT_EQ(ConvIds(resp), std::vector<std::string>{"s:alice:carol"});
  EXPECT_EQ(resp.conversations(0).max_seq(), 2u);
  EXPECT_TRUE(resp.next_page_token().empty());
  // The new token's baseline is this resume: nothing changed since.
  const im::v1::ResumeResp next = Resume("alice", resp.resume_token());
  ASSERT_EQ(next.status().code(), im::v1::OK) << next.status().message();
  EXPECT_EQ(next.conversations_size(), 1) << "within the margin, carol's message is listed again";
  now_ms_ += MarginMs() + 1;
  const im::v1::ResumeResp later = Resume("alice", next.resume_token());
  ASSERT_EQ(later.status().code(), im::v1::OK) << later.status().message();
  EXPECT_EQ(Resume("alice", later.resume_token()).conversations_size(), 0)
      << "a baseline past carol's message by more than the margin";
}

TEST_F(SessionResumeTest, ATokenIsGoodOnceAndOnlyWithinItsWindow) {
  const std::string token = tokens_.Issue("alice", "phone", now_ms_, now_ms_);
  ASSERT_EQ(Resume("alice", token).status().code(), im::v1::OK);
  const im::v1::ResumeResp again = Resume("alice", token);
  EXPECT_EQ(again.status().code(), im::v1::FAILED_PRECONDITION);
  EXPECT_TRUE(again.resume_token().empty());

  const std::string late = tokens_.Issue("alice", "phone", now_ms_, now_ms_);
  now_ms_ += int64_t{options_.resume_window_sec} * 1000;
  EXPECT_EQ(Resume("alice", late).status().code(), im::v1::FAILED_PRECONDITION);
  EXPECT_EQ(Resume("bob", tokens_.Issue("alice", "phone", now_ms_, now_ms_)).status().code(),
            im::v1::FAILED_PRECONDITION);
  EXPECT_EQ(Resume("alice", "garbage").status().code(), im::v1::INVALID_ARGUMENT);
}

TEST_F(SessionResumeTest, ARenewedTokenResumesAfterTheFirstWindowFromTheSameBaseline) {
  const int64_t baseline = now_ms_;
  const std::string token = tokens_.Issue("alice", "phone", baseline, now_ms_);
  now_ms_ += int64_t{options_.resume_window_sec} * 1000 / 2;
  im::v1::ResumeRenewRequest renew;
  *renew.mutable_caller() = CallerOf("alice");
  renew.mutable_req()->set_resume_token(token);
  const im::v1::ResumeRenewResp renewed = Call(&ChatService::ResumeRenew, renew);
  ASSERT_EQ(renewed.status().code(), im::v1::OK) << renewed.status().message();
  ASSERT_EQ(Send("bob", "alice", "during-the-session").status().code(), im::v1::OK);
  now_ms_ += int64_t{options_.resume_window_sec} * 1000 * 3 / 4;  // past the first expiry
  const im::v1::ResumeResp resp = Resume("alice", renewed.resume_token());
  ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
  EXPECT_EQ(ConvIds(resp), std::vector<std::string>{"s:alice:bob"});
}

TEST_F(SessionResumeTest, BadRenewalsAreRefusedWithTheirCode) {
  auto renew = [this](const std::string& uid, const std::string& token) {
    im::v1::ResumeRenewRequest request;
    *request.mutable_caller() = CallerOf(uid);
    request.mutable_req()->set_resume_token(token);
    return Call(&ChatService::ResumeRenew, request);
  };
  const std::string token = tokens_.Issue("alice", "phone", now_ms_, now_ms_);
  EXPECT_EQ(renew("alice", "garbage").status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_EQ(renew("alice", "").status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_EQ(renew("bob", token).status().code(), im::v1::FAILED_PRECONDITION);  // not bob's
  im::v1::ResumeRenewResp refused = renew("bob", token);
  EXPECT_TRUE(refused.resume_token().empty());
  now_ms_ += int64_t{options_.resume_window_sec} * 1000;
  EXPECT_EQ(renew("alice", token).status().code(), im::v1::FAILED_PRECONDITION);  // expired
  EXPECT_TRUE(renew("alice", token).resume_token().empty());
}

TEST_F(SessionResumeTest, ManyChangedConversationsComeInPagesAndTheTokenOnTheLast) {
  const std::string token = tokens_.Issue("alice", "phone", now_ms_, now_ms_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Send("alice", "peer" + std::to_string(i), "m" + std::to_string(i)).status().code(),
              im::v1::OK);
  }
  std::vector<std::string> seen;
  im::v1::ResumeResp page = Resume("alice", token, "", 2);
  for (int pages = 1;; ++pages) {
    ASSERT_EQ(page.status().code(), im::v1::OK) << page.status().message();
    for (const std::string& id : ConvIds(page)) seen.push_back(id);
    if (page.next_page_token().empty()) {
      EXPECT_EQ(pages, 3);
      EXPECT_FALSE(page.resume_token().empty());
      break;
    }
    EXPECT_TRUE(page.resume_token().empty());
    page = Resume("alice", token, page.next_page_token(), 2);  // later pages: the same token
  }
  EXPECT_EQ(seen.size(), 5u);
}

// A later page belongs to the connection that spent the token on the first: another connection
// (a replay of a stolen token with any page token) is refused, and never gets a fresh token.
TEST_F(SessionResumeTest, OnlyTheConnectionThatSpentTheTokenGetsItsLaterPages) {
  const std::string token = tokens_.Issue("alice", "phone", now_ms_, now_ms_);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Send("alice", "peer" + std::to_string(i), "m" + std::to_string(i)).status().code(),
              im::v1::OK);
  }
  const im::v1::ResumeResp first = Resume("alice", token, "", 2, /*conn_id=*/1);
  ASSERT_EQ(first.status().code(), im::v1::OK) << first.status().message();
  ASSERT_FALSE(first.next_page_token().empty());

  const im::v1::ResumeResp replay = Resume("alice", token, first.next_page_token(), 2, 2);
  EXPECT_EQ(replay.status().code(), im::v1::FAILED_PRECONDITION);
  EXPECT_EQ(replay.conversations_size(), 0);
  EXPECT_TRUE(replay.resume_token().empty());

  const im::v1::ResumeResp second = Resume("alice", token, first.next_page_token(), 2, 1);
  ASSERT_EQ(second.status().code(), im::v1::OK) << second.status().message();
  EXPECT_FALSE(second.resume_token().empty());
  // And the first page again, even on the spending connection, is a second use.
  EXPECT_EQ(Resume("alice", token, "", 2, 1).status().code(), im::v1::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace im::logic::testing
