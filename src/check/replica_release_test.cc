// `synod check --replica --release`: the production replica letting go of chosen values as soon
// as it may (paxos::Config::log_memory_bytes 0, what a server does once its log passes the
// budget) and reading them back from its durable chosen marks, the model's log. Every reachable
// state keeps every invariant, and the planted bug promise-hides-released, a promise silent about
// the slots let go of, is found: a candidate proposes a no-op over a chosen value.
#include <gtest/gtest.h>

#include <string>

#include "check/replica_explorer.h"
#include "check/testing.h"

namespace synod::check {
namespace {

using testing::run;

ReplicaBounds release_bounds() {
  ReplicaBounds b;
  b.release = true;
  b.crashes = 0;
  b.duplicates = 0;
  return b;
}

TEST(ReplicaReleaseCheck, LettingGoOfChosenValuesKeepsEveryInvariant) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "a long search (94,037 states): run in the plain build";
#endif
  const ReplicaExploreResult r = run(release_bounds());
  EXPECT_FALSE(r.violation) << *r.violation;
  EXPECT_TRUE(r.complete);
  EXPECT_GT(r.states, 50'000u);
}

TEST(ReplicaReleaseCheck, APromiseThatHidesWhatItLetGoOfIsFound) {
  const ReplicaExploreResult r = run(release_bounds(), "promise-hides-released");
  ASSERT_TRUE(r.violation);
  EXPECT_NE(r.violation->find("noop"), std::string::npos) << *r.violation;
  EXPECT_EQ(r.trace.size(), 12u);
}

}  // namespace
}  // namespace synod::check
