#include "common/metrics.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace im::common {
namespace {

TEST(MetricsTest, LatencyBucketsAreIncreasingFrom100UsTo10S) {
  const prometheus::Histogram::BucketBoundaries buckets = LatencyBuckets();
  ASSERT_FALSE(buckets.empty());
  EXPECT_DOUBLE_EQ(buckets.front(), 0.0001);
  EXPECT_DOUBLE_EQ(buckets.back(), 10);
  EXPECT_TRUE(std::is_sorted(buckets.begin(), buckets.end()));
  EXPECT_EQ(std::adjacent_find(buckets.begin(), buckets.end()), buckets.end());
}

}  // namespace
}  // namespace im::common
