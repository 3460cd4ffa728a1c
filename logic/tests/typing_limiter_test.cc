#include "logic/conversation/typing_limiter.h"

#include <gtest/gtest.h>

namespace im::logic {
namespace {

TEST(TypingLimiterTest, PassesOncePerIntervalPerUserAndConversation) {
  TypingLimiter limiter(3'000, 100);
  EXPECT_TRUE(limiter.Allow("alice", "s:alice:bob", 1'000));
  EXPECT_FALSE(limiter.Allow("alice", "s:alice:bob", 1'500));
  EXPECT_FALSE(limiter.Allow("alice", "s:alice:bob", 3'999));
  EXPECT_TRUE(limiter.Allow("alice", "g:team", 1'500)) << "another conversation";
  EXPECT_TRUE(limiter.Allow("bob", "s:alice:bob", 1'500)) << "another user";
  EXPECT_TRUE(limiter.Allow("alice", "s:alice:bob", 4'000));
  EXPECT_FALSE(limiter.Allow("alice", "s:alice:bob", 6'999)) << "counted from the last pass";
}

TEST(TypingLimiterTest, StaysWithinItsBoundAndForgetsTypersWhoStopped) {
  TypingLimiter limiter(1'000, 3);
  EXPECT_TRUE(limiter.Allow("a", "c", 0));
  EXPECT_TRUE(limiter.Allow("b", "c", 0));
  EXPECT_TRUE(limiter.Allow("c", "c", 500));
  EXPECT_FALSE(limiter.Allow("d", "c", 600)) << "full, and nobody stopped long enough ago";
  EXPECT_EQ(limiter.size(), 3u);
  EXPECT_TRUE(limiter.Allow("d", "c", 1'200)) << "a and b expired and were dropped";
  EXPECT_EQ(limiter.size(), 2u);
}

}  // namespace
}  // namespace im::logic
