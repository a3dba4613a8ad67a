// A planted unsafe quorum system — Flexible Paxos with a gap between the phases — is caught by
// both checkers: the model checker finds a trace to two chosen values, and the simulator, running
// the Multi-Paxos replicas with it, finds a violation. The verifier refuses it in the first place.
#include <gtest/gtest.h>

#include "check/explorer.h"
#include "sim/cluster.h"

namespace synod::check {
namespace {

const paxos::QuorumConfig kGap{{1, 1, 1, 1}, 2, 2};  // quorums {n1,n2} and {n3,n4} miss
// The smallest gap: one promise is a phase-1 quorum, two acceptances a phase-2 quorum, of three.
const paxos::QuorumConfig kSmallGap{{1, 1, 1}, 1, 2};

TEST(UnsafeQuorumTest, VerifierRefusesIt) {
  auto quorum = paxos::make_quorum_system(4, kGap);
  ASSERT_TRUE(quorum.is_ok());
  const Status status = paxos::verify_quorum_system(*quorum);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.message().find("phase-1 quorum {n1,n2} and phase-2 quorum {n3,n4}"),
            std::string::npos)
      << status.message();
}

TEST(UnsafeQuorumTest, ModelCheckerFindsTwoValuesChosen) {
  auto quorum = paxos::make_quorum_system(3, kSmallGap);
  ASSERT_TRUE(quorum.is_ok());
  ASSERT_FALSE(paxos::verify_quorum_system(*quorum).is_ok());
  const ExploreResult r = explore(Model(ModelConfig{Bounds{}, *quorum, *quorum, {}}));
  ASSERT_TRUE(r.violation);
  EXPECT_EQ(r.violation->rfind("agreement: two values chosen", 0), 0u) << *r.violation;
  EXPECT_FALSE(r.trace.empty());
}

TEST(UnsafeQuorumTest, SimulatorFindsAViolation) {
  sim::Options options;
  options.replicas = 4;
  options.quorum = kGap;
  options.allow_unsafe_quorum = true;
  int violations = 0;
  for (uint64_t seed = 1; seed <= 50 && violations == 0; ++seed) {
    if (sim::run_seed(options, seed, nullptr).violation) ++violations;
  }
  EXPECT_GT(violations, 0);
}

TEST(UnsafeQuorumTest, SimulatorRunsASafeWeightedSystemCleanly) {
  sim::Options options;
  options.replicas = 4;
  options.quorum = paxos::QuorumConfig{{1, 1, 1, 2}, 3, 3};
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const sim::RunResult r = sim::run_seed(options, seed, nullptr);
    EXPECT_FALSE(r.violation) << "seed " << seed << ": " << *r.violation;
  }
}

}  // namespace
}  // namespace synod::check
