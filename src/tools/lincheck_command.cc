#include "tools/lincheck_command.h"

#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "chaos/html_report.h"
#include "lincheck/checker.h"

namespace synod::tools {

namespace {

struct LincheckArgs {
  std::string file;
  std::string html;  // where to draw the history (chaos/html_report.h); empty: nowhere
  lincheck::Limits limits;
};

int run_lincheck(const LincheckArgs& args) {
  std::ostringstream text;
  if (args.file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(args.file, std::ios::binary);
    if (!in) {
      std::cerr << "lincheck: cannot open " << args.file << '\n';
      return 2;
    }
    text << in.rdbuf();
  }
  Result<lincheck::History> history = lincheck::parse_history(text.str());
  if (!history.is_ok()) {
    std::cerr << "lincheck: " << args.file << ": " << history.status().message() << '\n';
    return 2;
  }
  const lincheck::Verdict verdict = lincheck::check(*history, args.limits);
  fmt::print("{}", lincheck::format_verdict(verdict));
  if (!args.html.empty()) {
    int64_t end_ns = 0;
    for (const lincheck::Operation& op : history->ops)
      end_ns = std::max(end_ns, op.return_ns.value_or(op.call_ns));
    chaos::ReportInput in;
    in.title = "synod lincheck " + args.file;
    in.summary = {std::string(lincheck::outcome_name(verdict.outcome)) +
                  fmt::format(": {} operations", history->ops.size())};
    in.history = &*history;
    in.verdict = &verdict;
    in.faults = chaos::fault_windows(text.str(), end_ns);
    std::ofstream out(args.html, std::ios::binary | std::ios::trunc);
    out << chaos::render_html_report(in);
    out.close();
    if (!out) {
      std::cerr << "lincheck: cannot write " << args.html << '\n';
      return 2;
    }
  }
  switch (verdict.outcome) {
    case lincheck::Outcome::kLinearizable:
      return 0;
    case lincheck::Outcome::kNotLinearizable:
      return 1;
    case lincheck::Outcome::kUndecided:
      return 2;
  }
  return 2;
}

}  // namespace

void add_lincheck_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<LincheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "lincheck",
      "Check a JSON Lines client history for linearizability (exit 0: linearizable, 1: not, "
      "2: malformed or undecided)");
  cmd->add_option("FILE", args->file, "The history (HISTORY-FORMAT.md); - reads standard input")
      ->required();
  cmd->add_option("--html", args->html,
                  "Also draw the history into this HTML file: throughput and latency over time, "
                  "fault windows from its nemesis notes, the failing key's operations");
  cmd->add_option("--timeout-seconds", args->limits.timeout_seconds,
                  "Give up (exit 2, UNDECIDED) after this long; 0: no limit")
      ->capture_default_str();
  cmd->add_option("--max-states", args->limits.max_states_per_key,
                  "Give up (exit 2, UNDECIDED) on a key after this many search states")
      ->capture_default_str();
  cmd->callback([args, &exit_code] { exit_code = run_lincheck(*args); });
}

}  // namespace synod::tools
