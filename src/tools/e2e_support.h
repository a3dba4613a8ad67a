// What the end-to-end tests share: bounded polling, and for the tests that check a real cluster
// with a redis-py script (src/tools/*_e2e.py), the cluster and the script. Compiled into
// e2e_tests only: it reports through gtest and uses SYNOD_BINARY and SYNOD_SOURCE_DIR.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "process/local_cluster.h"

namespace synod::tools {

// A file's whole contents ("" if it cannot be read): a replica's log, a history.
std::string slurp(const std::string& path);

// A shell command run to completion: its exit status (128 + the signal if one killed it) and its
// standard output and error together.
struct Ran {
  int exit_code = -1;
  std::string output;
};
Ran run_shell(const std::string& command);

// Polls `pred` every 20 ms until it holds or `timeout_ms` has passed; then its last answer.
template <typename Pred>
bool eventually(Pred pred, int timeout_ms = 15000) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// A 3-replica cluster of the synod binary in a fresh /tmp/synod-<name>-XXXXXX, on free loopback
// ports, `extra_args` passed to every replica (not started).
Result<process::LocalCluster::Options> three_replicas(const std::string& name,
                                                      std::vector<std::string> extra_args);

// A 3-replica cluster of the synod binary, for one test that checks it with a redis-py script
// (src/tools/<script>, run by /usr/bin/python3), in a fresh /tmp/synod-<script's stem>-XXXXXX.
// When it is destroyed, a replica that exited on its own is a test failure, every replica is
// stopped, and the directory is removed if the test passed.
// A fixture that owns one real cluster: launch() starts every replica and waits until they serve
// and one leads; TearDown stops them and removes the cluster's directory unless the test failed
// (left for a look).
class LocalClusterTest : public ::testing::Test {
 protected:
  void launch(const process::LocalCluster::Options& options);
  void TearDown() override;

  std::unique_ptr<process::LocalCluster> cluster_;
};

class RedisPyCluster {
 public:
  // `script`: a file name in src/tools ("types_e2e.py"); `extra_args` go to every replica.
  // `auth`: the AUTH command the cluster's own INFO calls need, if the replicas require one.
  explicit RedisPyCluster(std::string script, std::vector<std::string> extra_args = {},
                          std::vector<std::string> auth = {});
  ~RedisPyCluster();
  RedisPyCluster(const RedisPyCluster&) = delete;
  RedisPyCluster& operator=(const RedisPyCluster&) = delete;

  // Checks that redis-py is installed, starts every replica and waits until each serves and one
  // of them leads.
  [[nodiscard]] Status start();
  // Runs the script with `args`; its exit status (0: every check held; 128 if it did not exit
  // normally).
  int python(const std::string& args) const;
  // The leader start() found, and another replica.
  int leader() const { return leader_; }
  int follower() const { return leader_ % 3 + 1; }
  // Replica `id`'s client port, and every replica's separated by spaces, as script arguments.
  std::string port(int id) const;
  std::string all_ports() const;
  // Every running replica reports the same, non-empty state digest and the same applied slot.
  bool digests_agree() const;
  // After a successful start().
  process::LocalCluster& cluster() { return *cluster_; }

 private:
  const std::string script_;
  const std::vector<std::string> extra_args_;
  const std::vector<std::string> auth_;
  std::unique_ptr<process::LocalCluster> cluster_;
  int leader_ = 0;
};

}  // namespace synod::tools
