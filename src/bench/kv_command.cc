#include "bench/kv_command.h"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <thread>

#include "bench/etcd_driver.h"
#include "bench/load.h"
#include "bench/resp_driver.h"
#include "process/local_cluster.h"

namespace synod::bench {

namespace {

struct KvArgs {
  std::string target = "resp";
  std::string transaction = "none";
  std::string endpoints;
  int local_replicas = 0;
  std::vector<pid_t> server_pids;
  bool no_prefill = false;
  bool kv_line = false;
  bool check = false;
  LoadOptions load;
};

// Starts `replicas` Synod servers in a fresh temporary directory and waits for a leader.
Result<std::unique_ptr<process::LocalCluster>> start_local(int replicas) {
  std::string dir_template =
      (std::filesystem::temp_directory_path() / "synod-bench-kv-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr)
    return Status::io_error("cannot create a temporary directory");
  process::LocalCluster::Options o;
  o.binary = process::self_executable();
  o.dir = dir_template;
  o.replicas = replicas;
  SYNOD_RETURN_IF_ERROR(
      process::LocalCluster::pick_free_ports(replicas, o.client_port, o.peer_port));
  auto cluster = std::make_unique<process::LocalCluster>(o);
  SYNOD_RETURN_IF_ERROR(cluster->start_all());
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (cluster->leader() == 0) {
    if (Clock::now() > deadline) return Status::io_error("no leader within 60 s in " + o.dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cluster;
}

int run_kv(KvArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  LoadOptions& load = args.load;
  load.prefill = !args.no_prefill;
  load.server_pids = args.server_pids;
  if (load.connections < 1 || load.pipeline < 1 || load.read_share < 0 || load.read_share > 1) {
    fmt::print(stderr,
               "synod bench kv: need --connections >= 1, --pipeline >= 1, "
               "--read-share in [0, 1]\n");
    return 2;
  }
  auto transaction = parse_transaction(args.transaction);
  if (!transaction.is_ok()) {
    fmt::print(stderr, "synod bench kv: --transaction: {}\n", transaction.status().to_string());
    return 2;
  }
  load.transaction = *transaction;
  if (load.transaction == Transaction::kEvalsha && args.target != "resp") {
    fmt::print(stderr,
               "synod bench kv: --transaction evalsha needs --target resp (etcd has no "
               "scripts)\n");
    return 2;
  }
  std::unique_ptr<process::LocalCluster> cluster;
  if (args.local_replicas > 0) {
    if (args.target != "resp") {
      fmt::print(stderr, "synod bench kv: --local starts Synod servers; use --target resp\n");
      return 2;
    }
    auto started = start_local(args.local_replicas);
    if (!started.is_ok()) {
      fmt::print(stderr, "synod bench kv: {}\n", started.status().to_string());
      return 2;
    }
    cluster = std::move(*started);
    for (int i = 1; i <= cluster->replicas(); ++i)
      load.endpoints.push_back({"127.0.0.1", cluster->client_port(i)});
  } else {
    auto endpoints = parse_endpoints(args.endpoints);
    if (!endpoints.is_ok()) {
      fmt::print(stderr, "synod bench kv: --endpoints: {}\n", endpoints.status().to_string());
      return 2;
    }
    load.endpoints = std::move(*endpoints);
  }
  const Report report = args.target == "etcd" ? run_etcd_load(load) : run_resp_load(load);
  if (cluster) {
    cluster->stop_all();
    std::error_code ignored;
    std::filesystem::remove_all(cluster->options().dir, ignored);
  }
  if (!report.finished) {
    fmt::print(stderr,
               "synod bench kv: the load never reached its measurement window "
               "(prefill did not complete)\n");
    return 1;
  }
  std::string endpoints;
  for (const auto& e : load.endpoints) endpoints += (endpoints.empty() ? "" : ",") + e.to_string();
  if (args.kv_line) {
    fmt::print("{}\n", format_kv(report));
  } else {
    std::string mix = fmt::format("{:.0f}% reads", load.read_share * 100);
    if (load.transaction == Transaction::kMulti)
      mix = args.target == "etcd" ? "a Txn of Put, Put, Put, Range per op"
                                  : "MULTI/EXEC of 4 commands per op";
    if (load.transaction == Transaction::kEvalsha) mix = "EVALSHA of 2 calls per op";
    fmt::print("{}",
               format_human(report, fmt::format("bench kv: {} at {}, {} connections x {} in "
                                                "flight, {} B values, {} keys, {}",
                                                args.target, endpoints, load.connections,
                                                load.pipeline, load.value_bytes, load.keys, mix)));
  }
  if (args.check && (report.ops == 0 || report.errors > 0)) {
    fmt::print(stderr, "synod bench kv: check failed: {} ops, {} errors{}\n", report.ops,
               report.errors, report.first_error.empty() ? "" : " (" + report.first_error + ")");
    return 1;
  }
  return 0;
}

}  // namespace

void add_bench_kv_command(CLI::App& bench, int& exit_code) {
  auto args = std::make_shared<KvArgs>();
  CLI::App* kv = bench.add_subcommand(
      "kv",
      "closed-loop key-value load (SET/GET or MULTI/EVALSHA transactions over RESP, or etcd "
      "Put/Range over gRPC): "
      "throughput, latency percentiles, errors, CPU per operation");
  LoadOptions& l = args->load;
  kv->add_option("--target", args->target, "protocol: resp (Synod, Redis) or etcd (v3 gRPC)")
      ->check(CLI::IsMember({"resp", "etcd"}))
      ->capture_default_str();
  kv->add_option("--transaction", args->transaction,
                 "each operation one transaction (--read-share then unused): none, multi "
                 "(MULTI; SET; SET; INCR; GET; EXEC, or for etcd a Txn of Put, Put, Put, Range) "
                 "or evalsha (RESP only: a script doing SET and INCR, loaded by SCRIPT LOAD once "
                 "per connection)")
      ->check(CLI::IsMember({"none", "multi", "evalsha"}))
      ->capture_default_str();
  kv->add_option("--endpoints", args->endpoints, "HOST:PORT,... or PORT,... (127.0.0.1)");
  kv->add_option("--local", args->local_replicas,
                 "start a Synod cluster of this many replicas in a temporary directory, load "
                 "it, stop it (instead of --endpoints)");
  kv->add_option("--connections", l.connections, "connections (clients)")->capture_default_str();
  kv->add_option("--pipeline", l.pipeline, "requests in flight per connection")
      ->capture_default_str();
  kv->add_option("--value-bytes", l.value_bytes, "bytes per value")->capture_default_str();
  kv->add_option("--keys", l.keys, "size of the key space")->capture_default_str();
  kv->add_option("--read-share", l.read_share, "fraction of requests that read (0..1)")
      ->capture_default_str();
  kv->add_option("--duration", l.duration_seconds, "seconds measured")->capture_default_str();
  kv->add_option("--warmup", l.warmup_seconds, "seconds of load before measuring")
      ->capture_default_str();
  kv->add_option("--timeout-ms", l.request_timeout_ms,
                 "a request unanswered this long is an error (the connection is reopened)")
      ->capture_default_str();
  kv->add_option("--seed", l.seed, "seed of the key and operation choices")->capture_default_str();
  kv->add_option("--server-pids", args->server_pids,
                 "processes whose CPU time (/proc/PID/stat) is charged per operation")
      ->delimiter(',');
  kv->add_flag("--no-prefill", args->no_prefill,
               "do not write every key once before a load that reads");
  kv->add_flag("--kv", args->kv_line, "print one line of key=value pairs (for scripts)");
  kv->add_flag("--check", args->check, "exit 1 unless there were operations and no errors");
  kv->callback([args, &exit_code] {
    if (args->endpoints.empty() && args->local_replicas == 0) {
      fmt::print(stderr, "synod bench kv: give --endpoints or --local\n");
      exit_code = 2;
      return;
    }
    exit_code = run_kv(*args);
  });
}

}  // namespace synod::bench
