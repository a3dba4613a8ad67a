// `synod chaos`: a fault-injection run against real `synod server` processes on 127.0.0.1 —
// concurrent clients over a few keys while a nemesis kills, pauses, partitions and restarts
// replicas — whose history is then checked for linearizability and for lost acknowledged writes.
// docs/chaos.md describes the run.
#pragma once

namespace CLI {
class App;
}

namespace synod::tools {

// Adds the `chaos` subcommand; its callback sets `exit_code` to 0 (linearizable, nothing lost),
// 1 (an anomaly, an undecided check, or a cluster that would not serve) or 2 (bad usage).
void add_chaos_command(CLI::App& app, int& exit_code);

}  // namespace synod::tools
