// `synod check --replica --lease-periods N`: the production replica with lease reads on
// (paxos::Config::read_lease_ms), time counted in lease periods. A follower's stickiness runs out,
// and its election timer fires, only once a period has passed since it last accepted a leader's
// Accept or restarted — the clock-rate bound that makes a lease shorter than an election timeout
// of ticks. Clean bounds serve no stale read, and both planted lease bugs are found: each serves a
// read by lease after another leader got a write chosen.
//
// These searches also keep a fix of the explorer honest: a read served below its floor leaves no
// trace in the encoded state once answered, and the same state was reached first with the read
// served before the write; the explorer now reports a violating world even when its encoding was
// seen. Before, both bugs went unfound (4.0 and 5.1 million states, 0 violations).
#include <gtest/gtest.h>

#include <string>

#include "check/replica_explorer.h"
#include "check/testing.h"

namespace synod::check {
namespace {

using testing::run;
using testing::three;

// One value, one read, one heartbeat, one lease period, two messages in flight, two elections.
ReplicaBounds lease_bounds(int crashes) {
  ReplicaBounds b;
  b.values = 1;
  b.reads = 1;
  b.timers = 1;
  b.lease_periods = 1;
  b.crashes = crashes;
  b.duplicates = 0;
  b.elections = 2;
  b.max_in_flight = 2;
  return b;
}

void expect_stale_lease_read(const ReplicaExploreResult& r, size_t steps) {
  ASSERT_TRUE(r.violation);
  EXPECT_EQ(r.violation->rfind("linearizable reads: n1 served a read", 0), 0u) << *r.violation;
  EXPECT_EQ(r.trace.size(), steps);
  bool time_passed = false;
  for (const TraceStep& t : r.trace)
    time_passed = time_passed || t.action.find("a lease period passes") != std::string::npos;
  EXPECT_TRUE(time_passed);
  EXPECT_NE(r.trace.back().action.find("client reads at n1"), std::string::npos);
}

TEST(ReplicaLeaseCheck, TheWarmStartElectsN1WithLeasesOn) {
  const ReplicaModel model(ReplicaModelConfig{lease_bounds(1), three(), three(), {}});
  const World world = model.initial();
  EXPECT_EQ(world.boxes[0].replica->role(), paxos::Role::kLeader);
  EXPECT_EQ(world.time, 0);
  EXPECT_FALSE(model.violation(world));
}

TEST(ReplicaLeaseCheck, LeasesServeNoStaleRead) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "a long search (642,434 states): run in the plain build";
#endif
  const ReplicaExploreResult r = run(lease_bounds(0));
  EXPECT_FALSE(r.violation) << *r.violation;
  EXPECT_TRUE(r.complete);
  EXPECT_GT(r.states, 100'000u);
}

// The round's answer arrives after a lease period passed; the acceptor that gave it may already
// have promised another candidate, which gets a write chosen.
TEST(ReplicaLeaseCheck, ALeaseFromTheAnswersIsFound) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "a long search (526,679 states): run in the plain build";
#endif
  expect_stale_lease_read(run(lease_bounds(0), "lease-from-confirmation"), 18);
}

// The acceptor that answered the lease's round restarts and promises n3 at once.
TEST(ReplicaLeaseCheck, ALeaseForgottenOnRestartIsFound) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "a long search (2.3 million states): run in the plain build";
#endif
  const ReplicaExploreResult r = run(lease_bounds(1), "lease-forgotten-on-restart");
  expect_stale_lease_read(r, 16);
  bool restarted = false;
  for (const TraceStep& t : r.trace)
    restarted = restarted || t.action.find("crashes and restarts") != std::string::npos;
  EXPECT_TRUE(restarted);
}

}  // namespace
}  // namespace synod::check
