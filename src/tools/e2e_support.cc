#include "tools/e2e_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace synod::tools {

std::string slurp(const std::string& path) {
  std::string out;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof(buf), f)) out.append(buf, n);
    std::fclose(f);
  }
  return out;
}

Ran run_shell(const std::string& command) {
  Ran ran;
  if (FILE* p = ::popen((command + " 2>&1").c_str(), "r")) {
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof(buf), p)) ran.output.append(buf, n);
    const int status = ::pclose(p);
    ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return ran;
}

using process::LocalCluster;

namespace {

bool has_redis_py() {
  return std::system("/usr/bin/python3 -c 'import redis' 2>/dev/null") == 0;
}

}  // namespace

RedisPyCluster::RedisPyCluster(std::string script, std::vector<std::string> extra_args,
                               std::vector<std::string> auth)
    : script_(std::move(script)), extra_args_(std::move(extra_args)), auth_(std::move(auth)) {}

RedisPyCluster::~RedisPyCluster() {
  if (!cluster_) return;
  for (int id : cluster_->reap())
    ADD_FAILURE() << "n" << id << " exited: " << cluster_->log_path(id);
  cluster_->stop_all();
  if (!::testing::Test::HasFailure()) std::system(("rm -rf " + cluster_->options().dir).c_str());
}

Result<LocalCluster::Options> three_replicas(const std::string& name,
                                             std::vector<std::string> extra_args) {
  std::string dir = "/tmp/synod-" + name + "-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return Status::io_error("no temporary directory");
  LocalCluster::Options o;
  o.binary = SYNOD_BINARY;
  o.dir = dir;
  o.replicas = 3;
  o.extra_args = std::move(extra_args);
  if (Status s = LocalCluster::pick_free_ports(3, o.client_port, o.peer_port); !s.is_ok()) return s;
  return o;
}

Status RedisPyCluster::start() {
  if (!has_redis_py())
    return Status::io_error("redis-py is missing: scripts/setup installs python3-redis");
  // "tx_e2e.py": /tmp/synod-tx-e2e-XXXXXX
  std::string stem = script_.substr(0, script_.rfind('.'));
  std::replace(stem.begin(), stem.end(), '_', '-');
  auto o = three_replicas(stem, extra_args_);
  if (!o.is_ok()) return o.status();
  o->auth = auth_;
  cluster_ = std::make_unique<LocalCluster>(*o);
  if (Status s = cluster_->start_all(); !s.is_ok()) return s;
  if (Status s = cluster_->wait_until_serving(15000); !s.is_ok()) return s;
  if (!eventually([&] { return (leader_ = cluster_->leader()) != 0; }))
    return Status::io_error("no leader");
  return Status::ok();
}

int RedisPyCluster::python(const std::string& args) const {
  const std::string cmd = "/usr/bin/python3 " SYNOD_SOURCE_DIR "/src/tools/" + script_ + " " + args;
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string RedisPyCluster::port(int id) const {
  return std::to_string(cluster_->client_port(id));
}

std::string RedisPyCluster::all_ports() const {
  return port(1) + " " + port(2) + " " + port(3);
}

bool RedisPyCluster::digests_agree() const {
  std::set<std::string> digests, applied;
  for (int id = 1; id <= 3; ++id) {
    if (!cluster_->running(id)) continue;
    auto digest = cluster_->info(id, "digest");
    digests.insert(digest["state_digest"]);
    applied.insert(digest["applied_slot"]);
  }
  return digests.size() == 1 && applied.size() == 1 && !digests.begin()->empty();
}

void LocalClusterTest::launch(const process::LocalCluster::Options& options) {
  cluster_ = std::make_unique<process::LocalCluster>(options);
  ASSERT_TRUE(cluster_->start_all().is_ok());
  ASSERT_TRUE(cluster_->wait_until_serving(15000).is_ok());
  ASSERT_TRUE(eventually([&] { return cluster_->leader() != 0; })) << "no leader";
}

void LocalClusterTest::TearDown() {
  if (!cluster_) return;
  cluster_->stop_all();
  if (!HasFailure()) std::filesystem::remove_all(cluster_->options().dir);
}

}  // namespace synod::tools
