#include "sdk/conversation_stream.h"

#include <gtest/gtest.h>

#include <vector>

namespace im::sdk {
namespace {

Message At(uint64_t seq) {
  Message message;
  message.conv_id = "s:a:b";
  message.seq = seq;
  message.body = "m" + std::to_string(seq);
  return message;
}

std::vector<uint64_t> Seqs(const std::vector<Message>& messages) {
  std::vector<uint64_t> seqs;
  for (const Message& message : messages) seqs.push_back(message.seq);
  return seqs;
}

TEST(ConversationStreamTest, DeliversInOrderAndHoldsAboveAGap) {
  ConversationStream stream(0);
  EXPECT_EQ(Seqs(stream.Add({At(1), At(2)})), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(stream.Add({At(4), At(5)}).empty());
  EXPECT_TRUE(stream.has_gap());
  EXPECT_EQ(stream.highest_seen(), 5u);
  EXPECT_EQ(Seqs(stream.Add({At(3)})), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_FALSE(stream.has_gap());
  EXPECT_EQ(stream.delivered(), 5u);
}

TEST(ConversationStreamTest, DropsDuplicatesDeliveredOrHeld) {
  ConversationStream stream(0);
  EXPECT_EQ(Seqs(stream.Add({At(1), At(1)})), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(stream.Add({At(1), At(3), At(3)}).empty());
  EXPECT_EQ(stream.held_count(), 1u);
  EXPECT_EQ(Seqs(stream.Add({At(2), At(3)})), (std::vector<uint64_t>{2, 3}));
  EXPECT_TRUE(stream.Add({At(2), At(3)}).empty());
}

TEST(ConversationStreamTest, OutOfOrderBatchComesOutSorted) {
  ConversationStream stream(10);
  EXPECT_EQ(Seqs(stream.Add({At(13), At(11), At(12), At(9)})), (std::vector<uint64_t>{11, 12, 13}));
}

TEST(ConversationStreamTest, HoleLetsTheCursorPass) {
  ConversationStream stream(0);
  EXPECT_TRUE(stream.Add({At(5)}).empty());
  EXPECT_TRUE(stream.AddHole(1, 3).empty());  // 4 still missing
  EXPECT_EQ(stream.delivered(), 3u);
  EXPECT_EQ(Seqs(stream.AddHole(4, 4)), (std::vector<uint64_t>{5}));
  EXPECT_EQ(stream.delivered(), 5u);
}

TEST(ConversationStreamTest, HoleReportedAheadIsKeptUntilReached) {
  ConversationStream stream(0);
  EXPECT_TRUE(stream.AddHole(2, 3).empty());
  EXPECT_EQ(Seqs(stream.Add({At(4)})), std::vector<uint64_t>{});
  EXPECT_EQ(Seqs(stream.Add({At(1)})), (std::vector<uint64_t>{1, 4}));
}

TEST(ConversationStreamTest, HoleBelowTheCursorIsIgnored) {
  ConversationStream stream(7);
  EXPECT_TRUE(stream.AddHole(2, 5).empty());
  EXPECT_EQ(stream.delivered(), 7u);
  EXPECT_EQ(Seqs(stream.Add({At(8)})), (std::vector<uint64_t>{8}));
}

}  // namespace
}  // namespace im::sdk
