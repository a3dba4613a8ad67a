// A seeded pseudo-random generator (xoshiro256**, seeded through splitmix64). Its output is fully
// specified here, so a seed gives the same sequence on every platform and library version, which
// the simulator's byte-identical traces rely on. Never seeded from a device or the clock inside
// the protocol core: the driver injects the seed.
#pragma once

#include <cstdint>

#include "base/assert.h"

namespace synod {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& word : s_) word = splitmix64(seed);
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, bound). Uses rejection so every value is equally likely.
  uint64_t below(uint64_t bound) {
    SYNOD_ASSERT(bound > 0, "empty range");
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % bound;
  }

  // Uniform in [lo, hi].
  uint64_t between(uint64_t lo, uint64_t hi) {
    SYNOD_ASSERT(lo <= hi, "inverted range");
    return lo + below(hi - lo + 1);
  }

  // True with probability p (p in [0, 1]).
  bool chance(double p) {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
  }

  // A new generator whose sequence is independent of this one's future output.
  Rng fork() { return Rng(next()); }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
};

}  // namespace synod
