#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace synod::bench {

int Histogram::index_of(uint64_t ns) {
  if (ns < 2 * kSubBuckets) return static_cast<int>(ns);
  // ns >= 128: keep the top 7 bits; each shift step is one more row of 64 buckets.
  const int msb = 63 - std::countl_zero(ns);
  const int shift = msb - 6;
  const int index = kSubBuckets * shift + static_cast<int>(ns >> shift);
  return std::min(index, kBuckets - 1);
}

uint64_t Histogram::upper_bound_of(int index) {
  if (index < 2 * kSubBuckets) return static_cast<uint64_t>(index);
  const int shift = index / kSubBuckets - 1;
  const uint64_t mantissa = static_cast<uint64_t>(index % kSubBuckets + kSubBuckets);
  return ((mantissa + 1) << shift) - 1;
}

void Histogram::record(uint64_t ns) {
  ++buckets_[static_cast<size_t>(index_of(ns))];
  ++count_;
  sum_ += ns;
  max_ = std::max(max_, ns);
}

uint64_t Histogram::percentile(double fraction) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::ceil(fraction * static_cast<double>(count_)));
  const uint64_t target = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[static_cast<size_t>(i)];
    if (seen >= target) return std::min(upper_bound_of(i), max_);
  }
  return max_;
}

}  // namespace synod::bench
