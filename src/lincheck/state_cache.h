// The search's memo: the set of (linearized operations, register value) pairs already explored.
// Reaching a pair again means the same future is possible, so the search need not look again.
//
// Linearized sets are bitsets of a fixed width (one bit per operation of the key); entries are
// stored flat, indexed by an open-addressing table, so an entry costs its bitset words plus 16
// bytes, with no allocation per entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace synod::lincheck {

class StateCache {
 public:
  explicit StateCache(size_t words_per_set);

  // Records (set, value) and returns true if it was new; `hash` must be a function of both.
  bool insert(const uint64_t* set, int32_t value, uint64_t hash);
  size_t size() const { return values_.size(); }

 private:
  bool same(uint32_t entry, const uint64_t* set, int32_t value, uint64_t hash) const;
  void grow();

  size_t words_per_set_;
  std::vector<uint64_t> sets_;    // entry i's bitset: words [i * words_per_set_, ...)
  std::vector<int32_t> values_;   // entry i's register value
  std::vector<uint64_t> hashes_;  // entry i's hash
  std::vector<uint32_t> slots_;   // 0: empty, else entry index + 1
};

}  // namespace synod::lincheck
