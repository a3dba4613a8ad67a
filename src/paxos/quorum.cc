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
    SYNOD_ASSERT(members[i].valid(), "bad member id");
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

uint64_t QuorumSystem::total_weight() const {
  uint64_t total = 0;
  for (uint32_t w : weights_) total += w;
  return total;
}

std::vector<NodeId> NodeSet::ids() const {
  std::vector<NodeId> out;
  for (uint64_t bits = bits_; bits != 0; bits &= bits - 1) {
    out.push_back(NodeId{static_cast<uint32_t>(std::countr_zero(bits))});
  }
  for (uint32_t id : more_) out.push_back(NodeId{id});
  return out;
}

bool NodeSet::intersects(const NodeSet& other) const {
  if ((bits_ & other.bits_) != 0) return true;
  for (uint32_t id : more_) {
    if (other.contains(NodeId{id})) return true;
  }
  return false;
}

std::string to_string(const NodeSet& set) {
  std::string out = "{";
  for (NodeId id : set.ids()) {
    if (out.size() > 1) out += ",";
    out += to_string(id);
  }
  return out + "}";
}

Result<QuorumSystem> make_quorum_system(int members, const QuorumConfig& config) {
  if (members < 1 || uint32_t(members) > kMaxMembers) {
    return Status::invalid_argument("a quorum system needs 1 to " + std::to_string(kMaxMembers) +
                                    " members, not " + std::to_string(members));
  }
  std::vector<uint32_t> weights = config.weights;
  if (weights.empty()) weights.assign(size_t(members), 1);
  if (weights.size() != size_t(members)) {
    return Status::invalid_argument(std::to_string(weights.size()) + " weights for " +
                                    std::to_string(members) + " members");
  }
  std::vector<NodeId> ids;
  uint64_t total = 0;
  for (int i = 1; i <= members; ++i) ids.push_back(NodeId{uint32_t(i)});
  for (uint32_t w : weights) total += w;
  const uint64_t majority = total / 2 + 1;
  return QuorumSystem::weighted(std::move(ids), std::move(weights),
                                config.phase1_weight ? config.phase1_weight : majority,
                                config.phase2_weight ? config.phase2_weight : majority);
}

Status verify_quorum_system(const QuorumSystem& quorum) {
  const std::vector<NodeId>& members = quorum.members();
  const std::vector<uint32_t>& weights = quorum.weights();
  const uint64_t total = quorum.total_weight();
  const std::string config =
      "quorum system (" + quorum.describe() + ", total weight " + std::to_string(total) + ")";
  if (total > kMaxVerifiableWeight) {
    return Status::invalid_argument(config + ": total weight above " +
                                    std::to_string(kMaxVerifiableWeight) + " cannot be verified");
  }
  if (quorum.phase1_weight() > total || quorum.phase2_weight() > total) {
    return Status::invalid_argument(config + ": no set of members reaches the " +
                                    (quorum.phase1_weight() > total ? "phase-1" : "phase-2") +
                                    " weight, so nothing could ever be chosen");
  }
  // via[s]: the member whose weight first completed an achievable sum s (-1: not achievable).
  // Members are added in order and sums updated from high to low, so the member recorded for
  // s - weights[i] comes before i: following `via` down from s visits distinct members.
  std::vector<int> via(total + 1, -1);
  std::vector<bool> reachable(total + 1, false);
  reachable[0] = true;
  for (size_t i = 0; i < members.size(); ++i) {
    const uint64_t w = weights[i];
    if (w == 0) continue;
    for (uint64_t s = total; s >= w; --s) {
      if (reachable[s - w] && !reachable[s]) {
        reachable[s] = true;
        via[s] = int(i);
      }
    }
  }
  // A phase-1 quorum S whose complement (weight total - w(S)) is a phase-2 quorum.
  for (uint64_t s = quorum.phase1_weight(); s + quorum.phase2_weight() <= total; ++s) {
    if (!reachable[s]) continue;
    NodeSet phase1;
    for (uint64_t left = s; left > 0; left -= weights[size_t(via[left])]) {
      phase1.insert(members[size_t(via[left])]);
    }
    NodeSet phase2;
    for (NodeId id : members) {
      if (!phase1.contains(id)) phase2.insert(id);
    }
    return Status::invalid_argument(config + " is unsafe: phase-1 quorum " + to_string(phase1) +
                                    " and phase-2 quorum " + to_string(phase2) +
                                    " are disjoint, so two values could be chosen");
  }
  return Status::ok();
}

std::string QuorumSystem::describe() const {
  std::string out = std::to_string(members_.size()) + " members, phase-1 weight " +
                    std::to_string(phase1_weight_) + ", phase-2 weight " +
                    std::to_string(phase2_weight_);
  return out;
}

}  // namespace synod::paxos
