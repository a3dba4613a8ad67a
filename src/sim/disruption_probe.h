// The disruption probe of both simulators (sim/cluster.h, sim/core_sim.h): once a run has
// converged in calm, one follower whose absence leaves the leader a quorum is cut off from every
// other replica for three maximum election timeouts (it times out and asks, or campaigns, in
// vain), then let back for three more. The leader must still lead in the same ballot, and no one
// else may have led meanwhile: every leadership change is needless, and any is a violation,
// "disruption: ..." (PreVote and leader stickiness, docs/core.md; the planted bug
// removed-member-disrupts fails it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/types.h"
#include "sim/network_cut.h"
#include "sim/options.h"

namespace synod::sim {

// "n1", "n2", ...: the names of a simulator's nodes (anything with an `id`), by index.
template <typename NodePtrs>
std::vector<std::string> node_names(const NodePtrs& nodes) {
  std::vector<std::string> names;
  for (const auto& node : nodes) names.push_back(to_string(node->id));
  return names;
}

class DisruptionProbe {
 public:
  enum class Stage { kNone, kIsolated, kRejoined, kDone };

  // How long each half of the probe lasts, in simulated microseconds.
  static uint64_t span_us(const ReplicaClock& clock) {
    return 3 * uint64_t(clock.election_timeout_max_ticks) * clock.tick_us;
  }

  // Starts the probe: `follower` (an index into `names`) is cut off from the `leader`, which
  // leads at `ballot`, and from everyone else. Returns the cut to impose.
  NetworkCut start(const std::vector<std::string>& names, int leader, const Ballot& ballot,
                   int follower) {
    stage_ = Stage::kIsolated;
    leader_ = leader;
    ballot_ = ballot;
    follower_ = follower;
    NetworkCut cut;
    cut.kind = "disruption probe";
    for (int other = 0; other < int(names.size()); ++other) {
      if (other == follower) continue;
      cut.loss[{other, follower}] = 1;
      cut.loss[{follower, other}] = 1;
    }
    cut.description = "disruption probe: " + names[size_t(follower)] + " cut off from " +
                      names[size_t(leader)] + " (leader at " + to_string(ballot) + ") and the rest";
    return cut;
  }
  // The follower is let back (the caller clears the cut). Returns a line for the log.
  std::string rejoin(const std::vector<std::string>& names) {
    stage_ = Stage::kRejoined;
    return "disruption probe: " + names[size_t(follower_)] + " rejoins";
  }
  // A replica (`index`) became a leader at `ballot`, or changed role: noted if it matters while
  // watching. `member`: the replica is in the probed leader's configuration. One outside it that
  // leads at a lower ballot (a removed member elected by others removed: seed 20161 of sim
  // --protocol --reconfig --early-wipes --replicas 5) changes nothing for the cluster, since no
  // member takes its ballot; if it disturbed the leader anyway, the leader would stop leading,
  // which finish() counts. One at a higher ballot may have had it promised by members (seed 968,
  // lease-promised-by-accept), so it counts.
  void note_role(int index, bool leads, const std::string& what, bool member = true,
                 const Ballot& ballot = {}) {
    if (stage_ != Stage::kIsolated && stage_ != Stage::kRejoined) return;
    const bool counts = leads && (member || ballot > ballot_);
    if (counts || index == leader_) changes_.push_back(what);
  }
  // Ends the probe, given whether the leader still leads at its ballot. The violation, if any.
  std::optional<std::string> finish(const std::vector<std::string>& names, bool still_leads) {
    stage_ = Stage::kDone;
    if (!still_leads)
      changes_.push_back(names[size_t(leader_)] + " no longer leads at " + to_string(ballot_));
    if (changes_.empty()) return std::nullopt;
    std::string what;
    for (const std::string& change : changes_) what += (what.empty() ? "" : "; ") + change;
    return "disruption: " + std::to_string(changes_.size()) + " needless leader change(s) after " +
           names[size_t(follower_)] +
           " was cut off from a leader that kept its quorum, and came back: " + what;
  }

  Stage stage() const { return stage_; }
  int leader() const { return leader_; }
  const Ballot& ballot() const { return ballot_; }
  uint64_t changes() const { return changes_.size(); }

 private:
  Stage stage_ = Stage::kNone;
  int leader_ = -1;
  int follower_ = -1;
  Ballot ballot_;
  std::vector<std::string> changes_;
};

}  // namespace synod::sim
