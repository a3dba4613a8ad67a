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

FinishedStates::FinishedStates(std::vector<uint64_t> known) : known_(std::move(known)) {}

uint64_t FinishedStates::key(const uint64_t* set, int32_t value) const {
  uint64_t h = 0xcbf29ce484222325ULL ^ uint64_t(uint32_t(value));
  for (size_t w = 0; w < known_.size(); ++w) {
    h ^= set[w] & known_[w];
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return h;
}

bool FinishedStates::same_known(uint32_t entry, const uint64_t* set, int32_t value) const {
  if (values_[entry] != value) return false;
  const uint64_t* other = sets_.data() + size_t(entry) * known_.size();
  for (size_t w = 0; w < known_.size(); ++w)
    if (((other[w] ^ set[w]) & known_[w]) != 0) return false;
  return true;
}

// Whether entry's unknown outcomes are all in `set`.
bool FinishedStates::unknowns_within(uint32_t entry, const uint64_t* set) const {
  const uint64_t* other = sets_.data() + size_t(entry) * known_.size();
  for (size_t w = 0; w < known_.size(); ++w)
    if ((other[w] & ~known_[w] & ~set[w]) != 0) return false;
  return true;
}

void FinishedStates::add(const uint64_t* set, int32_t value, int unknowns) {
  SYNOD_ASSERT(values_.size() < UINT32_MAX - 1, "finished states index overflow");
  const uint32_t entry = uint32_t(values_.size());
  sets_.insert(sets_.end(), set, set + known_.size());
  values_.push_back(value);
  unknowns_.push_back(unknowns);
  // The bucket keeps only minimal sets: an entry whose unknown outcomes include all of the new
  // one's covers nothing that the new one does not.
  std::vector<uint32_t>& bucket = by_key_[key(set, value)];
  std::erase_if(bucket, [&](uint32_t other) {
    return unknowns_[other] >= unknowns_[entry] && same_known(other, set, value) &&
           unknowns_within(entry, sets_.data() + size_t(other) * known_.size());
  });
  bucket.push_back(entry);
}

bool FinishedStates::covers(const uint64_t* set, int32_t value, int unknowns) const {
  const auto bucket = by_key_.find(key(set, value));
  if (bucket == by_key_.end()) return false;
  for (const uint32_t entry : bucket->second) {
    if (unknowns_[entry] <= unknowns && same_known(entry, set, value) &&
        unknowns_within(entry, set))
      return true;
  }
  return false;
}

}  // namespace synod::lincheck
