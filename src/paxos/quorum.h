// Quorum systems. The roles ask only two questions — "is this set a phase-1 quorum?" and "is this
// set a phase-2 quorum?" — so weighted and flexible quorum systems plug in here without touching
// the roles. Safety needs every phase-1 quorum to intersect every phase-2 quorum.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "base/assert.h"
#include "base/status.h"
#include "base/types.h"
#include "paxos/bugs.h"

namespace synod::paxos {

// A set of node ids in 1..63, as a bit mask: cheap to copy, compare and hash.
class NodeSet {
 public:
  static constexpr uint32_t kMaxNodeId = 63;

  void insert(NodeId id) { bits_ |= bit(id); }
  void erase(NodeId id) { bits_ &= ~bit(id); }
  bool contains(NodeId id) const { return (bits_ & bit(id)) != 0; }
  int size() const { return std::popcount(bits_); }
  bool empty() const { return bits_ == 0; }
  void clear() { bits_ = 0; }
  uint64_t bits() const { return bits_; }
  bool operator==(const NodeSet&) const = default;

 private:
  static uint64_t bit(NodeId id) {
    SYNOD_ASSERT(id.valid() && id.value <= kMaxNodeId, "node id out of range");
    return uint64_t{1} << id.value;
  }
  uint64_t bits_ = 0;
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
