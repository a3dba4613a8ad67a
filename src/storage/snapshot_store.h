// Snapshots of the state machine: one file per snapshot, named for the slot it covers, written
// atomically (a partial file, synced, renamed into place, the directory synced) and checksummed.
// Only the newest is kept once a newer one is durable. The two steps can be taken apart: a
// forked child writes the partial file while the server runs on, and the server adopts it when
// the child is done (node/server_core.h). Byte format: docs/wal-format.md.
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
// The name of the partial file a snapshot is written to before it is renamed into place. Any
// partial file left by a crash is removed when the store is opened (and by the next adopt()).
std::string snapshot_partial_name(Slot slot);

class SnapshotStore {
 public:
  // `remover`: how older snapshots are removed (file_system.h); unset, at once.
  SnapshotStore(FileSystem& fs, std::string dir, uint64_t cluster_id, uint32_t node_id,
                FileRemover remover = {})
      : fs_(fs),
        dir_(std::move(dir)),
        cluster_id_(cluster_id),
        node_id_(node_id),
        remover_(std::move(remover)) {}

  // Durable when it returns ok; then removes older snapshots. write_partial() then adopt().
  Status save(const Snapshot& snapshot);
  // Writes `snapshot` to its partial file and syncs it. Touches nothing but that file, so it may
  // run in a forked child while the parent goes on using this store.
  Status write_partial(const Snapshot& snapshot) const;
  // Renames the synced partial file of `slot` into place and syncs the directory; then removes
  // older snapshots and every other partial file.
  Status adopt(Slot slot);
  // Removes the partial file of `slot`, if any (a snapshot that is not to be adopted).
  Status discard_partial(Slot slot);
  // Removes every partial file (left by a crash while a snapshot was being written).
  Status remove_partials();
  // `n` bytes of the state machine's encoding in the snapshot of `slot`, from `offset`; the caller
  // keeps within the encoding's size (the file goes on with the configuration).
  Result<std::string> read_data(Slot slot, uint64_t offset, size_t n) const;
  // The newest snapshot, if any. A newest snapshot that fails its checksum is corruption (older
  // ones may no longer have the log they need), reported with its file name.
  Result<std::optional<Snapshot>> load_newest();

 private:
  FileSystem& fs_;
  std::string dir_;
  uint64_t cluster_id_;
  uint32_t node_id_;
  FileRemover remover_;
};

// Decodes a snapshot file's bytes (for load_newest and wal-dump).
Result<Snapshot> decode_snapshot_file(const std::string& name, std::string_view bytes,
                                      uint64_t expect_cluster_id, uint32_t expect_node_id);

}  // namespace synod::storage
