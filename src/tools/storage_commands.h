// `synod wal-dump DIR` (a log's records, readable), `synod identity` and `synod bench wal`
// (fdatasync latency and group-commit throughput of this machine's disk).
#pragma once

#include <CLI/CLI.hpp>

namespace synod::tools {

void add_wal_dump_command(CLI::App& app, int& exit_code);
// `synod identity --data DIR [--forget-peer N]`: the data directory's identity and peer pins.
void add_identity_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);

}  // namespace synod::tools
