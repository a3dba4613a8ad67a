// `synod check`: the exhaustive model checker of the single-decree Synod core.
#pragma once

#include <CLI/CLI.hpp>

namespace synod::tools {

// Adds the `check` subcommand to `app`; its callback explores the state space and sets
// `exit_code` (0: no violation, 1: a violation, 2: bad usage).
void add_check_command(CLI::App& app, int& exit_code);

}  // namespace synod::tools
