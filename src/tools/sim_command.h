// `synod sim`: runs the seeded cluster simulator over a range of seeds.
#pragma once

#include <CLI/CLI.hpp>

namespace synod::tools {

// Adds the `sim` subcommand to `app`; its callback runs the simulations and sets `exit_code`.
void add_sim_command(CLI::App& app, int& exit_code);

}  // namespace synod::tools
