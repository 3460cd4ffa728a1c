#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace im::bench {
namespace {

constexpr uint64_t kLinear = uint64_t{1} << Histogram::kLinearBits;  // 128
constexpr uint64_t kHalf = kLinear / 2;                              // buckets per power of two
// The highest shift is that of kMaxValue - 1 (most significant bit 39).
constexpr size_t kBuckets = kLinear + (40 - Histogram::kLinearBits + 1) * kHalf;

}  // namespace

Histogram::Histogram() : counts_(kBuckets, 0) {}

size_t Histogram::BucketOf(uint64_t value) {
  if (value < kLinear) return static_cast<size_t>(value);
  const int msb = 63 - std::countl_zero(value);
  const int shift = msb - (kLinearBits - 1);  // value >> shift is in [64, 128)
  return static_cast<size_t>(kLinear + (shift - 1) * kHalf + ((value >> shift) - kHalf));
}

uint64_t Histogram::BucketLow(size_t index) {
  if (index < kLinear) return index;
  const uint64_t shift = (index - kLinear) / kHalf + 1;
  const uint64_t sub = (index - kLinear) % kHalf + kHalf;
  return sub << shift;
}

uint64_t Histogram::BucketHigh(size_t index) {
  if (index < kLinear) return index;
  const uint64_t shift = (index - kLinear) / kHalf + 1;
  return BucketLow(index) + (uint64_t{1} << shift) - 1;
}

void Histogram::Record(uint64_t value) {
  if (value >= kMaxValue) {
    value = kMaxValue - 1;
    ++clamped_;
  }
  ++counts_[BucketOf(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  clamped_ += other.clamped_;
}

uint64_t Histogram::ValueAt(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t mid = BucketLow(i) + (BucketHigh(i) - BucketLow(i)) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

nlohmann::json Histogram::ToJson() const {
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) buckets.push_back({i, counts_[i]});
  }
  return {{"count", count_}, {"sum", sum_},         {"min", min()},
          {"max", max_},     {"clamped", clamped_}, {"buckets", std::move(buckets)}};
}

bool Histogram::FromJson(const nlohmann::json& json, Histogram* out) {
  if (!json.is_object() || !json.contains("buckets") || !json["buckets"].is_array()) return false;
  Histogram h;
  for (const nlohmann::json& b : json["buckets"]) {
    if (!b.is_array() || b.size() != 2 || !b[0].is_number_unsigned() ||
        !b[1].is_number_unsigned()) {
      return false;
    }
    const uint64_t index = b[0].get<uint64_t>();
    if (index >= h.counts_.size()) return false;
    h.counts_[index] += b[1].get<uint64_t>();
  }
  h.count_ = json.value("count", uint64_t{0});
  h.sum_ = json.value("sum", uint64_t{0});
  h.max_ = json.value("max", uint64_t{0});
  h.clamped_ = json.value("clamped", uint64_t{0});
  h.min_ = h.count_ == 0 ? UINT64_MAX : json.value("min", uint64_t{0});
  *out = std::move(h);
  return true;
}

}  // namespace im::bench
