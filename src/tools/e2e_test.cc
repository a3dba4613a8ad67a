// End-to-end tests: real `synod server` processes on 127.0.0.1, real clients (Synod's own RESP
// client and redis-cli), real faults (SIGKILL, SIGSTOP/SIGCONT, restarts, partitions through the
// servers' fault filter, garbage on both ports). Every wait is bounded and polls for the
// condition it needs; nothing sleeps and hopes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "base/types.h"
#include "client/resp_client.h"
#include "paxos/config.h"
#include "process/local_cluster.h"
#include "process/writers.h"
#include "tools/e2e_support.h"

namespace synod::tools {

using process::LocalCluster;
namespace {

using Clock = std::chrono::steady_clock;
using kv::Reply;

bool is_ok(const Result<Reply>& r) {
  return r.is_ok() && r.value().kind == Reply::Kind::kSimple && r.value().text == "OK";
}

std::string describe(const Result<Reply>& r) {
  return r.is_ok() ? client::to_string(r.value()) : r.status().to_string();
}

class E2E : public ::testing::Test {
 protected:
  // The servers' tick. Instrumented, a leader that copies megabytes of values through checksums
  // and replies can go longer than the default election timeout (150 ms) between two ticks on a
  // loaded machine, and its followers, rightly, elect another: these tests are about what the
  // servers do, not about failure detection at that speed, so their clocks tick slower there.
#if defined(__SANITIZE_ADDRESS__)
  static constexpr uint64_t kTickMs = 40;
#else
  static constexpr uint64_t kTickMs = 10;
#endif

  void start(std::vector<std::string> extra = {}) {
    char tmpl[] = "/tmp/synod-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    LocalCluster::Options o;
    o.binary = SYNOD_BINARY;
    o.dir = tmpl;
    o.replicas = 3;
    o.extra_args = std::move(extra);
    if (kTickMs != 10)
      o.extra_args.insert(o.extra_args.begin(), {"--tick-ms", std::to_string(kTickMs)});
    ASSERT_TRUE(LocalCluster::pick_free_ports(3, o.client_port, o.peer_port).is_ok());
    cluster_ = std::make_unique<LocalCluster>(o);
    ASSERT_TRUE(cluster_->start_all().is_ok());
    ASSERT_NE(wait_for_leader(), 0) << "no leader elected";
  }

  void TearDown() override {
    if (!cluster_) return;
    // Every replica must still be alive: none crashed on what the test did to it.
    for (int id : cluster_->reap())
      ADD_FAILURE() << "n" << id << " exited; see " << cluster_->log_path(id);
    cluster_->stop_all();
    if (!HasFailure()) std::system(("rm -rf " + cluster_->options().dir).c_str());
  }

  uint16_t port(int id) const {
    return cluster_->client_port(id);
  }

  Result<Reply> call(int id, const std::vector<std::string>& args, uint32_t timeout_ms = 8000) {
    auto c = client::RespClient::connect("127.0.0.1", port(id), 1000);
    if (!c.is_ok()) return c.status();
    c->set_timeout_ms(timeout_ms);
    return c->call(args);
  }

  std::map<std::string, std::string> info(int id, const std::string& section = "replication") {
    return cluster_->info(id, section);
  }

  int leader() {
    return cluster_->leader();
  }
  // Whichever of `a` and `b` leads now (`a` if neither says so yet).
  int leader_of_two(int a, int b) {
    const int l = leader();
    return l == b ? b : a;
  }

  // Waits until every running replica answers and one of them (not `not_this`) leads.
  int wait_for_leader(int not_this = 0) {
    int found = 0;
    eventually([&] {
      for (int i = 1; i <= 3; ++i)
        if (cluster_->running(i) && info(i).empty()) return false;  // still starting
      found = leader();
      return found != 0 && found != not_this;
    });
    return found != not_this ? found : 0;
  }

  // Each running replica's role, ballots and slots, for a failure message.
  std::string replication_states() {
    std::string out;
    for (int i = 1; i <= 3; ++i) {
      if (!cluster_->running(i)) continue;
      out += "n" + std::to_string(i) + ":";
      for (const auto& [k, v] : info(i)) out += " " + k + "=" + v;
      out += "\n";
    }
    return out;
  }

  // Every running replica has applied everything the leader has chosen.
  bool caught_up() {
    const int l = leader();
    if (!l) return false;
    const std::string chosen = info(l)["chosen_slot"];
    for (int i = 1; i <= 3; ++i)
      if (cluster_->running(i) && info(i)["applied_slot"] != chosen) return false;
    return true;
  }

  // Stops `laggard` (SIGKILL) while the leader `l` acknowledges `writes` SETs of `bytes`-byte
  // values, which it returns. The others drop what they would send it (else their transports
  // would queue the Accepts and deliver them when it is back, and it would need nothing else):
  // unblock() lets them talk to it again. Needs --fault-injection.
  std::map<std::string, std::string> write_without(int l, int laggard, int writes, size_t bytes) {
    std::map<std::string, std::string> acked;
    for (int id = 1; id <= 3; ++id) {
      if (id == laggard) continue;
      EXPECT_TRUE(is_ok(call(id, {"SYNOD.FAULT", "BLOCK", std::to_string(laggard)})));
    }
    cluster_->kill(laggard, SIGKILL);
    for (int i = 0; i < writes; ++i) {
      const std::string k = "k" + std::to_string(i);
      const std::string v(bytes, char('a' + i % 26));
      if (!is_ok(call(l, {"SET", k, v}))) {
        ADD_FAILURE() << "SET " << k << " failed";
        break;
      }
      acked[k] = v;
    }
    return acked;
  }
  void unblock(int laggard) {
    for (int id = 1; id <= 3; ++id) {
      if (id == laggard) continue;
      EXPECT_TRUE(is_ok(call(id, {"SYNOD.FAULT", "CLEAR"})));
    }
  }

  // Reads every key through every running replica; returns the mismatches.
  std::vector<std::string> lost(const std::map<std::string, std::string>& acked) {
    std::vector<std::string> missing;
    for (int i = 1; i <= 3; ++i) {
      if (!cluster_->running(i)) continue;
      auto c = client::RespClient::connect("127.0.0.1", port(i), 1000);
      if (!c.is_ok()) {
        missing.push_back("cannot connect to n" + std::to_string(i));
        continue;
      }
      c->set_timeout_ms(8000);
      for (const auto& [k, v] : acked) {
        auto r = c->call({"GET", k});
        if (!r.is_ok() || r->kind != Reply::Kind::kBulk || r->text != v)
          missing.push_back("n" + std::to_string(i) + " " + k + "=" + describe(r));
      }
    }
    return missing;
  }

  std::unique_ptr<LocalCluster> cluster_;
};

// Writers that keep writing unique keys through random replicas, recording what was acknowledged.
class Writers {
 public:
  Writers(E2E* test, std::function<uint16_t(int)> port, int threads) : port_(std::move(port)) {
    (void)test;
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t] { run(t); });
  }
  ~Writers() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::map<std::string, std::string> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  size_t acked_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  int unknown() const { return unknown_; }

 private:
  void run(int t) {
    std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1);
    std::optional<client::RespClient> c;
    for (int i = 0; !stop_; ++i) {
      if (!c || !c->connected()) {
        auto conn =
            client::RespClient::connect("127.0.0.1", port_(1 + static_cast<int>(rng() % 3)), 300);
        if (!conn.is_ok()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          continue;
        }
        c = std::move(*conn);
        c->set_timeout_ms(8000);
      }
      const std::string key = "w" + std::to_string(t) + ":" + std::to_string(i);
      const std::string value = "v" + std::to_string(i);
      auto r = c->call({"SET", key, value});
      if (is_ok(r)) {
        std::lock_guard<std::mutex> lock(mu_);
        acked_[key] = value;
      } else {
        ++unknown_;  // an error or a lost connection: never counted as acknowledged
      }
    }
  }

  std::function<uint16_t(int)> port_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> unknown_{0};
  std::mutex mu_;
  std::map<std::string, std::string> acked_;
};

TEST_F(E2E, KillingTheLeaderDuringWritesLosesNoAcknowledgedWrite) {
  start();
  Writers writers(
      this, [this](int id) { return port(id); }, 4);
  ASSERT_TRUE(eventually([&] { return writers.acked_count() >= 200; }));
  const int old_leader = leader();
  ASSERT_NE(old_leader, 0);
  cluster_->kill(old_leader, SIGKILL);
  const size_t before = writers.acked_count();
  ASSERT_NE(wait_for_leader(old_leader), 0) << "no new leader after the kill";
  ASSERT_TRUE(eventually([&] { return writers.acked_count() >= before + 200; }))
      << "writes did not resume after the failover";
  ASSERT_TRUE(cluster_->start(old_leader).is_ok());
  ASSERT_TRUE(eventually([&] { return writers.acked_count() >= before + 400; }));
  writers.stop();
  const auto acked = writers.acked();
  ASSERT_TRUE(eventually([&] { return caught_up(); })) << "the restarted leader did not catch up";
  const auto missing = lost(acked);
  EXPECT_TRUE(missing.empty()) << missing.size() << " lost, first: " << missing.front();
}

// INCR is not idempotent: a retry inside the cluster that applied twice would show as a counter
// above the number of increments that could have happened.
TEST_F(E2E, IncrementsRetriedThroughFailoversApplyExactlyOnce) {
  start();
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0}, failed{0}, unknown{0};
  std::thread incr([&] {
    std::optional<client::RespClient> c;
    int via = 1;
    while (!stop) {
      if (!c || !c->connected()) {
        via = via % 3 + 1;
        auto conn = client::RespClient::connect("127.0.0.1", port(via), 300);
        if (!conn.is_ok()) continue;
        c = std::move(*conn);
        c->set_timeout_ms(8000);
      }
      auto r = c->call({"INCR", "counter"});
      if (r.is_ok() && r->kind == Reply::Kind::kInteger)
        ++acked;
      else if (r.is_ok() && r->text.rfind("TRYAGAIN", 0) == 0)
        ++failed;
      else
        ++unknown;  // UNKNOWN, or the connection was lost mid-command
    }
  });
  for (int round = 0; round < 2; ++round) {
    const int before = acked;
    ASSERT_TRUE(eventually([&] { return acked >= before + 100; }));
    const int l = leader();
    ASSERT_NE(l, 0);
    cluster_->kill(l, SIGKILL);
    ASSERT_NE(wait_for_leader(l), 0);
    ASSERT_TRUE(cluster_->start(l).is_ok());
    ASSERT_NE(wait_for_leader(), 0);
  }
  const int before = acked;
  ASSERT_TRUE(eventually([&] { return acked >= before + 100; }));
  stop = true;
  incr.join();
  auto r = call(leader(), {"GET", "counter"});
  ASSERT_TRUE(r.is_ok() && r->kind == Reply::Kind::kBulk) << describe(r);
  const int counter = std::stoi(r->text);
  EXPECT_GE(counter, acked.load()) << "an acknowledged increment was lost";
  EXPECT_LE(counter, acked + unknown) << "an increment was applied twice";
}

TEST_F(E2E, PausedLeaderIsReplacedAndRejoinsWithoutLosingWrites) {
  start();
  Writers writers(
      this, [this](int id) { return port(id); }, 3);
  ASSERT_TRUE(eventually([&] { return writers.acked_count() >= 100; }));
  const int paused = leader();
  cluster_->kill(paused, SIGSTOP);
  const size_t before = writers.acked_count();
  // The two others elect a leader and keep acknowledging writes while the old one sleeps.
  int next = 0;
  ASSERT_TRUE(eventually([&] {
    for (int i = 1; i <= 3; ++i)
      if (i != paused && info(i)["role"] == "leader") next = i;
    return next != 0;
  }));
  ASSERT_TRUE(eventually([&] { return writers.acked_count() >= before + 100; }));
  cluster_->kill(paused, SIGCONT);
  // The old leader learns of the higher ballot, steps down and catches up.
  ASSERT_TRUE(eventually([&] { return info(paused)["role"] == "follower"; }));
  ASSERT_TRUE(eventually([&] { return writers.acked_count() >= before + 200; }));
  writers.stop();
  ASSERT_TRUE(eventually([&] { return caught_up(); }));
  const auto missing = lost(writers.acked());
  EXPECT_TRUE(missing.empty()) << missing.size() << " lost, first: " << missing.front();
}

// Rolling restarts cost no election timeout (issue 17, "leader transfer"): SIGTERM on the leader
// hands leadership to the most caught-up follower before the process exits. With election
// timeouts of 100-200 ticks, a write through a follower succeeds at a new leader, elected once
// (its ballot one round above the old leader's: no timeout fired, no PreVote round, no duel),
// within well under the minimum election timeout of the signal, measured from the signal to the
// OK of the first write sent once the old leader's process had exited (so no write the old
// leader served before it went counts). Without the handover the followers would hear nothing for
// at least that timeout before even asking each other, so the write could not succeed sooner.
TEST_F(E2E, SigtermOnTheLeaderHandsOverWithoutAnElectionTimeout) {
  const uint64_t min_election_ms = 100 * kTickMs;
  start({"--election-min-ticks", "100", "--election-max-ticks", "200"});
  const int old_leader = leader();
  ASSERT_NE(old_leader, 0);
  ASSERT_TRUE(is_ok(call(old_leader, {"SET", "before", "1"})));
  const std::string old_ballot = info(old_leader)["ballot"];
  const uint64_t old_round = std::stoull(old_ballot.substr(0, old_ballot.find('.')));
  const int other = old_leader % 3 + 1;
  const auto signalled = Clock::now();
  cluster_->kill(old_leader, SIGTERM);  // not waited for
  Result<Reply> r = Status::not_found("not tried");
  int attempts = 0;
  while (Clock::now() - signalled < std::chrono::seconds(10)) {
    const bool gone = cluster_->exited(old_leader);
    ++attempts;
    r = call(other, {"SET", "after", "1"}, 5000);
    if (is_ok(r) && gone) break;
  }
  const auto write_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - signalled).count();
  ASSERT_TRUE(is_ok(r) && cluster_->exited(old_leader)) << describe(r) << "\n"
                                                        << replication_states();
  cluster_->stop(old_leader);  // reaps it (it exited on purpose)
  const int new_leader = wait_for_leader(old_leader);
  ASSERT_NE(new_leader, 0);
  const std::string new_ballot = info(new_leader)["ballot"];
  EXPECT_EQ(std::stoull(new_ballot.substr(0, new_ballot.find('.'))), old_round + 1)
      << "more than one election: " << old_ballot << " -> " << new_ballot;
  EXPECT_LT(uint64_t(write_ms), min_election_ms)
      << "the first write after SIGTERM took as long as an election timeout";
  const std::string log = slurp(cluster_->log_path(old_leader));
  EXPECT_NE(log.find("handed over to n" + std::to_string(new_leader)), std::string::npos) << log;
  std::printf(
      "SIGTERM on leader n%d: the first write sent after it exited was OK %lld ms after the "
      "signal (%d attempts), at n%d, ballot %s -> %s; minimum election timeout %llu ms\n",
      old_leader, static_cast<long long>(write_ms), attempts, new_leader, old_ballot.c_str(),
      new_ballot.c_str(), static_cast<unsigned long long>(min_election_ms));
}

// docs/operations.md's rolling restart, tried: each replica in turn is stopped with SIGTERM,
// started again from its directory and waited for until it follows a leader and has applied what
// the leader had chosen before it stopped (serving is not enough: a replica that serves may not
// have heard from the leader yet, and stopping the next one then leaves the leader without a
// quorum); 8 clients write through every replica throughout. Nothing
// acknowledged is lost, and no election timeout fires: every leader change is a handover, one
// ballot round each, so the final round is the first plus the number of leaders stopped.
TEST_F(E2E, ARollingRestartLosesNothingAndCostsNoElection) {
  // Snapshots as configured by default (every 10,000 slots: a few in the window); a child
  // process takes each, so they stall no leader.
  start();
  process::Writers writers(8, {port(1), port(2), port(3)}, "roll");
  ASSERT_TRUE(writers.progresses(200));
  const auto round = [&](int id) {
    const std::string b = info(id)["ballot"];
    return std::stoull(b.substr(0, b.find('.')));
  };
  const int first_leader = leader();
  ASSERT_NE(first_leader, 0);
  const uint64_t first_round = round(first_leader);
  int leaders_stopped = 0;
  const auto from = Clock::now();
  for (int id = 1; id <= 3; ++id) {
    const int l = wait_for_leader();
    ASSERT_NE(l, 0) << replication_states();
    const uint64_t chosen = std::stoull(info(l)["chosen_slot"]);
    if (l == id) ++leaders_stopped;
    cluster_->stop(id);  // SIGTERM, waited for
    ASSERT_TRUE(cluster_->start(id).is_ok());
    ASSERT_TRUE(cluster_->wait_until_serving(15000).is_ok());
    ASSERT_TRUE(eventually([&] {
      auto fields = info(id);
      const std::string applied = fields["applied_slot"];
      return !applied.empty() && std::stoull(applied) >= chosen && fields["leader_id"] != "0" &&
             !fields["leader_id"].empty();
    })) << "n"
        << id << " did not catch up after its restart\n"
        << replication_states();
    ASSERT_TRUE(writers.progresses(200)) << "writes stalled after n" << id << "'s restart";
  }
  const auto window = writers.measure(from, Clock::now());
  writers.stop();
  ASSERT_TRUE(eventually([&] { return caught_up(); })) << replication_states();
  const int last_leader = leader();
  std::printf(
      "[measure] rolling restart of n1, n2, n3 (%d of them leading when stopped): %zu "
      "writes, %zu failed, longest gap between acknowledged writes %llu ms; ballot "
      "round %llu -> %llu\n",
      leaders_stopped, window.writes, writers.failed(),
      static_cast<unsigned long long>(window.longest_gap_ms),
      static_cast<unsigned long long>(first_round),
      static_cast<unsigned long long>(round(last_leader)));
  EXPECT_EQ(round(last_leader), first_round + uint64_t(leaders_stopped))
      << "an election beyond the handovers\n"
      << replication_states();
  const auto missing = lost(writers.acked());
  EXPECT_TRUE(missing.empty()) << missing.size() << " lost, first: " << missing.front();
}

TEST_F(E2E, RestartingEveryReplicaKeepsAllData) {
  start({"--snapshot-every", "50"});  // restarts then recover from snapshots plus the log
  std::map<std::string, std::string> acked;
  for (int i = 0; i < 150; ++i) {
    const std::string k = "k" + std::to_string(i);
    ASSERT_TRUE(is_ok(call(1 + i % 3, {"SET", k, "v" + std::to_string(i)})));
    acked[k] = "v" + std::to_string(i);
  }
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(call(1 + i % 3, {"INCR", "counter"}).is_ok());
  for (int i = 1; i <= 3; ++i) cluster_->kill(i, SIGKILL);
  ASSERT_TRUE(cluster_->start_all().is_ok());
  ASSERT_NE(wait_for_leader(), 0);
  EXPECT_TRUE(lost(acked).empty());
  auto counter = call(2, {"GET", "counter"});
  EXPECT_EQ(describe(counter), "\"30\"");
  EXPECT_EQ(describe(call(3, {"INCR", "counter"})), "(integer) 31");
}

// The processes a process has as children (their pids), from /proc.
std::vector<long> children_of(long pid) {
  std::vector<long> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    FILE* f = std::fopen((entry.path() / "stat").c_str(), "r");
    if (f == nullptr) continue;
    long self = 0, parent = 0;
    char state = 0;
    // "pid (comm) state ppid": comm holds no ')' here (it is "synod").
    if (std::fscanf(f, "%ld (%*[^)]) %c %ld", &self, &state, &parent) == 3 && parent == pid)
      out.push_back(self);
    std::fclose(f);
  }
  return out;
}

// Snapshots are taken by a forked child (node/snapshot_child.h), and a laggard is sent the
// leader's from its file (no replica keeps its snapshot in memory). After writes across several
// snapshots with one follower down, each live replica's directory holds one snapshot and no
// partial file, and no replica has a child left (each was reaped); the follower, restarted,
// installs a snapshot sent from a peer's file and serves every write.
TEST_F(E2E, SnapshotsAreTakenByAChildAndALaggardIsSentTheLeadersFromItsFile) {
  start({"--snapshot-every", "50", "--fault-injection"});
  const int l = leader();
  ASSERT_NE(l, 0);
  const int laggard = l % 3 + 1;
  const std::map<std::string, std::string> acked = write_without(l, laggard, 400, 100);
  ASSERT_EQ(acked.size(), 400u);
  const auto files = [&](int id) {
    std::vector<std::string> snaps;
    for (const auto& e : std::filesystem::directory_iterator(cluster_->data_dir(id))) {
      const std::string name = e.path().filename();
      if (name.rfind("snap-", 0) == 0) snaps.push_back(name);
    }
    return snaps;
  };
  for (int id = 1; id <= 3; ++id) {
    if (id == laggard) continue;
    // (A snapshot started by the last writes may still be in flight: it ends.)
    ASSERT_TRUE(eventually([&] {
      const auto snaps = files(id);
      return snaps.size() == 1 && snaps[0].ends_with(".snap") &&
             children_of(std::stol(info(id, "server")["process_id"])).empty();
    })) << "n"
        << id << ": " << files(id).size() << " snapshot files, first "
        << (files(id).empty() ? "" : files(id)[0]);
    // Within one interval of the last write: 50 slots, 62 for n3 (node::ServerCore, which
    // staggers the replicas' snapshots).
    EXPECT_GE(std::stoull(info(id)["snapshot_slot"]), 320u);
  }
  unblock(laggard);
  ASSERT_TRUE(cluster_->start(laggard).is_ok());
  ASSERT_TRUE(eventually([&] { return caught_up(); })) << replication_states();
  EXPECT_GE(std::stoull(info(laggard)["snapshot_slot"]), 320u);
  EXPECT_NE(slurp(cluster_->log_path(laggard)).find("snapshot_installed"), std::string::npos);
  EXPECT_TRUE(lost(acked).empty());
}

// Chosen values let go of from memory (--log-memory-bytes 0: all, once applied and synced) are
// read back from the write-ahead log: a laggard that missed 300 writes, with no snapshot to be
// sent instead, catches up from its peers' logs and serves every write.
TEST_F(E2E, ALaggardCatchesUpFromChosenValuesReadBackFromTheLog) {
  start({"--log-memory-bytes", "0", "--snapshot-every", "0", "--snapshot-log-bytes", "0",
         "--fault-injection"});
  const int l = leader();
  ASSERT_NE(l, 0);
  const int laggard = l % 3 + 1;
  const std::map<std::string, std::string> acked = write_without(l, laggard, 300, 200);
  ASSERT_EQ(acked.size(), 300u);
  // Every applied value goes once a sync covers its chosen record (the next Ready's).
  ASSERT_TRUE(eventually([&] { return std::stoull(info(l)["released_slot"]) >= 300u; }))
      << replication_states();
  EXPECT_LT(std::stoull(info(l)["log_memory_bytes"]), 2000u);
  unblock(laggard);
  ASSERT_TRUE(cluster_->start(laggard).is_ok());
  ASSERT_TRUE(eventually([&] { return caught_up(); })) << replication_states();
  EXPECT_EQ(info(laggard)["snapshot_slot"], "0");
  EXPECT_TRUE(lost(acked).empty());
}

TEST_F(E2E, MinorityCutOffCannotAcknowledgeWrites) {
  start({"--fault-injection", "--request-timeout-ms", "1500"});
  ASSERT_TRUE(is_ok(call(1, {"SET", "before", "1"})));
  const int isolated = leader();
  std::vector<std::string> others;
  for (int i = 1; i <= 3; ++i)
    if (i != isolated) others.push_back(std::to_string(i));
  // Cut the leader off from both others, in both directions.
  ASSERT_TRUE(is_ok(call(isolated, {"SYNOD.FAULT", "BLOCK", others[0], others[1]})));
  for (const auto& o : others)
    ASSERT_TRUE(is_ok(call(std::stoi(o), {"SYNOD.FAULT", "BLOCK", std::to_string(isolated)})));
  // The isolated replica never acknowledges a write, and says whether it might have happened.
  std::vector<std::string> definitely_not;
  for (int i = 0; i < 5; ++i) {
    const std::string k = "minority" + std::to_string(i);
    auto r = call(isolated, {"SET", k, "x"});
    ASSERT_TRUE(r.is_ok()) << describe(r);
    EXPECT_EQ(r->kind, Reply::Kind::kError) << "a minority acknowledged " << k;
    EXPECT_TRUE(r->text.rfind("TRYAGAIN", 0) == 0 || r->text.rfind("UNKNOWN", 0) == 0) << r->text;
    if (r->text.rfind("TRYAGAIN", 0) == 0) definitely_not.push_back(k);
  }
  // The majority elects a leader of its own and acknowledges writes.
  const int majority = std::stoi(others[0]);
  ASSERT_TRUE(eventually([&] { return is_ok(call(majority, {"SET", "during", "2"})); }));
  // Heal: the old leader rejoins, and what it was told definitely did not happen did not.
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(is_ok(call(i, {"SYNOD.FAULT", "CLEAR"})));
  ASSERT_TRUE(eventually([&] { return caught_up(); }));
  EXPECT_EQ(describe(call(isolated, {"GET", "during"})), "\"2\"");
  EXPECT_EQ(describe(call(isolated, {"GET", "before"})), "\"1\"");
  for (const auto& k : definitely_not)
    EXPECT_EQ(describe(call(majority, {"GET", k})), "(nil)") << k;
}

// PreVote and leader stickiness (issue 17): a follower that stops hearing the leader for eight
// maximum election timeouts, then hears it again, does not unseat it. Two shapes: cut off from
// both others, or one-way (only the leader drops its traffic with the follower, which still
// reaches the other follower: the one-sided partition in which the chaos harness once saw writes
// dip for seconds). Its clock runs out again and again, but a PreVote that no quorum would grant
// never raises its ballot (the other follower still hears the leader), so it simply follows once
// healed: the leader and its ballot are those of before, and the clients of the two others never
// wait for an election. The planted instances run removed-member-disrupts (no PreVote, no
// stickiness) to show the check catches it: the follower runs election after election, and its
// higher ballot deposes the leader (one-way: at once, through the other follower; cut off: once
// healed). All print the longest gap between two acknowledged writes of 16 clients (through the
// leader and the other follower).
class E2EPreVote : public E2E,
                   public ::testing::WithParamInterface<std::tuple<std::string, std::string>> {};

TEST_P(E2EPreVote, AFollowerThatStopsHearingTheLeaderLeavesItInPlace) {
  const auto& [shape, bug] = GetParam();
  const bool planted = !bug.empty();
  // Snapshots as configured by default (every 10,000 slots): a child process takes each, so they
  // stall no leader. (When the leader took them on its event loop, one of 10 MB, about 30,000 of
  // these writes, stalled it past the election timeout.)
  std::vector<std::string> args = {"--fault-injection"};
  if (planted) args.insert(args.end(), {"--planted-bug", bug});
  start(args);
  const int l = leader();
  ASSERT_NE(l, 0);
  const int f = l % 3 + 1, o = 6 - l - f;
  process::Writers writers(16, {port(l), port(o)}, "pv");
  ASSERT_TRUE(writers.progresses(200));
  const std::string ballot = info(l)["ballot"];
  const paxos::Config defaults;  // the servers' election ticks: these tests do not change them
  const auto hold = std::chrono::milliseconds(8 * defaults.election_timeout_max_ticks * kTickMs);
  const auto from = Clock::now();
  ASSERT_TRUE(is_ok(call(l, {"SYNOD.FAULT", "BLOCK", std::to_string(f)})));
  if (shape == "cut-off") {
    ASSERT_TRUE(is_ok(call(f, {"SYNOD.FAULT", "BLOCK", std::to_string(l), std::to_string(o)})));
    ASSERT_TRUE(is_ok(call(o, {"SYNOD.FAULT", "BLOCK", std::to_string(f)})));
  }
  std::this_thread::sleep_for(hold);  // the fault's length, not a wait for a result
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(is_ok(call(i, {"SYNOD.FAULT", "CLEAR"})));
  if (planted) {
    ASSERT_TRUE(eventually([&] { return info(o)["promised"] != ballot; }))
        << "the planted bug went unnoticed: no election after the heal\n"
        << replication_states();
  }
  ASSERT_TRUE(writers.progresses(200));
  const auto window = writers.measure(from, Clock::now());
  writers.stop();
  ASSERT_TRUE(eventually([&] { return caught_up(); })) << replication_states();
  const int now = leader();
  std::printf(
      "[measure] %s, %s: follower n%d not hearing the leader for %lld ms, then healed: %zu "
      "writes, longest gap between acknowledged writes %llu ms; ballot %s -> %s, leader n%d -> "
      "n%d\n",
      planted ? bug.c_str() : "PreVote", shape.c_str(), f, static_cast<long long>(hold.count()),
      window.writes, static_cast<unsigned long long>(window.longest_gap_ms), ballot.c_str(),
      info(now)["ballot"].c_str(), l, now);
  if (planted) return;
  EXPECT_EQ(now, l) << replication_states();
  EXPECT_EQ(info(l)["ballot"], ballot) << replication_states();
  for (int i = 1; i <= 3; ++i)  // no replica promised a higher ballot: no election was tried
    EXPECT_EQ(info(i)["promised"], ballot) << "n" << i << "\n" << replication_states();
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, E2EPreVote,
    ::testing::Combine(::testing::Values("cut-off", "one-way"),
                       ::testing::Values("", "removed-member-disrupts")),
    [](const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& p) {
      return std::string(std::get<0>(p.param) == "cut-off" ? "CutOff" : "OneWay") +
             (std::get<1>(p.param).empty() ? "Correct" : "PlantedNoPreVote");
    });

// A follower serves reads itself by a read index from the leader: each sees the write
// acknowledged just before it (through the leader), and a follower cut off from the leader serves
// none — not even the value it holds — until it can get an index again.
TEST_F(E2E, FollowerReadsSeeEveryAcknowledgedWriteAndACutOffFollowerServesNone) {
  start({"--fault-injection", "--request-timeout-ms", "1500"});
  const int l = leader();
  const int f = l % 3 + 1;
  const int other = f % 3 + 1;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(is_ok(call(l, {"SET", "k", std::to_string(i)})));
    EXPECT_EQ(describe(call(f, {"GET", "k"})), "\"" + std::to_string(i) + "\"") << i;
  }
  EXPECT_GE(std::stoi(info(f, "stats")["follower_reads"]), 50);
  EXPECT_EQ(info(f, "stats")["forwarded_to_leader"], "0");
  // Cut the follower off, in both directions; the others go on without it.
  ASSERT_TRUE(is_ok(call(f, {"SYNOD.FAULT", "BLOCK", std::to_string(l), std::to_string(other)})));
  ASSERT_TRUE(is_ok(call(l, {"SYNOD.FAULT", "BLOCK", std::to_string(f)})));
  ASSERT_TRUE(is_ok(call(other, {"SYNOD.FAULT", "BLOCK", std::to_string(f)})));
  ASSERT_TRUE(eventually([&] {
    return is_ok(call(leader_of_two(l, other), {"SET", "k", "after"}));
  }));
  for (int i = 0; i < 3; ++i) {
    auto r = call(f, {"GET", "k"});
    ASSERT_TRUE(r.is_ok()) << describe(r);
    EXPECT_EQ(r->kind, Reply::Kind::kError) << "a cut-off follower served " << describe(r);
    EXPECT_EQ(r->text.rfind("TRYAGAIN", 0), 0u) << r->text;
  }
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(is_ok(call(i, {"SYNOD.FAULT", "CLEAR"})));
  EXPECT_TRUE(eventually([&] { return describe(call(f, {"GET", "k"})) == "\"after\""; }));
}

// Lease reads (--lease-reads, docs/operations.md): the leader's INFO shows its lease and that it
// holds; reads through the leader and through a follower see every acknowledged write; and a
// leader cut off from both followers serves no read once its lease ran out, while the other two
// elect a leader and take writes.
TEST_F(E2E, LeaseReadsSeeEveryAcknowledgedWriteAndEndWithTheLease) {
  start({"--fault-injection", "--request-timeout-ms", "1500", "--lease-reads"});
  const int l = leader();
  const int f = l % 3 + 1;
  const int other = f % 3 + 1;
  EXPECT_GT(std::stoi(info(l, "replication")["read_lease_ms"]), 0);
  EXPECT_TRUE(eventually([&] { return info(l, "replication")["lease_holds"] == "1"; }));
  EXPECT_EQ(info(f, "replication")["lease_holds"], "0");
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(is_ok(call(i % 2 ? l : f, {"SET", "k", std::to_string(i)})));
    EXPECT_EQ(describe(call(l, {"GET", "k"})), "\"" + std::to_string(i) + "\"") << i;
    EXPECT_EQ(describe(call(f, {"GET", "k"})), "\"" + std::to_string(i) + "\"") << i;
  }
  // Cut the leader off, both ways; the other two elect a leader and take a write.
  ASSERT_TRUE(is_ok(call(l, {"SYNOD.FAULT", "BLOCK", std::to_string(f), std::to_string(other)})));
  ASSERT_TRUE(is_ok(call(f, {"SYNOD.FAULT", "BLOCK", std::to_string(l)})));
  ASSERT_TRUE(is_ok(call(other, {"SYNOD.FAULT", "BLOCK", std::to_string(l)})));
  ASSERT_TRUE(eventually([&] {
    return is_ok(call(leader_of_two(f, other), {"SET", "k", "after"}));
  }));
  // By now the old leader's lease has long run out (139 ms): it serves no read, stale or not.
  for (int i = 0; i < 3; ++i) {
    auto r = call(l, {"GET", "k"});
    ASSERT_TRUE(r.is_ok()) << describe(r);
    EXPECT_EQ(r->kind, Reply::Kind::kError) << "a cut-off leader served " << describe(r);
  }
  EXPECT_EQ(info(l, "replication")["lease_holds"], "0");
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(is_ok(call(i, {"SYNOD.FAULT", "CLEAR"})));
  EXPECT_TRUE(eventually([&] { return describe(call(l, {"GET", "k"})) == "\"after\""; }));
}

TEST_F(E2E, TtlsExpireIdenticallyOnEveryReplica) {
  start();
  // The remaining time, read through a follower right after the write; the TTL leaves the slow
  // sanitizer build (whose every write waits for a real fdatasync) ample time for one round.
  constexpr int kTtlMs = 2000;
  const std::string ttl = std::to_string(kTtlMs);
  ASSERT_TRUE(is_ok(call(1, {"SET", "ttl0", "v", "PX", ttl})));
  auto pttl = call(2, {"PTTL", "ttl0"});
  ASSERT_TRUE(pttl.is_ok());
  EXPECT_GT(pttl->integer, 0);
  EXPECT_LE(pttl->integer, kTtlMs);
  ASSERT_TRUE(is_ok(call(1, {"SET", "keep0", "v"})));
  for (int i = 1; i < 20; ++i) {
    ASSERT_TRUE(is_ok(call(1 + i % 3, {"SET", "ttl" + std::to_string(i), "v", "PX", ttl})));
    ASSERT_TRUE(is_ok(call(1 + i % 3, {"SET", "keep" + std::to_string(i), "v"})));
  }
  EXPECT_EQ(describe(call(3, {"TTL", "keep0"})), "(integer) -1");
  // Once the leader's clock, written into the log, passes the deadline, the keys are gone —
  // as of the same slot on every replica.
  ASSERT_TRUE(eventually([&] {
    (void)call(1, {"SET", "clock", "tick"});  // advances the log's clock
    return describe(call(1, {"GET", "ttl19"})) == "(nil)";
  }));
  ASSERT_TRUE(is_ok(call(2, {"SET", "after", "expiry"})));
  ASSERT_TRUE(eventually([&] { return caught_up(); }));
  std::set<std::string> digests, sizes;
  for (int i = 1; i <= 3; ++i) {
    digests.insert(info(i, "digest")["state_digest"]);
    sizes.insert(info(i, "keyspace")["db0"]);
  }
  EXPECT_EQ(digests.size(), 1u) << "replicas disagree on the state after expiry";
  EXPECT_EQ(digests.begin()->size(), 16u);
  // The digest encodes the whole state on the loop: never in INFO's default or whole output.
  for (const std::string section : {"default", "all", "everything", "keyspace"})
    EXPECT_EQ(info(1, section).count("state_digest"), 0u) << section;
  EXPECT_FALSE(info(1, "digest")["applied_slot"].empty());
  EXPECT_EQ(*sizes.begin(), "keys=22,expires=0,avg_ttl=0");  // 20 keep + clock + after
  EXPECT_EQ(describe(call(3, {"EXISTS", "ttl0", "keep0"})), "(integer) 1");
}

// redis-cli, unchanged, as the client: a lock taken with SET NX PX and released with DELIFEQ
// stays held by its owner through a change of leader.
std::string redis_cli(uint16_t port, const std::string& args) {
  const std::string cmd = "redis-cli -p " + std::to_string(port) + " " + args + " 2>&1";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

TEST_F(E2E, LockThroughALeaderChangeWithRedisCli) {
  start();
  ASSERT_EQ(redis_cli(port(1), "PING"), "PONG") << "is redis-cli installed?";
  EXPECT_EQ(redis_cli(port(1), "SET lock owner-a NX PX 30000"), "OK");
  EXPECT_EQ(redis_cli(port(2), "SET lock owner-b NX PX 30000"), "");  // nil: held by a
  const int old_leader = leader();
  cluster_->kill(old_leader, SIGKILL);
  ASSERT_NE(wait_for_leader(old_leader), 0);
  const int survivor = old_leader == 1 ? 2 : 1;
  EXPECT_EQ(redis_cli(port(survivor), "SET lock owner-b NX PX 30000"), "");
  EXPECT_EQ(redis_cli(port(survivor), "GET lock"), "owner-a");
  EXPECT_EQ(redis_cli(port(survivor), "DELIFEQ lock owner-b"), "0");  // not b's to release
  const std::string ttl = redis_cli(port(survivor), "PTTL lock");
  EXPECT_GT(std::stoll(ttl), 0);
  EXPECT_LE(std::stoll(ttl), 30000);
  EXPECT_EQ(redis_cli(port(survivor), "DELIFEQ lock owner-a"), "1");
  EXPECT_EQ(redis_cli(port(survivor), "SET lock owner-b NX PX 30000"), "OK");
  EXPECT_EQ(redis_cli(port(survivor), "SET lock owner-b IFEQ owner-a"), "");  // not a's now
  ASSERT_TRUE(cluster_->start(old_leader).is_ok());
  ASSERT_TRUE(eventually([&] { return caught_up(); }));
  EXPECT_EQ(redis_cli(port(old_leader), "GET lock"), "owner-b");
  // Plain redis-cli usage works too: INFO, pipelined input, unknown commands.
  EXPECT_NE(redis_cli(port(1), "INFO replication").find("role:"), std::string::npos);
  EXPECT_NE(redis_cli(port(1), "NOSUCHCOMMAND x").find("ERR unknown command"), std::string::npos);
}

// A pipeline is answered in order, and its commands take effect in the order they were sent —
// on the leader and through a follower — as Redis users expect.
TEST_F(E2E, PipelinedCommandsTakeEffectInOrder) {
  start();
  for (int id = 1; id <= 3; ++id) {
    auto c = client::RespClient::connect("127.0.0.1", port(id), 1000);
    ASSERT_TRUE(c.is_ok());
    c->set_timeout_ms(8000);
    std::vector<std::vector<std::string>> commands;
    std::vector<std::string> expected;
    const std::string key = "p" + std::to_string(id);
    for (int i = 0; i < 40; ++i) {
      commands.push_back({"SET", key, std::to_string(i)});
      expected.push_back("OK");
      commands.push_back({"GET", key});
      expected.push_back("\"" + std::to_string(i) + "\"");
      commands.push_back({"INCR", key});
      expected.push_back("(integer) " + std::to_string(i + 1));
      commands.push_back({"PING"});
      expected.push_back("PONG");
    }
    auto replies = c->pipeline(commands);
    ASSERT_TRUE(replies.is_ok()) << replies.status().to_string();
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(client::to_string((*replies)[i]), expected[i]) << "reply " << i << " via n" << id;
  }
}

// A replica of another cluster that dials this one is refused at the handshake, with a reason
// in the log, and changes nothing.
TEST_F(E2E, AReplicaOfAnotherClusterIsRefused) {
  start();
  ASSERT_TRUE(is_ok(call(1, {"SET", "mine", "1"})));
  // It believes it is n3 of a three-replica cluster whose n1 and n2 are ours.
  uint16_t client_port = 0, peer_port = 0;
  ASSERT_TRUE(LocalCluster::pick_free_ports(1, client_port, peer_port).is_ok());
  const std::string dir = cluster_->options().dir + "/foreign";
  const std::string peers = "1=127.0.0.1:" + std::to_string(cluster_->peer_port(1)) +
                            ",2=127.0.0.1:" + std::to_string(cluster_->peer_port(2)) +
                            ",3=127.0.0.1:" + std::to_string(peer_port);
  const std::string cmd = std::string(SYNOD_BINARY) + " server --id 3 --cluster-id 99 --peers " +
                          peers + " --listen 127.0.0.1:" + std::to_string(client_port) +
                          " --data " + dir + " > " + dir + ".log 2>&1 & echo $! > " + dir + ".pid";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_TRUE(eventually([&] {
    return slurp(cluster_->log_path(1)).find("peer belongs to cluster 99, not 1") !=
           std::string::npos;
  })) << "n1 did not refuse the foreign replica";
  // Our side refuses it at its handshake and tells it why (a Refusal frame) before closing.
  EXPECT_TRUE(eventually([&] {
    const std::string log = slurp(dir + ".log");
    return log.find("refused by n1 at") != std::string::npos &&
           log.find("peer belongs to cluster 99, not 1") != std::string::npos;
  })) << slurp(dir + ".log");
  (void)std::system(("kill -9 $(cat " + dir + ".pid) 2>/dev/null").c_str());
  EXPECT_EQ(describe(call(2, {"GET", "mine"})), "\"1\"");
  EXPECT_TRUE(is_ok(call(3, {"SET", "still", "works"})));
}

// Finding 7: with room for only two sessions, clients on every replica that pipeline INCRs at the
// same time never have a command applied twice, and the table stays at its bound on every
// replica. Sessions come and go in log order; a refusal of a command that cannot have taken
// effect is retried by the server with a fresh seq, so most commands are acknowledged; a command
// forwarded twice whose session was evicted meanwhile is answered UNKNOWN (it may have been
// applied once), never applied again.
TEST_F(E2E, TwoSessionsServeManyConcurrentClientsAndNeverApplyACommandTwice) {
  start({"--max-sessions", "2"});
  ASSERT_TRUE(eventually([&] { return caught_up(); }));
  constexpr int kClients = 6, kIncrs = 40, kRounds = 3;
  struct Outcome {
    std::string problem;
    std::set<int64_t> acked;  // the INCR replies
    int unknown = 0;
    int64_t final_value = -1;
  };
  std::vector<Outcome> outcomes(kClients);
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      Outcome& o = outcomes[t];
      auto c = client::RespClient::connect("127.0.0.1", port(1 + t % 3), 1000);
      if (!c.is_ok()) return void(o.problem = "cannot connect");
      c->set_timeout_ms(8000);
      const std::string key = "c" + std::to_string(t);
      for (int round = 0; round < kRounds; ++round) {
        auto replies = c->pipeline(std::vector<std::vector<std::string>>(kIncrs, {"INCR", key}));
        if (!replies.is_ok()) return void(o.problem = replies.status().to_string());
        for (const auto& r : *replies) {
          if (r.kind == Reply::Kind::kInteger) {
            if (!o.acked.insert(r.integer).second)
              o.problem = "two INCRs answered " + std::to_string(r.integer);
          } else if (r.kind == Reply::Kind::kError && r.text.rfind("UNKNOWN", 0) == 0) {
            ++o.unknown;
          } else if (r.kind != Reply::Kind::kError || r.text.rfind("TRYAGAIN", 0) != 0) {
            o.problem = "unexpected reply " + client::to_string(r);
          }
        }
      }
      auto got = c->call({"GET", key});
      if (got.is_ok() && got->kind == Reply::Kind::kBulk) o.final_value = std::stoll(got->text);
    });
  }
  for (auto& t : threads) t.join();
  int64_t acked = 0;
  for (int t = 0; t < kClients; ++t) {
    const Outcome& o = outcomes[t];
    EXPECT_EQ(o.problem, "") << "client " << t;
    // Every acknowledged INCR took effect once; an UNKNOWN one at most once; nothing else did.
    const auto n = static_cast<int64_t>(o.acked.size());
    EXPECT_GE(o.final_value, n) << "client " << t;
    EXPECT_LE(o.final_value, n + o.unknown) << "client " << t;
    if (!o.acked.empty()) {
      EXPECT_LE(*o.acked.rbegin(), o.final_value) << "client " << t;
    }
    acked += n;
  }
  EXPECT_GE(acked, kClients * kIncrs * kRounds / 2) << "most commands are acknowledged";
  ASSERT_TRUE(eventually([&] { return caught_up(); }));
  for (int id = 1; id <= 3; ++id) {
    auto keyspace = info(id, "keyspace");
    EXPECT_LE(std::stoi(keyspace["sessions"]), 2) << "n" << id;
    EXPECT_GT(std::stoi(keyspace["session_evictions"]), 0) << "n" << id;
    EXPECT_EQ(info(id, "digest")["state_digest"], info(1, "digest")["state_digest"]) << "n" << id;
  }
}

// A client socket that reads nothing unless told, with a small receive buffer, so that what the
// server cannot send stays in the server.
class SilentClient {
 public:
  explicit SilentClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int small = 16 << 10;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~SilentClient() { ::close(fd_); }
  bool send(const std::string& bytes) {
    return connected_ && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                             static_cast<ssize_t>(bytes.size());
  }
  // Reads (and drops) until the server ends the connection, within `timeout_ms`.
  bool drains_to_end(int timeout_ms) {
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n < 0) return false;  // timed out: still open
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

uint64_t rss_kib(const std::string& pid) {
  const std::string status = slurp("/proc/" + pid + "/status");
  const size_t at = status.find("VmRSS:");
  return at == std::string::npos ? 0 : std::stoull(status.substr(at + 6));
}

// Finding 7: a client that pipelines GETs of a big value and never reads holds a bounded amount
// of the server's memory — its requests stop being read above the soft output limit, and it is
// disconnected above the hard one — while a pipelining client that does read is served in full.
TEST_F(E2E, AClientThatNeverReadsIsPausedOrClosedAndHoldsBoundedMemory) {
  constexpr size_t kSoft = 4 << 20, kHard = 32 << 20;
#ifdef __SANITIZE_ADDRESS__
  // AddressSanitizer keeps freed memory in a quarantine (256 MiB by default), which would count
  // as RSS the replies already written and freed: the servers started here run without one.
  const char* given = std::getenv("ASAN_OPTIONS");
  const std::string saved = given != nullptr ? given : "";
  ::setenv("ASAN_OPTIONS", (saved + (saved.empty() ? "" : ":") + "quarantine_size_mb=0").c_str(),
           1);
#endif
  start({"--client-output-soft-limit", std::to_string(kSoft), "--client-output-hard-limit",
         std::to_string(kHard)});
  const int l = leader();
  const std::string big(256 << 10, 'b');
  ASSERT_TRUE(is_ok(call(l, {"SET", "big", big})));
  const std::string pid = info(l, "server")["process_id"];
  const uint64_t rss_before = rss_kib(pid);
  auto get = [](const std::string& key) {
    return "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
  };
  std::string gets;
  for (int n = 0; n < 1000; ++n) gets += get("big");  // 256 MiB of replies if all were queued
  SilentClient silent(port(l));
  ASSERT_TRUE(silent.send(gets));
  std::map<std::string, std::string> stats;
  ASSERT_TRUE(eventually([&] {
    stats = info(l, "stats");
    return stats["clients_paused"] == "1" &&
           std::stoull(stats["client_output_queued_bytes_max"]) > kSoft;
  })) << "the silent client was never paused";
  // Paused: queued at most the soft limit plus the commands that were already in progress.
  EXPECT_LE(std::stoull(stats["client_output_queued_bytes_max"]), kSoft + 48 * (big.size() + 16));
  EXPECT_EQ(stats["client_output_limit_closes"], "0");
  EXPECT_LT(rss_kib(pid), rss_before + (64 << 10)) << "RSS grew by more than 64 MiB";
#ifdef __SANITIZE_ADDRESS__
  ::setenv("ASAN_OPTIONS", saved.c_str(), 1);
#endif

  // A client that pipelines as much and reads is served in full meanwhile.
  auto c = client::RespClient::connect("127.0.0.1", port(l), 1000);
  ASSERT_TRUE(c.is_ok());
  c->set_timeout_ms(8000);
  std::vector<std::vector<std::string>> commands(200, {"GET", "big"});
  auto replies = c->pipeline(commands);
  ASSERT_TRUE(replies.is_ok()) << replies.status().to_string();
  for (const auto& r : *replies) ASSERT_EQ(r, Reply::bulk(big));

  // With a value so big that the commands in progress alone pass the hard limit, the silent
  // client is disconnected instead.
  const std::string huge(4 << 20, 'h');
  ASSERT_TRUE(is_ok(call(l, {"SET", "huge", huge})));
  std::string huge_gets;
  for (int n = 0; n < 100; ++n) huge_gets += get("huge");
  SilentClient closed(port(l));
  ASSERT_TRUE(closed.send(huge_gets));
  ASSERT_TRUE(eventually([&] { return info(l, "stats")["client_output_limit_closes"] == "1"; }));
  EXPECT_TRUE(closed.drains_to_end(5000)) << "the connection stayed open";
  // What it held is gone with it (the paused client still holds its share).
  EXPECT_LE(std::stoull(info(l, "stats")["client_output_queued_bytes"]),
            kSoft + 48 * (big.size() + 16));
  EXPECT_TRUE(is_ok(call(l, {"SET", "after", "1"})));
}

TEST_F(E2E, GarbageOnEitherPortNeverCrashesOrCorrupts) {
  start();
  std::map<std::string, std::string> acked;
  for (int i = 0; i < 30; ++i) {
    const std::string k = "g" + std::to_string(i);
    ASSERT_TRUE(is_ok(call(1 + i % 3, {"SET", k, "v"})));
    acked[k] = "v";
  }
  std::mt19937 rng(7);
  std::vector<std::string> blobs = {
      "*2\r\n$3\r\nGET\r\n$-5\r\n", "*99999999999\r\n", "$5\r\nhello\r\n", "*1\r\n$999999999\r\n",
      std::string(70000, 'A') + "\r\n",  // an inline request beyond the limit
      "\x00\x01\x02\x03garbage", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n",  // truncated
      // peer frames: a huge length, a foreign cluster's hello, a checksum mismatch
      std::string("\xff\xff\xff\x7f\0\0\0\0", 8), std::string("\x0e\0\0\0\0\0\0\0\x01\x40", 10)};
  for (int i = 0; i < 40; ++i) {
    std::string b(1 + rng() % 512, '\0');
    for (char& ch : b) ch = static_cast<char>(rng());
    blobs.push_back(b);
  }
  for (int id = 1; id <= 3; ++id) {
    for (uint16_t p : {port(id), cluster_->peer_port(id)}) {
      for (const auto& b : blobs) {
        auto c = client::RespClient::connect("127.0.0.1", p, 1000);
        ASSERT_TRUE(c.is_ok());
        (void)c->send_raw(b);
        c->set_timeout_ms(200);
        (void)c->read_reply();  // an error reply, a close, or nothing: all fine
      }
    }
  }
  // A malformed request gets a Redis-style error before the connection closes.
  auto c = client::RespClient::connect("127.0.0.1", port(1), 1000);
  ASSERT_TRUE(c.is_ok());
  ASSERT_TRUE(c->send_raw("*1\r\n$abc\r\n").is_ok());
  auto r = c->read_reply();
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, Reply::Kind::kError);
  EXPECT_EQ(r->text.rfind("ERR Protocol error", 0), 0u) << r->text;
  // An unknown command does not end the connection.
  auto c2 = client::RespClient::connect("127.0.0.1", port(2), 1000);
  ASSERT_TRUE(c2.is_ok());
  EXPECT_EQ(c2->call({"FROB"})->kind, Reply::Kind::kError);
  EXPECT_EQ(describe(c2->call({"PING"})), "PONG");
  // Everyone is alive, the data is intact and the cluster still takes writes.
  EXPECT_TRUE(cluster_->reap().empty());
  EXPECT_TRUE(lost(acked).empty());
  EXPECT_TRUE(is_ok(call(3, {"SET", "after-garbage", "1"})));
}

// Values at the command size limit (finding 5 of "Every defect found by review and by first
// use"): they are chosen while small writes go on, a follower is paused and resumed and the leader
// is killed; one byte more is refused with a clear error. The cluster keeps electing leaders
// without an election storm, loses nothing, and its data directories stay bounded.
std::string big_value(int i, size_t bytes) {
  std::string v = std::to_string(i) + ":";
  v.resize(bytes, static_cast<char>('a' + i % 26));
  return v;
}

uint64_t dir_bytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}

TEST_F(E2E, ValuesAtTheSizeLimitSurvivePausesAndFailoverWithBoundedLogs) {
#ifdef __SANITIZE_ADDRESS__
  // Moving 4 MiB values through three instrumented replicas while one is paused and the leader
  // killed outruns its deadlines under the sanitizers (it failed there at 150 s): the plain build
  // runs it, as it runs the chaos planted-bug runs.
  GTEST_SKIP() << "run in the plain build only";
#endif
  constexpr size_t kMax = 4 << 20;
  // A follower answers nothing while it syncs a 4 MiB value, which on this disk under a loaded
  // test run can take longer than the default 150 ms in which a leader must hear a phase-2
  // quorum: with one follower paused, the leader then steps down round after round (25 rounds,
  // "no phase-2 quorum answered", though every round chose values). Failure detection must
  // outlast the slowest sync of the largest value: docs/operations.md says so to operators, and
  // the cluster here is configured as it says (300-600 ms).
  start({"--max-command-bytes", std::to_string(kMax), "--snapshot-every", "200",
         "--election-min-ticks", "30", "--election-max-ticks", "60"});
  // SET big0 <value>: 28 + (4 + 3) + (4 + 4) + (4 + value) bytes as the log stores it.
  const size_t at_limit = kMax - 47;
  for (int id = 1; id <= 3; ++id) {
    auto r = call(id, {"SET", "big0", std::string(at_limit + 1, 'x')});
    ASSERT_TRUE(r.is_ok()) << describe(r);
    EXPECT_EQ(r->text, "ERR command of " + std::to_string(kMax + 1) +
                           " bytes exceeds the maximum of " + std::to_string(kMax) +
                           " (max-command-bytes)");
  }
  std::atomic<bool> stop{false};
  std::atomic<int> big_acked{0};
  std::atomic<uint64_t> longest_gap_ms{0}, peak_dir_bytes{0};
  std::atomic<int> peak_round{0};
  // The monitor: how long the cluster goes without a leader, how high ballots climb, how large
  // any replica's data directory grows.
  std::thread monitor([&] {
    auto last_leader = Clock::now();
    while (!stop) {
      int round = 0;
      for (int i = 1; i <= 3; ++i) {
        const std::string promised = info(i)["promised"];
        if (!promised.empty()) round = std::max(round, std::stoi(promised));
        peak_dir_bytes = std::max<uint64_t>(
            peak_dir_bytes, dir_bytes(cluster_->options().dir + "/n" + std::to_string(i)));
      }
      peak_round = std::max(peak_round.load(), round);
      if (leader() != 0) last_leader = Clock::now();
      const auto gap =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_leader);
      longest_gap_ms = std::max<uint64_t>(longest_gap_ms, static_cast<uint64_t>(gap.count()));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  // The big writer: values at the limit into two keys, through every replica in turn. Per key,
  // the last acknowledged value and the later ones whose outcome is unknown.
  std::map<std::string, int> last_acked;
  std::map<std::string, std::set<int>> maybe;
  std::mutex mu;
  std::atomic<int> avoid{0};  // a paused replica would only hold each call until its timeout
  std::thread big([&] {
    for (int i = 1; !stop; ++i) {
      const std::string key = "big" + std::to_string(i % 2);
      int via = 1 + i % 3;
      if (via == avoid) via = via % 3 + 1;
      auto r = call(via, {"SET", key, big_value(i, at_limit)}, 15000);
      std::lock_guard<std::mutex> lock(mu);
      if (is_ok(r)) {
        last_acked[key] = i;
        maybe[key].clear();
        ++big_acked;
      } else {
        maybe[key].insert(i);
      }
    }
  });
  Writers writers(
      this, [this](int id) { return port(id); }, 2);
  auto more_big = [&](int n) {
    const int target = big_acked + n;
    return eventually([&] { return big_acked >= target; }, 60000);
  };
  ASSERT_TRUE(more_big(4)) << "values at the limit are not chosen";
  const int l = wait_for_leader();  // (an election may be under way)
  ASSERT_NE(l, 0) << replication_states();
  const int paused = l % 3 + 1;
  avoid = paused;
  cluster_->kill(paused, SIGSTOP);
  EXPECT_TRUE(more_big(4)) << "no progress with a follower paused";
  cluster_->kill(paused, SIGCONT);
  avoid = 0;
  EXPECT_TRUE(more_big(4)) << "no progress after the follower resumed";
  const int killed = wait_for_leader();
  ASSERT_NE(killed, 0) << replication_states();
  cluster_->kill(killed, SIGKILL);
  ASSERT_NE(wait_for_leader(killed), 0) << "no new leader after the kill";
  EXPECT_TRUE(more_big(4)) << "no progress after the failover";
  ASSERT_TRUE(cluster_->start(killed).is_ok());
  EXPECT_TRUE(more_big(4)) << "no progress after the restart";
  stop = true;
  big.join();
  writers.stop();
  monitor.join();
  ASSERT_TRUE(eventually([&] { return caught_up(); }, 60000)) << replication_states();
  const auto missing = lost(writers.acked());
  EXPECT_TRUE(missing.empty()) << missing.size() << " lost, first: " << missing.front();
  for (const auto& [key, i] : last_acked) {
    for (int id = 1; id <= 3; ++id) {
      auto r = call(id, {"GET", key});
      ASSERT_TRUE(r.is_ok() && r->kind == Reply::Kind::kBulk) << describe(r);
      const int got = std::stoi(r->text.substr(0, r->text.find(':')));
      EXPECT_TRUE(got == i || maybe[key].count(got))
          << key << " holds value " << got << ", acknowledged " << i;
      EXPECT_EQ(r->text, big_value(got, at_limit)) << key << " is corrupt";
    }
  }
  std::printf(
      "size-limit run: %d values of %zu bytes acknowledged, %zu small writes; longest "
      "time without a leader %llu ms; highest ballot round %d; largest data directory "
      "%llu MiB\n",
      big_acked.load(), at_limit, writers.acked_count(),
      static_cast<unsigned long long>(longest_gap_ms.load()), peak_round.load(),
      static_cast<unsigned long long>(peak_dir_bytes.load() >> 20));
  // A kill costs one election (and the monitor polls a paused replica for up to a second).
  EXPECT_LT(longest_gap_ms, 5000u) << "the cluster went without a leader";
  EXPECT_LT(peak_round, 20) << "an election storm";
  // Between snapshots (every 200 slots) the log holds at most a few segments of values.
  EXPECT_LT(peak_dir_bytes, uint64_t{1} << 30) << "a data directory grew without bound";
}

// Node ids are not capped at 63 (the bit mask of a quorum's first members): a machine added after
// many replacements gets a large id, and one an operator picks may be anything in
// 1..kMaxNodeIdValue. Three replicas whose ids are 64, 1000 and the largest elect a leader, agree
// on a write and serve it from every replica.
TEST(E2EIds, ReplicasWithLargeIdsElectAndAgree) {
  char tmpl[] = "/tmp/synod-ids-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  uint16_t client_port = 0, peer_port = 0;
  ASSERT_TRUE(LocalCluster::pick_free_ports(3, client_port, peer_port).is_ok());
  const uint32_t ids[3] = {64, 1000, kMaxNodeIdValue};
  std::string peers;
  for (int i = 0; i < 3; ++i)
    peers +=
        (i ? "," : "") + std::to_string(ids[i]) + "=127.0.0.1:" + std::to_string(peer_port + i);
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    const std::string n = dir + "/n" + std::to_string(ids[i]);
    const Ran ran =
        run_shell(std::string(SYNOD_BINARY) + " server --id " + std::to_string(ids[i]) +
                  " --peers " + peers + " --listen 127.0.0.1:" + std::to_string(client_port + i) +
                  " --data " + n + " --initial-cluster-state new > " + n + ".log 2>&1 & echo $!");
    ASSERT_EQ(ran.exit_code, 0) << ran.output;
    pids.push_back(static_cast<pid_t>(std::stol(ran.output)));
  }
  auto call = [&](int i, const std::vector<std::string>& args) -> Result<Reply> {
    auto c = client::RespClient::connect("127.0.0.1", static_cast<uint16_t>(client_port + i), 1000);
    if (!c.is_ok()) return c.status();
    c->set_timeout_ms(3000);
    return c->call(args);
  };
  EXPECT_TRUE(eventually(
      [&] {
        return is_ok(call(0, {"SET", "k", "large ids"}));
      },
      30000))
      << slurp(dir + "/n64.log");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(eventually([&] {
      auto r = call(i, {"GET", "k"});
      return r.is_ok() && r->kind == Reply::Kind::kBulk && r->text == "large ids";
    })) << "replica "
        << ids[i];
  }
  auto info = call(0, {"INFO", "replication"});
  ASSERT_TRUE(info.is_ok());
  EXPECT_NE(info->text.find("node_id:64"), std::string::npos) << info->text;
  for (pid_t pid : pids) {
    EXPECT_EQ(::kill(pid, 0), 0) << "a replica exited; see " << dir;
    ::kill(pid, SIGTERM);
  }
  for (pid_t pid : pids) eventually([&] { return ::kill(pid, 0) != 0; }, 10000);
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace synod::tools
