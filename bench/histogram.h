#pragma once

#include <cstdint>
#include <vector>

#include "nlohmann/json.hpp"

namespace im::bench {

// A log-linear histogram of non-negative integers (latencies in microseconds), in the manner of
// HdrHistogram: values below 128 are exact; above, each power of two is split into 64 equal
// buckets, so a recorded value and the value reported for its bucket (the bucket's midpoint)
// differ by at most 1/128 of the value (0.8 %). Values above 2^40 are clamped (and counted).
// Fixed size (2,304 counters), so recording never allocates after construction. Not thread-safe:
// one per loop, merged after the loops stopped.
class Histogram {
 public:
  static constexpr int kLinearBits = 7;  // exact below 2^7; 2^6 buckets per power of two above
  static constexpr uint64_t kMaxValue = uint64_t{1} << 40;
  static constexpr double kMaxRelativeError = 1.0 / 128;

  Histogram();

  void Record(uint64_t value);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  uint64_t clamped() const { return clamped_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }
  // The value at quantile q (0..1): the midpoint of the bucket holding the ceil(q * count)-th
  // smallest value, never above max(). 0 when empty.
  uint64_t ValueAt(double q) const;

  // Every figure plus the non-empty buckets, so that histograms of several processes can be
  // merged exactly (FromJson(ToJson()) == *this).
  nlohmann::json ToJson() const;
  // False when `json` is not a histogram written by ToJson().
  static bool FromJson(const nlohmann::json& json, Histogram* out);

  static size_t BucketOf(uint64_t value);
  // The smallest and the largest value of bucket `index`.
  static uint64_t BucketLow(size_t index);
  static uint64_t BucketHigh(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  uint64_t clamped_ = 0;
};

}  // namespace im::bench
