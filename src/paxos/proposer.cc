#include "paxos/proposer.h"

#include <algorithm>

namespace synod::paxos {

void keep_highest(std::optional<Proposal>& highest, const std::optional<Proposal>& reported) {
  if (reported && (!highest || reported->ballot > highest->ballot)) highest = reported;
}

const Value& choose_value(const std::optional<Proposal>& highest, const Value& own,
                          const Bugs& bugs) {
  if (highest && !bugs.ignore_promised_value) return highest->value;
  return own;
}

Proposer::Proposer(NodeId self, QuorumSystem quorum, Value own_value, Bugs bugs)
    : self_(self), quorum_(std::move(quorum)), own_value_(std::move(own_value)), bugs_(bugs) {}

Prepare Proposer::begin(uint64_t round) {
  SYNOD_ASSERT(round > highest_round_seen_, "a new ballot must exceed every round seen");
  ballot_ = Ballot{round, self_};
  highest_round_seen_ = round;
  phase_ = Phase::kPreparing;
  promised_by_.clear();
  highest_reported_.reset();
  return Prepare{ballot_};
}

std::optional<Accept> Proposer::on_promise(NodeId from, const Promise& promise) {
  if (phase_ != Phase::kPreparing || promise.ballot != ballot_) return std::nullopt;
  if (!quorum_.is_member(from) || promised_by_.contains(from)) return std::nullopt;
  promised_by_.insert(from);
  keep_highest(highest_reported_, promise.accepted);
  if (!quorum_.is_phase1_quorum(promised_by_)) return std::nullopt;
  phase_ = Phase::kAccepting;
  return Accept{ballot_, choose_value(highest_reported_, own_value_, bugs_)};
}

bool Proposer::on_reject(const Reject& reject) {
  highest_round_seen_ = std::max(highest_round_seen_, reject.promised.round);
  if (reject.ballot != ballot_ || reject.promised <= ballot_) return false;
  if (phase_ != Phase::kPreparing && phase_ != Phase::kAccepting) return false;
  phase_ = Phase::kAbandoned;
  return true;
}

}  // namespace synod::paxos
