#include "logic/ingress/sender_limits.h"

#include <gtest/gtest.h>

namespace im::logic {
namespace {

using Limit = SenderLimits::Limit;

TEST(SenderLimitsTest, AUserHasOneRateOverEveryConversationAndOthersAreUnaffected) {
  SenderLimits limits(common::RateLimit{2, 3}, common::RateLimit{});
  EXPECT_EQ(limits.Take("alice", "s:alice:bob", 0).limit, Limit::kNone);
  EXPECT_EQ(limits.Take("alice", "s:alice:carol", 0).limit, Limit::kNone);
  EXPECT_EQ(limits.Take("alice", "g:team", 0).limit, Limit::kNone);
  const SenderLimits::Refusal refused = limits.Take("alice", "s:alice:dave", 0);
  EXPECT_EQ(refused.limit, Limit::kUser);
  EXPECT_EQ(refused.retry_after_ms, 500);
  EXPECT_NE(std::string(refused.reason()).find("user"), std::string::npos);
  EXPECT_EQ(limits.Take("bob", "s:alice:bob", 0).limit, Limit::kNone);
  EXPECT_EQ(limits.Take("alice", "s:alice:bob", 500).limit, Limit::kNone);
}

TEST(SenderLimitsTest, AGroupHasARatePerSenderThatLeavesTheirOtherConversationsAlone) {
  SenderLimits limits(common::RateLimit{100, 100}, common::RateLimit{1, 2});
  EXPECT_EQ(limits.Take("alice", "g:team", 0).limit, Limit::kNone);
  EXPECT_EQ(limits.Take("alice", "g:team", 0).limit, Limit::kNone);
  const SenderLimits::Refusal refused = limits.Take("alice", "g:team", 10);
  EXPECT_EQ(refused.limit, Limit::kUserInGroup);
  EXPECT_EQ(refused.retry_after_ms, 990);
  EXPECT_EQ(limits.Take("alice", "g:other", 10).limit, Limit::kNone);
  EXPECT_EQ(limits.Take("alice", "s:alice:bob", 10).limit, Limit::kNone);
  EXPECT_EQ(limits.Take("bob", "g:team", 10).limit, Limit::kNone) << "each member their own";
}

TEST(SenderLimitsTest, RateZeroIsNoLimit) {
  SenderLimits limits(common::RateLimit{}, common::RateLimit{});
  for (int i = 0; i < 1'000; ++i) ASSERT_EQ(limits.Take("alice", "g:team", 0).limit, Limit::kNone);
}

}  // namespace
}  // namespace im::logic
