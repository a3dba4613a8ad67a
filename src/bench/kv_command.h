// `synod bench kv`: a closed-loop load generator for Synod, Redis (RESP) and etcd (v3 gRPC),
// registered under `synod bench` beside `bench wal`.
#pragma once

#include <CLI/CLI.hpp>

namespace synod::bench {

void add_bench_kv_command(CLI::App& bench, int& exit_code);

}  // namespace synod::bench
