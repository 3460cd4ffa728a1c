#include "logic/conversation/msg_id_generator.h"

#include <gtest/gtest.h>

namespace im::logic {
namespace {

constexpr int64_t kSomeTimeMs = 1'800'000'000'000;

TEST(MsgIdGeneratorTest, IdsGrowAndCarryTheNodeNumber) {
  int64_t now = kSomeTimeMs;
  MsgIdGenerator generator(7, [&now] { return now; });
  uint64_t last = 0;
  for (int i = 0; i < 10'000; ++i) {  // more than one millisecond's 4096 ids
    const uint64_t id = generator.Next();
    EXPECT_GT(id, last);
    EXPECT_EQ((id >> MsgIdGenerator::kSequenceBits) & 1023, 7u);
    last = id;
  }
  now += 1000;
  EXPECT_GT(generator.Next(), last);
}

TEST(MsgIdGeneratorTest, ClockSteppingBackNeverRepeatsAnId) {
  int64_t now = kSomeTimeMs;
  MsgIdGenerator generator(1, [&now] { return now; });
  const uint64_t before = generator.Next();
  now -= 60'000;
  EXPECT_GT(generator.Next(), before);
}

TEST(MsgIdGeneratorTest, IdsOfLaterMillisecondsSortAfterEarlierOnes) {
  int64_t now = kSomeTimeMs;
  MsgIdGenerator a(1, [&now] { return now; });
  MsgIdGenerator b(2, [&now] { return now; });
  const uint64_t early = b.Next();
  now += 1;
  EXPECT_GT(a.Next(), early);  // time first, node second
}

}  // namespace
}  // namespace im::logic
