// `synod check --replica --release`: the production replica letting go of chosen values as soon
// as it may (paxos::Config::log_memory_bytes 0, what a server does once its log passes the
// budget) and reading them back from its durable chosen marks, the model's log. Every reachable
// state keeps every invariant, and the planted bug promise-hides-released, a promise silent about
// the slots let go of, is found: a candidate proposes a no-op over a chosen value.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "check/replica_explorer.h"
#include "check/testing.h"

namespace synod::check {
namespace {

using testing::run;
using testing::three;

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

// Worlds share replicas until a step changes one (ReplicaBoxes, copy on write), and a replica's
// encoding is kept until then. Every successor is stepped from a copy of its parent: the parent
// must come out as it was, and each successor must encode as the same steps from a world built
// afresh (nothing shared, nothing cached) do. With --release, a copied replica must also read its
// own copy of the log.
TEST(ReplicaModelCopies, StepsOfACopyLeaveTheWorldAsItWasAndEncodeAsFromScratch) {
  const ReplicaModel model(ReplicaModelConfig{release_bounds(), three(), three(), {}});
  const World world = model.initial();
  const std::string before = model.encode(world);  // every replica's bytes cached
  const std::vector<std::string> described = model.describe(world);
  int checked = 0;
  for (const WorldAction& action : model.actions(world)) {
    World next = world;
    model.step(next, action);
    const std::string encoded = model.encode(next);
    for (const WorldAction& then : model.actions(next)) {
      World after = next;
      model.step(after, then);
      World fresh = model.initial();
      model.step(fresh, action);
      model.step(fresh, then);
      EXPECT_EQ(model.encode(after), model.encode(fresh))
          << model.describe(world, action) << ", then " << model.describe(next, then);
      ++checked;
    }
    EXPECT_EQ(model.encode(next), encoded) << model.describe(world, action);
    EXPECT_EQ(model.describe(world), described) << model.describe(world, action);
  }
  EXPECT_EQ(model.encode(world), before);
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace synod::check
