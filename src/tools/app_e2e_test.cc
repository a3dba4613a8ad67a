// An application's worth of redis-py usage (src/tools/app_e2e.py) against a real 3-replica
// cluster: pipelines, WATCH loops, Lock, scripts, every data type, SCAN iterators and fencing
// tokens through a follower and through the leader; then the same kinds of work from concurrent
// workers while the leader is SIGKILLed, checked afterwards for lost acknowledged writes, writes
// counted twice and inexact counters.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>

#include "base/assert.h"
#include "tools/e2e_support.h"

namespace synod::tools {
namespace {

TEST(AppE2E, ApplicationThroughFollowerAndLeader) {
  RedisPyCluster c("app_e2e.py");
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  EXPECT_EQ(c.python("suite " + c.port(c.follower())), 0) << "through a follower";
  EXPECT_EQ(c.python("suite " + c.port(c.leader())), 0) << "through the leader";
  EXPECT_TRUE(eventually([&] { return c.digests_agree(); })) << "replicas' state digests differ";
}

TEST(AppE2E, FencingTokensStopAHolderWhoseLockExpired) {
  RedisPyCluster c("app_e2e.py");
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  EXPECT_EQ(c.python("fencing " + c.port(c.follower()) + " " + c.port(c.leader())), 0);
  EXPECT_EQ(c.python("fencing " + c.port(c.leader()) + " " + c.port(c.follower())), 0);
}

// The application keeps running while the leader is killed (a real SIGKILL). The script and this
// test take turns through two files in a control directory: the script writes `ready` once every
// worker has made progress; the test kills the leader, waits for a new one and writes `killed`;
// every worker must then make progress again before the script checks the results. Returns the
// script's exit status.
int run_across_a_leader_kill(RedisPyCluster& c) {
  const int leader = c.leader();
  const std::string ctl = c.cluster().options().dir + "/app-control";
  std::filesystem::create_directories(ctl);
  // Workers start on the follower, the leader and the third replica in turn.
  const int third = 6 - leader - c.follower();
  auto app = std::async(std::launch::async, [&] {
    return c.python("failover " + ctl + " " + c.port(c.follower()) + " " + c.port(leader) + " " +
                    c.port(third));
  });
  // Not past the script's end: a check that fails before the kill ends it.
  const bool ready = eventually(
      [&] {
        return std::filesystem::exists(ctl + "/ready") ||
               app.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      },
      90000);
  if (ready) {
    c.cluster().kill(leader, SIGKILL);
    int next = 0;
    EXPECT_TRUE(eventually([&] { return (next = c.cluster().leader()) != 0 && next != leader; }))
        << "no new leader after the kill";
  }
  std::FILE* f = std::fopen((ctl + "/killed").c_str(), "w");
  SYNOD_ASSERT(f != nullptr, "the control directory is writable");
  std::fclose(f);
  EXPECT_TRUE(ready) << "the application never got going";
  return app.get();
}

TEST(AppE2E, ApplicationAcrossALeaderKill) {
  RedisPyCluster c("app_e2e.py");
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  const int leader = c.leader();
  EXPECT_EQ(run_across_a_leader_kill(c), 0) << "the application's checks (its output is above)";
  // The killed replica comes back and catches up to the same state.
  ASSERT_TRUE(c.cluster().start(leader).is_ok());
  EXPECT_TRUE(eventually([&] { return c.digests_agree(); }, 30000))
      << "the restarted replica's state differs";
}

// The suite's checks can fail: with planted bugs, the same runs are caught.
TEST(AppE2E, PlantedBugExecIgnoresWatchIsCaughtByTheWatchLoops) {
  RedisPyCluster c("app_e2e.py", {"--planted-bug", "exec-ignores-watch"});
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  EXPECT_NE(c.python("suite " + c.port(c.follower())), 0);
}

// multi-split: a transaction's commands become separate log entries, so the reader's transactions
// see a counter without its id, and two pipelines' INCRs interleave.
TEST(AppE2E, PlantedBugMultiSplitIsCaughtByTheApplication) {
  RedisPyCluster c("app_e2e.py", {"--planted-bug", "multi-split"});
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  EXPECT_NE(run_across_a_leader_kill(c), 0);
}

}  // namespace
}  // namespace synod::tools
