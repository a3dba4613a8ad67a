// Every data type through redis-py (src/tools/types_e2e.py) against a real 3-replica cluster:
// written through the leader and read through a follower, then the other way round; the
// replicas' state digests agree once they have caught up; and after the leader is killed the
// survivors still hold every type.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "tools/e2e_support.h"

namespace synod::tools {
namespace {

TEST(TypesE2E, EveryTypeThroughLeaderAndFollowerWithRedisPyAndAcrossALeaderKill) {
  RedisPyCluster c("types_e2e.py");
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  const int leader = c.leader();

  EXPECT_EQ(c.python("write " + c.port(leader) + " " + c.port(c.follower())), 0);
  EXPECT_EQ(c.python("write " + c.port(c.follower()) + " " + c.port(leader)), 0);

  // Every replica applies the same commands to the same state.
  const auto digests_agree = [&] { return c.digests_agree(); };
  EXPECT_TRUE(eventually(digests_agree)) << "replicas' state digests differ";

  c.cluster().kill(leader, SIGKILL);
  int next = 0;
  ASSERT_TRUE(eventually([&] { return (next = c.cluster().leader()) != 0 && next != leader; }))
      << "no new leader after the kill";
  for (int id = 1; id <= 3; ++id) {
    if (id != leader) {
      EXPECT_EQ(c.python("verify " + c.port(id)), 0) << "through n" << id;
    }
  }
  ASSERT_TRUE(c.cluster().start(leader).is_ok());
  EXPECT_TRUE(eventually(digests_agree)) << "the restarted replica's state differs";
  EXPECT_EQ(c.python("verify " + c.port(leader)), 0);
}

}  // namespace
}  // namespace synod::tools
