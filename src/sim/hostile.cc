#include "sim/hostile.h"

namespace synod::sim {

paxos::Message hostile_message(Rng& rng, NodeId from, uint64_t known_round, bool from_leads) {
  static constexpr uint64_t kImplausible = kMaxRoundStep + kMaxRoundStep / 2;
  static constexpr uint64_t kFar[] = {1, 1'000, kImplausible};
  uint64_t round = known_round + kFar[rng.below(3)];
  if (rng.chance(0.3)) round = rng.chance(0.5) ? kMaxBallotRound : ~uint64_t{0};
  const uint64_t implausible =
      rng.chance(0.5) ? known_round + kImplausible + rng.below(1000) : ~uint64_t{0};
  const Ballot ballot{round, from};
  const uint64_t far = rng.chance(0.5) ? ~uint64_t{0} - rng.below(4) : 1 + rng.below(1 << 30);
  switch (rng.below(5)) {
    case 0:
      // In a leader's name only an implausible round (hostile.h).
      return paxos::PrepareMsg{
          from_leads && round < known_round + kImplausible ? Ballot{implausible, from} : ballot,
          rng.chance(0.5) ? 1 : far};
    case 1:
      return paxos::AcceptMsg{Ballot{implausible, from}, {}, far, rng.chance(0.5) ? far : 1};
    case 2:
      return paxos::RejectMsg{ballot, Ballot{rng.chance(0.5) ? round : implausible, from}};
    case 3:
      return paxos::CatchupRequestMsg{far};
    default:
      return paxos::SnapshotRequestMsg{far, far};
  }
}

}  // namespace synod::sim
