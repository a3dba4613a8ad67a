// The proposer of single-decree Paxos, and the rule for choosing a value in phase 2 that the
// Multi-Paxos leader follows slot by slot:
//   P2c: with promises for ballot b from a phase-1 quorum, propose the value of the highest-ballot
//        proposal any of them reported accepted; only if none reported one, propose your own.
#pragma once

#include <optional>

#include "base/types.h"
#include "paxos/acceptor.h"
#include "paxos/quorum.h"

namespace synod::paxos {

// Folds one promise's report into the highest-ballot proposal seen so far.
void keep_highest(std::optional<Proposal>& highest, const std::optional<Proposal>& reported);

// The value to propose in phase 2 given the highest reported proposal (P2c). With the planted
// bug ignore_promised_value, the proposer's own value wins regardless.
const Value& choose_value(const std::optional<Proposal>& highest, const Value& own,
                          const Bugs& bugs);

class Proposer {
 public:
  enum class Phase { kIdle, kPreparing, kAccepting, kAbandoned };

  Proposer(NodeId self, QuorumSystem quorum, Value own_value, Bugs bugs = {});

  // Starts phase 1 with ballot (round, self); round must exceed every round used before.
  Prepare begin(uint64_t round);

  // Counts a promise for the current ballot. Returns the Accept to send to every acceptor once
  // a phase-1 quorum has promised, exactly once per ballot.
  std::optional<Accept> on_promise(NodeId from, const Promise& promise);

  // A refusal of the current ballot: the proposer abandons it (a new begin() may follow with a
  // higher round). Returns true if the current ballot was abandoned.
  bool on_reject(const Reject& reject);

  Phase phase() const { return phase_; }
  const Ballot& ballot() const { return ballot_; }
  // The highest round this proposer has seen anywhere; the next begin() should exceed it.
  uint64_t highest_round_seen() const { return highest_round_seen_; }
  // The rest of the state, so that a model checker can tell two proposers apart.
  const NodeSet& promised_by() const { return promised_by_; }
  const std::optional<Proposal>& highest_reported() const { return highest_reported_; }

 private:
  NodeId self_;
  QuorumSystem quorum_;
  Value own_value_;
  Bugs bugs_;

  Phase phase_ = Phase::kIdle;
  Ballot ballot_;
  uint64_t highest_round_seen_ = 0;
  NodeSet promised_by_;
  std::optional<Proposal> highest_reported_;
};

}  // namespace synod::paxos
