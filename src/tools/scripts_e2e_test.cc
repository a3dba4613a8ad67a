// Scripts on a real 3-replica cluster through redis-py (src/tools/scripts_e2e.py): its Lock
// (acquire with timeout, extend, reacquire, release: Lua by EVALSHA with a NOSCRIPT fallback)
// from clients on the leader and a follower, both ways round; the script cache shared by every
// replica (LOAD on one, EVALSHA on another, FLUSH anywhere); and the replicas' state digests,
// which cover the script cache, agree.
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

int python(const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " SYNOD_SOURCE_DIR "/src/tools/scripts_e2e.py " + args;
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(ScriptsE2E, RedisPyLockThroughLeaderAndFollower) {
  ASSERT_EQ(std::system("/usr/bin/python3 -c 'import redis' 2>/dev/null"), 0)
      << "redis-py is missing: scripts/setup installs python3-redis";
  char tmpl[] = "/tmp/synod-scripts-e2e-XXXXXX";
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

  EXPECT_EQ(python("lock " + port(leader) + " " + port(follower)), 0);
  EXPECT_EQ(python("lock " + port(follower) + " " + port(leader)), 0);

  const auto digests_agree = [&] {
    std::set<std::string> digests, applied;
    for (int id = 1; id <= 3; ++id) {
      auto ks = cluster.info(id, "keyspace");
      auto rep = cluster.info(id, "replication");
      digests.insert(ks["state_digest"]);
      applied.insert(rep["applied_slot"]);
    }
    return digests.size() == 1 && applied.size() == 1 && !digests.begin()->empty();
  };
  EXPECT_TRUE(eventually(digests_agree)) << "replicas' state digests differ";
  for (int id : cluster.reap()) ADD_FAILURE() << "n" << id << " exited: " << cluster.log_path(id);
  cluster.stop_all();
  if (!::testing::Test::HasFailure()) std::system(("rm -rf " + o.dir).c_str());
}

}  // namespace
}  // namespace synod::tools
