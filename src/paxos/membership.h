// The configuration of a cluster — who votes, who only learns, and how quorums are weighed — as
// replicated state. A configuration is a value in the log (Value::membership): the configuration
// that governs slot s is the newest one chosen in a slot below s (the bootstrap configuration if
// none). docs/core.md, "Membership", gives the rule a leader keeps so that every slot has exactly
// one configuration, whichever leader chose it, and why that is safe for any change, however
// large.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/types.h"
#include "paxos/quorum.h"

namespace synod::paxos {

struct Member {
  NodeId id;
  bool voter = true;    // false: a learner, which receives the log and counts in no quorum
  uint32_t weight = 1;  // a voter's weight in the quorum system (learners weigh nothing)
  // The incarnation of the data directory this member runs from (created with the directory);
  // 0: not bound yet. The driver refuses a peer whose incarnation differs from a bound one.
  uint64_t incarnation = 0;
  std::string address;  // the driver's, opaque to the core (how to reach the member)

  bool operator==(const Member&) const = default;
};

// The most bytes one member's address may take, so that a configuration always fits a message.
inline constexpr size_t kMaxMemberAddressBytes = 512;

struct Membership {
  uint64_t epoch = 0;           // 0: the bootstrap configuration; each change adds one
  std::vector<Member> members;  // ascending ids, each once
  uint64_t phase1_weight = 0;   // 0: more than half the voters' total weight
  uint64_t phase2_weight = 0;   // 0: more than half the voters' total weight
  // Every id below it was given to a member once: a new member's id is at least this (ids are
  // never reused, so that an old machine of a reused id can never be mistaken for the new one).
  uint32_t next_id = 1;

  const Member* find(NodeId id) const;
  bool is_member(NodeId id) const { return find(id) != nullptr; }
  bool is_voter(NodeId id) const;
  std::vector<NodeId> ids() const;
  std::vector<NodeId> voters() const;
  // The quorum system over the voters (learners are absent from it: they weigh nothing).
  QuorumSystem quorum(const Bugs& bugs = {}) const;
  // "epoch 3: n1 n2 n4 learner n5 (phase-1 weight 2, phase-2 weight 2)".
  std::string describe() const;
  bool operator==(const Membership&) const = default;
};

using MembershipRef = std::shared_ptr<const Membership>;

// The bootstrap configuration of a quorum system (every member a voter, with its weight).
Membership membership_of(const QuorumSystem& quorum);

// Checks that `m` is well formed (ascending unique ids below next_id, at least one voter, learners
// with weight 0, bounded addresses and size) and that its quorum system is safe on its own:
// every phase-1 quorum meets every phase-2 quorum (verify_quorum_system). Under the rule of
// docs/core.md nothing more is needed between consecutive configurations.
Status verify_membership(const Membership& m);

// One change, as an operator asks for it. The result is the whole next configuration.
struct MembershipChange {
  enum class Kind : uint8_t {
    kAddLearner,  // `id` (0: the next free id) joins as a learner at `address`
    kPromote,     // learner `id` becomes a voter (weight 1)
    kDemote,      // voter `id` becomes a learner
    kRemove,      // `id` leaves
    kReplace,     // learner `id` becomes a voter and voter `old_id` leaves, in one change
    kBind,        // `id`'s incarnation becomes `incarnation` (only if it is still unbound)
  };
  Kind kind = Kind::kAddLearner;
  NodeId id;
  NodeId old_id;
  std::string address;
  uint64_t incarnation = 0;
};
const char* to_string(MembershipChange::Kind kind);

// The configuration after `change`, or why the change is refused (an unknown or reused id, a
// voter that is not a learner yet, a change that would leave no voter or an unsafe quorum
// system). The epoch is current's plus one.
Result<Membership> apply_change(const Membership& current, const MembershipChange& change);

}  // namespace synod::paxos
