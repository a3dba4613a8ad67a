// `synod bench members`: what clients see of each membership change (issue 17). It starts three
// `synod server` processes on 127.0.0.1 (room for two machines more), lets `--clients` clients
// write distinct keys throughout, and makes the changes of docs/operations.md one after another:
// add a learner (and start its machine with --join), promote it, remove a follower, hand
// leadership over, replace a killed member's machine with a new one, remove the leader. For each
// it prints how long the change took, the writes acknowledged meanwhile and the longest gap
// between two acknowledged writes, against the election timeout; at the end every acknowledged
// write is read back. bench/compare prints these rows beside etcd's member add.
#include "tools/bench_members_command.h"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/resp_client.h"
#include "node/server.h"
#include "process/local_cluster.h"
#include "process/writers.h"
#include "tools/member_command.h"

namespace synod::tools {
namespace {

using Clock = std::chrono::steady_clock;
using process::LocalCluster;
using process::Writers;

struct MembersArgs {
  int clients = 16;
  uint32_t settle_ms = 500;  // load alone before and after each change
  bool kv_line = false;
  bool keep = false;
};

struct Row {
  std::string change;
  Writers::Window window;
};

class MembersBench {
 public:
  MembersBench(const MembersArgs& args, LocalCluster& cluster)
      : args_(args), c_(cluster), voters_({1, 2, 3}) {
    options_.timeout_ms = 2000;
  }

  // Runs every change; false (said on stderr) at the first that fails.
  bool run() {
    writers_ = std::make_unique<Writers>(args_.clients, ports(voters_), "m:");
    if (!writers_->progresses(100)) return fail("the write load made no progress");
    const std::string p4 = peer(4), p5 = peer(5);
    const Clock::time_point grow_from = Clock::now();
    if (!change("add-learner (MEMBER ADD-LEARNER, then its machine started with --join)",
                [&] {
                  return member({"MEMBER", "ADD-LEARNER", p4, "4"}) && start_joined(4);
                },
                {1, 2, 3}, {4}))
      return false;
    if (!change("promote (once caught up)",
                [&] {
                  return member({"MEMBER", "PROMOTE", "4"});
                },
                {1, 2, 3, 4}))
      return false;
    rows_.push_back({"grow 3 -> 4 (from add-learner to promote done, pauses between included)",
                     writers_->measure(grow_from, Clock::now())});
    voters_.insert(4);
    const int follower = a_founder_that_follows();
    std::set<int> expected = {1, 2, 3, 4};
    expected.erase(follower);
    if (!change(
            "remove (a follower)",
            [&] {
              drop(follower);
              return member({"MEMBER", "REMOVE", std::to_string(follower)});
            },
            expected))
      return false;
    c_.stop(follower);
    if (!change(
            "leader transfer (MEMBER TRANSFER)",
            [&] {
              const int before = c_.leader();
              return member({"MEMBER", "TRANSFER"}) && wait([&] {
                       const int now = c_.leader();
                       return now != 0 && now != before;
                     });
            },
            expected))
      return false;
    // The replace of docs/operations.md: a member's machine is lost; a new one is added as a
    // learner, started with --join, and swapped for it in one change.
    const int dead = a_founder_that_follows();
    drop(dead);
    c_.kill(dead, SIGKILL);
    settle();
    expected.erase(dead);
    expected.insert(5);
    if (!change(
            "replace (a killed member's machine: add, start --join, swap)",
            [&] {
              return member({"MEMBER", "ADD-LEARNER", p5, "5"}) && start_joined(5) &&
                     member({"MEMBER", "REPLACE", std::to_string(dead), p5, "30000"}, 40000);
            },
            expected))
      return false;
    voters_.insert(5);
    const int leader = c_.leader();
    expected.erase(leader);
    if (!change(
            "remove (the leader: it hands leadership over first)",
            [&] {
              drop(leader);
              return member({"MEMBER", "REMOVE", std::to_string(leader)});
            },
            expected))
      return false;
    writers_->stop();
    return read_back();
  }

  void print() const {
    const node::Server::Options defaults;
    const uint32_t min_ms = defaults.tick_ms * defaults.election_timeout_min_ticks;
    const uint32_t max_ms = defaults.tick_ms * defaults.election_timeout_max_ticks;
    if (!args_.kv_line)
      fmt::print(
          "bench members: {} clients writing throughout, 3 voters at first; election timeout "
          "{}-{} ms\n{:<70} {:>8} {:>8} {:>14} {:>18}\n",
          args_.clients, min_ms, max_ms, "change", "took ms", "writes", "longest gap ms",
          "gap / election to");
    for (const Row& r : rows_) {
      const double ratio = static_cast<double>(r.window.longest_gap_ms) / min_ms;
      if (args_.kv_line)
        fmt::print(
            "change=\"{}\" took_ms={} writes={} gap_max_ms={} election_timeout_ms={}-{} "
            "gap_per_election_timeout={:.2f}\n",
            r.change, r.window.took_ms, r.window.writes, r.window.longest_gap_ms, min_ms, max_ms,
            ratio);
      else
        fmt::print("{:<70} {:>8} {:>8} {:>14} {:>18.2f}\n", r.change, r.window.took_ms,
                   r.window.writes, r.window.longest_gap_ms, ratio);
    }
    fmt::print("{}writes_acknowledged={} writes_failed={} lost={}\n", args_.kv_line ? "" : "\n",
               acknowledged_, failed_, lost_);
  }

  bool fail(const std::string& why) {
    fmt::print(stderr, "synod bench members: {} (logs in {})\n", why, c_.options().dir);
    return false;
  }

 private:
  std::vector<uint16_t> ports(const std::set<int>& ids) const {
    std::vector<uint16_t> out;
    for (int id : ids) out.push_back(c_.client_port(id));
    return out;
  }
  std::string peer(int id) const { return fmt::format("127.0.0.1:{}", c_.peer_port(id)); }
  // The clients stop writing through `id` before it leaves: what is measured is the cluster's
  // doing, not a client's dialling of a member that is gone.
  void drop(int id) {
    voters_.erase(id);
    writers_->set_ports(ports(voters_));
  }
  int a_founder_that_follows() const {
    const int leader = c_.leader();
    for (int id : voters_)
      if (id != leader && id <= 3) return id;
    return 0;
  }
  template <typename Pred>
  static bool wait(Pred pred, int timeout_ms = 15000) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  void settle() const { std::this_thread::sleep_for(std::chrono::milliseconds(args_.settle_ms)); }

  bool member(const std::vector<std::string>& command, uint32_t timeout_ms = 30000) {
    std::vector<net::Endpoint> endpoints;
    for (int id : voters_) endpoints.push_back({"127.0.0.1", c_.client_port(id)});
    auto reply = call_any(endpoints, options_, command, timeout_ms);
    if (reply.is_ok() && reply->kind != kv::Reply::Kind::kError) return true;
    return fail(fmt::format("{}: {}", fmt::join(command, " "),
                            reply.is_ok() ? reply->text : reply.status().to_string()));
  }
  bool start_joined(int id) {
    c_.grow_to(id);
    if (!c_.start(id, {"--join"}).is_ok()) return fail(fmt::format("n{} did not start", id));
    if (!wait([&] { return !c_.info(id, "server").empty() || c_.exited(id); }) || c_.exited(id))
      return fail(fmt::format("n{} did not serve (log: {})", id, c_.log_path(id)));
    return true;
  }

  // The leader's MEMBER LIST has exactly these voters and learners.
  bool configuration_is(const std::set<int>& voters, const std::set<int>& learners) const {
    const int leader = c_.leader();
    if (leader == 0) return false;
    auto c = client::RespClient::connect("127.0.0.1", c_.client_port(leader), 1000);
    if (!c.is_ok()) return false;
    c->set_timeout_ms(2000);
    auto listed = c->call({"MEMBER", "LIST"});
    if (!listed.is_ok() || listed->kind != kv::Reply::Kind::kArray) return false;
    std::set<int> v, l;
    for (const kv::Reply& line : listed->elements) {
      if (!line.text.starts_with("id=")) continue;
      (line.text.find(" role=voter ") != std::string::npos ? v : l)
          .insert(std::atoi(line.text.c_str() + 3));
    }
    return v == voters && l == learners;
  }

  // One change between two quiet stretches; its window is the change alone. Afterwards the
  // configuration must be the one expected.
  bool change(const std::string& name, const std::function<bool()>& make,
              const std::set<int>& voters, const std::set<int>& learners = {}) {
    settle();
    const Clock::time_point from = Clock::now();
    if (!make()) return false;
    const Clock::time_point to = Clock::now();
    // A stall still going on at `to` ends with the next acknowledgements: wait for them, or the
    // gap that straddles `to` would go uncounted.
    if (!writers_->progresses(20)) return fail("writes stopped after " + name);
    rows_.push_back({name, writers_->measure(from, to)});
    if (!wait([&] { return configuration_is(voters, learners); }))
      return fail(fmt::format("after {}: the configuration is not voters {{{}}} learners {{{}}}",
                              name, fmt::join(voters, ","), fmt::join(learners, ",")));
    settle();
    if (!writers_->progresses(20)) return fail("writes stopped after " + name);
    return true;
  }

  // Every acknowledged write, read back through a voter.
  bool read_back() {
    const auto acked = writers_->acked();
    acknowledged_ = acked.size();
    failed_ = writers_->failed();
    auto client = client::RespClient::connect("127.0.0.1", c_.client_port(*voters_.begin()), 2000);
    if (!client.is_ok()) return fail("cannot read back: " + client.status().to_string());
    client->set_timeout_ms(10000);
    std::vector<std::vector<std::string>> batch;
    std::vector<std::string> expected;
    auto flush = [&] {
      auto replies = client->pipeline(batch);
      for (size_t i = 0; i < batch.size(); ++i)
        if (!replies.is_ok() || (*replies)[i].text != expected[i]) ++lost_;
      batch.clear();
      expected.clear();
    };
    for (const auto& [key, value] : acked) {
      batch.push_back({"GET", key});
      expected.push_back(value);
      if (batch.size() == 500) flush();
    }
    if (!batch.empty()) flush();
    return lost_ == 0 || fail(fmt::format("{} acknowledged writes lost", lost_));
  }

  const MembersArgs& args_;
  LocalCluster& c_;
  client::ClientOptions options_;
  std::set<int> voters_;  // the members the clients write through and changes go to
  std::unique_ptr<Writers> writers_;
  std::vector<Row> rows_;
  size_t acknowledged_ = 0, failed_ = 0, lost_ = 0;
};

int run_members(const MembersArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  std::string dir =
      (std::filesystem::temp_directory_path() / "synod-bench-members-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    fmt::print(stderr, "synod bench members: cannot create a temporary directory\n");
    return 2;
  }
  LocalCluster::Options o;
  o.binary = process::self_executable();
  o.dir = dir;
  o.replicas = 5;
  o.founders = 3;
  if (Status s = LocalCluster::pick_free_ports(5, o.client_port, o.peer_port); !s.is_ok()) {
    fmt::print(stderr, "synod bench members: {}\n", s.to_string());
    return 2;
  }
  bool ok = false;
  {
    LocalCluster cluster(o);
    MembersBench bench(args, cluster);
    Status started = cluster.start_all();
    if (started.is_ok()) started = cluster.wait_until_serving(15000);
    if (!started.is_ok()) {
      bench.fail(started.to_string());
    } else {
      const auto deadline = Clock::now() + std::chrono::seconds(15);
      while (cluster.leader() == 0 && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ok = cluster.leader() != 0 ? bench.run() : bench.fail("no leader within 15 s");
      bench.print();
    }
  }  // ~LocalCluster stops every replica
  std::error_code ec;
  if (ok && !args.keep) std::filesystem::remove_all(dir, ec);
  return ok ? 0 : 1;
}

}  // namespace

void add_bench_members_command(CLI::App& bench, int& exit_code) {
  auto args = std::make_shared<MembersArgs>();
  CLI::App* cmd = bench.add_subcommand(
      "members",
      "membership changes (add-learner, promote, remove, leader transfer, replace) on a local "
      "3-replica cluster under a write load: the longest gap between acknowledged writes "
      "during each, against the election timeout");
  cmd->add_option("--clients", args->clients, "clients writing throughout (1..1024)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--settle-ms", args->settle_ms, "load alone before and after each change")
      ->check(CLI::Range(0u, 60000u))
      ->capture_default_str();
  cmd->add_flag("--kv", args->kv_line, "one line of key=value pairs per change (for scripts)");
  cmd->add_flag("--keep", args->keep, "keep the replicas' data and logs");
  cmd->callback([args, &exit_code] { exit_code = run_members(*args); });
}

}  // namespace synod::tools
