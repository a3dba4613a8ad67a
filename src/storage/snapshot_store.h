// Snapshots of the state machine: one file per snapshot, named for the slot it covers, written
// atomically (temporary file, sync, rename, sync the directory) and checksummed. Only the newest
// is kept once a newer one is durable. Byte format: docs/wal-format.md.
#pragma once

#include <optional>
#include <string>

#include "base/types.h"
#include "paxos/membership.h"
#include "storage/file_system.h"

namespace synod::storage {

struct Snapshot {
  Slot slot = 0;     // every slot up to here is reflected in `data`
  std::string data;  // the state machine's own encoding
  // The configuration after `slot` (paxos::SnapshotRef::membership); null in a version-1 file.
  paxos::MembershipRef membership = nullptr;
  bool operator==(const Snapshot& o) const {
    return slot == o.slot && data == o.data &&
           (membership == o.membership ||
            (membership && o.membership && *membership == *o.membership));
  }
};

std::string snapshot_file_name(Slot slot);

class SnapshotStore {
 public:
  SnapshotStore(FileSystem& fs, std::string dir, uint64_t cluster_id, uint32_t node_id)
      : fs_(fs), dir_(std::move(dir)), cluster_id_(cluster_id), node_id_(node_id) {}

  // Durable when it returns ok; then removes older snapshots.
  Status save(const Snapshot& snapshot);
  // The newest snapshot, if any. A newest snapshot that fails its checksum is corruption (older
  // ones may no longer have the log they need), reported with its file name.
  Result<std::optional<Snapshot>> load_newest();

 private:
  FileSystem& fs_;
  std::string dir_;
  uint64_t cluster_id_;
  uint32_t node_id_;
};

// Decodes a snapshot file's bytes (for load_newest and wal-dump).
Result<Snapshot> decode_snapshot_file(const std::string& name, std::string_view bytes,
                                      uint64_t expect_cluster_id, uint32_t expect_node_id);

}  // namespace synod::storage
