// `synod wal-dump DIR`: every segment, record and snapshot of a replica's data directory, for
// operators. Reads only; exits 1 naming the file and offset of the first bad record.
#include <fmt/format.h>

#include <memory>

#include "storage/log.h"
#include "storage/paxos_log.h"
#include "storage/snapshot_store.h"
#include "tools/storage_commands.h"

namespace synod::tools {
namespace {

struct WalDumpArgs {
  std::string dir;
  bool summary = false;
};

int run_wal_dump(const WalDumpArgs& args) {
  auto fs = storage::make_posix_file_system();
  auto exists = fs->exists(args.dir);
  if (!exists.is_ok() || !*exists) {
    fmt::print(stderr, "wal-dump: no directory {}\n", args.dir);
    return 2;
  }
  storage::LogScan scan = storage::scan_log(*fs, args.dir);
  size_t next = 0;
  for (const auto& seg : scan.segments) {
    fmt::print("segment {} ({}): format {}, cluster {} node {}, {} bytes of records{}\n", seg.index,
               seg.name, seg.version, seg.cluster_id, seg.node_id, seg.end,
               seg.sealed ? ", sealed" : "");
    while (next < scan.records.size() && scan.records[next].segment == seg.index) {
      const auto& r = scan.records[next++];
      if (!args.summary)
        fmt::print("  {:>10}  {}\n", r.offset, storage::describe_record(r.type, r.payload));
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
  cmd->callback([args, &exit_code] { exit_code = run_wal_dump(*args); });
}

}  // namespace synod::tools
