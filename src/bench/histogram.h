// A latency histogram with bounded memory and bounded relative error: exact below 128 ns, then
// 64 buckets per power of two (at most 1/64 = 1.6% error). Values are nanoseconds.
#pragma once

#include <array>
#include <cstdint>

namespace synod::bench {

class Histogram {
 public:
  static constexpr int kSubBuckets = 64;
  static constexpr int kBuckets = kSubBuckets * 60;

  void record(uint64_t ns);
  // The smallest recorded value v such that at least `fraction` of the values are <= v (within
  // the bucket error); 0 when empty.
  uint64_t percentile(double fraction) const;
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0;
  }

 private:
  static int index_of(uint64_t ns);
  static uint64_t upper_bound_of(int index);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace synod::bench
