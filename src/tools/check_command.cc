#include "tools/check_command.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "check/explorer.h"
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
};

// Each bound's range: wide enough for interesting runs, small enough to encode in a byte.
bool bounds_ok(const check::Bounds& b) {
  auto in = [](int v, int lo, int hi, const char* flag) {
    if (v >= lo && v <= hi) return true;
    std::cerr << "check: " << flag << " must be between " << lo << " and " << hi << '\n';
    return false;
  };
  return in(b.acceptors, 1, 9, "--acceptors") && in(b.proposers, 1, 5, "--proposers") &&
         in(b.learners, 1, 4, "--learners") && in(b.ballots_per_proposer, 1, 8, "--ballots") &&
         in(b.crashes, 0, 9, "--crashes");
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

void print_result(const check::ExploreResult& r) {
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
             r.violation ? "stopped at the first violation" : "every reachable state");
  fmt::print("check: {} states, {} transitions, {} violations\n", r.states, r.transitions,
             r.violation ? 1 : 0);
}

int run_check(CheckArgs& args) {
  const size_t weights = args.quorum.config.weights.size();
  if (weights != 0 && !args.acceptors_given) args.bounds.acceptors = int(weights);
  const check::Bounds& b = args.bounds;
  paxos::Bugs bugs;
  if (!bounds_ok(b) || !plant_bugs(args.bugs, bugs)) return 2;
  if (bugs.minority_quorum && args.quorum_given) {
    std::cerr << "check: --bug minority-quorum shrinks majority quorums; it does not combine with "
                 "--weights/--phase1/--phase2\n";
    return 2;
  }
  std::optional<paxos::QuorumSystem> quorum = configured_quorum("check", b.acceptors, args.quorum);
  if (!quorum) return 2;
  check::ModelConfig config{b, *quorum, *quorum, bugs};
  if (bugs.minority_quorum) {
    // The roles count with the planted, unverified system; "chosen" keeps the true meaning.
    config.quorum = paxos::QuorumSystem::majority(quorum->members(), bugs);
    fmt::print("planted: {}\n", paxos::verify_quorum_system(config.quorum).message());
  }
  fmt::print(
      "check: single-decree Paxos, {} acceptors ({}), {} proposers, {} learners, {} ballots per "
      "proposer, {} crash-restarts, network: every message may be lost, duplicated or "
      "reordered{}{}\n",
      b.acceptors, quorum->describe(), b.proposers, b.learners, b.ballots_per_proposer, b.crashes,
      b.explicit_drops ? " (explicit drops)" : "",
      args.bugs.empty() ? "" : ", planted bug " + fmt::format("{}", fmt::join(args.bugs, " + ")));
  const check::ExploreResult result =
      check::explore(check::Model(config), args.progress ? &std::cerr : nullptr);
  print_result(result);
  return result.violation ? 1 : 0;
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
  add_quorum_flags(cmd, args->quorum);
  cmd->callback([args, cmd, &exit_code] {
    args->quorum_given = quorum_flags_given(cmd);
    args->acceptors_given = cmd->count("--acceptors") > 0;
    exit_code = run_check(*args);
  });
}

}  // namespace synod::tools
