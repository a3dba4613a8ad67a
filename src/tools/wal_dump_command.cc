// `synod wal-dump DIR`: every segment, record and snapshot of a replica's data directory, for
// operators. Reads only; exits 1 naming the file and offset of the first bad record.
#include <fmt/format.h>

#include <memory>

#include "kv/store.h"
#include "storage/identity.h"
#include "storage/log.h"
#include "storage/paxos_log.h"
#include "storage/snapshot_store.h"
#include "tools/storage_commands.h"

namespace synod::tools {
namespace {

struct WalDumpArgs {
  std::string dir;
  bool summary = false;
  bool ids = false;
};

// An argument as an operator reads it: printable bytes as they are, others escaped, quoted if it
// holds a space or is empty, and long ones cut (with their length).
std::string shown_arg(std::string_view arg) {
  constexpr size_t kShown = 64;
  std::string out;
  for (const char c : arg.substr(0, kShown)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\')
      out += fmt::format("\\{}", c);
    else if (u >= 0x20 && u < 0x7f)
      out += c;
    else
      out += fmt::format("\\x{:02x}", u);
  }
  if (arg.size() > kShown) out += fmt::format("...({} bytes)", arg.size());
  if (arg.empty() || out.find(' ') != std::string::npos || out != arg) out = '"' + out + '"';
  return out;
}

// A command as the key-value store logs it: its arguments, and the log time it was stamped with.
std::string shown_command(const paxos::Command& c) {
  auto command = kv::decode_command(c.payload);
  if (!command.is_ok())
    return fmt::format("(not a key-value command, {} bytes: {})", c.payload.size(),
                       command.status().to_string());
  std::string out;
  for (const std::string& arg : command->args) out += (out.empty() ? "" : " ") + shown_arg(arg);
  if (command->log_time_ms != 0) out += fmt::format("  @{} ms", command->log_time_ms);
  return out;
}

int run_wal_dump(const WalDumpArgs& args) {
  auto fs = storage::make_posix_file_system();
  auto exists = fs->exists(args.dir);
  if (!exists.is_ok() || !*exists) {
    fmt::print(stderr, "wal-dump: no directory {}\n", args.dir);
    return 2;
  }
  if (auto identity = storage::read_identity(*fs, args.dir); identity.is_ok())
    fmt::print("identity: cluster {} node {} incarnation {} created {}\n", identity->cluster_id,
               identity->node_id, to_string(identity->incarnation),
               storage::format_unix_ms(identity->created_ms));
  else
    fmt::print("identity: {}\n", identity.status().to_string());
  storage::LogScan scan = storage::scan_log(*fs, args.dir);
  size_t next = 0;
  for (const auto& seg : scan.segments) {
    fmt::print("segment {} ({}): format {}, cluster {} node {}, {} bytes of records{}\n", seg.index,
               seg.name, seg.version, seg.cluster_id, seg.node_id, seg.end,
               seg.sealed ? ", sealed" : "");
    while (next < scan.records.size() && scan.records[next].segment == seg.index) {
      const auto& r = scan.records[next++];
      if (!args.summary)
        fmt::print("  {:>10}  {}\n", r.offset,
                   storage::describe_record(r.type, r.payload,
                                            args.ids ? storage::CommandShower{} : shown_command));
    }
  }
  auto names = fs->list(args.dir);
  if (names.is_ok()) {
    for (const auto& name : *names) {
      if (name.rfind("snap-", 0) != 0 || name.size() < 5 ||
          name.compare(name.size() - 5, 5, ".snap") != 0)
        continue;
      auto bytes = fs->read_file(storage::join_path(args.dir, name));
      if (!bytes.is_ok()) continue;
      auto snap = storage::decode_snapshot_file(name, *bytes, 0, 0);
      if (snap.is_ok())
        fmt::print("snapshot {}: covers slots up to {}, {} bytes\n", name, snap->slot,
                   snap->data.size());
      else
        fmt::print("snapshot {}: {}\n", name, snap.status().to_string());
    }
  }
  fmt::print("wal-dump: {} segments, {} records", scan.segments.size(), scan.records.size());
  if (scan.torn_bytes > 0)
    fmt::print(", {} bytes of torn tail (unsynced; recovery cuts them off)", scan.torn_bytes);
  fmt::print("\n");
  if (!scan.status.is_ok()) {
    fmt::print("wal-dump: {}\n", scan.status.to_string());
    return 1;
  }
  return 0;
}

}  // namespace

void add_wal_dump_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<WalDumpArgs>();
  CLI::App* cmd = app.add_subcommand(
      "wal-dump", "Print a replica's write-ahead log and snapshots; exit 1 on corruption");
  cmd->add_option("dir", args->dir, "The replica's data directory")->required();
  cmd->add_flag("--summary", args->summary, "Only segments and totals, not every record");
  cmd->add_flag("--ids", args->ids, "Show a value's commands by id only, not their arguments");
  cmd->callback([args, &exit_code] { exit_code = run_wal_dump(*args); });
}

}  // namespace synod::tools
