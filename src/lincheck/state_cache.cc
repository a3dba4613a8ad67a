#include "lincheck/state_cache.h"

#include <algorithm>

#include "base/assert.h"

namespace synod::lincheck {

StateCache::StateCache(size_t words_per_set) : words_per_set_(words_per_set), slots_(1024, 0) {}

bool StateCache::same(uint32_t entry, const uint64_t* set, int32_t value, uint64_t hash) const {
  return hashes_[entry] == hash && values_[entry] == value &&
         std::equal(set, set + words_per_set_, sets_.begin() + entry * words_per_set_);
}

bool StateCache::insert(const uint64_t* set, int32_t value, uint64_t hash) {
  const size_t mask = slots_.size() - 1;
  size_t slot = hash & mask;
  while (slots_[slot] != 0) {
    if (same(slots_[slot] - 1, set, value, hash)) return false;
    slot = (slot + 1) & mask;
  }
  SYNOD_ASSERT(values_.size() < UINT32_MAX - 1, "state cache index overflow");
  slots_[slot] = uint32_t(values_.size() + 1);
  sets_.insert(sets_.end(), set, set + words_per_set_);
  values_.push_back(value);
  hashes_.push_back(hash);
  if (values_.size() * 2 > slots_.size()) grow();
  return true;
}

void StateCache::grow() {
  std::vector<uint32_t> slots(slots_.size() * 2, 0);
  const size_t mask = slots.size() - 1;
  for (uint32_t entry = 0; entry < values_.size(); ++entry) {
    size_t slot = hashes_[entry] & mask;
    while (slots[slot] != 0) slot = (slot + 1) & mask;
    slots[slot] = entry + 1;
  }
  slots_ = std::move(slots);
}

}  // namespace synod::lincheck
