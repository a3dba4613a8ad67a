// Quorum systems. The roles ask only two questions — "is this set a phase-1 quorum?" and "is this
// set a phase-2 quorum?" — so weighted and flexible quorum systems plug in here without touching
// the roles. Safety needs every phase-1 quorum to intersect every phase-2 quorum.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "base/assert.h"
#include "base/status.h"
#include "base/types.h"
#include "paxos/bugs.h"

namespace synod::paxos {

// A set of node ids. Ids up to 63 (every cluster's first members) live in a bit mask, cheap to
// copy, compare and hash; larger ones (ids are never reused, so a long-lived cluster that replaced
// many machines has them) in a sorted vector beside it.
class NodeSet {
 public:
  static constexpr uint32_t kMaskIds = 63;

  void insert(NodeId id) {
    SYNOD_ASSERT(id.valid(), "node id out of range");
    if (id.value <= kMaskIds) {
      bits_ |= uint64_t{1} << id.value;
    } else if (auto it = std::lower_bound(more_.begin(), more_.end(), id.value);
               it == more_.end() || *it != id.value) {
      more_.insert(it, id.value);
    }
  }
  void erase(NodeId id) {
    if (id.value <= kMaskIds) {
      bits_ &= ~(uint64_t{1} << id.value);
    } else if (auto it = std::lower_bound(more_.begin(), more_.end(), id.value);
               it != more_.end() && *it == id.value) {
      more_.erase(it);
    }
  }
  bool contains(NodeId id) const {
    if (id.value <= kMaskIds) return (bits_ & (uint64_t{1} << id.value)) != 0;
    return std::binary_search(more_.begin(), more_.end(), id.value);
  }
  int size() const { return std::popcount(bits_) + static_cast<int>(more_.size()); }
  bool empty() const { return bits_ == 0 && more_.empty(); }
  void clear() {
    bits_ = 0;
    more_.clear();
  }
  // The ids, ascending.
  std::vector<NodeId> ids() const;
  bool intersects(const NodeSet& other) const;
  bool operator==(const NodeSet&) const = default;

 private:
  uint64_t bits_ = 0;
  std::vector<uint32_t> more_;  // ids above kMaskIds, ascending
};

class QuorumSystem {
 public:
  // Majorities of `members`: any floor(N/2)+1 of them. With bugs.minority_quorum, floor(N/2),
  // which lets two quorums miss each other (a planted bug the simulator must catch).
  static QuorumSystem majority(std::vector<NodeId> members, const Bugs& bugs = {});

  // Each member has a weight; a set is a phase-1 (phase-2) quorum when its weight reaches
  // phase1_weight (phase2_weight). Nothing here checks that the two kinds intersect: a system
  // built from user configuration must pass verify_quorum_system() before it is used.
  static QuorumSystem weighted(std::vector<NodeId> members, std::vector<uint32_t> weights,
                               uint64_t phase1_weight, uint64_t phase2_weight);

  const std::vector<NodeId>& members() const { return members_; }
  bool is_member(NodeId id) const;
  bool is_phase1_quorum(const NodeSet& voters) const { return weight(voters) >= phase1_weight_; }
  bool is_phase2_quorum(const NodeSet& voters) const { return weight(voters) >= phase2_weight_; }
  std::string describe() const;

  const std::vector<uint32_t>& weights() const { return weights_; }
  uint64_t phase1_weight() const { return phase1_weight_; }
  uint64_t phase2_weight() const { return phase2_weight_; }
  uint64_t weight(const NodeSet& voters) const;
  uint64_t total_weight() const;

 private:
  std::vector<NodeId> members_;
  std::vector<uint32_t> weights_;
  uint64_t phase1_weight_ = 0;
  uint64_t phase2_weight_ = 0;
};

// A quorum system as a user configures it, over members n1..nN.
struct QuorumConfig {
  std::vector<uint32_t> weights;  // one per member; empty: every member weighs 1
  uint64_t phase1_weight = 0;     // 0: more than half the total weight
  uint64_t phase2_weight = 0;     // 0: more than half the total weight
};

// Builds the configured system over members n1..n`members`, or says why the configuration is
// malformed (a weight count that does not match, no members). It does not verify intersection:
// callers run verify_quorum_system() and refuse what fails, unless they mean to plant the flaw.
Result<QuorumSystem> make_quorum_system(int members, const QuorumConfig& config);

// The most members (voters and learners) one configuration may have: every message and log
// record that carries a configuration stays small (paxos/membership.h).
inline constexpr uint32_t kMaxMembers = 255;

// The largest total weight verify_quorum_system() can decide (it enumerates reachable sums).
inline constexpr uint64_t kMaxVerifiableWeight = uint64_t{1} << 20;

// Checks that every phase-1 quorum of `quorum` intersects every phase-2 quorum, and that both
// kinds of quorum exist. Two disjoint quorums exist exactly when some set S reaches the phase-1
// weight while its complement reaches the phase-2 weight, i.e. when some achievable subset sum
// lies in [phase1_weight, total - phase2_weight]; the check enumerates achievable sums, so it
// is exact for any number of members. The error names two disjoint quorums.
Status verify_quorum_system(const QuorumSystem& quorum);

// "{n1,n3}".
std::string to_string(const NodeSet& set);

}  // namespace synod::paxos
