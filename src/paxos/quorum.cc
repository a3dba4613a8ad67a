#include "paxos/quorum.h"

#include <algorithm>

namespace synod::paxos {

QuorumSystem QuorumSystem::majority(std::vector<NodeId> members, const Bugs& bugs) {
  const uint64_t n = members.size();
  // The planted bug still needs at least one vote: a quorum of nobody would be no quorum.
  const uint64_t size = bugs.minority_quorum ? std::max<uint64_t>(1, n / 2) : n / 2 + 1;
  std::vector<uint32_t> weights(members.size(), 1);
  return weighted(std::move(members), std::move(weights), size, size);
}

QuorumSystem QuorumSystem::weighted(std::vector<NodeId> members, std::vector<uint32_t> weights,
                                    uint64_t phase1_weight, uint64_t phase2_weight) {
  SYNOD_ASSERT(!members.empty(), "a quorum system needs members");
  SYNOD_ASSERT(members.size() == weights.size(), "one weight per member");
  SYNOD_ASSERT(phase1_weight > 0 && phase2_weight > 0, "an empty set cannot be a quorum");
  for (size_t i = 0; i < members.size(); ++i) {
    SYNOD_ASSERT(members[i].valid() && members[i].value <= NodeSet::kMaxNodeId, "bad member id");
    for (size_t j = 0; j < i; ++j) SYNOD_ASSERT(members[i] != members[j], "duplicate member");
  }
  QuorumSystem q;
  q.members_ = std::move(members);
  q.weights_ = std::move(weights);
  q.phase1_weight_ = phase1_weight;
  q.phase2_weight_ = phase2_weight;
  return q;
}

bool QuorumSystem::is_member(NodeId id) const {
  return std::find(members_.begin(), members_.end(), id) != members_.end();
}

uint64_t QuorumSystem::weight(const NodeSet& voters) const {
  uint64_t total = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (voters.contains(members_[i])) total += weights_[i];
  }
  return total;
}

std::string QuorumSystem::describe() const {
  std::string out = std::to_string(members_.size()) + " members, phase-1 weight " +
                    std::to_string(phase1_weight_) + ", phase-2 weight " +
                    std::to_string(phase2_weight_);
  return out;
}

}  // namespace synod::paxos
