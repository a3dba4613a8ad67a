// Transactions through redis-py and raw RESP (src/tools/tx_e2e.py) against a real 3-replica
// cluster: MULTI/EXEC/DISCARD/WATCH reply bytes equal a real redis-server's (Debian's, 7.0), and
// concurrent incrementers through every replica — WATCH retry loops and transactional pipelines —
// end with the exact count. With the planted bug exec-ignores-watch the counts come out short.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tools/e2e_support.h"

namespace synod::tools {

using process::LocalCluster;
namespace {

// A real redis-server on a free port, for as long as it lives.
struct RealRedis {
  RealRedis() {
    uint16_t unused = 0;
    if (::access("/usr/bin/redis-server", X_OK) != 0 ||
        !LocalCluster::pick_free_ports(1, port, unused).is_ok())
      return;
    pid = ::fork();
    if (pid == 0) {
      const std::string p = std::to_string(port);
      ::execl("/usr/bin/redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1",
              "--save", "", "--appendonly", "no", "--logfile", "/dev/null",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~RealRedis() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  pid_t pid = -1;
  uint16_t port = 0;
};

TEST(TransactionsE2E, RepliesAreRedisBytesAndConcurrentIncrementersCountExactly) {
  RedisPyCluster c("tx_e2e.py");
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  RealRedis redis;
  ASSERT_GT(redis.pid, 0) << "no /usr/bin/redis-server: scripts/setup installs redis-server";
  // redis-server takes a moment to listen; the script's first connection is retried here.
  ASSERT_TRUE(eventually([&] {
    return std::system(("/usr/bin/python3 -c \"import redis; redis.Redis(port=" +
                        std::to_string(redis.port) + ").ping()\" 2>/dev/null")
                           .c_str()) == 0;
  }));
  EXPECT_EQ(c.python("golden " + c.port(c.leader()) + " " + std::to_string(redis.port)), 0);
  EXPECT_EQ(c.python("golden " + c.port(c.follower()) + " " + std::to_string(redis.port)), 0);
  EXPECT_EQ(c.python("count " + c.all_ports()), 0);
  // Every replica applied the same transactions to the same state.
  EXPECT_TRUE(eventually([&] { return c.digests_agree(); })) << "replicas' state digests differ";
}

// The planted bug exec-ignores-watch: the WATCH loops of the same run lose increments.
TEST(TransactionsE2E, PlantedBugExecIgnoresWatchIsCaughtByTheCounts) {
  RedisPyCluster c("tx_e2e.py", {"--planted-bug", "exec-ignores-watch"});
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  EXPECT_NE(c.python("count " + c.all_ports()), 0);
}

}  // namespace
}  // namespace synod::tools
