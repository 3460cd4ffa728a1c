#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace im::bench {
namespace {

TEST(HistogramTest, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.ValueAt(0.5), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < 100; ++v) h.Record(v);
  EXPECT_EQ(h.ValueAt(0.5), 49u);
  EXPECT_EQ(h.ValueAt(0.01), 0u);
  EXPECT_EQ(h.ValueAt(1.0), 99u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 99u);
}

TEST(HistogramTest, BucketsTileTheRangeWithoutGaps) {
  for (size_t i = 1; i < Histogram::BucketOf(Histogram::kMaxValue - 1); ++i) {
    ASSERT_EQ(Histogram::BucketLow(i), Histogram::BucketHigh(i - 1) + 1) << i;
    ASSERT_EQ(Histogram::BucketOf(Histogram::BucketLow(i)), i);
    ASSERT_EQ(Histogram::BucketOf(Histogram::BucketHigh(i)), i);
  }
}

TEST(HistogramTest, QuantilesStayWithinTheRelativeErrorBound) {
  std::mt19937_64 random(42);
  std::lognormal_distribution<double> latency(8.0, 2.0);  // microseconds, a long tail
  std::vector<uint64_t> values;
  Histogram h;
  for (int i = 0; i < 200'000; ++i) {
    const uint64_t v = static_cast<uint64_t>(latency(random));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999, 1.0}) {
    const size_t rank = static_cast<size_t>(std::ceil(q * values.size()));
    const double exact = static_cast<double>(values[rank - 1]);
    const double reported = static_cast<double>(h.ValueAt(q));
    EXPECT_LE(std::abs(reported - exact), exact * Histogram::kMaxRelativeError + 0.5)
        << "q=" << q << " exact=" << exact << " reported=" << reported;
  }
  EXPECT_EQ(h.max(), values.back());
}

TEST(HistogramTest, HugeValuesAreClampedAndCounted) {
  Histogram h;
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.clamped(), 1u);
  EXPECT_EQ(h.max(), Histogram::kMaxValue - 1);
}

TEST(HistogramTest, MergeAndJsonRoundTripKeepEveryFigure) {
  Histogram a, b;
  for (uint64_t v = 1; v < 5000; v += 7) a.Record(v);
  for (uint64_t v = 100; v < 900000; v += 991) b.Record(v);
  Histogram merged = a;
  merged.Merge(b);
  EXPECT_EQ(merged.count(), a.count() + b.count());
  EXPECT_EQ(merged.min(), 1u);
  EXPECT_EQ(merged.max(), b.max());

  Histogram back;
  ASSERT_TRUE(Histogram::FromJson(merged.ToJson(), &back));
  EXPECT_EQ(back.count(), merged.count());
  EXPECT_EQ(back.min(), merged.min());
  EXPECT_EQ(back.max(), merged.max());
  for (double q : {0.1, 0.5, 0.99}) EXPECT_EQ(back.ValueAt(q), merged.ValueAt(q));
}

TEST(HistogramTest, FromJsonRejectsGarbage) {
  Histogram h;
  EXPECT_FALSE(Histogram::FromJson(nlohmann::json::parse("[1,2]"), &h));
  EXPECT_FALSE(Histogram::FromJson({{"buckets", {{999999, 1}}}}, &h));
  EXPECT_FALSE(Histogram::FromJson({{"buckets", {{"x", 1}}}}, &h));
}

}  // namespace
}  // namespace im::bench
