// The learner of single-decree Paxos: a value is chosen once a phase-2 quorum of acceptors has
// accepted it in the same ballot. A learner that decides tells the other learners (Chosen), and a
// learner told so believes it: learners are not Byzantine.
#pragma once

#include <map>
#include <optional>

#include "paxos/acceptor.h"
#include "paxos/quorum.h"

namespace synod::paxos {

class Learner {
 public:
  explicit Learner(QuorumSystem quorum) : quorum_(std::move(quorum)) {}

  // Counts `from`'s acceptance. Returns the value when this acceptance completes a quorum and
  // the learner had not decided yet; the caller then sends Chosen to the other learners.
  std::optional<Value> on_accepted(NodeId from, const Accepted& accepted);

  // Another learner decided. Returns true if this learner learned something new.
  bool on_chosen(const Chosen& chosen);

  const std::optional<Value>& chosen() const { return chosen_; }

  // The acceptances counted so far, per ballot (so that a model checker can tell two learners
  // apart).
  struct Tally {
    NodeSet voters;
    Value value;
  };
  const std::map<Ballot, Tally>& tallies() const { return tallies_; }

 private:
  QuorumSystem quorum_;
  std::map<Ballot, Tally> tallies_;  // one ballot carries one value (a proposer sends one)
  std::optional<Value> chosen_;
};

}  // namespace synod::paxos
