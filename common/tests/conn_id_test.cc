#include "common/conn_id.h"

#include <cstdint>
#include <unordered_set>

#include "gtest/gtest.h"

namespace im::common {
namespace {

static_assert(kConnIdLoopBits + kConnIdSequenceBits == 64);
static_assert(LoopIndexOf(MakeConnId(255, kConnIdSequenceMask)) == 255);
static_assert(SequenceOf(MakeConnId(255, kConnIdSequenceMask)) == kConnIdSequenceMask);

TEST(ConnIdTest, RoundTrips) {
  for (uint32_t loop : {0u, 1u, 7u, 128u, 254u, kMaxLoops - 1}) {
    for (uint64_t sequence : {uint64_t{0}, uint64_t{1}, uint64_t{0xDEADBEEF},
                              kConnIdSequenceMask - 1, kConnIdSequenceMask}) {
      const ConnId id = MakeConnId(loop, sequence);
      EXPECT_EQ(LoopIndexOf(id), loop) << loop << " " << sequence;
      EXPECT_EQ(SequenceOf(id), sequence) << loop << " " << sequence;
    }
  }
}

TEST(ConnIdTest, ExtremesUseAllBits) {
  EXPECT_EQ(MakeConnId(255, kConnIdSequenceMask), UINT64_MAX);
  EXPECT_EQ(MakeConnId(0, 0), 0u);
  EXPECT_EQ(MakeConnId(1, 0), uint64_t{1} << 56);
}

TEST(ConnIdTest, SequenceBeyondItsBitsDoesNotReachTheLoopIndex) {
  const ConnId id = MakeConnId(3, kConnIdSequenceMask + 1);
  EXPECT_EQ(LoopIndexOf(id), 3u);
  EXPECT_EQ(SequenceOf(id), 0u);
}

TEST(ConnIdAllocatorTest, IdsAreUniqueAndCarryTheLoopIndex) {
  for (uint32_t loop : {0u, 5u, kMaxLoops - 1}) {
    ConnIdAllocator allocator(loop, /*instance_seed=*/1234);
    std::unordered_set<ConnId> seen;
    for (int i = 0; i < 10000; ++i) {
      const ConnId id = allocator.Next();
      EXPECT_EQ(LoopIndexOf(id), loop);
      EXPECT_TRUE(seen.insert(id).second) << "duplicate " << id;
    }
  }
}

TEST(ConnIdAllocatorTest, LoopsNeverShareIds) {
  ConnIdAllocator first(0, 42);
  ConnIdAllocator second(1, 42);
  for (int i = 0; i < 1000; ++i) EXPECT_NE(first.Next(), second.Next());
}

TEST(ConnIdAllocatorTest, DifferentSeedsGiveDisjointIds) {
  // Two lives of the same gateway loop: a late push addressed to the old life finds nothing.
  ConnIdAllocator before_restart(2, /*instance_seed=*/1'700'000'000);
  ConnIdAllocator after_restart(2, /*instance_seed=*/1'700'000'007);
  std::unordered_set<ConnId> old_ids;
  for (int i = 0; i < 10000; ++i) old_ids.insert(before_restart.Next());
  for (int i = 0; i < 10000; ++i) EXPECT_EQ(old_ids.count(after_restart.Next()), 0u);
}

TEST(ConnIdAllocatorTest, SeedOccupiesTheHighSequenceBits) {
  ConnIdAllocator allocator(9, 0xABCDEF);
  const ConnId id = allocator.Next();
  EXPECT_EQ(LoopIndexOf(id), 9u);
  EXPECT_EQ(SequenceOf(id), (uint64_t{0xABCDEF} << 32) | 1);
  EXPECT_EQ(SequenceOf(allocator.Next()), (uint64_t{0xABCDEF} << 32) | 2);
}

}  // namespace
}  // namespace im::common
