// Transactions through redis-py and raw RESP (src/tools/tx_e2e.py) against a real 3-replica
// cluster: MULTI/EXEC/DISCARD/WATCH reply bytes equal a real redis-server's (Debian's, 7.0), and
// concurrent incrementers through every replica — WATCH retry loops and transactional pipelines —
// end with the exact count. With the planted bug exec-ignores-watch the counts come out short.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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
  const std::string cmd = "/usr/bin/python3 " SYNOD_SOURCE_DIR "/src/tools/tx_e2e.py " + args;
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// A 3-replica cluster in a temporary directory, removed if the test passed.
struct Cluster {
  explicit Cluster(std::vector<std::string> extra_args = {}) {
    char tmpl[] = "/tmp/synod-tx-e2e-XXXXXX";
    SYNOD_ASSERT(::mkdtemp(tmpl) != nullptr, "a temporary directory");
    LocalCluster::Options o;
    o.binary = SYNOD_BINARY;
    o.dir = tmpl;
    o.replicas = 3;
    o.extra_args = std::move(extra_args);
    SYNOD_ASSERT(LocalCluster::pick_free_ports(3, o.client_port, o.peer_port).is_ok(), "ports");
    dir = o.dir;
    cluster = std::make_unique<LocalCluster>(o);
  }
  ~Cluster() {
    for (int id : cluster->reap()) ADD_FAILURE() << "n" << id << " exited";
    cluster->stop_all();
    if (!::testing::Test::HasFailure()) std::system(("rm -rf " + dir).c_str());
  }
  bool start() {
    return cluster->start_all().is_ok() && cluster->wait_until_serving(15000).is_ok() &&
           eventually([&] { return (leader = cluster->leader()) != 0; });
  }
  std::string port(int id) const { return std::to_string(cluster->client_port(id)); }
  std::string all_ports() const { return port(1) + " " + port(2) + " " + port(3); }
  std::string dir;
  std::unique_ptr<LocalCluster> cluster;
  int leader = 0;
};

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

bool has_redis_py() {
  return std::system("/usr/bin/python3 -c 'import redis' 2>/dev/null") == 0;
}

TEST(TransactionsE2E, RepliesAreRedisBytesAndConcurrentIncrementersCountExactly) {
  ASSERT_TRUE(has_redis_py()) << "redis-py is missing: scripts/setup installs python3-redis";
  Cluster c;
  ASSERT_TRUE(c.start()) << "the cluster did not start";
  const int follower = c.leader % 3 + 1;
  RealRedis redis;
  ASSERT_GT(redis.pid, 0) << "no /usr/bin/redis-server: scripts/setup installs redis-server";
  // redis-server takes a moment to listen; the script's first connection is retried here.
  ASSERT_TRUE(eventually([&] {
    return std::system(("/usr/bin/python3 -c \"import redis; redis.Redis(port=" +
                        std::to_string(redis.port) + ").ping()\" 2>/dev/null")
                           .c_str()) == 0;
  }));
  EXPECT_EQ(python("golden " + c.port(c.leader) + " " + std::to_string(redis.port)), 0);
  EXPECT_EQ(python("golden " + c.port(follower) + " " + std::to_string(redis.port)), 0);
  EXPECT_EQ(python("count " + c.all_ports()), 0);
  // Every replica applied the same transactions to the same state.
  EXPECT_TRUE(eventually([&] {
    std::set<std::string> digests, applied;
    for (int id = 1; id <= 3; ++id) {
      digests.insert(c.cluster->info(id, "keyspace")["state_digest"]);
      applied.insert(c.cluster->info(id, "replication")["applied_slot"]);
    }
    return digests.size() == 1 && applied.size() == 1 && !digests.begin()->empty();
  })) << "replicas' state digests differ";
}

// The planted bug exec-ignores-watch: the WATCH loops of the same run lose increments.
TEST(TransactionsE2E, PlantedBugExecIgnoresWatchIsCaughtByTheCounts) {
  ASSERT_TRUE(has_redis_py());
  Cluster c({"--planted-bug", "exec-ignores-watch"});
  ASSERT_TRUE(c.start()) << "the cluster did not start";
  EXPECT_NE(python("count " + c.all_ports()), 0);
}

}  // namespace
}  // namespace synod::tools
