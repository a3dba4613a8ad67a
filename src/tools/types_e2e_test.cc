// Every data type through redis-py (src/tools/types_e2e.py) against a real 3-replica cluster:
// written through the leader and read through a follower, then the other way round; the
// replicas' state digests agree once they have caught up; and after the leader is killed the
// survivors still hold every type.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "process/local_cluster.h"

namespace synod::tools {

using process::LocalCluster;
namespace {

using Clock = std::chrono::steady_clock;

template <typename Pred>
bool eventually(Pred pred, int timeout_ms = 15000) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// Runs the redis-py script; its exit status (0: every check held).
int python(const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " SYNOD_SOURCE_DIR "/src/tools/types_e2e.py " + args;
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(TypesE2E, EveryTypeThroughLeaderAndFollowerWithRedisPyAndAcrossALeaderKill) {
  ASSERT_EQ(std::system("/usr/bin/python3 -c 'import redis' 2>/dev/null"), 0)
      << "redis-py is missing: scripts/setup installs python3-redis";
  char tmpl[] = "/tmp/synod-types-e2e-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  LocalCluster::Options o;
  o.binary = SYNOD_BINARY;
  o.dir = tmpl;
  o.replicas = 3;
  ASSERT_TRUE(LocalCluster::pick_free_ports(3, o.client_port, o.peer_port).is_ok());
  LocalCluster cluster(o);
  ASSERT_TRUE(cluster.start_all().is_ok());
  ASSERT_TRUE(cluster.wait_until_serving(15000).is_ok());
  int leader = 0;
  ASSERT_TRUE(eventually([&] { return (leader = cluster.leader()) != 0; })) << "no leader";
  const int follower = leader % 3 + 1;
  const auto port = [&](int id) { return std::to_string(cluster.client_port(id)); };

  EXPECT_EQ(python("write " + port(leader) + " " + port(follower)), 0);
  EXPECT_EQ(python("write " + port(follower) + " " + port(leader)), 0);

  // Every replica applies the same commands to the same state.
  const auto digests_agree = [&] {
    std::set<std::string> digests, applied;
    for (int id = 1; id <= 3; ++id) {
      if (!cluster.running(id)) continue;
      auto ks = cluster.info(id, "keyspace");
      auto rep = cluster.info(id, "replication");
      digests.insert(ks["state_digest"]);
      applied.insert(rep["applied_slot"]);
    }
    return digests.size() == 1 && applied.size() == 1 && !digests.begin()->empty();
  };
  EXPECT_TRUE(eventually(digests_agree)) << "replicas' state digests differ";

  cluster.kill(leader, SIGKILL);
  int next = 0;
  ASSERT_TRUE(eventually([&] { return (next = cluster.leader()) != 0 && next != leader; }))
      << "no new leader after the kill";
  for (int id = 1; id <= 3; ++id) {
    if (id != leader) {
      EXPECT_EQ(python("verify " + port(id)), 0) << "through n" << id;
    }
  }
  ASSERT_TRUE(cluster.start(leader).is_ok());
  EXPECT_TRUE(eventually(digests_agree)) << "the restarted replica's state differs";
  EXPECT_EQ(python("verify " + port(leader)), 0);
  for (int id : cluster.reap()) ADD_FAILURE() << "n" << id << " exited: " << cluster.log_path(id);
  cluster.stop_all();
  if (!::testing::Test::HasFailure()) std::system(("rm -rf " + o.dir).c_str());
}

}  // namespace
}  // namespace synod::tools
