// Quorum systems. The roles ask only two questions — "is this set a phase-1 quorum?" and "is this
// set a phase-2 quorum?" — so weighted and flexible quorum systems plug in here without touching
// the roles. Safety needs every phase-1 quorum to intersect every phase-2 quorum.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "base/assert.h"
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
  // phase1_weight (phase2_weight). Nothing here checks that the two kinds intersect.
  static QuorumSystem weighted(std::vector<NodeId> members, std::vector<uint32_t> weights,
                               uint64_t phase1_weight, uint64_t phase2_weight);

  const std::vector<NodeId>& members() const { return members_; }
  bool is_member(NodeId id) const;
  bool is_phase1_quorum(const NodeSet& voters) const { return weight(voters) >= phase1_weight_; }
  bool is_phase2_quorum(const NodeSet& voters) const { return weight(voters) >= phase2_weight_; }
  std::string describe() const;

 private:
  uint64_t weight(const NodeSet& voters) const;

  std::vector<NodeId> members_;
  std::vector<uint32_t> weights_;
  uint64_t phase1_weight_ = 0;
  uint64_t phase2_weight_ = 0;
};

}  // namespace synod::paxos
