#include "tools/check_command.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <memory>

#include "base/planted_bugs.h"
#include "check/explorer.h"
#include "check/replica_explorer.h"
#include "tools/quorum_flags.h"

namespace synod::tools {

namespace {

struct CheckArgs {
  check::Bounds bounds;
  std::vector<std::string> bugs;
  QuorumFlags quorum;
  bool quorum_given = false;
  bool acceptors_given = false;
  bool progress = false;
  // `--replica`: the production Multi-Paxos replica instead of the single-decree roles.
  bool replica = false;
  check::ReplicaBounds replica_bounds;
  bool no_vouching = false;
  uint64_t max_states = 0;
};

// Whether `flag`'s value `v` is in [lo, hi]; if not, says so on stderr.
bool in_range(int v, int lo, int hi, const char* flag) {
  if (v >= lo && v <= hi) return true;
  std::cerr << "check: " << flag << " must be between " << lo << " and " << hi << '\n';
  return false;
}

// Each bound's range: wide enough for interesting runs, small enough to encode in a byte.
bool bounds_ok(const check::Bounds& b) {
  return in_range(b.acceptors, 1, 9, "--acceptors") && in_range(b.proposers, 1, 5, "--proposers") &&
         in_range(b.learners, 1, 4, "--learners") &&
         in_range(b.ballots_per_proposer, 1, 8, "--ballots") &&
         in_range(b.crashes, 0, 9, "--crashes");
}

bool plant_bugs(const std::vector<std::string>& names, paxos::Bugs& bugs) {
  for (const std::string& name : names) {
    if (!paxos::enable_bug(name, bugs)) {
      std::cerr << "check: unknown bug '" << name << "'; known:";
      for (const std::string& known : paxos::bug_names()) std::cerr << ' ' << known;
      std::cerr << '\n';
      return false;
    }
    if (auto reason = check::bug_not_applicable(name)) {
      std::cerr << "check: bug '" << name << "' does not apply to single-decree Paxos: " << *reason
                << '\n';
      return false;
    }
  }
  return true;
}

// Prints either explorer's result: a violation with a shortest trace to it, then the totals.
// Returns the exit status: 1 for a violation, 3 if the search stopped before it was `complete`
// (then it proves nothing), else 0.
template <typename SearchResult>
int print_result(const SearchResult& r, bool complete) {
  if (r.violation) {
    fmt::print("VIOLATION: {}\n", *r.violation);
    fmt::print("a shortest trace, {} steps:\n", r.trace.size());
    for (size_t i = 0; i < r.trace.size(); ++i) {
      const check::TraceStep& step = r.trace[i];
      fmt::print("  {:2}. {}\n", i + 1, step.action);
      for (const std::string& change : step.changes) fmt::print("        {}\n", change);
      for (const std::string& sent : step.sent) fmt::print("        sends {}\n", sent);
    }
    fmt::print("the violating state:\n");
    for (const std::string& line : r.final_state) fmt::print("        {}\n", line);
  }
  fmt::print("explored to depth {} in {:.2f} s ({})\n", r.max_depth, r.seconds,
             r.violation ? "stopped at the first violation"
             : complete  ? "every reachable state"
                         : "INCOMPLETE: stopped at --max-states; this proves nothing");
  if (!r.violation && !complete) {
    fmt::print("check: INCOMPLETE after {} states, {} transitions, 0 violations so far\n", r.states,
               r.transitions);
    return 3;
  }
  fmt::print("check: {} states, {} transitions, {} violations\n", r.states, r.transitions,
             r.violation ? 1 : 0);
  return r.violation ? 1 : 0;
}

// The quorum systems a check runs with: `true_quorum`, the configured one, says what "chosen"
// means; `quorum` is what the roles count with: under minority-quorum the planted, unverified
// system (announced on stdout), else the same.
struct CheckQuorums {
  paxos::QuorumSystem quorum;
  paxos::QuorumSystem true_quorum;
};

// Nothing (after saying why on stderr) if the flags do not combine or the system is refused.
std::optional<CheckQuorums> check_quorums(const CheckArgs& args, int members,
                                          const paxos::Bugs& bugs) {
  if (bugs.minority_quorum && args.quorum_given) {
    std::cerr << "check: --bug minority-quorum shrinks majority quorums; it does not combine with "
                 "--weights/--phase1/--phase2\n";
    return std::nullopt;
  }
  std::optional<paxos::QuorumSystem> quorum = configured_quorum("check", members, args.quorum);
  if (!quorum) return std::nullopt;
  CheckQuorums q{*quorum, *quorum};
  if (bugs.minority_quorum) {
    q.quorum = paxos::QuorumSystem::majority(quorum->members(), bugs);
    fmt::print("planted: {}\n", paxos::verify_quorum_system(q.quorum).message());
  }
  return q;
}

bool replica_bounds_ok(const check::ReplicaBounds& b) {
  return in_range(b.replicas, 1, 7, "--replicas") && in_range(b.values, 0, 8, "--values") &&
         in_range(b.elections, 0, 8, "--elections") && in_range(b.crashes, 0, 9, "--crashes") &&
         in_range(b.max_in_flight, 1, 64, "--max-in-flight") &&
         in_range(b.compactions, 0, 4, "--compactions") && in_range(b.reads, 0, 4, "--reads") &&
         in_range(b.timers, 0, 16, "--timers") && in_range(b.duplicates, 0, 8, "--duplicates") &&
         in_range(b.changes, 0, 4, "--changes") && in_range(b.wipes, 0, 2, "--wipes") &&
         in_range(b.transfers, 0, 4, "--transfers") &&
         in_range(b.lease_periods, 0, 4, "--lease-periods") &&
         (b.reconfig == check::Reconfig::kNone || in_range(b.replicas, 2, 6, "--replicas"));
}

int run_replica_check(CheckArgs& args) {
  const size_t weights = args.quorum.config.weights.size();
  check::ReplicaBounds& b = args.replica_bounds;
  if (weights != 0 && !args.acceptors_given) b.replicas = int(weights);
  b.crashes = args.bounds.crashes;
  b.vouching = !args.no_vouching;
  paxos::Bugs bugs;
  if (!replica_bounds_ok(b)) return 2;
  for (const std::string& name : args.bugs) {
    const PlantedBugInfo* info = find_planted_bug(name);
    if (info != nullptr && info->layer != BugLayer::kProtocol) {
      std::cerr << "check: bug '" << name << "' does not apply to the replica: it is planted in "
                << "the server around the core, which the model does not run; found by: "
                << info->found_by << '\n';
      return 2;
    }
    if (!paxos::enable_bug(name, bugs)) {
      std::cerr << "check: unknown bug '" << name << "'; known:";
      for (const std::string& known : paxos::bug_names()) std::cerr << ' ' << known;
      std::cerr << '\n';
      return 2;
    }
    if (auto reason = check::replica_bug_not_applicable(name)) {
      std::cerr << "check: bug '" << name << "' does not apply to the replica: " << *reason << '\n';
      return 2;
    }
    if (name == "transfer-skips-phase1" && b.transfers == 0) {
      std::cerr << "check: bug '" << name << "' needs a leader transfer: add --transfers 1\n";
      return 2;
    }
    if ((name == "unbound-replica-votes" || name == "promise-below-binding") &&
        (b.wipes == 0 || !b.absent)) {
      std::cerr << "check: bug '" << name << "' needs a wiped replica and a voter that never "
                << "heard of the binding: add --wipes 1 --absent\n";
      return 2;
    }
    if ((name == "lease-from-confirmation" || name == "lease-forgotten-on-restart" ||
         name == "lease-promised-by-accept" || name == "lease-stale-leader-heard") &&
        b.lease_periods == 0) {
      std::cerr << "check: bug '" << name << "' needs lease reads: add --lease-periods 1"
                << (name == "lease-forgotten-on-restart" ? " (and --crashes 1)" : "") << "\n";
      return 2;
    }
    if (name == "wiped-replica-votes" && b.wipes == 0) {
      std::cerr << "check: bug '" << name << "' needs a replica that loses its directory: add "
                << "--wipes 1\n";
      return 2;
    }
    if ((name == "reconfig-without-overlap" || name == "learner-votes") &&
        b.reconfig == check::Reconfig::kNone) {
      std::cerr << "check: bug '" << name << "' needs a configuration change: add --reconfig "
                << "replace (or promote)\n";
      return 2;
    }
  }
  const std::optional<CheckQuorums> q = check_quorums(args, b.replicas, bugs);
  if (!q) return 2;
  const check::ReplicaModelConfig config{b, q->quorum, q->true_quorum, bugs};
  fmt::print(
      "check: the production replica, {} replicas ({}), {} client values, {} elections, {} other "
      "timer firings, {} crash-restarts, {} snapshots, {} reads, at most {} messages in flight "
      "(each may be lost or reordered; {} duplicate deliveries){}{}{}{}{}{}{}\n",
      b.replicas, q->true_quorum.describe(), b.values, b.elections, b.timers, b.crashes,
      b.compactions, b.reads, b.max_in_flight, b.duplicates,
      b.reconfig == check::Reconfig::kNone
          ? ""
          : fmt::format(", n{} added as a learner, then {} change{} asked for ({})", b.replicas + 1,
                        b.changes, b.changes == 1 ? "" : "s",
                        b.reconfig == check::Reconfig::kPromote
                            ? fmt::format("promote n{}", b.replicas + 1)
                            : fmt::format("replace n{} by n{}", b.replicas, b.replicas + 1)),
      b.transfers == 0 ? ""
                       : fmt::format(", {} leader transfer{} asked for", b.transfers,
                                     b.transfers == 1 ? "" : "s"),
      b.wipes == 0
          ? ""
          : fmt::format(
                ", {} voter{} may lose its directory{}", b.wipes, b.wipes == 1 ? "" : "s",
                b.absent ? fmt::format(" (n{} down through the warm start)", b.replicas) : ""),
      b.lease_periods == 0 ? ""
                           : fmt::format(", lease reads, {} lease period{} passing",
                                         b.lease_periods, b.lease_periods == 1 ? "" : "s"),
      b.release ? ", chosen values let go of at once" : "",
      b.vouching ? "" : ", vouching not checked",
      args.bugs.empty() ? "" : ", planted bug " + fmt::format("{}", fmt::join(args.bugs, " + ")));
  const check::ReplicaModel model(config);
  const check::ReplicaExploreResult r =
      check::explore_replicas(model, args.max_states, args.progress ? &std::cerr : nullptr);
  if (!model.initial_steps().empty()) {
    fmt::print("start: n1 wins the first election{} ({} steps, not counted below):",
               b.reconfig == check::Reconfig::kNone ? "" : " and adds the learner",
               model.initial_steps().size());
    for (const std::string& step : model.initial_steps()) fmt::print(" {};", step);
    fmt::print("\n");
  }
  return print_result(r, r.complete);
}

int run_check(CheckArgs& args) {
  if (args.replica) return run_replica_check(args);
  const size_t weights = args.quorum.config.weights.size();
  if (weights != 0 && !args.acceptors_given) args.bounds.acceptors = int(weights);
  const check::Bounds& b = args.bounds;
  paxos::Bugs bugs;
  if (!bounds_ok(b) || !plant_bugs(args.bugs, bugs)) return 2;
  const std::optional<CheckQuorums> q = check_quorums(args, b.acceptors, bugs);
  if (!q) return 2;
  const check::ModelConfig config{b, q->quorum, q->true_quorum, bugs};
  fmt::print(
      "check: single-decree Paxos, {} acceptors ({}), {} proposers, {} learners, {} ballots per "
      "proposer, {} crash-restarts, network: every message may be lost, duplicated or "
      "reordered{}{}\n",
      b.acceptors, q->true_quorum.describe(), b.proposers, b.learners, b.ballots_per_proposer,
      b.crashes, b.explicit_drops ? " (explicit drops)" : "",
      args.bugs.empty() ? "" : ", planted bug " + fmt::format("{}", fmt::join(args.bugs, " + ")));
  const check::ExploreResult result =
      check::explore(check::Model(config), args.progress ? &std::cerr : nullptr);
  return print_result(result, true);
}

}  // namespace

void add_check_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check", "Model-check single-decree Paxos: every state of the real roles, small bounds");
  check::Bounds& b = args->bounds;
  cmd->add_option("--acceptors", b.acceptors, "Acceptors")->capture_default_str();
  cmd->add_option("--proposers", b.proposers, "Proposers, each with its own value")
      ->capture_default_str();
  cmd->add_option("--learners", b.learners, "Learners")->capture_default_str();
  cmd->add_option("--ballots", b.ballots_per_proposer, "Ballots each proposer may start")
      ->capture_default_str();
  cmd->add_option("--crashes", b.crashes, "Acceptor crash-restarts, in all")->capture_default_str();
  cmd->add_flag("--drops", b.explicit_drops,
                "Also explore removing messages from the network (loss is already covered by "
                "never delivering a message)");
  std::string bug_help = "Plant a bug:";
  for (const std::string& name : paxos::bug_names()) {
    if (!check::bug_not_applicable(name)) bug_help += " " + name;
  }
  cmd->add_option("--bug", args->bugs, bug_help);
  cmd->add_flag("--progress", args->progress, "Print each breadth-first level to stderr");
  cmd->add_flag("--replica", args->replica,
                "Explore the production Multi-Paxos replica (paxos::Replica) instead of the "
                "single-decree roles");
  check::ReplicaBounds& rb = args->replica_bounds;
  cmd->add_option("--replicas", rb.replicas, "--replica: replicas")->capture_default_str();
  cmd->add_option("--values", rb.values, "--replica: client values, each proposed once")
      ->capture_default_str();
  cmd->add_option("--elections", rb.elections, "--replica: election timeouts, in all")
      ->capture_default_str();
  cmd->add_option("--max-in-flight", rb.max_in_flight,
                  "--replica: distinct messages in flight (a send beyond is lost)")
      ->capture_default_str();
  cmd->add_flag("!--cold-start", rb.warm_start,
                "--replica: explore from the empty cluster, not from n1's first election won");
  cmd->add_option(
         "--timers", rb.timers,
         "--replica: heartbeat, retransmit, quorum-check and catch-up timers fired, in all")
      ->capture_default_str();
  cmd->add_option("--duplicates", rb.duplicates,
                  "--replica: deliveries that keep their message (a duplicate), in all")
      ->capture_default_str();
  cmd->add_option("--compactions", rb.compactions, "--replica: snapshots taken, in all")
      ->capture_default_str();
  cmd->add_option("--reads", rb.reads, "--replica: linearizable reads, in all")
      ->capture_default_str();
  cmd->add_flag("--release", rb.release,
                "--replica: replicas let go of chosen values as soon as they may (the server's "
                "--log-memory-bytes 0) and read them back from their durable chosen marks");
  cmd->add_option("--lease-periods", rb.lease_periods,
                  "--replica: lease reads on, and time passes this many lease periods in all (a "
                  "follower's stickiness runs out only once time has passed since it last heard "
                  "its leader or restarted)")
      ->capture_default_str();
  const std::map<std::string, check::Reconfig> reconfigs{{"none", check::Reconfig::kNone},
                                                         {"promote", check::Reconfig::kPromote},
                                                         {"replace", check::Reconfig::kReplace}};
  cmd->add_option("--reconfig", rb.reconfig,
                  "--replica: a replica joins as a learner at the start, and a leader may propose "
                  "one change: promote it (3 voters -> 4), or replace the highest voter by it")
      ->transform(CLI::CheckedTransformer(reconfigs, CLI::ignore_case));
  cmd->add_option("--changes", rb.changes,
                  "--replica --reconfig: configuration changes proposed, in all (a lost one may "
                  "be asked for again)")
      ->capture_default_str();
  cmd->add_option("--wipes", rb.wipes,
                  "--replica: voters that lose their directory and restart empty with a fresh "
                  "incarnation, in all (the warm start then binds every incarnation)")
      ->capture_default_str();
  cmd->add_flag("--absent", rb.absent,
                "--replica --wipes: the highest founding voter is down through the warm start, and "
                "comes back knowing only the bootstrap configuration (no binding)");
  cmd->add_option("--transfers", rb.transfers,
                  "--replica: leader transfers an operator asks a leader for (MEMBER TRANSFER), "
                  "in all, each to any other voter")
      ->capture_default_str();
  cmd->add_flag("--no-vouching", args->no_vouching,
                "--replica: do not check that answers are backed by durable state (to see what "
                "a durability bug breaks)");
  cmd->add_option("--max-states", args->max_states,
                  "Stop after this many states and report INCOMPLETE (exit 3); 0: no limit")
      ->capture_default_str();
  add_quorum_flags(cmd, args->quorum);
  cmd->callback([args, cmd, &exit_code] {
    args->quorum_given = quorum_flags_given(cmd);
    args->acceptors_given = cmd->count("--acceptors") > 0 || cmd->count("--replicas") > 0;
    exit_code = run_check(*args);
  });
}

}  // namespace synod::tools
