// The everyday commands (HELLO, CLIENT, INFO) through redis-py (src/tools/everyday_e2e.py)
// against a real 3-replica cluster, and Redis's own tools, redis-benchmark with all its default
// tests and redis-cli --bigkeys and --stat, run to their normal output.
#include <gtest/gtest.h>

#include <string>

#include "tools/e2e_support.h"

namespace synod::tools {
namespace {

TEST(EverydayE2E, HelloClientInfoAndRedisToolsAgainstARealCluster) {
  RedisPyCluster c("everyday_e2e.py");
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  const std::string leader = c.port(c.leader());
  const std::string follower = c.port(c.follower());
  EXPECT_EQ(c.python("hello " + follower), 0);
  EXPECT_EQ(c.python("clients " + leader), 0);
  EXPECT_EQ(c.python("clients " + follower), 0);
  EXPECT_EQ(c.python("info " + leader), 0);
  EXPECT_EQ(c.python("tools " + leader), 0);
  EXPECT_EQ(c.python("tools " + follower), 0);
}

}  // namespace
}  // namespace synod::tools
