#include "paxos/learner.h"

namespace synod::paxos {

std::optional<Value> Learner::on_accepted(NodeId from, const Accepted& accepted) {
  if (!quorum_.is_member(from)) return std::nullopt;
  auto [it, inserted] = tallies_.try_emplace(accepted.ballot, Tally{{}, accepted.value});
  Tally& tally = it->second;
  // A ballot belongs to one proposer, which proposes one value in it.
  SYNOD_ASSERT(tally.value == accepted.value, "two values accepted in one ballot");
  tally.voters.insert(from);
  if (chosen_ || !quorum_.is_phase2_quorum(tally.voters)) return std::nullopt;
  chosen_ = tally.value;
  return chosen_;
}

bool Learner::on_chosen(const Chosen& chosen) {
  if (chosen_) return false;
  chosen_ = chosen.value;
  return true;
}

}  // namespace synod::paxos
