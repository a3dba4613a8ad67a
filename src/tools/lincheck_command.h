// `synod lincheck FILE`: decides whether a JSON Lines client history is linearizable.
#pragma once

#include <CLI/CLI.hpp>

namespace synod::tools {

// Adds the `lincheck` subcommand to `app`; its callback sets `exit_code` to 0 (linearizable),
// 1 (not linearizable) or 2 (malformed input, unreadable file, or undecided within the limits).
void add_lincheck_command(CLI::App& app, int& exit_code);

}  // namespace synod::tools
