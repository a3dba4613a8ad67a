#include "paxos/membership.h"

#include <algorithm>

namespace synod::paxos {

const Member* Membership::find(NodeId id) const {
  auto it = std::lower_bound(members.begin(), members.end(), id,
                             [](const Member& m, NodeId v) { return m.id < v; });
  return it != members.end() && it->id == id ? &*it : nullptr;
}

bool Membership::is_voter(NodeId id) const {
  const Member* m = find(id);
  return m != nullptr && m->voter;
}

std::vector<NodeId> Membership::ids() const {
  std::vector<NodeId> out;
  out.reserve(members.size());
  for (const Member& m : members) out.push_back(m.id);
  return out;
}

std::vector<NodeId> Membership::voters() const {
  std::vector<NodeId> out;
  for (const Member& m : members) {
    if (m.voter) out.push_back(m.id);
  }
  return out;
}

QuorumSystem Membership::quorum(const Bugs& bugs) const {
  std::vector<NodeId> ids;
  std::vector<uint32_t> weights;
  uint64_t total = 0;
  for (const Member& m : members) {
    // The planted bug learner_votes weighs a learner like a voter: its answers complete quorums
    // that need not meet the voters' (a new configuration's learner was never asked in phase 1).
    const uint32_t w = m.voter ? m.weight : (bugs.learner_votes ? 1 : 0);
    ids.push_back(m.id);
    weights.push_back(w);
    if (m.voter) total += w;
  }
  // The planted bug minority_quorum: half the total, not more than half.
  const uint64_t majority = bugs.minority_quorum ? std::max<uint64_t>(1, total / 2) : total / 2 + 1;
  return QuorumSystem::weighted(std::move(ids), std::move(weights),
                                phase1_weight != 0 ? phase1_weight : majority,
                                phase2_weight != 0 ? phase2_weight : majority);
}

std::string Membership::describe() const {
  std::string out = "epoch " + std::to_string(epoch) + ":";
  for (const Member& m : members) {
    out += m.voter ? " " : " learner ";
    out += to_string(m.id);
    if (m.voter && m.weight != 1) {
      out += '*';
      out += std::to_string(m.weight);
    }
  }
  if (phase1_weight != 0 || phase2_weight != 0) {
    out += " (phase-1 weight " + std::to_string(phase1_weight) + ", phase-2 weight " +
           std::to_string(phase2_weight) + ")";
  }
  return out;
}

Membership membership_of(const QuorumSystem& quorum) {
  Membership m;
  uint64_t total = 0;
  for (size_t i = 0; i < quorum.members().size(); ++i) {
    m.members.push_back(Member{quorum.members()[i], true, quorum.weights()[i], 0, {}});
    total += quorum.weights()[i];
    m.next_id = std::max(m.next_id, quorum.members()[i].value + 1);
  }
  std::sort(m.members.begin(), m.members.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  // Majorities stay majorities as voters come and go; explicit weights are kept as configured.
  if (quorum.phase1_weight() != total / 2 + 1 || quorum.phase2_weight() != total / 2 + 1) {
    m.phase1_weight = quorum.phase1_weight();
    m.phase2_weight = quorum.phase2_weight();
  }
  return m;
}

Status verify_membership(const Membership& m) {
  if (m.members.empty()) return Status::invalid_argument("a configuration needs members");
  if (m.members.size() > kMaxMembers) {
    return Status::invalid_argument("a configuration has at most " + std::to_string(kMaxMembers) +
                                    " members, not " + std::to_string(m.members.size()));
  }
  bool any_voter = false;
  for (size_t i = 0; i < m.members.size(); ++i) {
    const Member& member = m.members[i];
    const std::string who = "member " + to_string(member.id);
    if (!member.id.valid() || member.id.value > kMaxNodeIdValue)
      return Status::invalid_argument(who + ": id out of range");
    if (i > 0 && m.members[i - 1].id >= member.id)
      return Status::invalid_argument(who + ": ids must be ascending and distinct");
    if (member.id.value >= m.next_id)
      return Status::invalid_argument(who + ": id not below the next free id " +
                                      std::to_string(m.next_id));
    if (member.voter && member.weight == 0)
      return Status::invalid_argument(who + ": a voter must weigh something");
    if (!member.voter && member.weight != 0)
      return Status::invalid_argument(who + ": a learner weighs nothing");
    if (member.address.size() > kMaxMemberAddressBytes)
      return Status::invalid_argument(who + ": address longer than " +
                                      std::to_string(kMaxMemberAddressBytes) + " bytes");
    any_voter = any_voter || member.voter;
  }
  if (!any_voter) return Status::invalid_argument("a configuration needs a voter");
  return verify_quorum_system(m.quorum());
}

const char* to_string(MembershipChange::Kind kind) {
  switch (kind) {
    case MembershipChange::Kind::kAddLearner:
      return "add-learner";
    case MembershipChange::Kind::kPromote:
      return "promote";
    case MembershipChange::Kind::kDemote:
      return "demote";
    case MembershipChange::Kind::kRemove:
      return "remove";
    case MembershipChange::Kind::kReplace:
      return "replace";
    case MembershipChange::Kind::kBind:
      return "bind";
  }
  return "?";
}

Result<Membership> apply_change(const Membership& current, const MembershipChange& change) {
  using Kind = MembershipChange::Kind;
  Membership next = current;
  next.epoch = current.epoch + 1;
  const std::string who = to_string(change.id);
  auto find = [&](NodeId id) -> Member* {
    auto it = std::find_if(next.members.begin(), next.members.end(),
                           [&](const Member& m) { return m.id == id; });
    return it == next.members.end() ? nullptr : &*it;
  };
  Member* member = change.kind == Kind::kAddLearner ? nullptr : find(change.id);
  if (change.kind != Kind::kAddLearner && member == nullptr)
    return Status::not_found(who + " is not a member (" + current.describe() + ")");
  switch (change.kind) {
    case Kind::kAddLearner: {
      const NodeId id = change.id.valid() ? change.id : NodeId{current.next_id};
      if (id.value < current.next_id) {
        return Status::invalid_argument(
            to_string(id) +
            " was given to a member before: ids are never reused (the next free "
            "id is " +
            std::to_string(current.next_id) + ")");
      }
      if (id.value > kMaxNodeIdValue) return Status::invalid_argument("node id out of range");
      if (change.address.empty()) return Status::invalid_argument("a new member needs an address");
      next.members.push_back(Member{id, false, 0, change.incarnation, change.address});
      std::sort(next.members.begin(), next.members.end(),
                [](const Member& a, const Member& b) { return a.id < b.id; });
      next.next_id = id.value + 1;
      break;
    }
    case Kind::kPromote:
      if (member->voter) return Status::invalid_argument(who + " is a voter already");
      member->voter = true;
      member->weight = 1;
      break;
    case Kind::kDemote:
      if (!member->voter) return Status::invalid_argument(who + " is a learner already");
      member->voter = false;
      member->weight = 0;
      break;
    case Kind::kRemove:
      next.members.erase(next.members.begin() + (member - next.members.data()));
      break;
    case Kind::kReplace: {
      if (member->voter) {
        return Status::invalid_argument(who + " is a voter: add the new machine as a learner, " +
                                        "and replace once it caught up");
      }
      member->voter = true;
      member->weight = 1;
      Member* old = find(change.old_id);
      if (old == nullptr || !old->voter)
        return Status::not_found(to_string(change.old_id) + " is not a voter");
      next.members.erase(next.members.begin() + (old - next.members.data()));
      break;
    }
    case Kind::kBind:
      if (member->incarnation != 0 && member->incarnation != change.incarnation) {
        return Status::invalid_argument(who + " is bound to another incarnation: a machine " +
                                        "that lost its data joins as a new member");
      }
      if (change.incarnation == 0) return Status::invalid_argument("incarnation 0 binds nothing");
      member->incarnation = change.incarnation;
      break;
  }
  if (Status s = verify_membership(next); !s.is_ok()) return s;
  return next;
}

}  // namespace synod::paxos
