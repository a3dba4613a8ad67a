#include "tools/chaos_command.h"

#include <fmt/core.h>
#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "chaos/bank_checker.h"
#include "chaos/bank_workload.h"
#include "chaos/final_reads.h"
#include "chaos/history_recorder.h"
#include "chaos/html_report.h"
#include "chaos/lock_checker.h"
#include "chaos/lock_workload.h"
#include "chaos/nemesis.h"
#include "chaos/workload.h"
#include "client/resp_client.h"
#include "lincheck/checker.h"
#include "node/clock_faults.h"
#include "node/server.h"
#include "node/server_core.h"
#include "process/local_cluster.h"

namespace synod::tools {

using process::LocalCluster;
using process::self_executable;

namespace {

using Clock = std::chrono::steady_clock;

struct ChaosArgs {
  int replicas = 3;
  int clients = 8;
  int keys = 500;
  int ops_per_key = 200;
  int active_keys = 4;
  int txn_percent = 15;
  double duration_s = 30;
  std::string faults = "kill,pause,partition,restart-all";
  std::string workload = "kv";
  int lock_clients = 4;
  int locks = 2;
  uint32_t lock_ttl_ms = 3000;
  int ttl_clients = 2;
  int bank_clients = 4;
  int bank_readers = 2;
  int accounts = 8;
  uint64_t seed = 0;
  bool seed_given = false;
  std::string history;
  std::string dir;
  std::string planted_bug;
  bool careful_operator = false;
  uint32_t request_timeout_ms = 2000;
  bool lease_reads = false;  // the servers' --lease-reads
  double check_timeout_s = 120;
};

// Waits until some running replica says it leads; 0 if none does within `timeout_ms`.
int wait_for_leader(const LocalCluster& cluster, uint32_t timeout_ms) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < end) {
    if (int l = cluster.leader()) return l;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

// Reads every key once more, through the leader first, then any replica, recording each attempt.
void final_reads(const LocalCluster& cluster, int leader, int keys,
                 chaos::HistoryRecorder& recorder, const ChaosArgs& args) {
  for (int k = 0; k < keys; ++k) {
    const auto give_up = Clock::now() + std::chrono::seconds(20);
    for (int attempt = 0; Clock::now() < give_up; ++attempt) {
      const auto& members = cluster.members();
      const int via = attempt == 0 && leader ? leader : members[attempt % members.size()];
      lincheck::Operation op;
      op.client = args.clients;  // one more client than the workload's
      op.kind = lincheck::OpKind::kGet;
      op.key = chaos::key_name(k);
      op.call_ns = recorder.now_ns();
      Result<kv::Reply> reply = Status::io_error("not sent");
      if (auto c = client::RespClient::connect("127.0.0.1", cluster.client_port(via), 500);
          c.is_ok()) {
        c->set_timeout_ms(args.request_timeout_ms + 1000);
        reply = c->call(chaos::command_for(op));
      }
      chaos::record_reply(op, reply, recorder.now_ns());
      const bool done = op.ok;
      recorder.add(std::move(op));
      if (done) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

std::string make_dir(const ChaosArgs& args) {
  if (!args.dir.empty()) {
    std::filesystem::create_directories(args.dir);
    return args.dir;
  }
  char tmpl[] = "/tmp/synod-chaos-XXXXXX";
  return ::mkdtemp(tmpl) ? std::string(tmpl) : std::string();
}

// The run: cluster up, clients and nemesis for the duration, faults healed, final reads.
// Returns false (with a message printed) if the cluster never served.
struct Workloads {
  bool kv = false;
  bool lock = false;
  bool ttl = false;
  bool bank = false;
};

Result<Workloads> parse_workloads(const std::string& list) {
  Workloads w;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    if (name == "kv") {
      w.kv = true;
    } else if (name == "lock") {
      w.lock = true;
    } else if (name == "ttl") {
      w.ttl = true;
    } else if (name == "bank") {
      w.bank = true;
    } else {
      return Status::invalid_argument("unknown workload '" + name +
                                      "'; choose from kv,lock,ttl,bank");
    }
  }
  if (!w.kv && !w.lock && !w.ttl && !w.bank) return Status::invalid_argument("no workload given");
  return w;
}

struct RunResult {
  std::map<chaos::FaultKind, int> faults;
  std::vector<chaos::LockAttempt> lock_attempts;
  std::vector<chaos::TtlOp> ttl_ops;
  std::vector<std::string> crashes;
  std::vector<std::string> replace_failures;
  bool leader_at_end = false;
  int keys_used = 0;  // k0 .. k<keys_used - 1>
  chaos::BankCounts bank_counts;
  std::vector<chaos::BankRead> bank_reads;
  int64_t bank_total = 0;
  bool bank_final_read = false;  // the bank's accounts were read after the faults healed
};

Result<RunResult> run_cluster(const ChaosArgs& args, const std::vector<chaos::FaultKind>& faults,
                              const Workloads& workloads, const std::string& dir,
                              chaos::HistoryRecorder& recorder) {
  LocalCluster::Options o;
  o.binary = self_executable();
  o.dir = dir;
  o.replicas = args.replicas;
  o.extra_args = {"--fault-injection", "--request-timeout-ms",
                  std::to_string(args.request_timeout_ms), "--snapshot-every", "500"};
  if (!args.planted_bug.empty())
    o.extra_args.insert(o.extra_args.end(), {"--planted-bug", args.planted_bug});
  if (args.lease_reads) o.extra_args.push_back("--lease-reads");
  SYNOD_RETURN_IF_ERROR(LocalCluster::pick_free_ports(args.replicas, o.client_port, o.peer_port));
  LocalCluster cluster(o);
  SYNOD_RETURN_IF_ERROR(cluster.start_all());
  if (!wait_for_leader(cluster, 20000))
    return Status::io_error("no leader elected within 20 s; see the logs in " + dir);

  Rng root(args.seed);
  chaos::WorkloadOptions w;
  w.clients = args.clients;
  w.keys = args.keys;
  w.ops_per_key = args.ops_per_key;
  w.active_keys = args.active_keys;
  w.txn_percent = args.txn_percent;
  w.seed = root.next();
  w.reply_timeout_ms = args.request_timeout_ms + 1000;
  std::vector<uint16_t> initial_ports;
  for (int id : cluster.members()) initial_ports.push_back(cluster.client_port(id));
  // The clients follow a replaced member's place to the new machine (--faults replace).
  auto ports = std::make_shared<chaos::ClientPorts>(initial_ports);
  chaos::Workload workload(w, ports, recorder);
  chaos::LockWorkloadOptions lw;
  lw.lock_clients = workloads.lock ? args.lock_clients : 0;
  lw.locks = args.locks;
  lw.lock_ttl_ms = args.lock_ttl_ms;
  lw.ttl_clients = workloads.ttl ? args.ttl_clients : 0;
  lw.seed = root.next();
  lw.drift_bound = node::kClockDriftBound;
  lw.reply_timeout_ms = w.reply_timeout_ms;
  chaos::LockWorkload locks(lw, ports, recorder);
  chaos::BankWorkloadOptions bw;
  bw.transfer_clients = workloads.bank ? args.bank_clients : 0;
  bw.readers = workloads.bank ? args.bank_readers : 0;
  bw.accounts = args.accounts;
  bw.seed = root.next();
  bw.reply_timeout_ms = w.reply_timeout_ms;
  chaos::BankWorkload bank(bw, ports, recorder);
  if (workloads.bank) SYNOD_RETURN_IF_ERROR(bank.open_accounts(20000));
  chaos::NemesisOptions n;
  n.faults = faults;
  n.seed = root.next();
  n.max_drift_ppm = node::ClockFaults::max_drift_ppm();
  n.careless_operator = !args.careful_operator;
  n.on_replace = [&](size_t place, int id) { ports->set(place, cluster.client_port(id)); };
  chaos::Nemesis nemesis(cluster, n, recorder);
  nemesis.start_clocks();

  const auto start = Clock::now();
  const auto end = start + std::chrono::milliseconds(static_cast<int64_t>(args.duration_s * 1000));
  // The last fault heals (holds are at most 3 s) a couple of seconds before the clients stop.
  const auto inject_until = end - std::chrono::milliseconds(std::min<int64_t>(
                                      5000, static_cast<int64_t>(args.duration_s * 1000 / 3)));
  std::atomic<bool> stop{false};
  std::thread clients([&] {
    if (workloads.kv) workload.run(stop);
  });
  std::thread lock_clients([&] { locks.run(stop); });
  std::thread bank_clients([&] { bank.run(stop); });
  std::thread faulter([&] { nemesis.run(inject_until, stop); });
  // The clients never run out of keys, so they and the faults last the whole duration.
  while (Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop = true;
  clients.join();
  lock_clients.join();
  bank_clients.join();
  faulter.join();

  RunResult result;
  result.faults = nemesis.counts();
  result.lock_attempts = locks.lock_attempts();
  result.ttl_ops = locks.ttl_ops();
  result.crashes = nemesis.crashes();
  result.replace_failures = nemesis.failures();
  result.keys_used = workloads.kv ? workload.keys_used() : 0;
  if (workloads.lock || workloads.ttl) {
    if (Status s = locks.write(dir + "/locks.jsonl"); !s.is_ok())
      fmt::print("chaos: {}\n", s.to_string());
  }
  const int leader = wait_for_leader(cluster, 30000);
  result.leader_at_end = leader != 0;
  final_reads(cluster, leader, result.keys_used, recorder, args);
  if (workloads.bank) {
    // Through a fresh connection, the leader's first.
    result.bank_final_read =
        bank.final_read(cluster.client_port(leader ? leader : cluster.members()[0]), 20000);
    result.bank_counts = bank.counts();
    result.bank_reads = bank.reads();
    result.bank_total = bank.total();
  }
  for (int id : cluster.reap())
    if (!chaos::port_was_taken(cluster.log_path(id)))
      result.crashes.push_back("n" + std::to_string(id) + " exited on its own (see " +
                               cluster.log_path(id) + ")");
  cluster.stop_all();
  return result;
}

int total_faults(const std::map<chaos::FaultKind, int>& counts) {
  int total = 0;
  for (const auto& [kind, n] : counts) total += n;
  return total;
}

// "5 (kill=2,pause=0,partition=3,restart-all=0)"
std::string fault_counts(const std::map<chaos::FaultKind, int>& counts) {
  std::string out;
  for (chaos::FaultKind k : chaos::kAllFaults) {
    auto it = counts.find(k);
    out += fmt::format("{}{}={}", out.empty() ? "" : ",", chaos::fault_name(k),
                       it == counts.end() ? 0 : it->second);
  }
  return fmt::format("{} ({})", total_faults(counts), out);
}

// Reads the written history back through the checker's own parser, so the verdict is about the
// file a person can re-check with `synod lincheck`.
Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The picture of the run (chaos/html_report.h) beside the history: HISTORY.html for a
// HISTORY.jsonl.
void write_html_report(const ChaosArgs& args, const std::string& history_path,
                       const std::string& history_text, const lincheck::History& history,
                       const lincheck::Verdict& verdict, const std::string& summary) {
  std::string path = history_path;
  if (path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0)
    path.resize(path.size() - 6);
  path += ".html";
  int64_t end_ns = 0;
  for (const lincheck::Operation& op : history.ops)
    end_ns = std::max(end_ns, op.return_ns.value_or(op.call_ns));
  chaos::ReportInput in;
  in.title = fmt::format("synod chaos, seed {}: {} replicas, faults {}, workload {}", args.seed,
                         args.replicas, args.faults, args.workload);
  in.summary = {summary};
  in.history = &history;
  in.verdict = &verdict;
  in.faults = chaos::fault_windows(history_text, end_ns);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << chaos::render_html_report(in);
  out.close();
  if (out) {
    fmt::print("chaos: report {}\n", path);
  } else {
    fmt::print("chaos: cannot write the report {}\n", path);
  }
}

// The lock and TTL checks (lock_checker.h); true if they found nothing.
bool report_clock_workloads(const Workloads& workloads, const RunResult& run,
                            const std::string& dir) {
  bool clean = true;
  if (workloads.lock) {
    const chaos::LockReport r = chaos::check_locks(run.lock_attempts, node::kClockDriftBound);
    for (const auto& line : r.two_holders) fmt::print("chaos: TWO HOLDERS {}\n", line);
    fmt::print(
        "chaos: locks: {} attempts, {} acquired, {} held in time, {} released, {} expired "
        "before release, two holders={}\n",
        r.attempts, r.acquired, r.held, r.released, r.lost_before_release, r.two_holders_total);
    clean = clean && r.two_holders_total == 0;
  }
  if (workloads.ttl) {
    const chaos::TtlReport r = chaos::check_ttl(run.ttl_ops, node::kClockDriftBound);
    for (const auto& line : r.reappeared) fmt::print("chaos: REAPPEARED {}\n", line);
    for (const auto& line : r.expired_early) fmt::print("chaos: EXPIRED EARLY {}\n", line);
    fmt::print(
        "chaos: ttl keys: {} writes, {} reads ({} found the key gone), reappeared={}, "
        "expired early={}\n",
        r.writes, r.reads, r.reads_missing, r.reappeared_total, r.expired_early_total);
    clean = clean && r.reappeared_total == 0 && r.expired_early_total == 0;
  }
  if ((workloads.lock || workloads.ttl) && !clean)
    fmt::print("chaos: the lock and ttl clients' operations are in {}/locks.jsonl\n", dir);
  return clean;
}

// The bank check (bank_checker.h); true if it found nothing.
bool report_bank(const RunResult& run) {
  const chaos::BankReport r = chaos::check_bank(run.bank_reads, run.bank_total);
  for (const auto& line : r.bad) fmt::print("chaos: BAD BANK READ {}\n", line);
  if (!run.bank_final_read)
    fmt::print("chaos: the final read of the bank's accounts never succeeded\n");
  const chaos::BankCounts& c = run.bank_counts;
  fmt::print(
      "chaos: bank: {} transfers ({} by script), {} aborted and retried, {} unknown, {} failed, "
      "{} refused for want of funds, {} reads, bad sums={}, negative={}\n",
      c.transfers, c.by_script, c.aborted, c.unknown, c.failed, c.insufficient, r.reads,
      r.bad_sums_total, r.negative_total);
  return run.bank_final_read && r.bad_sums_total == 0 && r.negative_total == 0;
}

int report(const ChaosArgs& args, const Workloads& workloads, const RunResult& run,
           const std::string& history_path, const std::string& dir) {
  auto history_text = read_text(history_path);
  if (!history_text.is_ok()) {
    fmt::print("chaos: {}\n", history_text.status().to_string());
    return 1;
  }
  // Through the checker's own parser, so the verdict is about the file a person can re-check
  // with `synod lincheck`.
  auto history = lincheck::parse_history(*history_text);
  if (!history.is_ok()) {
    fmt::print("chaos: the history does not parse: {}\n", history.status().to_string());
    return 1;
  }
  lincheck::Limits limits;
  limits.timeout_seconds = args.check_timeout_s;
  const lincheck::Verdict verdict = lincheck::check(*history, limits);
  if (verdict.outcome != lincheck::Outcome::kLinearizable)
    fmt::print("{}", lincheck::format_verdict(verdict));
  std::vector<std::string> keys;
  for (int k = 0; k < run.keys_used; ++k) keys.push_back(chaos::key_name(k));
  const chaos::FinalReadReport final = chaos::check_final_reads(*history, args.clients, keys);
  for (const auto& line : final.lost) fmt::print("chaos: LOST {}\n", line);
  for (const auto& key : final.unread)
    fmt::print("chaos: the final read of {} never succeeded\n", key);
  for (const auto& line : run.crashes) fmt::print("chaos: CRASH {}\n", line);
  for (const auto& line : run.replace_failures) fmt::print("chaos: REPLACE FAILED {}\n", line);
  if (!run.leader_at_end) fmt::print("chaos: no leader within 30 s after the faults healed\n");
  // A run that injected nothing tested nothing about faults: not a pass.
  const bool faulted = total_faults(run.faults) > 0;
  if (!faulted)
    fmt::print(
        "chaos: no fault was injected (faults start after 0.5-2 s of calm and stop a few "
        "seconds before the end: give a longer --duration)\n");
  const chaos::OutcomeCounts c = chaos::count_outcomes(*history);
  const std::string summary = fmt::format(
      "chaos: {} ops on {} keys, {} acknowledged, {} failed, {} unknown, faults: {}, lost={}, "
      "verdict={}",
      c.total, run.keys_used, c.acknowledged, c.failed, c.unknown, fault_counts(run.faults),
      final.lost.size(), lincheck::outcome_name(verdict.outcome));
  fmt::print("{}\n", summary);
  write_html_report(args, history_path, *history_text, *history, verdict, summary);
  const bool clocks_clean = report_clock_workloads(workloads, run, dir);
  const bool bank_clean = !workloads.bank || report_bank(run);
  const bool clean = bank_clean && verdict.outcome == lincheck::Outcome::kLinearizable &&
                     final.lost.empty() && final.unread.empty() && run.crashes.empty() &&
                     run.replace_failures.empty() && run.leader_at_end && faulted && clocks_clean;
  return clean ? 0 : 1;
}

int run_chaos(ChaosArgs args) {
  auto faults = chaos::parse_fault_list(args.faults);
  if (!faults.is_ok()) {
    fmt::print(stderr, "synod chaos: --faults: {}\n", faults.status().message());
    return 2;
  }
  auto workloads = parse_workloads(args.workload);
  if (!workloads.is_ok()) {
    fmt::print(stderr, "synod chaos: --workload: {}\n", workloads.status().message());
    return 2;
  }
  if (!args.seed_given)
    args.seed = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
  const std::string dir = make_dir(args);
  if (dir.empty()) {
    fmt::print(stderr, "synod chaos: cannot create a directory for the replicas\n");
    return 1;
  }
  const std::string history_path = args.history.empty() ? dir + "/history.jsonl" : args.history;
  fmt::print("chaos: seed {}, history {}, replicas' data and logs in {}\n", args.seed, history_path,
             dir);
  std::fflush(stdout);
  ::signal(SIGPIPE, SIG_IGN);
  chaos::HistoryRecorder recorder;
  auto run = run_cluster(args, *faults, *workloads, dir, recorder);
  if (!run.is_ok()) {
    fmt::print("chaos: {}\n", run.status().to_string());
    return 1;
  }
  if (Status s = recorder.write(history_path); !s.is_ok()) {
    fmt::print("chaos: {}\n", s.to_string());
    return 1;
  }
  const int rc = report(args, *workloads, *run, history_path, dir);
  fmt::print("chaos: seed {}, history {}\n", args.seed, history_path);
  // A clean run needs no replica data (nN: the founders', and the machines that replaced them);
  // the logs and the history stay for a look.
  if (rc == 0 && args.dir.empty()) {
    std::error_code ec;
    std::vector<std::filesystem::path> data;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_directory() && name.size() > 1 && name[0] == 'n' &&
          name.find_first_not_of("0123456789", 1) == std::string::npos)
        data.push_back(entry.path());
    }
    for (const auto& path : data) std::filesystem::remove_all(path, ec);
  }
  return rc;
}

}  // namespace

void add_chaos_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ChaosArgs>();
  CLI::App* cmd = app.add_subcommand(
      "chaos",
      "Run clients against real server processes while killing, pausing, partitioning, "
      "restarting and replacing them and putting their clocks wrong; check the history (exit 0: "
      "faults "
      "injected, linearizable, nothing lost, no two lock holders, no TTL anomaly, every bank "
      "read sums to the total; 1: not; 2: bad usage)");
  cmd->add_option("--replicas", args->replicas, "3 or 5")
      ->check(CLI::IsMember({3, 5}))
      ->capture_default_str();
  cmd->add_option("--clients", args->clients, "concurrent clients")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--keys", args->keys,
                  "keys to start with; fresh ones follow when their budgets are spent")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--ops-per-key", args->ops_per_key,
                  "operations per key at most (keeps the check tractable); then the clients move "
                  "on to another key")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--active-keys", args->active_keys,
                  "keys in use at once: clients take the first this many with budget left")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--transactions", args->txn_percent,
                  "percent of the kv workload's operations that are transactions on a key and "
                  "its partner (MULTI/EXEC of two SETs or two GETs, an EVALSHA compare-and-set "
                  "of both)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  cmd->add_option("--duration", args->duration_s, "seconds of clients and faults")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--faults", args->faults,
                  "comma-separated: kill, pause, partition, restart-all, clock, replace (a "
                  "replica killed, its directory wiped, restarted under its old id by a careless "
                  "operator, which must be refused, then replaced by a new member under a new id "
                  "through MEMBER REPLACE)")
      ->capture_default_str();
  cmd->add_option("--workload", args->workload,
                  "comma-separated: kv (registers, checked for linearizability), lock (SET NX PX "
                  "/ DELIFEQ locks, checked for two holders), ttl (keys with PX, checked for "
                  "keys that reappear or expire early), bank (transfers by WATCH/MULTI/EXEC and by "
                  "script, checked for reads whose balances do not sum to the total)")
      ->capture_default_str();
  cmd->add_option("--lock-clients", args->lock_clients, "lock clients (with --workload lock)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--locks", args->locks, "locks they contend for")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--lock-ttl-ms", args->lock_ttl_ms, "a lock's PX is drawn from [this / 2, this]")
      ->check(CLI::Range(20, 600000))
      ->capture_default_str();
  cmd->add_option("--ttl-clients", args->ttl_clients, "ttl-key clients (with --workload ttl)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--bank-clients", args->bank_clients, "transfer clients (with --workload bank)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--bank-readers", args->bank_readers,
                  "clients reading every balance at once (with --workload bank)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--accounts", args->accounts, "the bank's accounts acct:0 .. (100 each)")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  cmd->add_option("--seed", args->seed,
                  "drives the clients' choices and the fault schedule (default: random, printed)")
      ->each([args](const std::string&) { args->seed_given = true; });
  cmd->add_option("--history", args->history,
                  "where to write the history (default DIR/history.jsonl)");
  cmd->add_option("--dir", args->dir, "directory for the replicas (default: a fresh one in /tmp)");
  cmd->add_option("--planted-bug", args->planted_bug,
                  fmt::format("passed to every server: {} (must be caught: exit 1)",
                              fmt::join(node::Server::planted_bug_names(), " | ")))
      ->check(CLI::IsMember(node::Server::planted_bug_names()));
  cmd->add_flag(
      "--careful-operator", args->careful_operator,
      "with --faults replace: skip the careless operator's restart of the wiped replica "
      "under its old id (the replace's other steps stay): shows that this restart is what "
      "catches --planted-bug wiped-replica-votes");
  cmd->add_flag("--lease-reads", args->lease_reads,
                "run the servers with --lease-reads (reads served by the leader's lease; with "
                "--faults clock, its clocks drift within the bound the lease assumes)");
  cmd->add_option("--request-timeout-ms", args->request_timeout_ms,
                  "the servers' --request-timeout-ms (clients wait 1 s longer)")
      ->check(CLI::Range(100, 60000))
      ->capture_default_str();
  cmd->add_option("--check-timeout-seconds", args->check_timeout_s,
                  "the linearizability check's budget (UNDECIDED, exit 1, when exceeded)")
      ->capture_default_str();
  cmd->callback([args, &exit_code] { exit_code = run_chaos(*args); });
}

}  // namespace synod::tools
