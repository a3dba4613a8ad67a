// `synod snapshot save|restore`: online backup of a running cluster, and seeding a new cluster's
// replicas from one (docs/operations.md, "Backup and restore").
#pragma once

#include <CLI/CLI.hpp>

namespace synod::tools {

void add_snapshot_command(CLI::App& app, int& exit_code);

}  // namespace synod::tools
