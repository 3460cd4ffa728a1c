#include "common/token_bucket.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/keyed_rate_limiter.h"

namespace im::common {
namespace {

constexpr RateLimit kTenASecondBurstThree{10, 3};

TEST(TokenBucketTest, ABurstPassesThenOneTokenPerInterval) {
  TokenBucket bucket;
  const int64_t t = 1'000'000;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.Take(kTenASecondBurstThree, t), 0) << i;
  EXPECT_EQ(bucket.Take(kTenASecondBurstThree, t), 100) << "the next token in 100 ms";
  EXPECT_EQ(bucket.Take(kTenASecondBurstThree, t + 60), 40) << "a refusal takes nothing";
  EXPECT_EQ(bucket.Take(kTenASecondBurstThree, t + 100), 0);
  EXPECT_EQ(bucket.Take(kTenASecondBurstThree, t + 100), 100);
  // A second later the bucket is full again: a whole burst, and no more.
  EXPECT_FALSE(bucket.Full(t + 299));
  EXPECT_TRUE(bucket.Full(t + 400));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.Take(kTenASecondBurstThree, t + 1'400), 0) << i;
  EXPECT_GT(bucket.Take(kTenASecondBurstThree, t + 1'400), 0);
}

TEST(TokenBucketTest, ASteadyRateAtTheLimitIsNeverRefused) {
  TokenBucket bucket;
  for (int64_t t = 0; t < 10'000; t += 100)
    EXPECT_EQ(bucket.Take(kTenASecondBurstThree, t), 0) << t;
}

TEST(TokenBucketTest, AFractionalWaitIsRoundedUpAndRateZeroIsNoLimit) {
  TokenBucket bucket;
  const RateLimit three_a_second{3, 1};
  EXPECT_EQ(bucket.Take(three_a_second, 0), 0);
  EXPECT_EQ(bucket.Take(three_a_second, 0), 334);  // 333.333 ms
  TokenBucket unlimited;
  for (int i = 0; i < 1'000; ++i) EXPECT_EQ(unlimited.Take(RateLimit{}, 0), 0);
}

TEST(KeyedRateLimiterTest, EachKeyHasItsOwnBucket) {
  KeyedRateLimiter<std::string> limiter(RateLimit{1, 2}, 1'000);
  EXPECT_EQ(limiter.Take("alice", 0), 0);
  EXPECT_EQ(limiter.Take("alice", 0), 0);
  EXPECT_EQ(limiter.Take("alice", 0), 1'000);
  EXPECT_EQ(limiter.Take("bob", 0), 0) << "alice's sends cost bob nothing";
  EXPECT_EQ(limiter.size(), 2u);
}

TEST(KeyedRateLimiterTest, FullBucketsAreForgottenToMakeRoomAndAFloodOfKeysPassesUntracked) {
  // One key per shard at most.
  KeyedRateLimiter<uint64_t> limiter(RateLimit{1, 1}, 16);
  for (uint64_t key = 0; key < 16; ++key) EXPECT_EQ(limiter.Take(key, 0), 0);
  EXPECT_EQ(limiter.size(), 16u);
  // Every shard is full of empty buckets: a new key passes, untracked.
  EXPECT_EQ(limiter.Take(16, 10), 0);
  EXPECT_EQ(limiter.untracked(), 1u);
  EXPECT_EQ(limiter.Take(0, 10), 1'000 - 10) << "a tracked key keeps its bucket";
  // Once the buckets are full again they are forgotten, and new keys are tracked.
  EXPECT_EQ(limiter.Take(16, 2'000), 0);
  EXPECT_EQ(limiter.Take(16, 2'000), 1'000);
  EXPECT_EQ(limiter.untracked(), 1u);
}

TEST(KeyedRateLimiterTest, ThreadsSharingAKeyGetExactlyItsTokens) {
  KeyedRateLimiter<std::string> limiter(RateLimit{1, 100}, 1'000);
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) passed += limiter.Take("carol", 0) == 0 ? 1 : 0;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(passed.load(), 100);
}

}  // namespace
}  // namespace im::common
