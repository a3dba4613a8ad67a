// The simulator's own tests: runs are reproducible, clean runs stay clean across fault mixes and
// cluster sizes, and every checker catches the violation it exists for.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>

#include "sim/cluster.h"

namespace synod::sim {
namespace {

using paxos::Command;
using paxos::CommandId;
using paxos::Proposal;
using paxos::Value;

Value value_of(uint64_t client, uint64_t seq) {
  return Value{{Command{CommandId{client, seq}, "p" + std::to_string(seq)}}};
}

paxos::QuorumSystem majority_of(int n) {
  std::vector<NodeId> members;
  for (int i = 1; i <= n; ++i) members.push_back(NodeId{uint32_t(i)});
  return paxos::QuorumSystem::majority(members);
}

// ---- The checker, fed by hand: each invariant must fire on a planted violation. -------------

class CheckerTest : public ::testing::Test {
 protected:
  Checker checker_{majority_of(3)};
  const Ballot b1_{1, NodeId{1}};
  const Ballot b2_{2, NodeId{2}};
  const Value v_ = value_of(1, 1);
  const Value w_ = value_of(2, 1);

  void SetUp() override {
    checker_.on_propose(v_.commands[0]);
    checker_.on_propose(w_.commands[0]);
  }
};

TEST_F(CheckerTest, QuorumAcceptanceIsChosen) {
  checker_.on_durable_accept(NodeId{1}, 1, Proposal{b1_, v_});
  EXPECT_TRUE(checker_.chosen().empty());
  checker_.on_durable_accept(NodeId{2}, 1, Proposal{b1_, v_});
  ASSERT_EQ(checker_.chosen().count(1), 1u);
  EXPECT_EQ(checker_.chosen().at(1), v_);
  checker_.on_learn(NodeId{3}, 1, v_);
  checker_.on_apply(NodeId{3}, 1, v_);
  EXPECT_TRUE(checker_.ok());
}

TEST_F(CheckerTest, TwoChosenValuesViolateAgreement) {
  checker_.on_durable_accept(NodeId{1}, 1, Proposal{b1_, v_});
  checker_.on_durable_accept(NodeId{2}, 1, Proposal{b1_, v_});
  checker_.on_durable_accept(NodeId{2}, 1, Proposal{b2_, w_});
  EXPECT_TRUE(checker_.ok());  // one acceptor is not a quorum
  checker_.on_durable_accept(NodeId{3}, 1, Proposal{b2_, w_});
  ASSERT_FALSE(checker_.ok());
  EXPECT_NE(checker_.violation()->find("agreement: two values chosen for slot 1"),
            std::string::npos);
}

TEST_F(CheckerTest, OneBallotWithTwoValuesViolatesAgreement) {
  checker_.on_durable_accept(NodeId{1}, 4, Proposal{b1_, v_});
  checker_.on_durable_accept(NodeId{2}, 4, Proposal{b1_, w_});
  ASSERT_FALSE(checker_.ok());
  EXPECT_NE(checker_.violation()->find("carries two values"), std::string::npos);
}

TEST_F(CheckerTest, LearningWhatNoQuorumAcceptedIsCaught) {
  checker_.on_durable_accept(NodeId{1}, 1, Proposal{b1_, v_});
  checker_.on_learn(NodeId{1}, 1, v_);
  ASSERT_FALSE(checker_.ok());
  EXPECT_NE(checker_.violation()->find("truth:"), std::string::npos);
}

// A wiped replica's vote counts only in slots whose true configuration binds its new
// incarnation: below the binding (or anywhere, if no configuration binds it) it is no member's.
TEST_F(CheckerTest, AWipedReplicasVoteCountsOnlyWhereItsIncarnationIsBound) {
  constexpr uint64_t kNew = 77;
  checker_.on_durable_accept(NodeId{1}, 1, Proposal{b1_, v_});
  checker_.on_durable_accept(NodeId{2}, 1, Proposal{b1_, v_}, kNew);  // n2, wiped, unbound
  EXPECT_TRUE(checker_.chosen().empty());
  // Slot 2 chooses a configuration binding n2 to its new incarnation: it governs slot 3 on.
  paxos::Membership bound =
      paxos::membership_of(paxos::QuorumSystem::majority({NodeId{1}, NodeId{2}, NodeId{3}}));
  bound.epoch = 1;
  bound.members[1].incarnation = kNew;
  Value change;
  change.membership = std::make_shared<const paxos::Membership>(bound);
  checker_.on_durable_accept(NodeId{1}, 2, Proposal{b1_, change});
  checker_.on_durable_accept(NodeId{3}, 2, Proposal{b1_, change});
  ASSERT_EQ(checker_.chosen().count(2), 1u);
  EXPECT_EQ(checker_.chosen().count(1), 0u);  // still below the binding
  checker_.on_durable_accept(NodeId{1}, 3, Proposal{b1_, w_});
  checker_.on_durable_accept(NodeId{2}, 3, Proposal{b1_, w_}, kNew);
  EXPECT_EQ(checker_.chosen().count(3), 1u);  // bound there: n1 and the new n2 are a quorum
  checker_.on_durable_accept(NodeId{2}, 4, Proposal{b1_, v_}, kNew + 1);  // another directory
  checker_.on_durable_accept(NodeId{1}, 4, Proposal{b1_, v_});
  EXPECT_EQ(checker_.chosen().count(4), 0u);
  checker_.on_learn(NodeId{3}, 1, v_);
  ASSERT_FALSE(checker_.ok());
  EXPECT_NE(checker_.violation()->find("truth:"), std::string::npos);
}

TEST_F(CheckerTest, LearningAnotherValueThanTheChosenOneIsCaught) {
  checker_.on_durable_accept(NodeId{1}, 1, Proposal{b1_, v_});
  checker_.on_durable_accept(NodeId{2}, 1, Proposal{b1_, v_});
  checker_.on_learn(NodeId{3}, 1, w_);
  ASSERT_FALSE(checker_.ok());
  EXPECT_NE(checker_.violation()->find("agreement:"), std::string::npos);
}

TEST_F(CheckerTest, ChoosingAnUnproposedCommandViolatesValidity) {
  const Value forged = value_of(9, 9);
  checker_.on_durable_accept(NodeId{1}, 1, Proposal{b1_, forged});
  checker_.on_durable_accept(NodeId{2}, 1, Proposal{b1_, forged});
  ASSERT_FALSE(checker_.ok());
  EXPECT_NE(checker_.violation()->find("validity:"), std::string::npos);
}

TEST_F(CheckerTest, NoopsAreValid) {
  checker_.on_durable_accept(NodeId{1}, 1, Proposal{b1_, paxos::noop()});
  checker_.on_durable_accept(NodeId{3}, 1, Proposal{b1_, paxos::noop()});
  EXPECT_TRUE(checker_.ok());
}

TEST_F(CheckerTest, ApplyingOutOfOrderViolatesPrefix) {
  for (NodeId n : {NodeId{1}, NodeId{2}}) {
    checker_.on_durable_accept(n, 1, Proposal{b1_, v_});
    checker_.on_durable_accept(n, 2, Proposal{b1_, w_});
  }
  checker_.on_apply(NodeId{1}, 2, w_);
  ASSERT_FALSE(checker_.ok());
  EXPECT_NE(checker_.violation()->find("prefix:"), std::string::npos);
}

TEST_F(CheckerTest, ApplyingAgainAfterRestartStartsAtSlotOne) {
  checker_.on_durable_accept(NodeId{1}, 1, Proposal{b1_, v_});
  checker_.on_durable_accept(NodeId{2}, 1, Proposal{b1_, v_});
  checker_.on_apply(NodeId{1}, 1, v_);
  checker_.on_restart(NodeId{1});
  checker_.on_apply(NodeId{1}, 1, v_);
  EXPECT_TRUE(checker_.ok());
  checker_.on_apply(NodeId{1}, 1, v_);  // but not twice in one life
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, ApplyingAnUnchosenValueViolatesPrefix) {
  checker_.on_apply(NodeId{1}, 1, v_);
  ASSERT_FALSE(checker_.ok());
  EXPECT_NE(checker_.violation()->find("none is chosen"), std::string::npos);
}

// ---- Whole runs. -----------------------------------------------------------------------------

TEST(Simulation, SameSeedGivesByteIdenticalTrace) {
  Options options;
  options.replicas = 5;
  std::ostringstream first, second, other;
  const RunResult a = run_seed(options, 42, &first);
  const RunResult b = run_seed(options, 42, &second);
  const RunResult c = run_seed(options, 43, &other);
  EXPECT_FALSE(a.violation);
  EXPECT_GT(first.str().size(), 10'000u);
  EXPECT_EQ(first.str(), second.str());
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.commands_chosen, b.commands_chosen);
  EXPECT_NE(a.digest, c.digest);
  EXPECT_NE(first.str(), other.str());
}

TEST(Simulation, CleanRunElectsCommitsAndConverges) {
  Options options;
  options.apply_fault_mix("none");
  const RunResult r = run_seed(options, 1);
  ASSERT_FALSE(r.violation) << *r.violation;
  EXPECT_GE(r.leaders, 1u);
  EXPECT_GT(r.commands_acknowledged, 100u);
  EXPECT_EQ(r.crashes, 0u);
  EXPECT_EQ(r.partitions, 0u);
}

TEST(Simulation, FaultsHappenAndAreSurvived) {
  Options options;
  options.replicas = 5;
  uint64_t crashes = 0, partitions = 0, leaders = 0, acknowledged = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const RunResult r = run_seed(options, seed);
    ASSERT_FALSE(r.violation) << "seed " << seed << ": " << *r.violation;
    crashes += r.crashes;
    partitions += r.partitions;
    leaders += r.leaders;
    acknowledged += r.commands_acknowledged;
  }
  EXPECT_GT(crashes, 20u);
  EXPECT_GT(partitions, 20u);
  EXPECT_GT(leaders, 40u);  // leadership changes hands under faults
  EXPECT_GT(acknowledged, 500u);
}

TEST(Simulation, LivenessCheckFiresWhenTheBoundIsTooTight) {
  Options options;
  options.liveness_bound_us = 1;  // nothing converges in a microsecond
  const RunResult r = run_seed(options, 3);
  ASSERT_TRUE(r.violation);
  EXPECT_NE(r.violation->find("liveness:"), std::string::npos);
}

TEST(Simulation, LivenessCheckFiresWhenElectionsNeverFinish) {
  // Planted: elections that never finish (timeouts far beyond the liveness bound).
  Options options;
  options.election_timeout_min_ticks = 5'000;
  options.election_timeout_max_ticks = 6'000;
  options.fault_phase_us = 100'000;
  options.liveness_bound_us = 2'000'000;
  const RunResult r = run_seed(options, 5);
  ASSERT_TRUE(r.violation);
  EXPECT_NE(r.violation->find("liveness:"), std::string::npos);
}

// At least 1,000 seeds across fault mixes and cluster sizes, with zero violations.
struct Sweep {
  int replicas;
  const char* mix;
  uint64_t first_seed;
  uint64_t seeds;
};

class SimulationSweep : public ::testing::TestWithParam<Sweep> {};

TEST_P(SimulationSweep, NoViolations) {
  const Sweep& sweep = GetParam();
  Options options;
  options.replicas = sweep.replicas;
  ASSERT_TRUE(options.apply_fault_mix(sweep.mix));
  uint64_t chosen = 0;
  for (uint64_t seed = sweep.first_seed; seed < sweep.first_seed + sweep.seeds; ++seed) {
    const RunResult r = run_seed(options, seed);
    ASSERT_FALSE(r.violation) << "seed " << seed << ": " << *r.violation
                              << "\nreplay: synod sim --seed " << seed << " --replicas "
                              << sweep.replicas << " --faults " << sweep.mix << " --trace";
    chosen += r.commands_chosen;
  }
  EXPECT_GT(chosen, sweep.seeds * 10);
}

INSTANTIATE_TEST_SUITE_P(
    FaultMixes, SimulationSweep,
    ::testing::Values(Sweep{3, "all", 1000, 300}, Sweep{5, "all", 2000, 300},
                      Sweep{7, "all", 3000, 150}, Sweep{3, "network", 4000, 60},
                      Sweep{5, "crash", 5000, 60}, Sweep{5, "partition", 6000, 60},
                      Sweep{7, "network", 7000, 40}, Sweep{3, "crash", 8000, 40},
                      Sweep{3, "none", 9000, 20}, Sweep{1, "crash", 9500, 20}),
    [](const ::testing::TestParamInfo<Sweep>& param) {
      return std::string(param.param.mix) + "_" + std::to_string(param.param.replicas) + "replicas";
    });

// Every planted bug is caught within seeds 1-300 on 5 replicas.
class PlantedBug : public ::testing::TestWithParam<std::string> {};

// Bugs found by review that no random schedule of this simulator has reached yet: each is caught
// by a hand-built schedule in the core's tests (named here), and the issue "Prove the code that
// runs" extends the simulator and the model checker until they find it on their own.
const std::map<std::string, std::string>& not_yet_reached() {
  static const std::map<std::string, std::string> bugs = {
      {"time-carried-into-new-ballot",
       "core_sim_test.cc ANewLeaderThatCarriesItsOldTimeIsCaught: it shows only in key expiry, "
       "which this simulator's clients do not use"},
      {"time-of-any-ballot",
       "core_sim_test.cc ACutOffLeadersClockThatLiftsItsSuccessorsIsCaught: it shows only in key "
       "expiry, which this simulator's clients do not use"},
      {"deaf-to-askers",
       "sim_test.cc Simulation.ASpareMadeTheOnlyVoterAsksThoseWhoAskIt replays a seed of the 11 "
       "of 30,000 of sim --protocol --reconfig that reach it"},
      {"catchup-asks-silent-leader",
       "sim_test.cc Simulation.CatchupAsksAnotherPeerThanASilentLeader replays the one seed of "
       "30,000 of sim --protocol --reconfig that reaches it"},
      {"catchup-from-members-only",
       "no checker now (it was lost when catch-up stopped asking silent leaders and joiners began "
       "to ask back those "
       "that ask them for votes: sim --protocol --reconfig reached it at seed 1155 of 3,000 and "
       "2815 of 6,000 (3 replicas) before, and at none of 30,000 (3 replicas) or 12,000 (5) now, "
       "with or without deaf-to-askers planted too; the fix (catch-up answers count from any "
       "sender) is in Replica::step"},
      {"read-during-change",
       "no checker yet: sim --protocol --reconfig's reads check found the stale read once (seed "
       "17055 of 30,000, before the fixes that moved the schedules) and none of 30,000 seeds "
       "since; the model checker's read check now flags it too, but `check --replica --reconfig "
       "replace --reads 1` did not finish in 20 minutes"},
      {"unbound-replica-votes",
       "check_tests ReplicaReconfigCheck.AVoterAbsentFromTheStartIsRefusedByAWipedReplica (the "
       "model checker's --wipes 1 --absent, 10 steps); sim --protocol --reconfig reached it at 2 "
       "of 30,000 seeds (15159, 17810)"},
      {"known-compaction-steps-down",
       "sim_test.cc Simulation.ALeaderDoesNotStepDownForACompactionItHasLearned replays a seed "
       "of sim --protocol --reconfig --replicas 5 that reaches it (7836 of 10,000)"},
      {"promise-below-binding",
       "no checker yet, only membership_test.cc "
       "Membership.AReplicaBoundAfterAWipeVotesNothingBelowItsBinding: it needs five voters, "
       "one wiped before its incarnation is bound and bound again by a leader that never heard "
       "it, and a voter behind the binding that never heard either; none of 30,000 seeds of sim "
       "--protocol --reconfig --early-wipes (3 replicas) or 10,000 (5) reach it, and it is "
       "deeper than the model checker's --wipes 1 --absent bounds"},
      {"lease-from-confirmation",
       "check/replica_lease_test.cc ReplicaLeaseCheck.ALeaseFromTheAnswersIsFound (the model "
       "checker's --lease-periods 1, 18 steps); sim --protocol --lease found it in none of "
       "3,000 seeds (3 and 5 replicas): a cut-off leader steps down for want of a quorum "
       "within about an election timeout, which leaves the stretched lease a narrow window"},
      {"lease-forgotten-on-restart",
       "check/replica_lease_test.cc ReplicaLeaseCheck.ALeaseForgottenOnRestartIsFound (the model "
       "checker's --lease-periods 1 --crashes 1, 16 steps); sim --protocol --lease found it in "
       "none of 3,000 seeds (3 and 5 replicas)"},
      {"lease-promised-by-accept",
       "sim_test.cc Simulation.AStickyAcceptorTakesNoHigherBallotsAccept replays the one seed of "
       "15,000 of sim --protocol --lease --reconfig that reaches it (968, 3 replicas: the "
       "disruption check), and lease_test.cc builds the stale read a review found"},
      {"lease-stale-leader-heard",
       "no checker yet, only lease_test.cc "
       "LeaseReads.AJoinerThatNotedAStaleLeaderIsStickyToTheOneItAccepted (a review's schedule: "
       "a joiner hears a stale leader's Accept before it votes, then answers the lease holder)"},
      {"silent-without-snapshot",
       "core_sim_test.cc APeerWithoutASnapshotThatStaysSilentIsCaught: it needs a replica that "
       "never snapshots while others do, which the whole-replica simulator runs and this one "
       "does not"},
  };
  return bugs;
}

TEST_P(PlantedBug, IsCaught) {
  if (auto it = not_yet_reached().find(GetParam()); it != not_yet_reached().end())
    GTEST_SKIP() << "not reached by random schedules yet; caught by " << it->second;
  Options options;
  options.replicas = 5;
  ASSERT_TRUE(paxos::enable_bug(GetParam(), options.bugs));
  // The configuration bugs need configuration changes and wiped replicas (--reconfig); with three
  // replicas a change or a wipe more often decides a quorum (first caught at seeds 21, 1 and 145).
  const bool liveness_bug = GetParam() == "absurd-rounds-taken" || GetParam() == "silent-learner";
  // The transfer bugs need leader transfers (--transfer): transfer-skips-phase1 a late
  // TimeoutNow in the fault phase, transfer-unmarked the transfer probe once calm.
  if (GetParam() == "transfer-skips-phase1" || GetParam() == "transfer-unmarked")
    options.transfer = 0.2;
  if (GetParam() == "reconfig-without-overlap" || GetParam() == "learner-votes" ||
      GetParam() == "wiped-replica-votes" || GetParam() == "silent-learner") {
    options.reconfig = 0.3;
    options.replicas = 3;
  }
  // catchup-retry-storm shows where answers take longer to arrive than the retransmit interval:
  // links of 1 MB/s carrying large values (first caught at seed 5).
  const bool storm_bug = GetParam() == "catchup-retry-storm";
  if (storm_bug) {
    options.replicas = 3;
    options.link_bytes_per_ms = 1000;
    options.large_values = 0.2;
  }
  for (uint64_t seed = 1; seed <= 1000; ++seed) {
    const RunResult r = run_seed(options, seed);
    if (r.violation) {
      // absurd-rounds-taken is a liveness bug: the hostile peer's Prepare at the top round
      // leaves no ballot for any candidate; so is silent-learner: nobody knows it must lead.
      const bool liveness = r.violation->rfind("liveness", 0) == 0;
      EXPECT_EQ(liveness, liveness_bug) << *r.violation;
      EXPECT_EQ(r.violation->rfind("catch-up storm", 0) == 0, storm_bug) << *r.violation;
      return;
    }
  }
  FAIL() << "no violation in 1000 seeds with --bug " << GetParam();
}

// Links of 1 MB/s carrying large values: answers take longer to arrive than the retransmit
// interval and links fill up, yet every run stays safe and live, and no replica asks for the
// same catch-up in a storm (the check that catches catchup-retry-storm above; 800 seeds of
// `synod sim --protocol --link-bytes-per-ms 1000 --large-values 0.2` ran clean).
TEST(Simulation, SlowLinksWithLargeValuesStaySafeLiveAndStormFree) {
  Options options;
  options.link_bytes_per_ms = 1000;
  options.large_values = 0.2;
  uint64_t link_drops = 0;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    const RunResult r = run_seed(options, seed);
    EXPECT_FALSE(r.violation) << "seed " << seed << ": " << *r.violation;
    link_drops += r.link_drops;
  }
  EXPECT_GT(link_drops, 0u);  // the links did fill up
}

// Review finding 1: a leader learned slots from catch-up replies and announced them in its own
// ballot. Its agreement violation needs a rare schedule (0 of 5,000 seeds reach it; replica_test.cc
// builds it), but the defect itself, a leader's chosen prefix moving on anything but its own
// quorum's answers, random schedules reach: seeds 5, 10 and 11 here (since PreVote, whose
// refusals make a lagging replica catch up, 10 of the first 100 seeds with 5 replicas;
// `synod sim --protocol --replicas 5 --bug leader-learns-from-catchup --seeds 1-1000
// --keep-going` finds them again). The same seeds run clean without the bug.
TEST(Simulation, ALeaderThatLearnsFromCatchupIsCaught) {
  Options options;
  options.replicas = 5;
  Options planted = options;
  planted.bugs.leader_learns_from_catchup = true;
  int caught = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    const RunResult clean = run_seed(options, seed);
    EXPECT_FALSE(clean.violation) << "seed " << seed << ": " << *clean.violation;
    const RunResult r = run_seed(planted, seed);
    if (!r.violation) continue;
    EXPECT_EQ(r.violation->rfind("leader learning: ", 0), 0u)
        << "seed " << seed << ": " << *r.violation;
    ++caught;
  }
  EXPECT_GE(caught, 1);
}

// Seed `seed` of `options` runs clean, and with `bug` planted too ends in a liveness violation.
void expect_liveness_bug_replays(Options options, uint64_t seed, const char* bug,
                                 const char* kind = "liveness: ") {
  const RunResult clean = run_seed(options, seed);
  EXPECT_FALSE(clean.violation) << *clean.violation;
  ASSERT_TRUE(paxos::enable_bug(bug, options.bugs));
  const RunResult planted = run_seed(options, seed);
  ASSERT_TRUE(planted.violation) << "seed " << seed << ": the planted bug was not reproduced";
  EXPECT_EQ(planted.violation->rfind(kind, 0), 0u) << *planted.violation;
}

// Found by `synod sim --protocol --reconfig --replicas 5 --seeds 1-10000` (seed 7836): during
// the disruption probe the leader, asking a new voter for its promise after a change from where
// its phase 1 had begun (slot 11), got one reporting a snapshot at 11, and stepped down to catch
// up, though it had chosen up to 21 itself: a needless election. A leader now steps down only
// for a compaction above its own chosen prefix. The planted bug known-compaction-steps-down
// restores the old rule; `synod sim --protocol --reconfig --replicas 5 --seeds 1-10000 --bug
// known-compaction-steps-down --keep-going` finds it (seed 7836 first), so the seed replays here
// and must be found again with that command whenever the simulator's schedule changes.
TEST(Simulation, ALeaderDoesNotStepDownForACompactionItHasLearned) {
  Options options;
  options.replicas = 5;
  options.reconfig = 0.3;
  options.log_memory_bytes = paxos::Config{}.log_memory_bytes;  // as when it was found
  expect_liveness_bug_replays(options, 7836, "known-compaction-steps-down", "disruption: ");
}

// Two seeds that once failed with no bug planted, for reasons of the simulator's, not the
// protocol's. 2102 (--lease --reconfig --replicas 5): the hostile peer sent a plausible Prepare
// in the name of the replica that led, which only that leader could send (sim/hostile.h).
// 20161 (--reconfig --early-wipes --replicas 5): removed members elected one of themselves below
// the leader's ballot, which the disruption check counted (sim/disruption_probe.h).
TEST(Simulation, SeedsTheFaultModelOnceFailedRunClean) {
  Options leases;
  leases.replicas = 5;
  leases.lease = true;
  leases.reconfig = 0.3;
  const RunResult hostile = run_seed(leases, 2102);
  EXPECT_FALSE(hostile.violation) << *hostile.violation;
  EXPECT_GT(hostile.hostile_messages, 0u);
  Options wipes;
  wipes.replicas = 5;
  wipes.reconfig = 0.3;
  wipes.early_wipes = true;
  const RunResult removed = run_seed(wipes, 20161);
  EXPECT_FALSE(removed.violation) << *removed.violation;
  EXPECT_TRUE(removed.disruption_probed);
}

// With lease reads, an acceptor that keeps candidates out ignores Accepts of higher ballots from
// other nodes too (a review found the stale read that taking one allows: lease_test.cc,
// LeaseReads.AStickyAcceptorTakesNoHigherBallotsAcceptFromAnotherNode). `synod sim --protocol
// --lease --reconfig --seeds 1-15000 --keep-going --bug lease-promised-by-accept` reaches the
// planted bug once, at seed 968, as a needless leader change (the disruption check), so the seed
// replays here; find it again with that command whenever the simulator's schedule changes.
TEST(Simulation, AStickyAcceptorTakesNoHigherBallotsAccept) {
  Options options;
  options.lease = true;
  options.reconfig = 0.3;
  expect_liveness_bug_replays(options, 968, "lease-promised-by-accept", "disruption: ");
}

// Found by `synod sim --protocol --reconfig --seeds 1-6000` (seed 5471, 3 replicas): the leader
// replaced itself by spare n6, which became the only voter, then n6 restarted knowing no
// configuration and so no peer to ask; the others asked it for the slots after their chosen
// prefix, it answered what it had (nothing), and nobody ever led. A replica asked for slots above
// its own chosen prefix now asks the asker back. The planted bug deaf-to-askers restores the old
// behaviour (1 of 6,000 seeds then). Since a replica that does not vote yet also asks back those
// that ask it for a vote (Replica::ask_back, which the bug turns off too), `synod sim --protocol
// --reconfig --seeds 1-30000 --bug deaf-to-askers --keep-going` finds it in 11 of 30,000 seeds
// (first 3714): too rare for a search here, so the seed replays and must be found again with
// that command whenever the simulator's schedule changes.
TEST(Simulation, ASpareMadeTheOnlyVoterAsksThoseWhoAskIt) {
  Options options;
  options.reconfig = 0.3;
  expect_liveness_bug_replays(options, 3714, "deaf-to-askers");
}

// Found by `synod sim --protocol --reconfig --seeds 1-30000` (seed 13100, 3 replicas) once a
// replica on a joining directory votes only when bound (Replica::votes): a voter made of such a
// joiner, behind the binding that would let it vote, asked the leader it last heard of for the
// rest of a snapshot, and that leader had been wiped: its peers' pins refused its answers, and
// without the joiner's vote nobody could be elected. Catch-up now asks another peer once the
// leader has been silent for an election timeout. The planted bug catchup-asks-silent-leader
// restores the old choice; `synod sim --protocol --reconfig --seeds 1-30000 --bug
// catchup-asks-silent-leader --keep-going` finds it once (seed 6280), so the seed replays here and
// must be found again with that command whenever the simulator's schedule changes.
TEST(Simulation, CatchupAsksAnotherPeerThanASilentLeader) {
  Options options;
  options.reconfig = 0.3;
  expect_liveness_bug_replays(options, 6280, "catchup-asks-silent-leader");
}

// Seeds 1..seeds of `options` with configuration changes, at 3 and 5 replicas: none may fail.
// The totals of the runs.
RunResult run_reconfig_seeds(Options options, uint64_t seeds) {
  RunResult total;
  options.reconfig = 0.3;
  for (int replicas : {3, 5}) {
    options.replicas = replicas;
    for (uint64_t seed = 1; seed <= seeds; ++seed) {
      const RunResult r = run_seed(options, seed);
      EXPECT_FALSE(r.violation) << "seed " << seed << " (" << replicas
                                << " replicas): " << *r.violation;
      total.wipes += r.wipes;
      total.refused_identities += r.refused_identities;
      total.reconfigurations += r.reconfigurations;
    }
  }
  return total;
}

// Wipes before the binding is known everywhere (options.early_wipes): members that never heard
// the old incarnation listen to the new one, and a leader among them binds it, so it votes, and
// the checker counts its votes where that binding governs. Every invariant holds. A member whose
// pin holds the old incarnation refuses the new one, which then stops for good, as a server does
// (Server::identity_refused).
TEST(Simulation, WipesBeforeTheBindingKeepEveryInvariant) {
  Options options;
  options.early_wipes = true;
  const RunResult total = run_reconfig_seeds(options, 200);
  EXPECT_GE(total.wipes, 40u);
  EXPECT_GT(total.refused_identities, 0u);
}

// Before the simulator stopped a refused replica, it ran on, refused by the members whose pins
// held its old incarnation and followed by the others: seed 29239 (3 replicas) and 20801 (5) of
// `synod sim --protocol --reconfig --early-wipes` ended with it leading a quorum the refusing
// member could never join, and failed liveness; so did seed 12850 (5) on an earlier schedule.
// A server refused so stops, and the rest converge without it.
TEST(Simulation, AReplicaRefusedForItsIdentityStopsAndTheRestConverge) {
  Options options;
  options.reconfig = 0.3;
  options.early_wipes = true;
  for (const auto& [replicas, seed] : {std::pair{3, 29239}, std::pair{5, 20801}}) {
    options.replicas = replicas;
    const RunResult r = run_seed(options, uint64_t(seed));
    EXPECT_FALSE(r.violation) << "seed " << seed << ": " << *r.violation;
    EXPECT_GE(r.refused_identities, 1u) << "seed " << seed;
  }
}

// Lease reads (Options::lease): every replica runs with production's lease and a clock whose
// rate is off by up to the bound, fast or slow; every read served, by lease or by round, covers
// every value chosen before it was asked, and every other invariant holds. Most reads are served
// while a lease holds. (The lease bugs are the model checker's to find: replica_lease_test.cc.)
TEST(Simulation, LeaseReadsUnderFaultsKeepEveryInvariant) {
  uint64_t served = 0, in_lease = 0;
  for (int replicas : {3, 5}) {
    Options options;
    options.replicas = replicas;
    options.lease = true;
    for (uint64_t seed = 1; seed <= 200; ++seed) {
      const RunResult r = run_seed(options, seed);
      EXPECT_FALSE(r.violation) << "seed " << seed << " (" << replicas
                                << " replicas): " << *r.violation;
      served += r.reads_served;
      in_lease += r.reads_in_lease;
    }
  }
  EXPECT_GT(served, 10'000u);
  EXPECT_GT(in_lease * 2, served);
}

// Leader transfers at random under every fault (and, with --reconfig, before every change that
// removes, demotes or replaces the leader) keep every invariant; most complete; and once calm the
// transfer probe's handover to a healthy voter completes within the minimum election timeout
// with no other leader change (the planted bug transfer-unmarked fails that: PlantedBug.IsCaught).
TEST(Simulation, LeaderTransfersUnderFaultsKeepEveryInvariant) {
  uint64_t asked = 0, completed = 0, probed = 0, runs = 0, slowest_us = 0;
  for (int replicas : {3, 5}) {
    for (double reconfig : {0.0, 0.3}) {
      Options options;
      options.replicas = replicas;
      options.transfer = 0.2;
      options.reconfig = reconfig;
      for (uint64_t seed = 1; seed <= 20; ++seed) {
        const RunResult r = run_seed(options, seed);
        EXPECT_FALSE(r.violation) << "seed " << seed << " (" << replicas << " replicas, reconfig "
                                  << reconfig << "): " << *r.violation;
        ++runs;
        asked += r.transfers_asked;
        completed += r.transfers_completed;
        probed += r.transfer_probed ? 1 : 0;
        slowest_us = std::max(slowest_us, r.transfer_probe_us);
      }
    }
  }
  EXPECT_GE(asked, 200u);
  EXPECT_GE(completed, asked / 4);
  EXPECT_GE(probed, runs * 3 / 4);
  EXPECT_GT(slowest_us, 0u);  // each probe's bound is its own run's (swarmed) election timeout
}

TEST(Simulation, ReconfigurationUnderFaultsKeepsEveryInvariant) {
  EXPECT_GE(run_reconfig_seeds(Options{}, 40).reconfigurations, 100u);
}

INSTANTIATE_TEST_SUITE_P(AllBugs, PlantedBug, ::testing::ValuesIn(paxos::bug_names()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

TEST(Options, SeedRanges) {
  EXPECT_EQ(parse_seed_range("1-300"), std::make_pair(uint64_t{1}, uint64_t{300}));
  EXPECT_EQ(parse_seed_range("7"), std::make_pair(uint64_t{7}, uint64_t{7}));
  EXPECT_FALSE(parse_seed_range("9-3"));
  EXPECT_FALSE(parse_seed_range("a-3"));
  EXPECT_FALSE(parse_seed_range(""));
  EXPECT_FALSE(parse_seed_range("1-"));
}

}  // namespace
}  // namespace synod::sim
