// synod: one binary, many subcommands.
#include <fmt/core.h>

#include <CLI/CLI.hpp>

#include "tools/chaos_command.h"
#include "tools/check_command.h"
#include "tools/lincheck_command.h"
#include "tools/server_commands.h"
#include "tools/sim_command.h"
#include "tools/storage_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"synod: a Multi-Paxos replicated log and linearizable key-value service"};
  app.set_version_flag("--version", "synod " SYNOD_VERSION);
  // CLI11 reads a config file only for the top-level app, so --config lives there and every
  // subcommand passes it up (fallthrough, inherited by the subcommands added below); each
  // subcommand's options go in a section of its name: [server] id = 2 ... A key that names no
  // option is refused rather than silently dropped.
  app.set_config("--config", "",
                 "read options from a TOML or INI file, each subcommand's in a section of its "
                 "name ([server] ...); the command line wins over the file "
                 "(docs/synod-server.example.toml)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.fallthrough();
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
  } catch (const CLI::ConfigError& e) {
    fmt::print(stderr,
               "synod: --config: {}\n(each subcommand's options go in a section of its name, "
               "e.g. [server] then id = 2; see docs/synod-server.example.toml)\n",
               e.what());
    return 2;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
