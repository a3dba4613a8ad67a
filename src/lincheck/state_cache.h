// The search's memo: the set of (linearized operations, register value) pairs already explored.
// Reaching a pair again means the same future is possible, so the search need not look again.
//
// Linearized sets are bitsets of a fixed width (one bit per operation of the key); entries are
// stored flat, indexed by an open-addressing table, so an entry costs its bitset words plus 16
// bytes, with no allocation per entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
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

// The states the search has left without finding an order, for the search's second memo: a state
// with the same completed operations placed, the same value, and a superset of the unknown
// outcomes placed can do no more than such a state (each unknown outcome it has left may be
// placed or not), so it fails too (docs/lincheck.md). `known` masks the bits of completed
// operations in a linearized set.
class FinishedStates {
 public:
  explicit FinishedStates(std::vector<uint64_t> known);

  // `unknowns`: how many unknown outcomes `set` holds.
  void add(const uint64_t* set, int32_t value, int unknowns);
  // Whether a finished state has the same completed operations and value as (set, value), and
  // only unknown outcomes that `set` has too.
  bool covers(const uint64_t* set, int32_t value, int unknowns) const;
  size_t size() const { return values_.size(); }

 private:
  uint64_t key(const uint64_t* set, int32_t value) const;
  bool same_known(uint32_t entry, const uint64_t* set, int32_t value) const;
  bool unknowns_within(uint32_t entry, const uint64_t* set) const;

  std::vector<uint64_t> known_;
  std::vector<uint64_t> sets_;  // entry i's set: words [i * known_.size(), ...)
  std::vector<int32_t> values_;
  std::vector<int> unknowns_;  // entry i's number of unknown outcomes placed
  std::unordered_map<uint64_t, std::vector<uint32_t>> by_key_;  // entries by key()
};

}  // namespace synod::lincheck
