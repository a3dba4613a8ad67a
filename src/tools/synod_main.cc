// synod: one binary, many subcommands.
#include <CLI/CLI.hpp>

#include "tools/chaos_command.h"
#include "tools/check_command.h"
#include "tools/lincheck_command.h"
#include "tools/server_commands.h"
#include "tools/sim_command.h"
#include "tools/storage_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"synod: a Multi-Paxos replicated log and linearizable key-value service"};
  app.require_subcommand(1);
  int exit_code = 0;
  synod::tools::add_sim_command(app, exit_code);
  synod::tools::add_wal_dump_command(app, exit_code);
  synod::tools::add_bench_command(app, exit_code);
  synod::tools::add_check_command(app, exit_code);
  synod::tools::add_lincheck_command(app, exit_code);
  synod::tools::add_server_commands(app, exit_code);
  synod::tools::add_chaos_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
