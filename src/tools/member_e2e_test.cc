// Membership changes with real processes (issue 17, "Operations"): the procedures of
// docs/operations.md — grow, shrink, replace a machine — run with `synod member` against a
// cluster of `synod server` processes, and the cluster is checked afterwards by what it does:
// acknowledged writes read back (from the new member too), MEMBER LIST shows the roles and the
// epoch, and the changed cluster tolerates the failure its new size allows.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/resp_client.h"
#include "process/local_cluster.h"
#include "process/writers.h"
#include "tools/e2e_support.h"

namespace synod::tools {
namespace {

using kv::Reply;
using process::LocalCluster;

// One client writing distinct keys in a loop (to the first of `ids` that acknowledges), keeping
// what was acknowledged and when, for the longest gap between acknowledged writes during a
// change: what an operator's clients see of it.
class Writer {
 public:
  using Clock = std::chrono::steady_clock;
  using Set = std::function<bool(int id, const std::string& key, const std::string& value)>;
  Writer(std::vector<int> ids, Set set) : ids_(std::move(ids)), set_(std::move(set)) {
    thread_ = std::thread([this] {
      for (int i = 0; !stop_; ++i) {
        const std::string key = "w:" + std::to_string(i), value = "x" + std::to_string(i);
        for (int id : ids_) {
          if (!set_(id, key, value)) continue;
          std::lock_guard<std::mutex> lock(mu_);
          acked_[key] = value;
          acked_at_.push_back(Clock::now());
          break;
        }
      }
    });
  }
  ~Writer() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t writes() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_at_.size();
  }
  // Waits until `n` more writes are acknowledged (false if they are not within 15 s).
  bool progresses(size_t n = 20) {
    const size_t before = writes();
    return eventually([&] { return writes() >= before + n; });
  }
  std::map<std::string, std::string> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  // Prints how long [from, to] took, the writes acknowledged in it and the longest gap between
  // two of them (measured, not asserted: the machine is shared).
  void report(const std::string& what, Clock::time_point from, Clock::time_point to) {
    // A stall still going on at `to` ends with the next acknowledgement: without it, the gap
    // that straddles `to` would go uncounted.
    eventually([&] {
      std::lock_guard<std::mutex> lock(mu_);
      return !acked_at_.empty() && acked_at_.back() > to;
    });
    std::lock_guard<std::mutex> lock(mu_);
    Clock::duration longest{};
    size_t during = 0;
    for (size_t i = 1; i < acked_at_.size(); ++i) {
      if (acked_at_[i] < from || acked_at_[i - 1] > to) continue;
      longest = std::max(longest, acked_at_[i] - acked_at_[i - 1]);
      ++during;
    }
    auto ms = [](Clock::duration d) {
      return static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    };
    std::printf(
        "[measure] %s took %lld ms; %zu writes acknowledged meanwhile; longest gap "
        "between them %lld ms\n",
        what.c_str(), ms(to - from), during, ms(longest));
  }

 private:
  const std::vector<int> ids_;
  const Set set_;
  std::mutex mu_;
  std::map<std::string, std::string> acked_;
  std::vector<Clock::time_point> acked_at_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class MemberE2E : public LocalClusterTest {
 protected:
  // Three founders, and room for machines added at run time (ids 4 and 5).
  void start() {
    auto o = three_replicas("member", {});
    ASSERT_TRUE(o.is_ok()) << o.status().to_string();
    o->replicas = 5;
    o->founders = 3;
    ASSERT_TRUE(LocalCluster::pick_free_ports(5, o->client_port, o->peer_port).is_ok());
    launch(*o);
  }

  std::string endpoints(const std::set<int>& ids) const {
    std::string out;
    for (int id : ids)
      out += (out.empty() ? "" : ",") + std::string("127.0.0.1:") +
             std::to_string(cluster_->client_port(id));
    return out;
  }
  std::string peer_addr(int id) const {
    return "127.0.0.1:" + std::to_string(cluster_->peer_port(id));
  }
  Ran member(const std::string& args) const {
    return run_shell(std::string(SYNOD_BINARY) + " member " + args + " 2>&1");
  }

  Result<Reply> call(int id, const std::vector<std::string>& args, int timeout_ms = 8000) {
    auto c = client::RespClient::connect("127.0.0.1", cluster_->client_port(id), 1000);
    if (!c.is_ok()) return c.status();
    c->set_timeout_ms(timeout_ms);
    return c->call(args);
  }
  bool set(int id, const std::string& key, const std::string& value) {
    auto r = call(id, {"SET", key, value});
    return r.is_ok() && r->kind == Reply::Kind::kSimple && r->text == "OK";
  }
  std::string get(int id, const std::string& key) {
    auto r = call(id, {"GET", key});
    return r.is_ok() ? r->text : r.status().to_string();
  }
  // MEMBER LIST of replica `id`, its lines joined by newlines ("" if it did not answer).
  std::string list(int id) {
    auto r = call(id, {"MEMBER", "LIST"}, 2000);
    if (!r.is_ok() || r->kind != Reply::Kind::kArray) return "";
    std::string out;
    for (const Reply& line : r->elements) out += line.text + "\n";
    return out;
  }
  static bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }
  // The leader's MEMBER LIST has exactly `voters` as voters, and no learner. (Epochs are not
  // predictable: the leader binds each member's incarnation in a change of its own.)
  bool configuration_is(const std::set<int>& voters) {
    const int leader = cluster_->leader();
    if (leader == 0) return false;
    const std::string l = list(leader);
    if (has(l, "role=learner")) return false;
    size_t lines = 0;
    for (size_t at = 0; (at = l.find("\nid=", at)) != std::string::npos; ++at) ++lines;
    if (lines != voters.size()) return false;
    for (int v : voters)
      if (!has(l, "id=" + std::to_string(v) + " ") ||
          !has(l, "id=" + std::to_string(v) + " peer=" + peer_addr(v)))
        return false;
    return true;
  }
};

// Grow 3 -> 4 (add a learner, start it with --join, promote it once caught up), then shrink
// 4 -> 3 (remove a founder), with writes before, between and after; the new member serves reads
// of every acknowledged write, and the shrunk cluster still tolerates one failure.
TEST_F(MemberE2E, GrowToFourThenShrinkToThree) {
  start();
  if (HasFatalFailure()) return;
  const int leader = cluster_->leader();
  std::map<std::string, std::string> acked;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "grow:" + std::to_string(i);
    ASSERT_TRUE(set(leader, key, "v" + std::to_string(i)));
    acked[key] = "v" + std::to_string(i);
  }
  // A client writes throughout (through any founder); what it sees of each change is printed.
  Writer writer({1, 2, 3}, [this](int id, const std::string& k, const std::string& v) {
    return set(id, k, v);
  });
  using Clock = Writer::Clock;
  // Refusals, with clear texts: a replace that would wait past a day (or overflow its deadline)
  // is bad usage; a learner that never started is never promoted.
  auto forever =
      call(leader, {"MEMBER", "REPLACE", "2", peer_addr(4), "18446744073709551615"}, 2000);
  ASSERT_TRUE(forever.is_ok());
  EXPECT_TRUE(has(forever->text, "ERR usage: MEMBER REPLACE")) << forever->text;
  const int follower = leader % 3 + 1;
  Clock::time_point from = Clock::now();
  Ran added = member("add --endpoints " + endpoints({follower}) + " --peer-addr " + peer_addr(4));
  writer.report("add-learner", from, Clock::now());
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_TRUE(has(added.output, "added n4 ")) << added.output;
  // Asking again (a retry) gives the same id and changes nothing.
  auto again = call(leader, {"MEMBER", "ADD-LEARNER", peer_addr(4)});
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->kind, Reply::Kind::kInteger);
  EXPECT_EQ(again->integer, 4);
  EXPECT_TRUE(eventually([&] { return has(list(leader), "id=4 peer=" + peer_addr(4)); }));
  EXPECT_TRUE(has(list(leader), "role=learner")) << list(leader);
  // Not started: promoting it is refused until it has caught up. (Asked of the leader: a
  // follower's forward that the leader keeps refusing ends UNKNOWN, as for any write.)
  Ran early = member("promote 4 --timeout-ms 7000 --endpoints " + endpoints({leader}));
  EXPECT_EQ(early.exit_code, 1) << early.output;
  EXPECT_TRUE(has(early.output, "has not caught up")) << early.output;

  ASSERT_TRUE(cluster_->start(4, {"--join"}).is_ok());
  ASSERT_TRUE(cluster_->wait_until_serving(15000).is_ok());
  from = Clock::now();
  Ran promoted = member("promote 4 --timeout-ms 30000 --endpoints " + endpoints({1, 2, 3}));
  writer.report("promote (once caught up)", from, Clock::now());
  ASSERT_EQ(promoted.exit_code, 0) << promoted.output;
  EXPECT_TRUE(has(promoted.output, "OK epoch ")) << promoted.output;
  EXPECT_TRUE(eventually([&] { return configuration_is({1, 2, 3, 4}); })) << list(leader);
  Ran listed = member("list --endpoints " + endpoints({1, 2, 3, 4}));
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_TRUE(has(listed.output, "id=4 peer=" + peer_addr(4))) << listed.output;
  EXPECT_TRUE(has(listed.output, "role=voter")) << listed.output;

  for (int i = 20; i < 40; ++i) {
    const std::string key = "grow:" + std::to_string(i);
    ASSERT_TRUE(set(4, key, "v" + std::to_string(i)));  // forwarded by the new member
    acked[key] = "v" + std::to_string(i);
  }
  for (const auto& [key, value] : acked) EXPECT_EQ(get(4, key), value) << key;
  // A founder restarted with its original command line (--peers without n4) dials n4: it
  // takes the address from the configuration in its log.
  const int restarted = cluster_->leader() == follower ? leader : follower;
  cluster_->stop(restarted);
  ASSERT_TRUE(cluster_->start(restarted).is_ok());
  EXPECT_TRUE(eventually([&] {
    return has(cluster_->info(restarted)["peer_4"], "addr=" + peer_addr(4) + ",connected=1");
  })) << cluster_->info(restarted)["peer_4"];

  // Leader transfer on demand: n4, the newest voter, takes over (no election timeout).
  from = Clock::now();
  Ran moved = member("transfer 4 --endpoints " + endpoints({1, 2, 3}));
  ASSERT_EQ(moved.exit_code, 0) << moved.output;
  EXPECT_TRUE(has(moved.output, "OK ")) << moved.output;
  EXPECT_TRUE(eventually([&] { return cluster_->leader() == 4; })) << cluster_->leader();
  writer.report("transfer", from, Clock::now());

  // Shrink: the leader leaves (it hands leadership over first; `synod member remove` waits for
  // that and asks again); its process is then stopped.
  const int leaving = cluster_->leader();
  ASSERT_NE(leaving, 0);
  from = Clock::now();
  Ran removed = member("remove " + std::to_string(leaving) + " --endpoints " + endpoints({4}));
  writer.report("remove", from, Clock::now());
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  std::set<int> voters = {1, 2, 3, 4};
  voters.erase(leaving);
  EXPECT_TRUE(eventually([&] { return configuration_is(voters); })) << list(leader);
  EXPECT_TRUE(writer.progresses()) << "writes stopped";
  writer.stop();
  acked.merge(writer.acked());
  cluster_->stop(leaving);
  // Three voters: one more failure (a non-leader) is tolerated.
  const int now_leading = cluster_->leader();
  ASSERT_NE(now_leading, 0);
  int victim = 0;
  for (int v : voters)
    if (v != now_leading) victim = v;
  cluster_->kill(victim, SIGKILL);
  for (int i = 0; i < 10; ++i) {
    const std::string key = "shrunk:" + std::to_string(i);
    EXPECT_TRUE(set(now_leading, key, "s")) << key;
    acked[key] = "s";
  }
  int survivor = 0;
  for (int v : voters)
    if (v != now_leading && v != victim) survivor = v;
  for (const auto& [key, value] : acked) EXPECT_EQ(get(survivor, key), value) << key;
}

// Replace a killed member's machine with a fresh one (a new data directory, a new id) while a
// client writes: one `synod member replace`, the new machine started with --join meanwhile.
// Afterwards the configuration has three voters again, the new one among them, and the cluster
// tolerates another failure: every acknowledged write reads back from the new member.
TEST_F(MemberE2E, ReplaceAKilledMachineWhileAClientWrites) {
  start();
  if (HasFatalFailure()) return;
  const int leader = cluster_->leader();
  const int dead = leader % 3 + 1;
  const int other = dead % 3 + 1;
  Writer writer({leader, other}, [this](int id, const std::string& k, const std::string& v) {
    return set(id, k, v);
  });
  EXPECT_TRUE(writer.progresses());
  cluster_->kill(dead, SIGKILL);
  std::filesystem::remove_all(cluster_->options().dir + "/n" + std::to_string(dead));
  EXPECT_TRUE(writer.progresses()) << "writes stopped";

  // docs/operations.md, "Replace a failed machine": add, start with --join, replace.
  const Writer::Clock::time_point changes_from = Writer::Clock::now();
  Ran added = member("add --peer-addr " + peer_addr(4) + " --endpoints " + endpoints({1, 2, 3}));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_TRUE(has(added.output, "added n4 ")) << added.output;
  ASSERT_TRUE(cluster_->start(4, {"--join"}).is_ok());
  Ran replaced = member("replace " + std::to_string(dead) + " " + peer_addr(4) +
                        " --catchup-ms 30000 --endpoints " + endpoints({1, 2, 3}));
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_TRUE(has(replaced.output, "OK epoch ") && has(replaced.output, " id 4"))
      << replaced.output;
  EXPECT_TRUE(eventually([&] { return configuration_is({leader, other, 4}); })) << list(leader);
  writer.report("replace (add + start --join + swap)", changes_from, Writer::Clock::now());
  EXPECT_TRUE(writer.progresses()) << "writes stopped";

  // Another failure: the founder that neither leads nor was replaced.
  cluster_->kill(other, SIGKILL);
  writer.stop();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(set(leader, "after:" + std::to_string(i), "a"));
  const auto acked = writer.acked();
  EXPECT_GT(acked.size(), 60u);
  for (const auto& [key, value] : acked) EXPECT_EQ(get(4, key), value) << key;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(get(4, "after:" + std::to_string(i)), "a");
}

// A machine joins while a member added after the founding leads, and the founders it could also
// learn from are gone (the shrink removed n1, n2's machine is lost): it replays the
// configurations from the first slot, and the founding one does not name the leader. It must
// still take the leader's connection and catch up (it once refused it, "node 4 is not a member
// of this cluster", and the replace of n2 never finished).
TEST_F(MemberE2E, AMachineJoinsWhileAMemberAddedLaterLeads) {
  start();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(set(cluster_->leader(), "before", "b"));
  // Writes throughout: many slots before the first change, so that a machine that joins later
  // catches up in several rounds and applies the founding configuration alone first.
  auto load = std::make_unique<process::Writers>(
      16, std::vector<uint16_t>{cluster_->client_port(3)}, "load:");
  ASSERT_TRUE(load->progresses(3000, 60000));
  Ran added = member("add --peer-addr " + peer_addr(4) + " --endpoints " + endpoints({1, 2, 3}));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  ASSERT_TRUE(cluster_->start(4, {"--join"}).is_ok());
  Ran promoted = member("promote 4 --timeout-ms 30000 --endpoints " + endpoints({1, 2, 3}));
  ASSERT_EQ(promoted.exit_code, 0) << promoted.output;
  Ran moved = member("transfer 4 --endpoints " + endpoints({1, 2, 3}));
  ASSERT_EQ(moved.exit_code, 0) << moved.output;
  ASSERT_TRUE(eventually([&] { return cluster_->leader() == 4; })) << cluster_->leader();
  Ran removed = member("remove 1 --endpoints " + endpoints({2, 3, 4}));
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  cluster_->stop(1);
  cluster_->kill(2, SIGKILL);

  added = member("add --peer-addr " + peer_addr(5) + " --endpoints " + endpoints({3, 4}));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_TRUE(has(added.output, "added n5 ")) << added.output;
  // Its --peers: the founders, n4 and itself (LocalCluster::peers_for).
  ASSERT_TRUE(cluster_->start(5, {"--join"}).is_ok());
  Ran replaced =
      member("replace 2 " + peer_addr(5) + " --catchup-ms 20000 --endpoints " + endpoints({3, 4}));
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_TRUE(load->progresses(20)) << "writes stopped";
  load->stop();
  EXPECT_TRUE(eventually([&] { return configuration_is({3, 4, 5}); })) << list(4);
  EXPECT_EQ(get(5, "before"), "b");
}

// A replace whose new machine never starts ends with a clear error within its bound, and leaves
// the cluster as it was but for the learner (which MEMBER REMOVE then drops).
TEST_F(MemberE2E, AReplaceWhoseMachineNeverStartsFailsClearly) {
  start();
  if (HasFatalFailure()) return;
  const int leader = cluster_->leader();
  const int old = leader % 3 + 1;
  Ran replaced = member("replace " + std::to_string(old) + " " + peer_addr(5) +
                        " --catchup-ms 2000 --endpoints " + endpoints({1, 2, 3}));
  EXPECT_EQ(replaced.exit_code, 1) << replaced.output;
  EXPECT_TRUE(has(replaced.output, "did not catch up within 2000 ms")) << replaced.output;
  EXPECT_TRUE(has(replaced.output, "MEMBER REMOVE 4")) << replaced.output;
  Ran removed = member("remove 4 --endpoints " + endpoints({1, 2, 3}));
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  EXPECT_TRUE(eventually([&] { return configuration_is({1, 2, 3}); })) << list(leader);
  EXPECT_TRUE(set(leader, "k", "v"));
}

}  // namespace
}  // namespace synod::tools
