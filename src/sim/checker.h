// The simulator's invariants, checked after every step of a run:
//   agreement   — no two values are ever chosen for one slot, and no two replicas learn
//                 different values for one slot;
//   truth       — a replica learns (and applies) only what is really chosen: a value a phase-2
//                 quorum of acceptors durably accepted in one ballot. This is judged with the
//                 true quorum system, whatever the replicas were configured with: the bootstrap
//                 one, and after a configuration change is chosen at slot j, the changed one
//                 for every slot above j (docs/core.md, "Membership") — computed from what is
//                 chosen, not from what any replica believes;
//   configurations — every configuration chosen passes paxos::verify_membership(): its phase-1
//                 and phase-2 quorums intersect, which is all the rule needs;
//   validity    — only proposed commands or no-ops are chosen;
//   durability  — once chosen, always chosen: truth is a history that crashes cannot undo, and
//                 every replica, before or after restarts, must agree with it;
//   prefix      — each replica applies slots 1, 2, 3, ... in order, and what it applies at a slot
//                 is what every other replica applies there;
//   leader learning — a leader's chosen prefix grows only from its own ballot's phase-2 quorums
//                 (Accepted messages), never from a catch-up reply or a snapshot: what it
//                 announces in its ballot must be what it proposed there (docs/core.md,
//                 "Learning"), and a slot learned otherwise may hold another value than the one
//                 it proposed;
//   reads       — a read reported ok at slot s has s at or above every slot chosen before the
//                 read was asked, so in particular above the slot of every command whose chosen
//                 outcome reached a client by then: the read index covers every acknowledged
//                 write (docs/core.md argues the stronger form).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/quorum.h"
#include "paxos/ready.h"

namespace synod::sim {

// The running digest of a state machine that applied `value` at `slot` after reaching `chain`.
uint64_t chain_digest(uint64_t chain, Slot slot, const paxos::Value& value);

class Checker {
 public:
  explicit Checker(paxos::QuorumSystem true_quorum) {
    governing_.emplace(1, Governing{std::move(true_quorum), nullptr});
  }

  void on_propose(const paxos::Command& command);
  // `acceptor` has made durable that it accepted `proposal` for `slot`. `wiped_as`: nonzero if
  // its data directory was wiped, the incarnation of the new one. What a wiped replica accepts
  // is the vote of member `acceptor` only in a slot whose true configuration binds that id to
  // `wiped_as` (a leader bound the new incarnation): the member of that id before, whose
  // promises and votes it forgot, is gone, and the new one is no member of a configuration that
  // does not name its incarnation. So a replica that counts its promise or vote elsewhere (the
  // planted wiped-replica-votes, promise-below-binding) learns a value no true quorum accepted.
  void on_durable_accept(NodeId acceptor, Slot slot, const paxos::Proposal& proposal,
                         uint64_t wiped_as = 0);
  // `node` learned that `value` is chosen for `slot`.
  void on_learn(NodeId node, Slot slot, const paxos::Value& value);
  // `node` restarted: its state machine starts again from slot 1.
  void on_restart(NodeId node);
  // `node` applied `value` at `slot`.
  void on_apply(NodeId node, Slot slot, const paxos::Value& value);
  // `node` replaced its state machine with a snapshot covering slots 1..slot whose running digest
  // (chain_digest over the values it applied) is `chain`: it must equal the chosen log's.
  void on_install(NodeId node, Slot slot, uint64_t chain);
  // `leader`, leading before and after a message of type `via` that is not an answer of its
  // own ballot (an Accepted), moved its chosen prefix from `before` to `after` on it.
  void on_leader_learn(NodeId leader, Slot before, Slot after, std::string_view via);
  // A client heard that its command was chosen at `slot`.
  void on_acknowledge(Slot slot);
  // A replica took read `read_id` (read_index answered kQueued) now.
  void on_read_request(uint64_t read_id);
  // `node` reported the result of read `read_id`.
  void on_read_result(NodeId node, const paxos::ReadResult& result);

  bool ok() const { return !violation_; }
  const std::optional<std::string>& violation() const { return violation_; }
  // Slots known chosen (by the quorum rule), and their values.
  const std::map<Slot, paxos::Value>& chosen() const { return truth_; }

 private:
  struct Votes {
    paxos::NodeSet acceptors;
    paxos::Value value;
    std::vector<std::pair<NodeId, uint64_t>> wiped;  // wiped replicas', by incarnation
  };
  void fail(std::string what);
  void check_valid(Slot slot, const paxos::Value& value);
  // A configuration chosen (none: the bootstrap one) and its quorum system.
  struct Governing {
    paxos::QuorumSystem quorum;
    paxos::MembershipRef membership;
  };
  // The true configuration of `slot`: the newest chosen below it.
  const Governing& governing(Slot slot) const;
  // Whether `votes` for `slot` make a phase-2 quorum of its true configuration.
  bool is_quorum(Slot slot, const Votes& votes) const;
  // Records that `value` is chosen at `slot` (by a quorum of `ballot`), and what follows from it.
  void choose(Slot slot, const paxos::Value& value, const Ballot& ballot);

  std::map<Slot, Governing> governing_;  // by the first slot each governs
  std::map<paxos::CommandId, std::string> proposed_;
  std::map<std::pair<Slot, Ballot>, Votes> votes_;
  std::map<Slot, paxos::Value> truth_;    // chosen by the quorum rule, ever
  std::map<Slot, paxos::Value> learned_;  // first value any replica learned per slot
  std::map<NodeId, Slot> next_apply_;     // per replica: the slot it must apply next
  Slot acknowledged_top_ = 0;             // the highest slot any client heard chosen
  std::map<uint64_t, Slot> read_floor_;   // per pending read: the highest chosen slot when asked
  std::optional<std::string> violation_;
};

}  // namespace synod::sim
