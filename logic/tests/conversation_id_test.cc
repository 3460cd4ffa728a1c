#include "logic/conversation/conversation_id.h"

#include <gtest/gtest.h>

namespace im::logic {
namespace {

TEST(ConversationIdTest, SingleChatIsOrderedAndRoundTrips) {
  auto id = ConversationId::Single("bob", "alice");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->ToString(), "s:alice:bob");
  auto parsed = ConversationId::Parse("s:alice:bob");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(parsed->Includes("alice"));
  EXPECT_TRUE(parsed->Includes("bob"));
  EXPECT_FALSE(parsed->Includes("carol"));
  EXPECT_EQ(parsed->PeerOf("alice"), "bob");
  EXPECT_EQ(parsed->PeerOf("bob"), "alice");
}

TEST(ConversationIdTest, GroupIdParses) {
  auto id = ConversationId::Parse("g:team42");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->kind, ConversationId::Kind::kGroup);
  EXPECT_EQ(id->group_id, "team42");
  EXPECT_FALSE(id->Includes("team42"));
}

TEST(ConversationIdTest, RejectsMalformedIds) {
  for (const char* bad : {"", "s:", "s:a", "s:a:", "s::b", "s:b:a", "s:a:a", "x:a:b",
                          "g:", "s:a:b:c", "s:a b:c", "g:a|b", "S:a:b"}) {
    EXPECT_FALSE(ConversationId::Parse(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ConversationId::Single("a", "a").has_value());
  EXPECT_FALSE(ConversationId::Single("", "a").has_value());
  EXPECT_FALSE(ConversationId::Single(std::string(65, 'x'), "a").has_value());
  EXPECT_TRUE(ConversationId::Single(std::string(64, 'x'), "a").has_value());
}

}  // namespace
}  // namespace im::logic
