// synod: one binary, many subcommands.
#include <fmt/core.h>

#include <CLI/CLI.hpp>

#include "base/planted_bugs.h"
#include "tools/chaos_command.h"
#include "tools/check_command.h"
#include "tools/lincheck_command.h"
#include "tools/member_command.h"
#include "tools/server_commands.h"
#include "tools/sim_command.h"
#include "tools/snapshot_command.h"
#include "tools/status_command.h"
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
  synod::tools::add_identity_command(app, exit_code);
  synod::tools::add_status_command(app, exit_code);
  synod::tools::add_member_command(app, exit_code);
  synod::tools::add_snapshot_command(app, exit_code);
  synod::tools::add_bench_command(app, exit_code);
  synod::tools::add_check_command(app, exit_code);
  synod::tools::add_lincheck_command(app, exit_code);
  synod::tools::add_server_commands(app, exit_code);
  synod::tools::add_chaos_command(app, exit_code);
  // The registry of planted bugs (src/base/planted_bugs.h): what each one breaks, and what finds
  // it.
  app.add_subcommand("bugs", "List the planted bugs: their layer, the defect, and what finds each")
      ->callback([] {
        for (const synod::PlantedBugInfo& bug : synod::planted_bugs()) {
          const char* layer = bug.layer == synod::BugLayer::kProtocol  ? "protocol"
                              : bug.layer == synod::BugLayer::kReplica ? "replica"
                                                                       : "server";
          fmt::print("{:<30} {:<9} {}\n{:<40} found by: {}\n", bug.name, layer, bug.what, "",
                     bug.found_by);
        }
      });
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
