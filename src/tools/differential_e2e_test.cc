// Synod against a real Redis 7.0, differentially: src/tools/differential_e2e.py sends one seeded
// command sequence to a 3-replica cluster (leader and followers in turn) and to Debian's
// redis-server, and compares every reply; then redis-py's own API as an application uses it
// (pipelines, a conflicting WATCH loop, Lock, scripts, scan iterators). A difference not listed
// as deliberate in the script fails the test, and every difference is printed.
#include <gtest/gtest.h>

#include <string>

#include "tools/e2e_support.h"

namespace synod::tools {
namespace {

TEST(DifferentialE2E, SeededCommandsAndRedisPyAnswerAsRedisDoes) {
  RedisPyCluster c("differential_e2e.py");
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  EXPECT_EQ(c.python("random 1 3000 " + c.all_ports()), 0);
  EXPECT_EQ(c.python("random 2 3000 " + c.all_ports()), 0);
  EXPECT_EQ(c.python("app 3 " + c.all_ports()), 0);
  EXPECT_TRUE(c.digests_agree());
}

}  // namespace
}  // namespace synod::tools
