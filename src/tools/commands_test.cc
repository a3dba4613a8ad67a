// The command line as a newcomer meets it, through the real binary: `synod server --config`,
// refusals of unusable numbers, `synod --version`, `synod local` and `synod demo`. Every wait is
// bounded and polls for what it needs; processes started here are stopped here.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "client/resp_client.h"
#include "process/local_cluster.h"
#include "process/writers.h"
#include "tools/e2e_support.h"

namespace synod::tools {

using process::LocalCluster;
namespace {

// Runs `synod ARGS` to completion (killed after `timeout_s`: exit code 124).
Ran run_synod(const std::string& args, int timeout_s = 20) {
  return run_shell("timeout " + std::to_string(timeout_s) + " " + SYNOD_BINARY + " " + args);
}

// `synod ARGS...` in the background, its output in `log`.
class Child {
 public:
  // With `typed_input`, its stdin is a pipe that type() writes lines into.
  Child(std::vector<std::string> args, std::string log, bool typed_input = false)
      : log_(std::move(log)) {
    args.insert(args.begin(), SYNOD_BINARY);
    int input[2] = {-1, -1};
    if (typed_input) {
      EXPECT_EQ(::pipe2(input, O_CLOEXEC), 0);
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      if (typed_input) ::dup2(input[0], STDIN_FILENO);
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (typed_input) {
      ::close(input[0]);
      input_ = input[1];
    }
  }
  // A line on its stdin, as if typed.
  void type(const std::string& line) const {
    const std::string text = line + "\n";
    EXPECT_EQ(::write(input_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  // SIGTERM first: `synod local` then stops the replicas it started, which SIGKILL would orphan.
  ~Child() {
    if (input_ >= 0) ::close(input_);
    if (pid_ <= 0 || wait_exit(0)) return;
    signal(SIGTERM);
    if (wait_exit(10000)) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  pid_t pid() const { return pid_; }
  // The exit code once it has exited (within `timeout_ms`); nullopt while it runs.
  std::optional<int> wait_exit(int timeout_ms) {
    eventually(
        [&] {
          int status = 0;
          if (!exit_code_ && ::waitpid(pid_, &status, WNOHANG) == pid_)
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          return exit_code_.has_value();
        },
        timeout_ms);
    return exit_code_;
  }
  std::string output() const { return slurp(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int input_ = -1;
  std::optional<int> exit_code_;
};

class Commands : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/synod-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(LocalCluster::pick_free_ports(3, client_port_, peer_port_).is_ok());
  }
  void TearDown() override {
    if (!HasFailure()) std::system(("rm -rf " + dir_).c_str());
  }

  std::string write_file(const std::string& name, const std::string& text) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // A 3-replica cluster of this binary in DIR/`name`, on the fixture's ports.
  LocalCluster::Options cluster_options(const std::string& name) const {
    LocalCluster::Options o;
    o.binary = SYNOD_BINARY;
    o.dir = dir_ + "/" + name;
    o.client_port = client_port_;
    o.peer_port = peer_port_;
    return o;
  }

  // Seeds a new 3-replica cluster (cluster id 9, in `fresh`, on new ports) from the backup
  // `file`, as docs/operations.md says, and starts it; null (and a test failure) if a restore or
  // the start fails.
  std::unique_ptr<LocalCluster> restore_new_cluster(const std::string& file,
                                                    LocalCluster::Options o,
                                                    const std::string& fresh) {
    for (int id = 1; id <= 3; ++id) {
      Ran restored = run_synod(fmt::format(
          "snapshot restore {} --data {}/n{} --id {} --cluster-id 9", file, fresh, id, id));
      if (restored.exit_code != 0) {
        ADD_FAILURE() << restored.output;
        return nullptr;
      }
    }
    o.dir = fresh;
    o.extra_args = {"--cluster-id", "9"};
    if (!LocalCluster::pick_free_ports(3, o.client_port, o.peer_port).is_ok()) {
      ADD_FAILURE() << "no free ports";
      return nullptr;
    }
    auto cluster = std::make_unique<LocalCluster>(o);
    if (!cluster->start_all().is_ok() || !cluster->wait_until_serving(15000).is_ok() ||
        !eventually([&] { return cluster->leader() != 0; })) {
      ADD_FAILURE() << "the restored cluster did not start: see " << fresh;
      return nullptr;
    }
    return cluster;
  }

  std::map<std::string, std::string> info(uint16_t port, const std::string& section) const {
    auto c = client::RespClient::connect("127.0.0.1", port, 500);
    if (!c.is_ok()) return {};
    c->set_timeout_ms(1000);
    auto r = c->call({"INFO", section});
    if (!r.is_ok() || r->kind != kv::Reply::Kind::kBulk) return {};
    return client::parse_info(r->text);
  }

  std::string dir_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
};

TEST_F(Commands, ServerTakesItsOptionsFromAConfigFileAndTheCommandLineWins) {
  const std::string config = write_file(
      "synod.toml", "[server]\nid = 1\npeers = \"1=127.0.0.1:" + std::to_string(peer_port_) +
                        "\"\nlisten = \"127.0.0.1:" + std::to_string(client_port_) +
                        "\"\ndata = \"" + dir_ + "/data\"\ncluster-id = 77\n" +
                        "fault-injection = true\nrequest-timeout-ms = 3000\n");
  // --cluster-id on the command line wins; everything else (listen above all) comes from the file.
  Child server({"server", "--config", config, "--cluster-id", "78"}, dir_ + "/server.log");
  std::map<std::string, std::string> fields;
  ASSERT_TRUE(eventually([&] {
    fields = info(client_port_, "replication");
    return fields["role"] == "leader";
  })) << server.output();
  EXPECT_EQ(fields["node_id"], "1");
  EXPECT_EQ(fields["cluster_id"], "78");
  EXPECT_EQ(info(client_port_, "server")["data_dir"], dir_ + "/data");
  auto c = client::RespClient::connect("127.0.0.1", client_port_, 500);
  ASSERT_TRUE(c.is_ok());
  c->set_timeout_ms(3000);
  auto fault = c->call({"SYNOD.FAULT", "CLEAR"});  // refused unless fault-injection was read
  ASSERT_TRUE(fault.is_ok());
  EXPECT_EQ(client::to_string(*fault), "OK");
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(10000), 0) << server.output();
}

// The same with the option names written with their section (`server.id = 1`) and as INI.
TEST_F(Commands, ServerConfigMayUseDottedKeysOrIni) {
  const std::string dotted = write_file(
      "dotted.toml", "server.id = 1\nserver.peers = \"1=127.0.0.1:" + std::to_string(peer_port_) +
                         "\"\nserver.listen = \"127.0.0.1:" + std::to_string(client_port_) +
                         "\"\nserver.data = \"" + dir_ + "/dotted\"\n");
  const std::string ini = write_file(
      "synod.ini", "[server]\nid=1\npeers=1=127.0.0.1:" + std::to_string(peer_port_ + 1) +
                       "\nlisten=127.0.0.1:" + std::to_string(client_port_ + 1) + "\ndata=" + dir_ +
                       "/ini\n");
  for (const auto& [config, port] :
       {std::pair{dotted, client_port_}, std::pair{ini, static_cast<uint16_t>(client_port_ + 1)}}) {
    Child server({"server", "--config", config}, dir_ + "/server.log");
    EXPECT_TRUE(eventually([&, port = port] {
      return info(port, "replication")["node_id"] == "1";
    })) << config
        << ": " << server.output();
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(10000), 0) << server.output();
  }
}

// The example in docs/ names only real options (every one of them is overridden here, so the run
// serves on loopback).
TEST_F(Commands, TheDocumentedExampleConfigIsAccepted) {
  Child server(
      {"server", "--config", std::string(SYNOD_SOURCE_DIR) + "/docs/synod-server.example.toml",
       "--id", "1", "--peers", "1=127.0.0.1:" + std::to_string(peer_port_), "--listen",
       "127.0.0.1:" + std::to_string(client_port_), "--data", dir_ + "/example"},
      dir_ + "/server.log");
  std::map<std::string, std::string> fields;
  EXPECT_TRUE(eventually([&] {
    fields = info(client_port_, "replication");
    return !fields.empty();
  })) << server.output();
  EXPECT_EQ(fields["cluster_id"], "42");
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(10000), 0) << server.output();
}

TEST_F(Commands, ConfigMistakesAreRefusedAsBadUsage) {
  const std::string base = "server --peers 1=127.0.0.1:" + std::to_string(peer_port_) + " --data " +
                           dir_ + "/d --listen 127.0.0.1:" + std::to_string(client_port_);
  Ran missing = run_synod(base + " --id 1 --config " + dir_ + "/no-such.toml");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("no-such.toml"), std::string::npos) << missing.output;
  // Keys outside a [server] section name no option of the top level: refused, with the fix.
  const std::string flat = write_file("flat.toml", "id = 1\n");
  Ran top_level = run_synod(base + " --config " + flat);
  EXPECT_EQ(top_level.exit_code, 2) << top_level.output;
  EXPECT_NE(top_level.output.find("[server]"), std::string::npos) << top_level.output;
  const std::string typo = write_file("typo.toml", "[server]\nid = 1\ntick = 5\n");
  Ran unknown = run_synod(base + " --config " + typo);
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("server.tick"), std::string::npos) << unknown.output;
}

// Each of these once started a replica (a zero tick spun a core at 100% for as long as it ran).
TEST_F(Commands, UnusableNumbersAreRefusedAsBadUsage) {
  const std::string base = "server --peers 1=127.0.0.1:" + std::to_string(peer_port_) + " --data " +
                           dir_ + "/d --listen 127.0.0.1:" + std::to_string(client_port_);
  for (const std::string flags :
       {"--id 0", "--id 1073741825", "--id 1 --tick-ms 0", "--id 1 --election-min-ticks 0",
        "--id 1 --election-min-ticks 40 --election-max-ticks 20", "--id 1 --heartbeat-ticks 0",
        "--id 1 --heartbeat-ticks 15", "--id 1 --request-timeout-ms 0", "--id 1 --max-clients 0",
        "--id 1 --tick-ms -5"}) {
    Ran r = run_synod(base + " " + flags, 5);
    EXPECT_EQ(r.exit_code, 2) << flags << ": " << r.output;
  }
}

TEST_F(Commands, VersionIsPrinted) {
  Ran r = run_synod("--version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "synod " SYNOD_VERSION "\n");
}

std::vector<std::string> local_args(const std::string& data, uint16_t port, uint16_t peer_port) {
  return {"local",
          "--data",
          data,
          "--port",
          std::to_string(port),
          "--peer-port",
          std::to_string(peer_port)};
}

// A --data whose parents do not exist yet is created, parents and all.
TEST_F(Commands, LocalCreatesItsDataDirectoryWithParents) {
  const std::string data = dir_ + "/not/yet/there";
  Child local(local_args(data, client_port_, peer_port_), dir_ + "/local.log");
  ASSERT_TRUE(eventually([&] { return local.output().find(" leads.") != std::string::npos; }))
      << local.output();
  struct stat st {};
  EXPECT_EQ(::stat((data + "/n1").c_str(), &st), 0);
  local.signal(SIGTERM);
  EXPECT_EQ(local.wait_exit(15000), 0) << local.output();
}

// Another cluster holds the client ports: the replicas started here cannot bind and exit, and
// `synod local` says so and exits 1, never reporting on the other cluster's leader.
TEST_F(Commands, LocalRefusesToReportOnAnotherClustersServers) {
  LocalCluster::Options o = cluster_options("other");
  LocalCluster other(o);
  ASSERT_TRUE(other.start_all().is_ok());
  ASSERT_TRUE(other.wait_until_serving(15000).is_ok());
  ASSERT_TRUE(eventually([&] { return other.leader() != 0; }));
  uint16_t unused = 0, free_peer_port = 0;  // free now that the other cluster holds its ports
  ASSERT_TRUE(LocalCluster::pick_free_ports(3, unused, free_peer_port).is_ok());
  Child local(local_args(dir_ + "/mine", client_port_, free_peer_port), dir_ + "/local.log");
  EXPECT_EQ(local.wait_exit(20000), 1) << local.output();
  EXPECT_NE(local.output().find("Address already in use"), std::string::npos) << local.output();
  EXPECT_EQ(local.output().find("leads"), std::string::npos) << local.output();
  EXPECT_NE(other.leader(), 0) << "the other cluster was disturbed";
}

TEST_F(Commands, LocalExitsWhenAReplicaCannotUseItsDirectory) {
  ASSERT_EQ(::mkdir((dir_ + "/data").c_str(), 0755), 0);
  write_file("data/n2", "a file where n2's directory should be");
  Child local(local_args(dir_ + "/data", client_port_, peer_port_), dir_ + "/local.log");
  EXPECT_EQ(local.wait_exit(20000), 1) << local.output();
  EXPECT_NE(local.output().find("n2 exited at start"), std::string::npos) << local.output();
}

std::string endpoints(uint16_t client_port, int replicas) {
  std::string out;
  for (int i = 0; i < replicas; ++i)
    out += (i ? "," : "") + fmt::format("127.0.0.1:{}", client_port + i);
  return out;
}

// `synod local` passes what follows -- to every server, and takes commands on stdin: a replica
// killed and restarted there is seen by `synod status` as unreachable, then healthy again; quit
// stops the cluster and exits 0.
TEST_F(Commands, LocalPassesServerOptionsAndTakesCommandsOnStdin) {
  std::vector<std::string> args = local_args(dir_ + "/data", client_port_, peer_port_);
  for (const char* a : {"--", "--max-command-bytes", "4096"}) args.push_back(a);
  Child local(args, dir_ + "/local.log", /*typed_input=*/true);
  ASSERT_TRUE(eventually([&] { return local.output().find(" leads.") != std::string::npos; }))
      << local.output();
  auto client = client::RespClient::connect("127.0.0.1", client_port_, 1000);
  ASSERT_TRUE(client.is_ok());
  auto refused = client->call({"SET", "big", std::string(8000, 'x')});
  ASSERT_TRUE(refused.is_ok());
  EXPECT_NE(refused->text.find("max-command-bytes"), std::string::npos) << refused->text;
  const std::string status = "status --endpoints " + endpoints(client_port_, 3);

  local.type("kill n2");
  ASSERT_TRUE(eventually([&] { return local.output().find("n2: kill done") != std::string::npos; }))
      << local.output();
  Ran down = run_synod(status);
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_NE(down.output.find(fmt::format("127.0.0.1:{}", client_port_ + 1)), std::string::npos);
  EXPECT_NE(down.output.find("unreachable"), std::string::npos) << down.output;

  local.type("restart 2");
  Ran up;
  EXPECT_TRUE(eventually([&] {
    up = run_synod(status);
    return up.exit_code == 0;
  })) << up.output;
  EXPECT_NE(up.output.find("cluster: healthy"), std::string::npos) << up.output;
  local.type("frobnicate 2");
  local.type("quit");
  EXPECT_EQ(local.wait_exit(15000), 0) << local.output();
  EXPECT_NE(local.output().find("unknown command: frobnicate 2"), std::string::npos);
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = 0; (at = text.find(part, at)) != std::string::npos; at += part.size()) ++n;
  return n;
}

// docs/operations.md's procedures with `synod local` (issue 17): grow 3 -> 4 -> 5 with its `add`
// and `synod member promote`, shrink back to 3 with `synod member remove` and `stop`, replace a
// killed member's machine with `add` and `synod member replace`, and add one with `synod member
// add` and `join N`; a client writes throughout, and every acknowledged write reads back from
// the newest machine. Restarted on the same data, `synod local` starts the added machines too.
TEST_F(Commands, LocalGrowsShrinksAndReplacesMachinesWithSynodMember) {
  ASSERT_TRUE(LocalCluster::pick_free_ports(8, client_port_, peer_port_).is_ok());
  const std::vector<std::string> args = local_args(dir_ + "/data", client_port_, peer_port_);
  auto local = std::make_unique<Child>(args, dir_ + "/local.log", /*typed_input=*/true);
  ASSERT_TRUE(eventually([&] { return local->output().find(" leads.") != std::string::npos; }))
      << local->output();
  auto port = [&](int id) { return static_cast<uint16_t>(client_port_ + id - 1); };
  auto peer = [&](int id) { return fmt::format("127.0.0.1:{}", peer_port_ + id - 1); };
  auto at = [&](std::vector<int> ids) {
    std::string out;
    for (int id : ids) out += (out.empty() ? "" : ",") + fmt::format("127.0.0.1:{}", port(id));
    return out;
  };
  auto member = [&](const std::string& rest) {
    return run_synod("member " + rest + " --endpoints " + at({1, 3}), 60);
  };
  // Waits for `text` in synod local's output after what it had printed before the command.
  auto typed = [&](const std::string& line, const std::string& text) {
    const size_t before = local->output().size();
    local->type(line);
    return eventually([&] { return local->output().find(text, before) != std::string::npos; });
  };
  process::Writers writer(1, {port(1), port(3)}, "w:");
  ASSERT_TRUE(writer.progresses(20));

  for (int id : {4, 5}) {  // grow 3 -> 4 -> 5
    ASSERT_TRUE(typed("add", fmt::format("n{} added as a learner and started: clients "
                                         "127.0.0.1:{}  peers {}",
                                         id, port(id), peer(id))))
        << local->output();
    EXPECT_NE(local->output().find(fmt::format("synod member promote {} ", id)), std::string::npos);
    Ran promoted = member(fmt::format("promote {} --timeout-ms 30000", id));
    ASSERT_EQ(promoted.exit_code, 0) << promoted.output;
    EXPECT_TRUE(writer.progresses(20)) << "writes stopped";
  }
  Ran listed = member("list");
  EXPECT_EQ(count(listed.output, "role=voter"), 5u) << listed.output;

  for (int id : {5, 4}) {  // shrink 5 -> 3
    Ran removed = member(fmt::format("remove {}", id));
    ASSERT_EQ(removed.exit_code, 0) << removed.output;
    ASSERT_TRUE(typed(fmt::format("stop {}", id), fmt::format("n{}: stop done", id)));
  }
  listed = member("list");
  EXPECT_EQ(count(listed.output, "role=voter"), 3u) << listed.output;
  EXPECT_TRUE(writer.progresses(20)) << "writes stopped";

  // Replace: n2's machine is lost; a new one (n6) is added and swapped in.
  ASSERT_TRUE(typed("kill 2", "n2: kill done"));
  ASSERT_TRUE(typed("add", "n6 added as a learner and started")) << local->output();
  Ran replaced = member("replace 2 " + peer(6) + " --catchup-ms 30000");
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_NE(replaced.output.find(" id 6"), std::string::npos) << replaced.output;
  listed = member("list");
  EXPECT_EQ(count(listed.output, "role=voter"), 3u) << listed.output;
  EXPECT_NE(listed.output.find("id=6 peer=" + peer(6)), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find("id=2 "), std::string::npos) << listed.output;

  // `synod member add` at the address `join` will use, then `join`.
  Ran added = member("add --peer-addr " + peer(7));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_NE(added.output.find("added n7 "), std::string::npos) << added.output;
  ASSERT_TRUE(typed("join 7", "n7: join done")) << local->output();
  Ran promoted = member("promote 7 --timeout-ms 30000");
  EXPECT_EQ(promoted.exit_code, 0) << promoted.output;
  EXPECT_TRUE(writer.progresses(20)) << "writes stopped";
  writer.stop();
  auto client = client::RespClient::connect("127.0.0.1", port(7), 1000);
  ASSERT_TRUE(client.is_ok());
  client->set_timeout_ms(5000);
  size_t lost = 0;
  for (const auto& [key, value] : writer.acked()) {
    auto r = client->call({"GET", key});
    if (!r.is_ok() || r->text != value) ++lost;
  }
  EXPECT_EQ(lost, 0u) << "of " << writer.acked().size();
  ASSERT_TRUE(typed("quit", "synod local: stopping"));
  EXPECT_EQ(local->wait_exit(15000), 0) << local->output();

  // The same command line again: the founders and the machines added later start from their
  // data (n2 and n4, n5 were removed: they start and take no part), and n6, n7 serve.
  local = std::make_unique<Child>(args, dir_ + "/local2.log", /*typed_input=*/true);
  ASSERT_TRUE(eventually([&] { return local->output().find(" leads.") != std::string::npos; }))
      << local->output();
  EXPECT_NE(local->output().find(fmt::format("n7  clients 127.0.0.1:{}", port(7))),
            std::string::npos)
      << local->output();
  auto again = client::RespClient::connect("127.0.0.1", port(6), 1000);
  ASSERT_TRUE(again.is_ok());
  again->set_timeout_ms(5000);
  auto set = again->call({"SET", "after-restart", "1"});
  ASSERT_TRUE(set.is_ok());
  EXPECT_EQ(set->text, "OK");
  local->type("quit");
  EXPECT_EQ(local->wait_exit(15000), 0) << local->output();
}

// `synod local --metrics-port P`: each replica serves its own /metrics (P, P+1, P+2), each
// naming itself; one --metrics-listen for every replica after -- is refused as bad usage.
TEST_F(Commands, LocalGivesEachReplicaItsOwnMetricsPort) {
  uint16_t ports = 0, peers = 0;
  ASSERT_TRUE(LocalCluster::pick_free_ports(6, ports, peers).is_ok());
  const uint16_t metrics = static_cast<uint16_t>(ports + 3);
  std::vector<std::string> args = local_args(dir_ + "/data", ports, peers);
  for (const std::string& a : {std::string("--metrics-port"), std::to_string(metrics)})
    args.push_back(a);
  Child local(args, dir_ + "/local.log");
  ASSERT_TRUE(eventually([&] { return local.output().find(" leads.") != std::string::npos; }))
      << local.output();
  EXPECT_NE(local.output().find(fmt::format("metrics: http://127.0.0.1:{}/metrics", metrics)),
            std::string::npos)
      << local.output();
  for (int id = 1; id <= 3; ++id) {
    const Ran scraped = run_shell(
        fmt::format("curl -sf http://127.0.0.1:{}/metrics | grep '^synod_info'", metrics + id - 1));
    EXPECT_EQ(scraped.exit_code, 0) << id << ": " << scraped.output;
    EXPECT_NE(scraped.output.find(fmt::format("node=\"{}\"", id)), std::string::npos)
        << scraped.output;
  }
  local.signal(SIGTERM);
  EXPECT_EQ(local.wait_exit(15000), 0) << local.output();

  std::vector<std::string> clash = local_args(dir_ + "/clash", client_port_, peer_port_);
  for (const char* a : {"--", "--metrics-listen", "127.0.0.1:9100"}) clash.push_back(a);
  Child refused(clash, dir_ + "/clash.log");
  EXPECT_EQ(refused.wait_exit(15000), 2) << refused.output();
  EXPECT_NE(refused.output().find("use --metrics-port P"), std::string::npos) << refused.output();
}

// `synod status`: exit 0 and a row per member for a healthy cluster; 1 with a paused follower
// (unreachable) and with no leader (two of three killed); 2 for an endpoint it cannot parse.
TEST_F(Commands, StatusTellsHealthyFromPausedAndLeaderless) {
  LocalCluster::Options o = cluster_options("cluster");
  LocalCluster cluster(o);
  ASSERT_TRUE(cluster.start_all().is_ok());
  ASSERT_TRUE(cluster.wait_until_serving(15000).is_ok());
  ASSERT_TRUE(eventually([&] { return cluster.leader() != 0; }));
  const std::string status = "status --timeout-ms 500 --endpoints " + endpoints(client_port_, 3);
  Ran healthy;
  ASSERT_TRUE(eventually([&] {
    healthy = run_synod(status);
    return healthy.exit_code == 0;
  })) << healthy.output;
  const int leader = cluster.leader();
  EXPECT_NE(healthy.output.find(fmt::format("n{} leads", leader)), std::string::npos)
      << healthy.output;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_NE(healthy.output.find(fmt::format("\nn{}  127.0.0.1:{}", i, cluster.client_port(i))),
              std::string::npos)
        << healthy.output;
  }

  const int follower = leader % 3 + 1;
  cluster.kill(follower, SIGSTOP);
  Ran paused = run_synod(status);
  cluster.kill(follower, SIGCONT);
  EXPECT_EQ(paused.exit_code, 1) << paused.output;
  EXPECT_NE(paused.output.find("unreachable: "), std::string::npos) << paused.output;
  EXPECT_NE(paused.output.find("cluster: UNHEALTHY: n"), std::string::npos) << paused.output;

  cluster.kill(leader, SIGKILL);
  cluster.kill(follower, SIGKILL);
  Ran leaderless = run_synod(status);
  EXPECT_EQ(leaderless.exit_code, 1) << leaderless.output;
  EXPECT_NE(leaderless.output.find("cluster: UNHEALTHY: no leader"), std::string::npos)
      << leaderless.output;

  EXPECT_EQ(run_synod("status --endpoints 127.0.0.1:notaport").exit_code, 2);
}

// An online backup under a write load, restored into a new 3-replica cluster (with a new cluster
// id), holds every write acknowledged before `synod snapshot save` started, checked key by key.
// A restore under the old cluster id, or from a damaged copy, is refused.
TEST_F(Commands, ABackupTakenUnderWritesRestoresEveryEarlierWriteIntoANewCluster) {
  LocalCluster::Options o = cluster_options("old");
  LocalCluster old_cluster(o);
  ASSERT_TRUE(old_cluster.start_all().is_ok());
  ASSERT_TRUE(old_cluster.wait_until_serving(15000).is_ok());
  ASSERT_TRUE(eventually([&] { return old_cluster.leader() != 0; }));

  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::vector<std::pair<int, Clock::time_point>> acked;  // write i, acknowledged at
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto c = client::RespClient::connect("127.0.0.1", old_cluster.client_port(2), 1000);
    if (!c.is_ok()) return;
    c->set_timeout_ms(6000);
    for (int i = 0; !stop; ++i) {
      auto r = c->call({"SET", fmt::format("w{}", i), fmt::format("v{}", i)});
      if (r.is_ok() && r->kind == kv::Reply::Kind::kSimple) {
        std::lock_guard<std::mutex> lock(mu);
        acked.emplace_back(i, Clock::now());
      }
    }
  });
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size() >= 200;
  }));
  const Clock::time_point started = Clock::now();
  const std::string file = dir_ + "/backup.snap";
  Ran saved =
      run_synod(fmt::format("snapshot save {} --endpoint 127.0.0.1:{}", file, client_port_), 60);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !acked.empty() && acked.back().second > Clock::now() - std::chrono::milliseconds(50) &&
           Clock::now() - started > std::chrono::milliseconds(300);
  }));
  stop = true;
  writer.join();
  ASSERT_EQ(saved.exit_code, 0) << saved.output;
  EXPECT_NE(saved.output.find("checksums verified"), std::string::npos) << saved.output;
  old_cluster.stop_all();

  std::vector<int> before;
  for (const auto& [i, at] : acked)
    if (at < started) before.push_back(i);
  ASSERT_GE(before.size(), 200u);

  const std::string fresh = dir_ + "/new";
  EXPECT_EQ(
      run_synod(fmt::format("snapshot restore {} --data {}/n1 --id 1 --cluster-id 1", file, fresh))
          .exit_code,
      2)
      << "a restore under the old cluster's id";
  std::string damaged = slurp(file);
  damaged[damaged.size() / 2] ^= 1;
  write_file("damaged.snap", damaged);
  Ran refused = run_synod(fmt::format(
      "snapshot restore {}/damaged.snap --data {}/n1 --id 1 --cluster-id 9", dir_, fresh));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("checksum"), std::string::npos) << refused.output;
  auto new_cluster = restore_new_cluster(file, o, fresh);
  ASSERT_NE(new_cluster, nullptr);
  EXPECT_EQ(new_cluster->info(1)["cluster_id"], "9");
  auto c = client::RespClient::connect("127.0.0.1", new_cluster->client_port(3), 1000);
  ASSERT_TRUE(c.is_ok());
  c->set_timeout_ms(6000);
  int missing = 0;
  for (int i : before) {
    auto r = c->call({"GET", fmt::format("w{}", i)});
    if (!r.is_ok() || r->kind != kv::Reply::Kind::kBulk || r->text != fmt::format("v{}", i))
      ++missing;
  }
  EXPECT_EQ(missing, 0) << "of " << before.size() << " writes acknowledged before the backup";
  auto after = c->call({"SET", "after-restore", "1"});
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ(after->text, "OK");
  new_cluster->stop_all();
}

// docs/operations.md, "After losing a majority": two of three replicas are lost for good, and the
// cluster can acknowledge nothing. The survivor (a follower, which learns of commits last) is
// stopped; `snapshot save --data` makes a backup of what its directory knows was chosen, and the
// backup seeds a new cluster that holds every write the survivor had applied and takes new ones.
TEST_F(Commands, AfterLosingAMajorityOneSurvivorsStateSeedsANewCluster) {
  LocalCluster::Options o = cluster_options("lost");
  LocalCluster old_cluster(o);
  ASSERT_TRUE(old_cluster.start_all().is_ok());
  ASSERT_TRUE(old_cluster.wait_until_serving(15000).is_ok());
  int leader = 0;
  ASSERT_TRUE(eventually([&] { return (leader = old_cluster.leader()) != 0; }));
  const int survivor = leader % 3 + 1;
  {
    auto c = client::RespClient::connect("127.0.0.1", old_cluster.client_port(leader), 1000);
    ASSERT_TRUE(c.is_ok());
    c->set_timeout_ms(6000);
    for (int i = 0; i < 300; ++i) {
      auto r = c->call({"SET", fmt::format("w{}", i), fmt::format("v{}", i)});
      ASSERT_TRUE(r.is_ok() && r->text == "OK") << i;
    }
  }
  const std::string leader_applied = old_cluster.info(leader)["applied_slot"];
  ASSERT_TRUE(
      eventually([&] { return old_cluster.info(survivor)["applied_slot"] == leader_applied; }));
  for (int id = 1; id <= 3; ++id)
    if (id != survivor) old_cluster.kill(id, SIGKILL);
  {
    auto c = client::RespClient::connect("127.0.0.1", old_cluster.client_port(survivor), 1000);
    ASSERT_TRUE(c.is_ok());
    c->set_timeout_ms(1500);
    auto r = c->call({"SET", "without-a-majority", "1"});
    EXPECT_FALSE(r.is_ok() && r->text == "OK") << "acknowledged by one replica of three";
  }
  old_cluster.stop(survivor);

  const std::string file = dir_ + "/survivor.snap";
  const std::string survivor_dir = o.dir + "/n" + std::to_string(survivor);
  Ran refused = run_synod(fmt::format("snapshot save {} --data {}", file, dir_), 30);
  EXPECT_EQ(refused.exit_code, 1) << "not a data directory: " << refused.output;
  // What it knows was chosen: it may have applied more than its disk says was chosen (a follower
  // learns a commit after it accepted, and need not sync that it learned it). With its accepted
  // values too: every write it had applied, whose values it accepted and synced before answering.
  Ran chosen = run_synod(fmt::format("snapshot save {}.chosen --data {}", file, survivor_dir), 60);
  ASSERT_EQ(chosen.exit_code, 0) << chosen.output;
  Ran saved = run_synod(
      fmt::format("snapshot save {} --data {} --include-accepted", file, survivor_dir), 60);
  ASSERT_EQ(saved.exit_code, 0) << saved.output;
  EXPECT_NE(saved.output.find("checksums verified"), std::string::npos) << saved.output;
  EXPECT_NE(saved.output.find(fmt::format("from n{}'s data directory", survivor)),
            std::string::npos)
      << saved.output;
  auto through = [](const std::string& out) {
    const size_t at = out.find("through slot ");
    return at == std::string::npos ? 0 : std::stoull(out.substr(at + 13));
  };
  EXPECT_GE(through(saved.output), through(chosen.output)) << chosen.output << saved.output;
  EXPECT_GE(through(chosen.output), 290u) << chosen.output;

  auto new_cluster = restore_new_cluster(file, o, dir_ + "/recovered");
  ASSERT_NE(new_cluster, nullptr);
  auto c = client::RespClient::connect("127.0.0.1", new_cluster->client_port(1), 1000);
  ASSERT_TRUE(c.is_ok());
  c->set_timeout_ms(6000);
  std::vector<int> missing;
  for (int i = 0; i < 300; ++i) {
    auto r = c->call({"GET", fmt::format("w{}", i)});
    if (!r.is_ok() || r->kind != kv::Reply::Kind::kBulk || r->text != fmt::format("v{}", i))
      missing.push_back(i);
  }
  EXPECT_TRUE(missing.empty()) << missing.size()
                               << " of 300 writes the survivor had applied, first w"
                               << missing.front() << "; " << saved.output;
  auto none = c->call({"EXISTS", "without-a-majority"});
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(none->integer, 0) << "a write no quorum accepted was applied";
  auto after = c->call({"SET", "after-recovery", "1"});
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ(after->text, "OK");
  new_cluster->stop_all();
}

// The demo says where its data goes and what becomes of it: a fresh directory (about 190 MB of
// preallocated log segments) is removed after a good run; it once stayed in /tmp unmentioned.
// Its failover line names what the milliseconds are measured from, and the writes after the
// failover go through a running replica (all acknowledged).
// The processes whose parent is `parent` (from /proc), and whether `pid` still runs (not gone,
// not a zombie left to an init that does not reap).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = slurp(entry.path().string() + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

bool runs(pid_t pid) {
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// Replicas run in process groups of their own, so a Ctrl-C at the terminal reaches only the
// command that started them. `synod chaos` (like demo and the benchmarks) used to die of it and
// leave its three replicas running, holding their ports; now they stop with it.
TEST_F(Commands, ChaosInterruptedStopsItsReplicas) {
  Child chaos({"chaos", "--duration", "60", "--faults", "partition", "--seed", "3"},
              dir_ + "/chaos.log");
  std::vector<pid_t> replicas;
  ASSERT_TRUE(eventually(
      [&] {
        replicas = children_of(chaos.pid());
        return replicas.size() >= 3;
      },
      20000))
      << chaos.output();
  chaos.signal(SIGINT);
  EXPECT_EQ(chaos.wait_exit(10000), 128 + SIGINT) << chaos.output();
  for (const pid_t replica : replicas)
    EXPECT_TRUE(eventually([&] { return !runs(replica); }, 10000)) << "replica " << replica;
}

TEST_F(Commands, DemoRemovesItsFreshDirectoryAndSaysWhatItMeasured) {
  Ran r = run_synod("demo", 120);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const size_t at = r.output.find("removed /tmp/synod-demo-");
  ASSERT_NE(at, std::string::npos) << r.output;
  const std::string dir = r.output.substr(at + 8, r.output.find(' ', at + 8) - at - 8);
  struct stat st {};
  EXPECT_NE(::stat(dir.c_str(), &st), 0) << dir << " is still there";
  EXPECT_NE(r.output.find("ms after the SIGKILL"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("== 100 more writes through follower n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("100 acknowledged, 0 failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("demo: 3 replicas, 401 writes acknowledged"), std::string::npos)
      << r.output;
  // It ends by replacing the old leader's machine with a new member while a client writes.
  EXPECT_NE(r.output.find("replacing it with a new machine, n4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("MEMBER REPLACE "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the longest gap between two acknowledged writes"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("every acknowledged key read back through n4: 0 lost"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("machine replaced by n4 in "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" 0 lost. OK"), std::string::npos) << r.output;
}

TEST_F(Commands, DemoKeepsADirectoryItWasGivenAndSaysHowBig) {
  Ran r = run_synod("demo --dir " + dir_ + "/demo", 120);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stay in " + dir_ + "/demo ("), std::string::npos) << r.output;
  // The machine that replaced the old leader's (whose directory the demo deletes: its disk was
  // lost) keeps its data there.
  struct stat st {};
  EXPECT_EQ(::stat((dir_ + "/demo/n4").c_str(), &st), 0);
}

}  // namespace
}  // namespace synod::tools
