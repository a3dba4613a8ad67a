// `synod status --endpoints A,B,C`: one table of every member of a running cluster, from each
// member's INFO, and a verdict that scripts can test (exit 0 healthy, 1 not). A member that does
// not answer within --timeout-ms (down, paused, partitioned from this machine) is unreachable;
// a cluster with no leader that its reachable members agree on has none.
#include "tools/status_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/resp_client.h"
#include "net/peer_transport.h"
#include "tools/client_flags.h"

namespace synod::tools {
namespace {

struct StatusArgs {
  std::string endpoints;
  double watch_s = 0;
  uint32_t timeout_ms = 1000;
  ClientFlags client;
};

struct Member {
  net::Endpoint endpoint;
  std::map<std::string, std::string> info;  // empty when unreachable
  std::string error;                        // why it is unreachable
};

std::string field(const Member& m, const std::string& key, const std::string& otherwise = "-") {
  auto it = m.info.find(key);
  return it == m.info.end() ? otherwise : it->second;
}

uint64_t number(const Member& m, const std::string& key) {
  auto it = m.info.find(key);
  if (it == m.info.end()) return 0;
  try {
    return std::stoull(it->second);
  } catch (...) {
    return 0;
  }
}

std::string bytes(uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < (uint64_t{1} << 20)) return fmt::format("{:.1f} KiB", double(n) / 1024);
  if (n < (uint64_t{1} << 30)) return fmt::format("{:.1f} MiB", double(n) / (1 << 20));
  return fmt::format("{:.2f} GiB", double(n) / (1 << 30));
}

Member query(const net::Endpoint& endpoint, const client::ClientOptions& options) {
  Member m;
  m.endpoint = endpoint;
  auto client = client::RespClient::connect(endpoint.host, endpoint.port, options);
  if (!client.is_ok()) {
    m.error = client.status().to_string();
    return m;
  }
  client->set_timeout_ms(options.timeout_ms);
  auto reply = client->call({"INFO", "everything"});
  if (!reply.is_ok()) {
    m.error = reply.status().to_string();
  } else if (reply->kind != kv::Reply::Kind::kBulk) {
    m.error = "INFO answered " + client::to_string(*reply);
    if (reply->text.starts_with("NOAUTH") || reply->text.starts_with("NOPERM"))
      m.error += fmt::format(" (--user, and --pass or {})", kAuthEnvironmentVariable);
  } else {
    m.info = client::parse_info(reply->text);
    if (m.info.count("node_id") == 0) {
      m.info.clear();
      m.error = "not a Synod replica (its INFO has no node_id)";
    }
  }
  return m;
}

struct Verdict {
  bool healthy = false;
  std::string line;
};

// The leader the reachable members agree on (by leader_id), and whether that member says it
// leads; the cluster is healthy when there is one and every member answered, from one cluster.
Verdict judge(const std::vector<Member>& members, const Member*& leader) {
  leader = nullptr;
  std::map<std::string, int> leader_votes;
  std::map<std::string, int> clusters;
  int reachable = 0;
  std::vector<std::string> unreachable;
  for (const Member& m : members) {
    if (m.info.empty()) {
      unreachable.push_back(m.endpoint.to_string());
      continue;
    }
    ++reachable;
    ++clusters[field(m, "cluster_id")];
    if (field(m, "leader_id", "0") != "0") ++leader_votes[field(m, "leader_id")];
  }
  for (const Member& m : members) {
    if (!m.info.empty() && field(m, "role") == "leader" && leader_votes.size() == 1 &&
        leader_votes.begin()->first == field(m, "node_id")) {
      leader = &m;
    }
  }
  Verdict v;
  const size_t n = members.size();
  if (clusters.size() > 1) {
    v.line = "cluster: UNHEALTHY: the endpoints belong to different clusters (cluster ids differ)";
    return v;
  }
  std::string reach = fmt::format("{} of {} members reachable", reachable, n);
  if (!unreachable.empty())
    reach += " (unreachable: " + fmt::format("{}", fmt::join(unreachable, ", ")) + ")";
  if (leader == nullptr) {
    v.line = "cluster: UNHEALTHY: no leader that the reachable members agree on; " + reach;
    return v;
  }
  const std::string who =
      fmt::format("n{} leads (ballot {})", field(*leader, "node_id"), field(*leader, "ballot"));
  if (!unreachable.empty()) {
    v.line = "cluster: UNHEALTHY: " + who + "; " + reach;
    return v;
  }
  v.healthy = true;
  v.line = "cluster: healthy: " + who + "; " + reach;
  return v;
}

std::string health(const Member& m, const Member* leader) {
  if (m.info.empty()) return "unreachable: " + m.error;
  if (field(m, "leader_id", "0") == "0") return "no leader";
  if (leader != nullptr && field(m, "leader_id") != field(*leader, "node_id"))
    return "follows n" + field(m, "leader_id");
  return "ok";
}

std::atomic<bool> g_stop_watch{false};
void on_watch_signal(int) {
  g_stop_watch = true;
}

int run_status(const StatusArgs& args) {
  auto parsed = parse_endpoint_list(args.endpoints);
  if (!parsed.is_ok()) {
    fmt::print(stderr, "synod status: --endpoints: {}\n", parsed.status().to_string());
    return 2;
  }
  const std::vector<net::Endpoint>& endpoints = *parsed;
  auto options = args.client.options(args.timeout_ms);
  if (!options.is_ok()) {
    fmt::print(stderr, "synod status: {}\n", options.status().message());
    return 2;
  }
  if (args.watch_s <= 0) return print_cluster_status(endpoints, *options) ? 0 : 1;
  ::signal(SIGINT, on_watch_signal);
  ::signal(SIGTERM, on_watch_signal);
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  bool healthy = false;
  while (!g_stop_watch) {
    if (tty) fmt::print("\033[H\033[2J");
    healthy = print_cluster_status(endpoints, *options);
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(args.watch_s * 1000));
    while (!g_stop_watch && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!tty && !g_stop_watch) fmt::print("\n");
  }
  return healthy ? 0 : 1;
}

}  // namespace

Result<std::vector<net::Endpoint>> parse_endpoint_list(std::string_view list) {
  std::vector<net::Endpoint> endpoints;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    auto e = net::parse_endpoint(list.substr(start, comma - start));
    if (!e.is_ok()) return e.status();
    endpoints.push_back(*e);
    start = comma + 1;
  }
  return endpoints;
}

bool print_cluster_status(const std::vector<net::Endpoint>& endpoints,
                          const client::ClientOptions& options) {
  std::vector<Member> members;
  for (const net::Endpoint& e : endpoints) members.push_back(query(e, options));
  const Member* leader = nullptr;
  const Verdict verdict = judge(members, leader);
  const uint64_t top = leader != nullptr ? number(*leader, "chosen_slot") : 0;
  std::vector<std::vector<std::string>> rows = {{"ID", "ENDPOINT", "ROLE", "LEADER", "BALLOT",
                                                 "CHOSEN", "APPLIED", "LAG", "LOG", "SNAPSHOT",
                                                 "LAST FSYNC", "HEALTH"}};
  for (const Member& m : members) {
    if (m.info.empty()) {
      rows.push_back({"?", m.endpoint.to_string(), "-", "-", "-", "-", "-", "-", "-", "-", "-",
                      health(m, leader)});
      continue;
    }
    const uint64_t applied = number(m, "applied_slot");
    const std::string lag =
        leader != nullptr ? std::to_string(top > applied ? top - applied : 0) : "-";
    const std::string leader_id = field(m, "leader_id", "0");
    rows.push_back({"n" + field(m, "node_id"), m.endpoint.to_string(), field(m, "role"),
                    leader_id == "0" ? "-" : "n" + leader_id, field(m, "promised"),
                    field(m, "chosen_slot"), field(m, "applied_slot"), lag,
                    bytes(number(m, "wal_bytes")), bytes(number(m, "snapshot_bytes")),
                    fmt::format("{:.2f} ms", double(number(m, "wal_sync_us_last")) / 1000),
                    health(m, leader)});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], width[i]) : row[i];
    }
    fmt::print("{}\n", line);
  }
  fmt::print("{}\n", verdict.line);
  std::fflush(stdout);
  return verdict.healthy;
}

void add_status_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand(
      "status",
      "One table of every member of a running cluster (role, leader, ballot, chosen and applied "
      "slots, lag, log and snapshot size, last fsync, health); exits 1 when a member is "
      "unreachable or there is no leader");
  cmd->add_option("--endpoints", args->endpoints,
                  "every member's client address, HOST:PORT,HOST:PORT,...")
      ->required();
  cmd->add_option("--watch", args->watch_s, "refresh every this many seconds until Ctrl-C")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--timeout-ms", args->timeout_ms,
                  "a member that has not answered INFO within this is unreachable")
      ->check(CLI::Range(10u, 60000u))
      ->capture_default_str();
  add_client_flags(*cmd, args->client);
  cmd->callback([args, &exit_code] { exit_code = run_status(*args); });
}

}  // namespace synod::tools
