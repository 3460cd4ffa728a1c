#include "logic/group/recent_seqs.h"

#include <gtest/gtest.h>

namespace im::logic {
namespace {

TEST(RecentSeqsTest, EachSeqIsNewOnceInAnyOrder) {
  RecentSeqs seen(10);
  for (uint64_t seq : {5, 3, 4, 9, 1, 2, 8, 6, 7}) EXPECT_TRUE(seen.FirstTime("g:1", seq)) << seq;
  for (uint64_t seq = 1; seq <= 9; ++seq) EXPECT_FALSE(seen.FirstTime("g:1", seq)) << seq;
  EXPECT_TRUE(seen.FirstTime("g:1", 10));
}

TEST(RecentSeqsTest, ConversationsAreApart) {
  RecentSeqs seen(10);
  EXPECT_TRUE(seen.FirstTime("g:1", 1));
  EXPECT_TRUE(seen.FirstTime("g:2", 1));
  EXPECT_FALSE(seen.FirstTime("g:2", 1));
  EXPECT_EQ(seen.conversations(), 2u);
}

TEST(RecentSeqsTest, ARedeliveredBatchIsDroppedWholeEvenWhenItSpansTheWindow) {
  RecentSeqs seen(10);
  const uint64_t last = 3 * RecentSeqs::kWindow;
  for (uint64_t seq = 1; seq <= last; ++seq) ASSERT_TRUE(seen.FirstTime("g:1", seq));
  for (uint64_t seq = 1; seq <= last; ++seq) EXPECT_FALSE(seen.FirstTime("g:1", seq)) << seq;
}

TEST(RecentSeqsTest, ASkippedSeqInsideTheWindowIsStillNew) {
  RecentSeqs seen(10);
  EXPECT_TRUE(seen.FirstTime("g:1", 1));
  EXPECT_TRUE(seen.FirstTime("g:1", RecentSeqs::kWindow));  // 2 .. kWindow-1 not seen yet
  EXPECT_TRUE(seen.FirstTime("g:1", 2));
  EXPECT_TRUE(seen.FirstTime("g:1", RecentSeqs::kWindow - 1));
  EXPECT_FALSE(seen.FirstTime("g:1", 2));
}

TEST(RecentSeqsTest, AJumpPastTheWindowForgetsTheOldBits) {
  RecentSeqs seen(10);
  EXPECT_TRUE(seen.FirstTime("g:1", 7));
  const uint64_t far = 7 + RecentSeqs::kWindow;  // bit 7 % kWindow again
  EXPECT_TRUE(seen.FirstTime("g:1", far));
  EXPECT_FALSE(seen.FirstTime("g:1", far));
  EXPECT_TRUE(seen.FirstTime("g:1", far - 1));
}

TEST(RecentSeqsTest, TheLeastRecentlyUsedConversationIsForgotten) {
  RecentSeqs seen(2);
  EXPECT_TRUE(seen.FirstTime("g:1", 1));
  EXPECT_TRUE(seen.FirstTime("g:2", 1));
  EXPECT_FALSE(seen.FirstTime("g:1", 1));  // g:1 used last: g:2 goes next
  EXPECT_TRUE(seen.FirstTime("g:3", 1));
  EXPECT_EQ(seen.conversations(), 2u);
  EXPECT_FALSE(seen.FirstTime("g:1", 1));
  EXPECT_TRUE(seen.FirstTime("g:2", 1));  // forgotten: new again
}

}  // namespace
}  // namespace im::logic
