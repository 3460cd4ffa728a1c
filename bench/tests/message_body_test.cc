#include "bench/message_body.h"

#include <gtest/gtest.h>

namespace im::bench {
namespace {

TEST(MessageBodyTest, TheHeaderComesBackFromTheBody) {
  const std::string body = MessageBody({(uint64_t{3} << 40) | 17, 123'456'789'000}, 100, 'x');
  EXPECT_EQ(body.size(), 100u);
  EXPECT_EQ(body.back(), 'x');
  const std::optional<BodyHeader> header = ReadBodyHeader(body);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->message, (uint64_t{3} << 40) | 17);
  EXPECT_EQ(header->scheduled_ns, 123'456'789'000u);
}

TEST(MessageBodyTest, ABodyIsNeverShorterThanItsHeader) {
  EXPECT_EQ(MessageBody({1, 2}, 4, 'e').size(), kBodyHeaderBytes);
}

TEST(MessageBodyTest, ARecalledBodyHasNoHeader) {
  EXPECT_FALSE(ReadBodyHeader(""));  // a recall's, and a recalled message's read back
  EXPECT_FALSE(ReadBodyHeader(std::string(kBodyHeaderBytes - 1, 'x')));
}

TEST(MessageBodyTest, OnlyRecallsAndEditsAreChanges) {
  EXPECT_TRUE(IsChange(im::v1::RECALL));
  EXPECT_TRUE(IsChange(im::v1::EDIT));
  EXPECT_FALSE(IsChange(im::v1::TEXT));
  EXPECT_FALSE(IsChange(im::v1::SYSTEM));
}

}  // namespace
}  // namespace im::bench
