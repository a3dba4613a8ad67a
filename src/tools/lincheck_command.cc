#include "tools/lincheck_command.h"

#include <fmt/core.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "lincheck/checker.h"

namespace synod::tools {

namespace {

struct LincheckArgs {
  std::string file;
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
  cmd->add_option("--timeout-seconds", args->limits.timeout_seconds,
                  "Give up (exit 2, UNDECIDED) after this long; 0: no limit")
      ->capture_default_str();
  cmd->add_option("--max-states", args->limits.max_states_per_key,
                  "Give up (exit 2, UNDECIDED) on a key after this many search states")
      ->capture_default_str();
  cmd->callback([args, &exit_code] { exit_code = run_lincheck(*args); });
}

}  // namespace synod::tools
