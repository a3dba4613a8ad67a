#include "tools/sim_command.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "base/planted_bugs.h"
#include "sim/cluster.h"
#include "sim/core_sim.h"
#include "tools/quorum_flags.h"

namespace synod::tools {

namespace {

struct SimArgs {
  std::string seeds = "1";
  uint64_t seed = 0;
  bool trace = false;
  std::string faults = "all";
  std::vector<std::string> bugs;
  double duration_s = 3.0;
  bool verbose = false;
  bool keep_going = false;
  bool story = false;
  // The whole replica (the default) or, with --protocol, the protocol core alone.
  bool core = false;
  bool core_flag = false;
  bool protocol = false;
  std::vector<std::string> core_bugs;  // with --core: bugs in what the server adds
  std::set<std::string> given;         // the options given on the command line
  QuorumFlags quorum;
  bool quorum_given = false;
  bool reconfig = false;
  bool early_wipes = false;
  bool transfer = false;
  bool lease = false;
  bool replicas_given = false;
  sim::Options options;
};

// Verifies the configured quorum system and hands it to the simulator; false on bad usage.
bool configure_quorum(SimArgs& args) {
  sim::Options& options = args.options;
  if (!args.quorum_given) return true;
  const size_t weights = args.quorum.config.weights.size();
  if (weights != 0 && !args.replicas_given) options.replicas = int(weights);
  if (options.bugs.minority_quorum) {
    std::cerr << "sim: --bug minority-quorum shrinks majority quorums; it does not combine with "
                 "--weights/--phase1/--phase2\n";
    return false;
  }
  if (!configured_quorum("sim", options.replicas, args.quorum)) return false;
  options.quorum = args.quorum.config;
  options.allow_unsafe_quorum = args.quorum.allow_unsafe;
  return true;
}

// The events a person wants to see: who leads, what fails, what heals.
void print_story(const std::string& trace) {
  static constexpr const char* kMarks[] = {"is now leader", "crash ",         "restart ",
                                           "partition (",   "clog (",         "heal",
                                           "faults stop",   "is now follower"};
  std::istringstream lines(trace);
  std::string line;
  while (std::getline(lines, line)) {
    for (const char* mark : kMarks) {
      if (line.find(mark) != std::string::npos) {
        const size_t space = line.find(' ');
        const double ms = std::stod(line.substr(2, space - 2)) / 1000.0;
        fmt::print("{:9.1f} ms  {}\n", ms, line.substr(space + 1));
        break;
      }
    }
  }
}

// Prints a seed's violation and the events before it; true if the run of seeds should stop
// there (the first violation is the one to study, unless --keep-going).
bool report_violation(const SimArgs& args, uint64_t seed, const std::string& violation,
                      const std::vector<std::string>& last_events) {
  fmt::print("VIOLATION seed {}: {}\n", seed, violation);
  fmt::print("  the last {} events (replay all: synod sim{} --seed {} --trace):\n",
             last_events.size(), args.core ? "" : " --protocol", seed);
  if (args.keep_going) return false;
  for (const std::string& line : last_events) fmt::print("    {}\n", line);
  return true;
}

// `synod sim --core`: the whole replica (node::ServerCore), its clients judged by lincheck.
int run_core_sim(const SimArgs& args, std::pair<uint64_t, uint64_t> range) {
  const sim::Options& given = args.options;
  // The whole-replica simulator's own defaults, unless the command line says otherwise.
  sim::CoreOptions options;
  auto set = [&args](const char* flag) { return args.given.count(flag) != 0; };
  if (set("--replicas")) options.replicas = given.replicas;
  if (set("--clients")) options.clients = given.clients;
  if (set("--loss")) options.loss = given.loss;
  if (set("--dup")) options.duplicate = given.duplicate;
  if (set("--reorder")) options.long_delay = given.long_delay;
  options.fault_phase_us = uint64_t(args.duration_s * 1e6);
  sim::apply_fault_mix(args.faults, options);  // known good: run_sim checked it
  options.disk_faults = given.disk_faults;
  options.lease = given.lease;
  options.swarm = given.swarm;
  options.bugs = given.bugs;
  options.log_memory_bytes = given.log_memory_bytes;
  for (const std::string& bug : args.core_bugs) sim::enable_core_bug(bug, options);
  const auto started = std::chrono::steady_clock::now();
  uint64_t runs = 0, violations = 0, ops = 0, acknowledged = 0, reads = 0, unknown = 0, crashes = 0,
           partitions = 0, deferred = 0, inline_syncs = 0, leaders = 0, hostile = 0, large = 0;
  uint64_t snapshots = 0, superseded = 0, failed = 0, crashed = 0;
  uint64_t slowest_liveness_us = 0;
  for (uint64_t seed = range.first; seed <= range.second; ++seed) {
    sim::CoreResult r = sim::run_core_seed(options, seed, args.trace ? &std::cout : nullptr);
    ++runs;
    ops += r.ops;
    acknowledged += r.writes_acknowledged;
    reads += r.reads_ok;
    unknown += r.unknown;
    crashes += r.crashes;
    partitions += r.partitions;
    deferred += r.syncs_deferred;
    inline_syncs += r.syncs_inline;
    snapshots += r.snapshots_deferred;
    superseded += r.snapshots_superseded;
    failed += r.snapshots_failed;
    crashed += r.crashes_in_snapshot;
    leaders += r.leaders;
    hostile += r.hostile_messages;
    large += r.large_values;
    slowest_liveness_us = std::max(slowest_liveness_us, r.liveness_us);
    if (args.verbose || args.trace || range.first == range.second) {
      fmt::print(
          "seed {}: {} ops ({} writes acknowledged, {} reads, {} open), {} leaders, {} crashes, "
          "{} partitions, {} deferred and {} inline syncs, converged {:.0f} ms after faults "
          "stopped, trace digest {:016x}\n",
          seed, r.ops, r.writes_acknowledged, r.reads_ok, r.unknown, r.leaders, r.crashes,
          r.partitions, r.syncs_deferred, r.syncs_inline, r.liveness_us / 1000.0, r.digest);
    }
    if (r.violation) {
      ++violations;
      if (report_violation(args, seed, *r.violation, r.last_events)) break;
    }
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  fmt::print(
      "sim --core: {} runs, {} violations ({} client ops: {} writes acknowledged, {} reads, {} "
      "left open; {} leader elections, {} crashes, {} partitions, {} hostile messages, {} large "
      "values, {} deferred and {} inline syncs, {} snapshots off the loop ({} superseded by a "
      "peer's, {} failed, {} crashes during one), slowest convergence {:.0f} ms, {:.1f} s)\n",
      runs, violations, ops, acknowledged, reads, unknown, leaders, crashes, partitions, hostile,
      large, deferred, inline_syncs, snapshots, superseded, failed, crashed,
      slowest_liveness_us / 1000.0, wall_s);
  return violations == 0 ? 0 : 1;
}

int run_sim(SimArgs& args) {
  sim::Options& options = args.options;
  if (args.protocol && args.core_flag) {
    std::cerr << "sim: --protocol and --core exclude each other\n";
    return 2;
  }
  if (!args.protocol && (args.quorum_given || args.story || args.reconfig || args.transfer)) {
    std::cerr << "sim: weighted quorums, --reconfig, --transfer and --story are the protocol "
                 "simulator's: add --protocol\n";
    return 2;
  }
  if (args.early_wipes && !args.reconfig) {
    std::cerr << "sim: --early-wipes needs --reconfig\n";
    return 2;
  }
  if (args.reconfig) options.reconfig = 0.3;
  options.early_wipes = args.early_wipes;
  if (args.transfer) options.transfer = 0.2;
  options.lease = args.lease;
  if (!args.protocol && options.link_bytes_per_ms != 0) {
    std::cerr << "sim: --link-bytes-per-ms is the protocol simulator's: add --protocol\n";
    return 2;
  }
  args.core = !args.protocol;
  if (options.replicas < 1 || options.replicas > 63) {
    std::cerr << "sim: --replicas must be between 1 and 63\n";
    return 2;
  }
  if (!options.apply_fault_mix(args.faults)) {
    std::cerr << "sim: unknown fault mix '" << args.faults
              << "' (none, network, crash, partition, all)\n";
    return 2;
  }
  if (args.faults != "network" && args.faults != "all") {
    // The mix turns the network's faults off; a knob given for them would be ignored silently.
    for (const char* flag : {"--loss", "--dup", "--reorder"}) {
      if (args.given.count(flag) != 0) {
        std::cerr << "sim: " << flag << " is a network fault, which --faults " << args.faults
                  << " turns off (use --faults network or all)\n";
        return 2;
      }
    }
  }
  for (const std::string& bug : args.bugs) {
    const auto& core_only = sim::core_bug_names();
    if (std::find(core_only.begin(), core_only.end(), bug) != core_only.end()) {
      if (!args.core) {
        std::cerr << "sim: --bug " << bug << " is in what the server adds to the core (or its "
                  << "router); the protocol simulator (--protocol) does not run it\n";
        return 2;
      }
      args.core_bugs.push_back(bug);
      continue;
    }
    if (!paxos::enable_bug(bug, options.bugs)) {
      std::cerr << "sim: unknown bug '" << bug
                << "'; known: " << planted_bug_list(BugLayer::kProtocol) << "; without --protocol "
                << "also " << planted_bug_list(BugLayer::kReplica) << ", "
                << planted_bug_list(BugLayer::kServer) << '\n';
      return 2;
    }
  }
  if (!configure_quorum(args)) return 2;
  options.fault_phase_us = uint64_t(args.duration_s * 1e6);
  auto range = sim::parse_seed_range(args.seeds);
  if (args.seed != 0) range = std::make_pair(args.seed, args.seed);
  if (!range) {
    std::cerr << "sim: --seeds wants A-B or A, got '" << args.seeds << "'\n";
    return 2;
  }
  if (args.core) {
    if (args.quorum_given || args.story) {
      std::cerr << "sim: --core runs majority quorums and has no --story\n";
      return 2;
    }
    if (options.replicas > 9) {
      std::cerr << "sim: --core takes at most 9 replicas\n";
      return 2;
    }
    return run_core_sim(args, *range);
  }
  const auto started = std::chrono::steady_clock::now();
  uint64_t runs = 0, chosen = 0, acknowledged = 0, violations = 0, crashes = 0, partitions = 0,
           leaders = 0, events = 0, syncs = 0, torn_tails = 0, snapshots = 0, installs = 0,
           reconfigurations = 0, transfers = 0, handovers = 0, probed = 0;
  uint64_t slowest_liveness_us = 0, slowest_transfer_us = 0;
  for (uint64_t seed = range->first; seed <= range->second; ++seed) {
    std::ostringstream story;
    std::ostream* trace = args.trace ? &std::cout : args.story ? &story : nullptr;
    sim::RunResult r = sim::run_seed(options, seed, trace);
    if (args.story) print_story(story.str());
    ++runs;
    chosen += r.commands_chosen;
    acknowledged += r.commands_acknowledged;
    crashes += r.crashes;
    partitions += r.partitions;
    leaders += r.leaders;
    events += r.events;
    syncs += r.syncs;
    torn_tails += r.torn_tails;
    snapshots += r.snapshots_taken;
    installs += r.snapshots_installed;
    reconfigurations += r.reconfigurations;
    transfers += r.transfers_asked;
    handovers += r.transfers_completed;
    probed += r.transfer_probed ? 1 : 0;
    slowest_transfer_us = std::max(slowest_transfer_us, r.transfer_probe_us);
    slowest_liveness_us = std::max(slowest_liveness_us, r.liveness_us);
    if (args.verbose || args.trace || range->first == range->second) {
      fmt::print(
          "seed {}: {} slots, {} commands chosen ({} acknowledged), {} leaders, {} crashes, {} "
          "partitions, {} configuration changes, converged {:.0f} ms after faults stopped, {} "
          "link drops, trace digest {:016x}\n",
          seed, r.slots_chosen, r.commands_chosen, r.commands_acknowledged, r.leaders, r.crashes,
          r.partitions, r.reconfigurations, r.liveness_us / 1000.0, r.link_drops, r.digest);
    }
    if (r.violation) {
      ++violations;
      if (report_violation(args, seed, *r.violation, r.last_events)) break;
    }
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  fmt::print(
      "sim: {} runs, {} commands chosen, {} violations ({} acknowledged, {} leader elections, "
      "{} crashes, {} partitions, {} configuration changes, {} disk syncs, {} torn tails cut, {} "
      "snapshots taken, {} installed from peers, {} events, slowest convergence {:.0f} ms, {:.1f} "
      "s)\n",
      runs, chosen, violations, acknowledged, leaders, crashes, partitions, reconfigurations, syncs,
      torn_tails, snapshots, installs, events, slowest_liveness_us / 1000.0, wall_s);
  if (options.transfer > 0)
    fmt::print(
        "sim: {} leader transfers asked, {} completed; the transfer probe ran in {} runs, slowest "
        "handover {:.1f} ms\n",
        transfers, handovers, probed, slowest_transfer_us / 1000.0);
  return violations == 0 ? 0 : 1;
}

}  // namespace

void add_sim_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<SimArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sim", "Run the deterministic cluster simulator: real protocol code, simulated faults");
  cmd->add_option("--seeds", args->seeds, "Seeds to run, A-B or A")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Run this one seed (same as --seeds S)");
  cmd->add_option("--replicas", args->options.replicas, "Replicas in the cluster (3, 5, 7)")
      ->capture_default_str();
  cmd->add_option("--clients", args->options.clients, "Concurrent clients")->capture_default_str();
  cmd->add_option("--duration", args->duration_s, "Simulated seconds of faults per run")
      ->capture_default_str();
  cmd->add_option("--faults", args->faults, "Fault mix: none, network, crash, partition, all")
      ->capture_default_str();
  cmd->add_option("--loss", args->options.loss, "Message loss probability")->capture_default_str();
  cmd->add_option("--dup", args->options.duplicate, "Message duplication probability")
      ->capture_default_str();
  cmd->add_option("--reorder", args->options.long_delay,
                  "Probability a message is held back and overtaken")
      ->capture_default_str();
  cmd->add_option("--link-bytes-per-ms", args->options.link_bytes_per_ms,
                  "Each link carries this many bytes per simulated ms, one message after another "
                  "(0: unlimited; --protocol)")
      ->capture_default_str();
  cmd->add_option_function<size_t>(
      "--log-memory-bytes", [args](size_t bytes) { args->options.log_memory_bytes = bytes; },
      "Chosen values each replica keeps in memory before reading them back from its log "
      "(server's --log-memory-bytes); unset: by seed, 0, 1 KiB or the server's default");
  cmd->add_option("--large-values", args->options.large_values,
                  "Chance that a command's value is large (up to the value limit)")
      ->capture_default_str();
  cmd->add_option("--bug", args->bugs,
                  "Plant a bug: " + planted_bug_list(BugLayer::kProtocol) +
                      "; without --protocol also " + planted_bug_list(BugLayer::kReplica) + ", " +
                      planted_bug_list(BugLayer::kServer) +
                      " (the router's; each is described in `synod bugs`)");
  cmd->add_flag("--disk-faults", args->options.disk_faults,
                "A crash may tear the last unsynced writes at any byte and flip bits in them");
  cmd->add_flag("--core", args->core_flag,
                "Simulate the whole replica the server runs (protocol core, log, snapshots, "
                "key-value store, clocks, early sends and syncs in flight) with clients whose "
                "history lincheck judges: the default, kept for old command lines");
  cmd->add_flag("--protocol", args->protocol,
                "Simulate the protocol core alone, with the real write-ahead log on simulated "
                "disks, a hostile peer and weighted quorums: faster, and the only mode with "
                "--story and --weights");
  cmd->add_flag("--reconfig", args->reconfig,
                "Change the configuration at random under every fault: add learners (spare "
                "replicas), promote, replace (the leader too), demote and remove members "
                "(--protocol)");
  cmd->add_flag("--early-wipes", args->early_wipes,
                "With --reconfig: wipe a voter's directory before every member has committed the "
                "binding of its incarnation too (members that never heard the old incarnation "
                "listen to the new one)");
  cmd->add_flag("--transfer", args->transfer,
                "Ask the leader to hand over to another voter at random (with --reconfig, "
                "before any change that removes it), and once calm check that a handover to a "
                "healthy voter completes within the minimum election timeout (--protocol)");
  cmd->add_flag("--lease", args->lease,
                "Lease reads: every replica runs with production's read lease, and each one's "
                "clock runs fast or slow within the clock-rate bound");
  cmd->add_flag("--trace", args->trace, "Print every event of the run");
  cmd->add_flag("--verbose", args->verbose, "One line per seed");
  cmd->add_flag("--story", args->story,
                "Print a run's leader changes, crashes, partitions and heals as they happen");
  cmd->add_flag("!--no-swarm", args->options.swarm,
                "Use the fault knobs as given for every seed instead of scaling them per seed");
  cmd->add_flag("--keep-going", args->keep_going,
                "Run every seed even after a violation (one line per violation)");
  add_quorum_flags(cmd, args->quorum);
  cmd->callback([args, cmd, &exit_code] {
    args->quorum_given = quorum_flags_given(cmd);
    args->replicas_given = cmd->count("--replicas") > 0;
    for (const char* flag : {"--replicas", "--clients", "--loss", "--dup", "--reorder"})
      if (cmd->count(flag) > 0) args->given.insert(flag);
    exit_code = run_sim(*args);
  });
}

}  // namespace synod::tools
