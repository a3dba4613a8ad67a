// `synod bench members`: membership changes under a write load against a local cluster of
// `synod server` processes, and the longest gap between acknowledged writes during each.
#pragma once

#include <CLI/CLI.hpp>

namespace synod::tools {

void add_bench_members_command(CLI::App& bench, int& exit_code);

}  // namespace synod::tools
