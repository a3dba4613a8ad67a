// `synod member list|add|promote|remove|replace --endpoints A,B,C ...`: the MEMBER admin
// commands from the command line (docs/operations.md, "Grow", "Shrink", "Replace a machine").
#pragma once

#include <CLI/CLI.hpp>

namespace synod::tools {

void add_member_command(CLI::App& app, int& exit_code);

}  // namespace synod::tools
