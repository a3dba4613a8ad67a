// `synod server`, `synod local` and `synod demo`.
#include "tools/server_commands.h"

#include <fmt/core.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <asio.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "base/log.h"
#include "client/resp_client.h"
#include "node/server.h"
#include "process/local_cluster.h"
#include "process/writers.h"
#include "tools/member_command.h"
#include "tools/status_command.h"

namespace synod::tools {

using process::last_line;
using process::LocalCluster;
using process::self_executable;

namespace {

using Clock = std::chrono::steady_clock;

uint64_t ms_since(Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

int run_server(const node::Server::Options& options) {
  asio::io_context io(1);
  auto server = node::Server::create(io, options);
  // In the log's format (a JSON log stays JSON lines to its end).
  auto refuse = [](const Status& s) {
    logging::write(logging::Level::kError, "start_failed", "synod server: " + s.to_string());
    return 2;
  };
  if (!server.is_ok()) return refuse(server.status());
  if (Status s = (*server)->start(); !s.is_ok()) return refuse(s);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int sig) {
    if (ec) return;
    logging::write(logging::Level::kInfo, "stopping", fmt::format("stopping on signal {}", sig));
    // A leader hands over first (bounded by an election timeout): a rolling restart then costs
    // no election timeout.
    (*server)->stop_after_handover([&io] { io.stop(); });
  });
  // SIGHUP reloads the TLS files (rotated certificates); the server logs the outcome.
  asio::signal_set hangup(io, SIGHUP);
  std::function<void(const asio::error_code&, int)> on_hangup = [&](const asio::error_code& ec,
                                                                    int) {
    if (ec) return;
    if (!options.tls.enabled())
      fmt::print(stderr, "n{} SIGHUP: no TLS to reload\n", options.id.value);
    else
      (void)(*server)->reload_tls();  // logged either way
    hangup.async_wait(on_hangup);
  };
  hangup.async_wait(on_hangup);
  ::signal(SIGPIPE, SIG_IGN);
  io.run();
  return (*server)->fatal().is_ok() ? 0 : 1;
}

// Cross-field limits CLI11's per-option checks cannot express; "" when the timing is usable.
std::string timing_problem(const node::Server::Options& o) {
  if (o.election_timeout_min_ticks > o.election_timeout_max_ticks)
    return fmt::format("--election-min-ticks {} is above --election-max-ticks {}",
                       o.election_timeout_min_ticks, o.election_timeout_max_ticks);
  // A leader that heartbeats no faster than the shortest election timeout is deposed by its own
  // followers over and over.
  if (o.heartbeat_interval_ticks >= o.election_timeout_min_ticks)
    return fmt::format("--heartbeat-ticks {} must be below --election-min-ticks {}",
                       o.heartbeat_interval_ticks, o.election_timeout_min_ticks);
  // A lease that a heartbeat cannot renew before it runs out serves nothing.
  if (o.lease_reads) {
    paxos::Config config;
    config.election_timeout_min_ticks = o.election_timeout_min_ticks;
    const uint64_t lease_ms = config.max_read_lease_ms(o.tick_ms, node::kClockDriftBound);
    if (lease_ms <= uint64_t(o.heartbeat_interval_ticks) * o.tick_ms)
      return fmt::format(
          "--lease-reads: the lease ({} ms) must outlast a heartbeat ({} ms): raise "
          "--election-min-ticks",
          lease_ms, uint64_t(o.heartbeat_interval_ticks) * o.tick_ms);
  }
  return "";
}

void add_server(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("server", "run one replica of the key-value service");
  cmd->footer(
      "Every option may instead come from a TOML/INI file: synod server --config FILE, the "
      "options in a [server] section without their dashes (id = 2, peers = \"1=...\"); the command "
      "line wins over the file. Example: docs/synod-server.example.toml");
  auto o = std::make_shared<node::Server::Options>();
  auto id = std::make_shared<uint32_t>(0);
  auto peers = std::make_shared<std::string>();
  auto listen = std::make_shared<std::string>("127.0.0.1:6379");
  cmd->add_option("--id", *id,
                  "this replica's id (1.." + std::to_string(kMaxNodeIdValue) +
                      "), as in --peers; never reused after its machine leaves the cluster")
      ->required()
      ->check(CLI::Range(uint32_t{1}, kMaxNodeIdValue));
  cmd->add_option("--peers", *peers,
                  "every replica's peer address: 1=HOST:PORT,2=HOST:PORT,... (this one included)")
      ->required();
  cmd->add_option("--listen", *listen,
                  "address for plaintext clients (RESP); none: no plaintext port")
      ->capture_default_str();
  auto tls_listen = std::make_shared<std::string>();
  auto tls_auth_clients = std::make_shared<std::string>("yes");
  cmd->add_option("--tls-listen", *tls_listen,
                  "address for TLS clients, as Redis's tls-port (needs --tls-cert-file); "
                  "plaintext there is refused");
  cmd->add_option("--tls-cert-file", o->tls.cert_file,
                  "PEM certificate (chain) of this replica; with it the peer port speaks only "
                  "mutual TLS, and the certificate must name this node as a subjectAltName URI "
                  "synod://node/<id>. SIGHUP reloads the TLS files");
  cmd->add_option("--tls-key-file", o->tls.key_file, "PEM private key of --tls-cert-file");
  cmd->add_option("--tls-ca-cert-file", o->tls.ca_cert_file,
                  "PEM CA that peers' and clients' certificates must chain to");
  cmd->add_option("--tls-auth-clients", *tls_auth_clients,
                  "yes: TLS clients need a certificate from the CA; optional: checked if given; "
                  "no: not asked for")
      ->check(CLI::IsMember({"yes", "no", "optional"}))
      ->capture_default_str();
  cmd->add_option("--handshake-timeout-ms", o->handshake_timeout_ms,
                  "a TLS client's handshake, and a peer connection's TLS handshake and Hello, "
                  "must finish within this or the connection is closed (0: no bound)")
      ->capture_default_str();
  cmd->add_option("--data", o->data_dir, "data directory (write-ahead log and snapshots)")
      ->required();
  auto initial_state = std::make_shared<std::string>("new");
  auto initial_state_option =
      cmd->add_option("--initial-cluster-state", *initial_state,
                      "new: this replica founds a new cluster and may initialize an empty --data "
                      "directory; existing: it is a member of a running cluster, and an empty or "
                      "missing --data means its data is lost, so it refuses to start (remove the "
                      "member and add the machine as a new one, or synod member replace). A "
                      "directory that holds data starts as before either way")
          ->check(CLI::IsMember({"new", "existing"}))
          ->capture_default_str();
  auto join = std::make_shared<bool>(false);
  cmd->add_flag("--join", *join,
                "this replica is a member just added to a running cluster (synod member add): "
                "it may initialize an empty --data directory (implies --initial-cluster-state "
                "existing)");
  cmd->add_option("--cluster-id", o->cluster_id,
                  "cluster id: peers and data of another cluster are refused")
      ->capture_default_str();
  // Bounds: a zero tick busy-loops the event loop; the upper ends only catch typos (a minute of
  // tick, an hour of request timeout).
  cmd->add_option("--tick-ms", o->tick_ms, "length of one logical tick (1..60000)")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  cmd->add_option("--election-min-ticks", o->election_timeout_min_ticks,
                  "a follower that hears no leader for a random number of ticks in [min, max] "
                  "starts an election (2..100000; above --heartbeat-ticks)")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  cmd->add_option("--election-max-ticks", o->election_timeout_max_ticks,
                  "(2..100000; at least --election-min-ticks)")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  cmd->add_option("--heartbeat-ticks", o->heartbeat_interval_ticks,
                  "ticks between the leader's heartbeats (1..; below --election-min-ticks)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_flag("--lease-reads", o->lease_reads,
                "serve linearizable reads on the leader without a confirmation round while its "
                "lease holds (about (election-min-ticks - 1) ticks; assumes every replica's "
                "monotonic clock keeps its rate within 0.1% of real time: docs/core.md, \"Lease "
                "reads\")");
  cmd->add_option("--request-timeout-ms", o->request_timeout_ms,
                  "how long a client's command is retried inside the cluster before UNKNOWN or "
                  "TRYAGAIN (10..3600000)")
      ->check(CLI::Range(10, 3600000))
      ->capture_default_str();
  cmd->add_option("--snapshot-every", o->snapshot_every_slots,
                  "applied slots between snapshots (0: none by slots; see --snapshot-log-bytes)")
      ->capture_default_str();
  cmd->add_option("--snapshot-log-bytes", o->snapshot_log_bytes,
                  "also snapshot once the commands applied since the last snapshot add up to this "
                  "many bytes and to the last snapshot's size (0: by slots only); bounds the log "
                  "each replica holds in memory")
      ->capture_default_str();
  cmd->add_option("--log-memory-bytes", o->log_memory_bytes,
                  "chosen values applied since the last snapshot kept in memory, newest first; "
                  "older ones are read back from the write-ahead log to serve lagging peers")
      ->capture_default_str();
  cmd->add_option("--max-clients", o->max_clients, "client connections at once (1..1000000)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-sessions", o->max_sessions,
                  "exactly-once sessions the state machine keeps (the least recently used in log "
                  "order leaves first); the same on every replica, for the cluster's whole life")
      ->capture_default_str();
  cmd->add_option("--client-query-buffer-limit", o->client_query_buffer_bytes,
                  "bytes of one client request; a client that sends more is disconnected")
      ->capture_default_str();
  cmd->add_option("--client-output-soft-limit", o->client_output_soft_bytes,
                  "replies queued for a client above which its next requests are not read")
      ->capture_default_str();
  cmd->add_option("--client-output-hard-limit", o->client_output_hard_bytes,
                  "replies queued for a client above which it is disconnected")
      ->capture_default_str();
  cmd->add_option("--max-command-bytes", o->max_command_bytes,
                  "the largest command a client may send, in bytes as the log stores it (its "
                  "arguments plus 4 bytes each and 28); a larger one is refused with an error. "
                  "Peer frames, send queues and the pipeline window are sized from it")
      ->capture_default_str();
  cmd->add_flag("!--sync-on-loop", o->sync_thread,
                "run fdatasync on the event-loop thread instead of a thread of its own "
                "(slower; for comparison)");
  cmd->add_flag("!--forward-reads", o->follower_reads,
                "a follower forwards each read to the leader instead of serving it by a read "
                "index (slower; for comparison)");
  cmd->add_flag("--fault-injection", o->fault_injection,
                "accept SYNOD.FAULT BLOCK/CLEAR/CLOCK (partitions and clock faults, for tests)");
  cmd->add_option("--requirepass", o->requirepass,
                  "clients must AUTH with this password (the default user's, as Redis's "
                  "requirepass); better in the config file than on a command line others can read");
  cmd->add_option("--aclfile", o->aclfile,
                  "a file of ACL users, one 'user NAME on #<SHA-256 of the password> ~* +@read' a "
                  "line, as Redis's aclfile (docs/operations.md, Users and permissions)");
  cmd->add_option("--user", o->users,
                  "an ACL user on the command line, in Redis's rule syntax: \"NAME on #<SHA-256 of "
                  "the password> ~* +@read\" (repeat for more; in a config file '#' starts a "
                  "comment, so users go in --aclfile)");
  auto metrics_listen = std::make_shared<std::string>();
  cmd->add_option("--metrics-listen", *metrics_listen,
                  "HOST:PORT to serve GET /metrics (Prometheus) and /health on; off if unset");
  auto log_format = std::make_shared<std::string>("text");
  cmd->add_option("--log-format", *log_format, "log lines as text or json (JSON lines)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  auto log_level = std::make_shared<std::string>("info");
  cmd->add_option("--log-level", *log_level, "least severe log lines written")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  cmd->add_option("--planted-bug", o->planted_bug,
                  fmt::format("deliberately break the server ({}), to show that the fault "
                              "harness catches it; never in production",
                              fmt::join(node::Server::planted_bug_names(), " | ")));
  cmd->callback([=, &exit_code] {
    node::Server::Options options = *o;
    options.id = NodeId{*id};
    auto parsed = node::parse_peers(*peers);
    // "none": no plaintext client port (port 0), for a replica that serves only --tls-listen.
    auto endpoint =
        *listen == "none" ? Result<net::Endpoint>(net::Endpoint{}) : net::parse_endpoint(*listen);
    auto tls_endpoint = tls_listen->empty() ? Result<net::Endpoint>(net::Endpoint{})
                                            : net::parse_endpoint(*tls_listen);
    auto auth = net::parse_client_auth(*tls_auth_clients);
    for (const Status& s :
         {parsed.status(), endpoint.status(), tls_endpoint.status(), auth.status()}) {
      if (s.is_ok()) continue;
      fmt::print(stderr, "synod server: {}\n", s.to_string());
      exit_code = 2;
      return;
    }
    if (*join && initial_state_option->count() > 0 && *initial_state == "new") {
      fmt::print(stderr,
                 "synod server: --join is for a member added to an existing cluster, not with "
                 "--initial-cluster-state new\n");
      exit_code = 2;
      return;
    }
    options.initial_cluster_state = *join ? storage::InitialClusterState::kJoin
                                    : *initial_state == "new"
                                        ? storage::InitialClusterState::kNew
                                        : storage::InitialClusterState::kExisting;
    options.tls_listen = *tls_endpoint;
    options.tls.auth_clients = *auth;
    if (options.tls.enabled() != !options.tls.key_file.empty()) {
      fmt::print(stderr, "synod server: --tls-cert-file and --tls-key-file go together\n");
      exit_code = 2;
      return;
    }
    if (const std::string problem = timing_problem(options); !problem.empty()) {
      fmt::print(stderr, "synod server: {}\n", problem);
      exit_code = 2;
      return;
    }
    options.peers = *parsed;
    options.listen = *endpoint;
    if (!metrics_listen->empty()) {
      auto metrics = net::parse_endpoint(*metrics_listen);
      if (!metrics.is_ok()) {
        fmt::print(stderr, "synod server: --metrics-listen: {}\n", metrics.status().to_string());
        exit_code = 2;
        return;
      }
      options.metrics_listen = *metrics;
    }
    logging::configure(*logging::parse_format(*log_format), *logging::parse_level(*log_level),
                       options.id.value);
    exit_code = run_server(options);
  });
}

// A blocking client call that retries connecting; for the demo's narration.
Result<kv::Reply> call(uint16_t port, const std::vector<std::string>& args, uint32_t timeout_ms) {
  auto c = client::RespClient::connect("127.0.0.1", port, 500);
  if (!c.is_ok()) return c.status();
  c->set_timeout_ms(timeout_ms);
  return c->call(args);
}

int wait_for_leader(const LocalCluster& c, uint32_t timeout_ms) {
  const auto start = Clock::now();
  while (ms_since(start) < timeout_ms) {
    if (int l = c.leader()) return l;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) {
  g_stop = 1;
}

// Runs the cluster in the foreground until Ctrl-C (0) or until every replica has exited (1).
bool none_running(const LocalCluster& cluster) {
  for (int i = 1; i <= cluster.replicas(); ++i)
    if (cluster.running(i)) return false;
  return true;
}

// `synod local`'s interactive control: one command per line on stdin, to take replicas down and
// bring them back while the cluster runs (the operator's guide uses it to rehearse failures).
// Once a command has changed a replica, replicas being down is the operator's doing, and
// `synod local` keeps running until Ctrl-C or `quit`.
class LocalControl {
 public:
  explicit LocalControl(LocalCluster& cluster) : cluster_(cluster) {}
  bool quit() const { return quit_; }
  bool commanded() const { return commanded_; }

  // Waits up to `timeout_ms` for input and runs each whole line that arrived.
  void poll_stdin(int timeout_ms) {
    if (eof_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
      return;
    }
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0) return;
    char buf[4096];
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n <= 0) {
      eof_ = true;  // no more commands (stdin closed or /dev/null): run until a signal
      return;
    }
    pending_.append(buf, static_cast<size_t>(n));
    if (pending_.size() > 4096 && pending_.find('\n') == std::string::npos) pending_.clear();
    for (size_t nl; (nl = pending_.find('\n')) != std::string::npos;) {
      const std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      run(line);
    }
  }

 private:
  void run(const std::string& line) {
    std::vector<std::string> words;
    for (size_t i = 0; i < line.size();) {
      const size_t start = line.find_first_not_of(" \t\r", i);
      if (start == std::string::npos) break;
      const size_t end = std::min(line.find_first_of(" \t\r", start), line.size());
      words.push_back(line.substr(start, end - start));
      i = end;
    }
    if (words.empty()) return;
    const std::string& verb = words[0];
    if (verb == "quit" || verb == "exit") {
      quit_ = true;
    } else if (verb == "help") {
      fmt::print(
          "kill N     SIGKILL replica N (a crash)\n"
          "stop N     stop replica N cleanly (SIGTERM)\n"
          "start N    start replica N again, from its data directory\n"
          "restart N  stop, then start\n"
          "pause N    SIGSTOP replica N (a hung process)\n"
          "resume N   SIGCONT replica N\n"
          "add        a new machine: MEMBER ADD-LEARNER with a fresh id and ports, then start it\n"
          "           with --join; then synod member promote (grow) or replace (swap) with it\n"
          "join N     start machine N with --join and an empty directory, on its ports, after\n"
          "           synod member add --peer-addr <its peer address> answered id N\n"
          "status     the table of `synod status` for the running replicas\n"
          "quit       stop every replica and exit\n");
    } else if (verb == "status") {
      client::ClientOptions options;
      options.timeout_ms = 1000;
      print_cluster_status(running_endpoints(), options);
    } else if (verb == "add" && words.size() == 1) {
      if (add_machine()) commanded_ = true;
    } else if (words.size() == 2 &&
               (verb == "kill" || verb == "stop" || verb == "start" || verb == "restart" ||
                verb == "pause" || verb == "resume" || verb == "join")) {
      if (replica_command(verb, words[1])) commanded_ = true;
    } else {
      fmt::print("unknown command: {} (help lists them)\n", line);
    }
    std::fflush(stdout);
  }

  // The client addresses of the replicas running now.
  std::vector<net::Endpoint> running_endpoints() const {
    std::vector<net::Endpoint> endpoints;
    for (int i = 1; i <= cluster_.replicas(); ++i)
      if (cluster_.running(i)) endpoints.push_back({"127.0.0.1", cluster_.client_port(i)});
    return endpoints;
  }
  std::string endpoints_text() const {
    std::string out;
    for (const net::Endpoint& e : running_endpoints())
      out += (out.empty() ? "" : ",") + e.to_string();
    return out;
  }

  // Makes room for machine `id` (ports on from the founders'); false (said) if there is none.
  bool make_room(int id) {
    const LocalCluster::Options& o = cluster_.options();
    const int client_end = o.client_port + id, peer_end = o.peer_port + id;  // one past
    const int client_start = o.client_port, peer_start = o.peer_port;
    if (id > 63 || client_end > 65536 || peer_end > 65536 ||
        (client_start < peer_end && peer_start < client_end)) {
      fmt::print("no room for n{}: its ports would leave 1..65535 or meet the other run's\n", id);
      return false;
    }
    cluster_.grow_to(id);
    return true;
  }

  // Starts machine `id` with --join; waits until it serves (false, said, if it exits or does not
  // answer within 10 s).
  bool start_joined(int id) {
    if (Status s = cluster_.start(id, {"--join"}); !s.is_ok()) {
      fmt::print("n{} did not start: {}\n", id, s.to_string());
      return false;
    }
    const auto started = Clock::now();
    while (cluster_.info(id, "server").empty()) {
      if (cluster_.exited(id) || ms_since(started) > 10000) {
        fmt::print("n{} did not start serving: {} (log: {})\n", id,
                   last_line(cluster_.log_path(id)), cluster_.log_path(id));
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // `add`: the next id no member ever had (MEMBER LIST's next_id, and above every machine started
  // here), its ports, MEMBER ADD-LEARNER, and the machine started with --join.
  bool add_machine() {
    const std::vector<net::Endpoint> endpoints = running_endpoints();
    if (endpoints.empty()) {
      fmt::print("add: no replica is running to ask\n");
      return false;
    }
    client::ClientOptions options;
    options.timeout_ms = 2000;
    int id = cluster_.replicas() + 1;
    auto listed = call_any(endpoints, options, {"MEMBER", "LIST"}, 5000);
    if (listed.is_ok() && listed->kind == kv::Reply::Kind::kArray && !listed->elements.empty()) {
      const std::string& head = listed->elements.front().text;
      if (const size_t at = head.find("next_id="); at != std::string::npos)
        id = std::max(id, std::atoi(head.c_str() + at + 8));
    }
    if (!make_room(id)) return false;
    const std::string peer = fmt::format("127.0.0.1:{}", cluster_.peer_port(id));
    auto added =
        call_any(endpoints, options, {"MEMBER", "ADD-LEARNER", peer, std::to_string(id)}, 10000);
    if (!added.is_ok() || added->kind != kv::Reply::Kind::kInteger) {
      fmt::print("add: MEMBER ADD-LEARNER {} {}: {}\n", peer, id,
                 added.is_ok() ? added->text : added.status().to_string());
      return false;
    }
    if (!start_joined(id)) return false;
    const std::string all = endpoints_text();
    fmt::print(
        "n{} added as a learner and started: clients 127.0.0.1:{}  peers {}  log {}\n"
        "  grow:    synod member promote {} --timeout-ms 60000 --endpoints {}\n"
        "  replace: synod member replace OLD-ID {} --endpoints {}   (then: stop OLD-ID)\n",
        id, cluster_.client_port(id), peer, cluster_.log_path(id), id, all, peer, all);
    return true;
  }

  // kill|stop|start|restart|pause|resume|join N (or nN); false (after saying why) if it did
  // nothing.
  bool replica_command(const std::string& verb, std::string which) {
    if (!which.empty() && which[0] == 'n') which.erase(0, 1);
    int id = 0;
    const auto [end, ec] = std::from_chars(which.data(), which.data() + which.size(), id);
    const int highest = verb == "join" ? 63 : cluster_.replicas();
    if (ec != std::errc() || end != which.data() + which.size() || id < 1 || id > highest) {
      fmt::print("no replica {} (1..{})\n", which, highest);
      return false;
    }
    if (verb == "join") {
      if (!make_room(id)) return false;
      if (cluster_.running(id)) {
        fmt::print("n{} is already running\n", id);
        return false;
      }
      if (!start_joined(id)) return false;
      fmt::print("n{}: join done: clients 127.0.0.1:{}  peers 127.0.0.1:{}\n", id,
                 cluster_.client_port(id), cluster_.peer_port(id));
      return true;
    }
    const bool running = cluster_.running(id);
    if (verb == "kill" && running) {
      cluster_.kill(id, SIGKILL);
    } else if (verb == "stop" && running) {
      cluster_.stop(id);
    } else if (verb == "pause" && running) {
      cluster_.kill(id, SIGSTOP);
    } else if (verb == "resume" && running) {
      cluster_.kill(id, SIGCONT);
    } else if (verb == "start" || verb == "restart") {
      if (verb == "restart") cluster_.stop(id);
      if (cluster_.running(id)) {
        fmt::print("n{} is already running\n", id);
        return false;
      }
      const Status started = cluster_.start(id);
      if (!started.is_ok()) {
        fmt::print("n{} did not start: {}\n", id, started.to_string());
        return false;
      }
    } else {
      fmt::print("n{} is not running\n", id);
      return false;
    }
    fmt::print("n{}: {} done\n", id, verb);
    return true;
  }

  LocalCluster& cluster_;
  std::string pending_;
  bool eof_ = false;
  bool quit_ = false;
  bool commanded_ = false;
};

// The ids above the founders' that have a data directory DIR/nN from an earlier run: machines
// added then, started again with the founders.
std::vector<int> added_before(const LocalCluster::Options& options) {
  std::vector<int> ids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options.dir, ec)) {
    const std::string name = entry.path().filename().string();
    int id = 0;
    if (name.size() < 2 || name[0] != 'n' || !entry.is_directory()) continue;
    const auto [end, parsed] = std::from_chars(name.data() + 1, name.data() + name.size(), id);
    if (parsed == std::errc() && end == name.data() + name.size() && id > options.replicas &&
        id <= 63)
      ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

int run_local(const LocalCluster::Options& options) {
  LocalCluster cluster(options);
  const std::vector<int> added = added_before(options);
  if (!added.empty()) cluster.grow_to(added.back());
  Status started = cluster.start_all();
  for (int id : added)
    if (started.is_ok()) started = cluster.start(id);
  // Each replica must answer as the process started here: on ports another cluster holds, it
  // exits (address in use) while the stranger answers; that must not pass for a running cluster.
  if (started.is_ok()) started = cluster.wait_until_serving(10000);
  if (!started.is_ok()) {
    fmt::print(stderr, "synod local: {}\nsynod local: stopping every replica\n",
               started.to_string());
    cluster.stop_all();
    return 1;
  }
  ::signal(SIGINT, on_stop_signal);
  ::signal(SIGTERM, on_stop_signal);
  fmt::print("synod local: {} replicas, data in {}\n", options.replicas + added.size(),
             options.dir);
  for (int i = 1; i <= cluster.replicas(); ++i)
    if (cluster.running(i))
      fmt::print("  n{}  clients 127.0.0.1:{}{}  peers 127.0.0.1:{}  log {}\n", i,
                 cluster.client_port(i),
                 options.tls_client_port != 0
                     ? fmt::format("  TLS clients 127.0.0.1:{}", cluster.tls_client_port(i))
                     : "",
                 cluster.peer_port(i), cluster.log_path(i));
  if (options.metrics_port != 0)
    fmt::print("metrics: http://127.0.0.1:{}/metrics ... http://127.0.0.1:{}/metrics\n",
               cluster.metrics_port(1), cluster.metrics_port(options.replicas));
  fmt::print("connect with: redis-cli -p {}   (any replica; followers forward to the leader)\n",
             cluster.client_port(1));
  if (int leader = wait_for_leader(cluster, 10000))
    fmt::print("n{} leads. Ctrl-C stops every replica; the data stays for the next start.\n",
               leader);
  else
    fmt::print("no leader yet after 10 s; see the logs. Ctrl-C stops every replica.\n");
  fmt::print(
      "commands on stdin: kill|stop|start|restart|pause|resume N, add (a new machine), join N, "
      "status, help, quit\n");
  std::fflush(stdout);
  LocalControl control(cluster);
  while (!g_stop && !control.quit()) {
    for (int id : cluster.reap()) {
      fmt::print(stderr, "synod local: n{} exited: {} (log: {})\n", id,
                 last_line(cluster.log_path(id)), cluster.log_path(id));
    }
    if (!control.commanded() && none_running(cluster)) {
      fmt::print(stderr, "synod local: every replica has exited\n");
      return 1;
    }
    control.poll_stdin(100);
  }
  fmt::print("synod local: stopping\n");
  cluster.stop_all();
  return 0;
}

void add_local(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("local", "run a local cluster of separate server processes");
  auto o = std::make_shared<LocalCluster::Options>();
  cmd->add_option("--replicas", o->replicas, "number of replicas (1..63)")
      ->check(CLI::Range(1, 63))
      ->capture_default_str();
  cmd->add_option("--data", o->dir,
                  "directory for every replica's data (created with its parents; kept across "
                  "runs)")
      ->required();
  cmd->add_option("--port", o->client_port, "client port of replica 1 (then +1, +2, ...)")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("--peer-port", o->peer_port, "peer port of replica 1 (then +1, +2, ...)")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("--tls-port", o->tls_client_port,
                  "TLS client port of replica 1 (then +1, +2, ...); give the certificates after "
                  "--, e.g. -- --tls-cert-file DIR/n{id}.crt --tls-key-file DIR/n{id}.key "
                  "--tls-ca-cert-file DIR/ca.crt (scripts/tls-certs DIR N makes them)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--metrics-port", o->metrics_port,
                  "port of replica 1's GET /metrics and /health (then +1, +2, ...)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("server-options", o->extra_args,
                  "after --, options passed to every `synod server` (e.g. -- --max-command-bytes "
                  "1048576 --tick-ms 5); {id} in one becomes each replica's id");
  cmd->callback([=, &exit_code] {
    LocalCluster::Options options = *o;
    options.binary = self_executable();
    const int clients_end = options.client_port + options.replicas;  // one past the last
    const int peers_end = options.peer_port + options.replicas;
    if (clients_end > 65536 || peers_end > 65536 ||
        (options.client_port < peers_end && options.peer_port < clients_end)) {
      fmt::print(stderr,
                 "synod local: {} replicas need client ports {}..{} and peer ports {}..{}: "
                 "each run within 1..65535, and the two apart\n",
                 options.replicas, options.client_port, clients_end - 1, options.peer_port,
                 peers_end - 1);
      exit_code = 2;
      return;
    }
    // One address for every replica's metrics would let only the first bind it.
    for (size_t i = 0; i + 1 < options.extra_args.size(); ++i) {
      if (options.extra_args[i] == "--metrics-listen" && options.replicas > 1 &&
          options.extra_args[i + 1].find("{id}") == std::string::npos) {
        fmt::print(stderr,
                   "synod local: --metrics-listen {} after -- would be every replica's address; "
                   "use --metrics-port P (replica i serves on P+i-1)\n",
                   options.extra_args[i + 1]);
        exit_code = 2;
        return;
      }
    }
    exit_code = run_local(options);
  });
}

struct DemoState {
  std::map<std::string, std::string> acknowledged;  // key -> value the cluster acknowledged
  int failed = 0;
  std::string summary;  // the closing "demo: ..." line, once the run got that far
  int old_leader = 0;   // the leader killed, and the one elected then
  int leader = 0;
};

// Writes key=value through `port`; records it if acknowledged.
bool demo_write(DemoState& st, uint16_t port, const std::string& key, const std::string& value) {
  auto r = call(port, {"SET", key, value}, 6000);
  if (r.is_ok() && r->kind == kv::Reply::Kind::kSimple && r->text == "OK") {
    st.acknowledged[key] = value;
    return true;
  }
  ++st.failed;
  return false;
}

int verify(const DemoState& st, const LocalCluster& c, int via, int& lost) {
  lost = 0;
  auto client = client::RespClient::connect("127.0.0.1", c.client_port(via), 1000);
  if (!client.is_ok()) return -1;
  client->set_timeout_ms(6000);
  for (const auto& [k, v] : st.acknowledged) {
    auto r = client->call({"GET", k});
    if (!r.is_ok() || r->kind != kv::Reply::Kind::kBulk || r->text != v) {
      ++lost;
      fmt::print("  LOST: {} (expected {}, got {})\n", k, v,
                 r.is_ok() ? client::to_string(*r) : r.status().to_string());
    }
  }
  return static_cast<int>(st.acknowledged.size());
}

// Disk space under `dir` (allocated blocks, as du counts them: log segments are preallocated).
uint64_t disk_usage_bytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

// What becomes of the demo's directory, said out loud: a fresh one is removed after a good run; a
// failed run's, or one the user named, stays (with its size, since log segments are large).
void dispose_of(const std::string& dir, bool remove) {
  const uint64_t mb = disk_usage_bytes(dir) / (1024 * 1024);
  std::error_code ec;
  if (remove && std::filesystem::remove_all(dir, ec) != static_cast<std::uintmax_t>(-1) && !ec) {
    fmt::print("   removed {} ({} MB of data and logs)\n", dir, mb);
    return;
  }
  fmt::print("   the replicas' data and logs stay in {} ({} MB); rm -rf {} removes them\n", dir, mb,
             dir);
}

// The demo proper, on a started cluster; true if every acknowledged write survived and the old
// leader caught up. Every write goes through a replica that is running at the time.
bool narrate(LocalCluster& c, DemoState& st, const std::string& dir) {
  const auto t0 = Clock::now();
  int leader = wait_for_leader(c, 10000);
  if (!leader) {
    fmt::print("synod demo: no leader elected in 10 s; see the logs in {}\n", dir);
    return false;
  }
  fmt::print("== n{} was elected leader {} ms after the replicas answered\n", leader, ms_since(t0));

  fmt::print(
      "== Writing 300 keys, each through n1, n2, n3 in turn (followers forward writes to the "
      "leader)\n");
  for (int i = 0; i < 300; ++i) {
    const int via = 1 + i % 3;
    demo_write(st, c.client_port(via), "key:" + std::to_string(i), "value-" + std::to_string(i));
  }
  fmt::print("   {} writes acknowledged, {} failed\n", st.acknowledged.size(), st.failed);
  const int follower = 1 + leader % 3;
  auto r = call(c.client_port(follower), {"GET", "key:42"}, 3000);
  fmt::print("   GET key:42 through follower n{} -> {} (a follower serves reads itself)\n",
             follower, r.is_ok() ? client::to_string(*r) : r.status().to_string());

  const int old_leader = leader;
  const int survivors[2] = {1 + old_leader % 3, 1 + (old_leader + 1) % 3};
  fmt::print(
      "== SIGKILL the leader n{}, then write through the survivors n{} and n{} until a write is "
      "acknowledged\n",
      old_leader, survivors[0], survivors[1]);
  c.kill(old_leader, SIGKILL);
  const auto killed = Clock::now();
  int next_key = 300;
  uint64_t failover_ms = 0;
  int attempts = 0;
  while (ms_since(killed) < 20000 && !failover_ms) {
    const std::string key = "key:" + std::to_string(next_key++);
    ++attempts;
    if (demo_write(st, c.client_port(survivors[attempts % 2]), key,
                   "value-" + std::to_string(next_key - 1)))
      failover_ms = ms_since(killed);
  }
  leader = wait_for_leader(c, 10000);
  if (!failover_ms || !leader) {
    fmt::print("synod demo: no new leader took writes within 20 s; see the logs in {}\n", dir);
    return false;
  }
  fmt::print(
      "   the first write sent after the kill was acknowledged {} ms after the SIGKILL ({} "
      "attempt{}); n{} is the new leader\n",
      failover_ms, attempts, attempts == 1 ? "" : "s", leader);
  const int via = leader == survivors[0] ? survivors[1] : survivors[0];
  const size_t before = st.acknowledged.size();
  const int failed_before = st.failed;
  for (int i = 0; i < 100; ++i, ++next_key)
    demo_write(st, c.client_port(via), "key:" + std::to_string(next_key),
               "value-" + std::to_string(next_key));
  fmt::print("== 100 more writes through follower n{}: {} acknowledged, {} failed\n", via,
             st.acknowledged.size() - before, st.failed - failed_before);
  int lost = 0;
  const int checked = verify(st, c, leader, lost);
  fmt::print("== Every acknowledged write read back through n{}: {} checked, {} lost\n", leader,
             checked, lost);

  fmt::print("== Restarting the old leader n{}; it catches up from its log and its peers\n",
             old_leader);
  (void)c.start(old_leader);
  const auto restarted = Clock::now();
  const std::string target = c.info(leader)["chosen_slot"];
  uint64_t caught_up_ms = 0;
  std::string applied;
  while (ms_since(restarted) < 20000) {
    applied = c.info(old_leader)["applied_slot"];
    if (!applied.empty() && !target.empty() && std::stoull(applied) >= std::stoull(target)) {
      caught_up_ms = ms_since(restarted);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  fmt::print("   n{} applied slot {} (the leader had chosen {}) {} ms after its restart\n",
             old_leader, applied.empty() ? "?" : applied, target,
             caught_up_ms ? std::to_string(caught_up_ms) : "(not within 20 s)");
  int lost_after = 0;
  verify(st, c, old_leader, lost_after);
  fmt::print("   every acknowledged key read back through n{}: {} lost\n", old_leader, lost_after);
  const bool ok = lost == 0 && lost_after == 0 && caught_up_ms > 0;
  st.old_leader = old_leader;
  st.leader = leader;
  st.summary = fmt::format(
      "demo: 3 replicas, {} writes acknowledged, {} failed, {} lost; failover (SIGKILL of the "
      "leader to the next acknowledged write) {} ms with an election timeout of 150-300 ms; the "
      "old leader caught up in {} ms",
      st.acknowledged.size(), st.failed, lost + lost_after, failover_ms, caught_up_ms);
  return ok;
}

// The demo's last act: the old leader's machine fails for good (killed, its data directory
// gone) and is replaced by a new machine, n4 (a fresh id, an empty directory), with the MEMBER
// commands `synod member add` and `synod member replace` send, while a client writes through the
// two survivors; then every write acknowledged meanwhile reads back through n4. True if none was
// lost and the replace was made.
bool replace_machine(LocalCluster& c, DemoState& st, int old, int leader) {
  const int other = 6 - old - leader;  // the third founder
  const int fresh = 4;
  const std::string peer = fmt::format("127.0.0.1:{}", c.peer_port(fresh));
  fmt::print(
      "== n{}'s machine fails for good (SIGKILL, its data directory deleted): replacing it with "
      "a new machine, n{} (a fresh id, an empty directory), while a client writes through n{} "
      "and n{}\n",
      old, fresh, leader, other);
  c.kill(old, SIGKILL);
  std::error_code ec;
  std::filesystem::remove_all(c.options().dir + "/n" + std::to_string(old), ec);
  process::Writers writer(1, {c.client_port(leader), c.client_port(other)}, "replace:");
  const std::vector<net::Endpoint> survivors = {{"127.0.0.1", c.client_port(leader)},
                                                {"127.0.0.1", c.client_port(other)}};
  client::ClientOptions options;
  options.timeout_ms = 2000;
  bool made = writer.progresses(20);
  const auto from = Clock::now();
  // synod member add --peer-addr P --id 4; the new machine starts with --join; then
  // synod member replace OLD P (the learner catches up, and is swapped for OLD in one change).
  auto added = call_any(survivors, options, {"MEMBER", "ADD-LEARNER", peer, "4"}, 10000);
  made = made && added.is_ok() && added->kind == kv::Reply::Kind::kInteger;
  made = made && c.start(fresh, {"--join"}).is_ok();
  auto replaced =
      made ? call_any(survivors, options, {"MEMBER", "REPLACE", std::to_string(old), peer, "30000"},
                      40000)
           : Result<kv::Reply>(Status::io_error("the learner was not added and started"));
  const auto to = Clock::now();
  made = made && replaced.is_ok() && replaced->kind == kv::Reply::Kind::kSimple;
  fmt::print(
      "   MEMBER ADD-LEARNER {} 4 -> {}; n4 started with --join; MEMBER REPLACE {} {} -> {}\n",
      peer, added.is_ok() ? client::to_string(*added) : added.status().to_string(), old, peer,
      replaced.is_ok() ? client::to_string(*replaced) : replaced.status().to_string());
  made = made && writer.progresses(20);
  writer.stop();
  const process::Writers::Window w = writer.measure(from, to);
  const size_t written = writer.acked().size();
  st.failed += static_cast<int>(writer.failed());
  for (const auto& [key, value] : writer.acked()) st.acknowledged[key] = value;
  fmt::print(
      "   the replace took {} ms; {} writes acknowledged meanwhile ({} in all), {} failed; the "
      "longest gap between two acknowledged writes {} ms\n",
      w.took_ms, w.writes, written, writer.failed(), w.longest_gap_ms);
  int lost = -1;
  if (made) verify(st, c, fresh, lost);
  fmt::print("   every acknowledged key read back through n{}: {} lost\n", fresh,
             lost < 0 ? "?" : std::to_string(lost));
  st.summary += fmt::format(
      "; n{}'s machine replaced by n{} in {} ms while a client wrote ({} writes, longest gap {} "
      "ms), {} lost",
      old, fresh, w.took_ms, written, w.longest_gap_ms, lost < 0 ? "?" : std::to_string(lost));
  return made && lost == 0;
}

int run_demo(const std::string& dir_option) {
  std::string dir = dir_option;
  if (dir.empty()) {
    char tmpl[] = "/tmp/synod-demo-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      fmt::print(stderr, "synod demo: cannot create a temporary directory\n");
      return 2;
    }
    dir = tmpl;
  }
  LocalCluster::Options o;
  o.binary = self_executable();
  o.dir = dir;
  o.replicas = 4;  // three founders, and the machine that replaces one at the end
  o.founders = 3;
  if (Status s = LocalCluster::pick_free_ports(4, o.client_port, o.peer_port); !s.is_ok()) {
    fmt::print(stderr, "synod demo: {}\n", s.to_string());
    return 2;
  }
  fmt::print("== Starting 3 replicas as separate processes; data and logs in {}\n", dir);
  fmt::print("   ({})\n", dir_option.empty()
                              ? "a fresh directory, removed at the end unless something fails"
                              : "kept at the end");
  DemoState st;
  bool ok = false;
  {
    LocalCluster c(o);
    Status started = c.start_all();
    if (started.is_ok()) started = c.wait_until_serving(10000);
    if (!started.is_ok()) {
      fmt::print(stderr, "synod demo: {}\n", started.to_string());
    } else {
      fmt::print("   clients: n1 on 127.0.0.1:{}, n2 on {}, n3 on {} (while the demo runs)\n",
                 c.client_port(1), c.client_port(2), c.client_port(3));
      ok = narrate(c, st, dir);
      if (ok) ok = replace_machine(c, st, st.old_leader, st.leader);
      if (!st.summary.empty()) st.summary += ok ? ". OK" : ". FAILED";
    }
    fmt::print("== Stopping the replicas\n");
  }  // ~LocalCluster stops every replica
  dispose_of(dir, ok && dir_option.empty());
  if (!st.summary.empty()) fmt::print("{}\n", st.summary);
  fmt::print(
      "To try a cluster that stays up: {} local --data /tmp/synod, then redis-cli -p 7001 "
      "(README: Running a cluster).\n",
      self_executable());
  return ok ? 0 : 1;
}

void add_demo(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "demo",
      "start 3 replicas, write, kill the leader, show failover and catch-up, then replace the "
      "old leader's machine with a new member while a client writes");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--dir", *dir, "directory for the replicas' data (default: a fresh one in /tmp)");
  cmd->callback([=, &exit_code] { exit_code = run_demo(*dir); });
}

}  // namespace

void add_server_commands(CLI::App& app, int& exit_code) {
  add_server(app, exit_code);
  add_local(app, exit_code);
  add_demo(app, exit_code);
}

}  // namespace synod::tools
