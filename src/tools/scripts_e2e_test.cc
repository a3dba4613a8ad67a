// Scripts on a real 3-replica cluster through redis-py (src/tools/scripts_e2e.py): its Lock
// (acquire with timeout, extend, reacquire, release: Lua by EVALSHA with a NOSCRIPT fallback)
// from clients on the leader and a follower, both ways round; the script cache shared by every
// replica (LOAD on one, EVALSHA on another, FLUSH anywhere); and the replicas' state digests,
// which cover the script cache, agree.
#include <gtest/gtest.h>

#include <string>

#include "tools/e2e_support.h"

namespace synod::tools {
namespace {

TEST(ScriptsE2E, RedisPyLockThroughLeaderAndFollower) {
  RedisPyCluster c("scripts_e2e.py");
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();

  EXPECT_EQ(c.python("lock " + c.port(c.leader()) + " " + c.port(c.follower())), 0);
  EXPECT_EQ(c.python("lock " + c.port(c.follower()) + " " + c.port(c.leader())), 0);

  EXPECT_TRUE(eventually([&] { return c.digests_agree(); })) << "replicas' state digests differ";
}

}  // namespace
}  // namespace synod::tools
