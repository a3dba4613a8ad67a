// The model checker over the real single-decree roles: clean bounds have no violation, each
// planted bug that applies to single decree is found with a shortest trace, and states reached
// in different orders are recognized as one (unsafe_quorum_test.cc: unsafe quorum systems).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "check/explorer.h"

namespace synod::check {
namespace {

std::vector<NodeId> members(int n) {
  std::vector<NodeId> out;
  for (int i = 1; i <= n; ++i) out.push_back(NodeId{uint32_t(i)});
  return out;
}

ModelConfig config(Bounds bounds, paxos::Bugs bugs = {}) {
  paxos::QuorumSystem truth = paxos::QuorumSystem::majority(members(bounds.acceptors));
  return ModelConfig{bounds, paxos::QuorumSystem::majority(members(bounds.acceptors), bugs), truth,
                     bugs};
}

ExploreResult run(Bounds bounds, paxos::Bugs bugs = {}) {
  return explore(Model(config(bounds, bugs)));
}

TEST(ModelCheckTest, DefaultBoundsHaveNoViolation) {
  const ExploreResult r = run(Bounds{});
  EXPECT_FALSE(r.violation) << *r.violation;
  EXPECT_GT(r.states, 10'000u);
  EXPECT_GT(r.transitions, r.states);
  EXPECT_GT(r.max_depth, 10);
  EXPECT_TRUE(r.trace.empty());
}

TEST(ModelCheckTest, CountsAreStable) {
  Bounds bounds;
  bounds.proposers = 1;
  bounds.ballots_per_proposer = 2;
  const ExploreResult a = run(bounds);
  const ExploreResult b = run(bounds);
  EXPECT_FALSE(a.violation);
  EXPECT_EQ(a.states, b.states);
  EXPECT_EQ(a.transitions, b.transitions);
  EXPECT_EQ(a.max_depth, b.max_depth);
}

TEST(ModelCheckTest, DeliveriesInEitherOrderReachOneState) {
  const Model model(config(Bounds{}));
  State start = model.initial();
  model.step(start, Action{Action::Kind::kBegin, 0, {}});
  ASSERT_EQ(start.network.size(), 3u);  // Prepare(1.1) to n1, n2, n3
  const Message to_n1 = start.network[0], to_n2 = start.network[1];
  State one = start, two = start;
  model.step(one, Action{Action::Kind::kDeliver, 0, to_n1});
  model.step(one, Action{Action::Kind::kDeliver, 0, to_n2});
  model.step(two, Action{Action::Kind::kDeliver, 0, to_n2});
  model.step(two, Action{Action::Kind::kDeliver, 0, to_n1});
  EXPECT_EQ(model.encode(one), model.encode(two));
  EXPECT_NE(model.encode(one), model.encode(start));
  // A duplicate delivery changes nothing.
  State again = one;
  model.step(again, Action{Action::Kind::kDeliver, 0, to_n1});
  EXPECT_EQ(model.encode(again), model.encode(one));
}

// With every change durable before its answer leaves, a crash-restart leads to no new state.
TEST(ModelCheckTest, CrashesOfCorrectAcceptorsAddNoState) {
  Bounds calm;
  calm.proposers = 1;
  calm.ballots_per_proposer = 2;
  calm.crashes = 0;
  Bounds crashing = calm;
  crashing.crashes = 2;
  EXPECT_EQ(run(calm).states, run(crashing).states);
}

TEST(ModelCheckTest, ExplicitDropsStayClean) {
  Bounds bounds;
  bounds.proposers = 1;
  bounds.explicit_drops = true;
  const ExploreResult dropping = run(bounds);
  EXPECT_FALSE(dropping.violation) << *dropping.violation;
  bounds.explicit_drops = false;
  EXPECT_GT(dropping.states, run(bounds).states);
}

struct BugCase {
  const char* name;
  size_t shortest_trace;
  const char* violation;
};

TEST(ModelCheckTest, EveryApplicableBugIsFoundWithAShortestTrace) {
  const BugCase cases[] = {
      {"minority-quorum", 5, "truth:"},          {"leader-skip-phase1", 6, "agreement:"},
      {"ack-before-sync", 9, "truth:"},          {"ignore-promised-value", 14, "agreement:"},
      {"accept-lower-ballot", 14, "agreement:"}, {"no-persist-promise", 15, "agreement:"},
  };
  for (const BugCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_FALSE(bug_not_applicable(c.name));
    paxos::Bugs bugs;
    ASSERT_TRUE(paxos::enable_bug(c.name, bugs));
    const ExploreResult r = run(Bounds{}, bugs);
    ASSERT_TRUE(r.violation);
    EXPECT_EQ(r.violation->rfind(c.violation, 0), 0u) << *r.violation;
    EXPECT_EQ(r.trace.size(), c.shortest_trace);
    EXPECT_EQ(size_t(r.max_depth), c.shortest_trace);
    for (const TraceStep& step : r.trace) EXPECT_FALSE(step.action.empty());
    EXPECT_FALSE(r.final_state.empty());
  }
}

TEST(ModelCheckTest, BugsOutsideSingleDecreeAreNamed) {
  for (const std::string& name : paxos::bug_names()) {
    const bool applies = !bug_not_applicable(name);
    const bool expected =
        name != "skip-fdatasync" && name != "promise-hides-snapshot" &&
        name != "promise-hides-released" && name.find("read") == std::string::npos &&
        name != "leader-learns-from-catchup" && name != "time-of-any-ballot" &&
        name != "time-carried-into-new-ballot" && name != "absurd-rounds-taken" &&
        name != "reconfig-without-overlap" && name != "learner-votes" &&
        name != "wiped-replica-votes" && name != "removed-member-disrupts" &&
        name != "silent-learner" && name != "catchup-from-members-only" &&
        name != "transfer-skips-phase1" && name != "transfer-unmarked" &&
        name != "catchup-retry-storm" && name != "silent-without-snapshot" &&
        name != "deaf-to-askers" && name != "unbound-replica-votes" &&
        name != "catchup-asks-silent-leader" && name != "promise-below-binding" &&
        name != "known-compaction-steps-down" && name != "lease-from-confirmation" &&
        name != "lease-forgotten-on-restart" && name != "lease-promised-by-accept" &&
        name != "lease-stale-leader-heard";
    EXPECT_EQ(applies, expected) << name;
  }
  EXPECT_NE(bug_not_applicable("skip-fdatasync")->find("storage"), std::string::npos);
}

// A safe weighted system: n3 weighs 2 (total 4), phase-1 quorums weigh 3, phase-2 quorums 2, so
// {n3} alone is a phase-2 quorum and every phase-1 quorum holds n3 or all of n1, n2.
TEST(ModelCheckTest, SafeWeightedQuorumIsClean) {
  const paxos::QuorumSystem q = paxos::QuorumSystem::weighted(members(3), {1, 1, 2}, 3, 2);
  ASSERT_TRUE(paxos::verify_quorum_system(q).is_ok());
  const ExploreResult r = explore(Model(ModelConfig{Bounds{}, q, q, {}}));
  EXPECT_FALSE(r.violation) << *r.violation;
  EXPECT_GT(r.states, 1000u);
}

}  // namespace
}  // namespace synod::check
