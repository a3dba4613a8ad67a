#include "storage/replica_storage.h"

namespace synod::storage {

Result<std::unique_ptr<ReplicaStorage>> ReplicaStorage::open(FileSystem& fs,
                                                             const LogOptions& options,
                                                             Recovered* recovered) {
  bool created = false;
  auto identity = open_identity(fs, options.dir, options.cluster_id, options.node_id,
                                options.identity, &created);
  if (!identity.is_ok()) return identity.status();
  auto snapshots = std::make_unique<SnapshotStore>(fs, options.dir, options.cluster_id,
                                                   options.node_id, options.remove_files);
  auto snapshot = snapshots->load_newest();
  if (!snapshot.is_ok()) return snapshot.status();
  // A snapshot that was being written when the replica stopped is of no use: it was never
  // adopted, so nothing depends on it.
  SYNOD_RETURN_IF_ERROR(snapshots->remove_partials());
  Recovered out;
  auto log = PaxosLog::open(fs, options, &out.state);
  if (!log.is_ok()) return log.status();
  std::unique_ptr<ReplicaStorage> storage(
      new ReplicaStorage(std::move(*log), std::move(snapshots)));
  storage->identity_ = *identity;
  storage->identity_created_ = created;
  if (*snapshot) {
    // The snapshot stands for every slot up to its own; entries there may linger in segments not
    // yet compacted and are dropped here.
    const Slot upto = (*snapshot)->slot;
    storage->snapshot_slot_ = upto;
    std::erase_if(out.state.accepted, [&](const auto& kv) { return kv.first <= upto; });
    std::erase_if(out.state.chosen, [&](const auto& kv) { return kv.first <= upto; });
    out.snapshot = std::move(**snapshot);
  }
  if (recovered != nullptr) *recovered = std::move(out);
  return storage;
}

Status ReplicaStorage::save_snapshot(const Snapshot& snapshot) {
  if (snapshot.slot <= snapshot_slot_) return Status::ok();  // already covered
  SYNOD_RETURN_IF_ERROR(write_snapshot(snapshot));
  return adopt_snapshot(snapshot.slot).status();
}

Result<bool> ReplicaStorage::adopt_snapshot(Slot slot) {
  if (slot <= snapshot_slot_) {  // already covered
    SYNOD_RETURN_IF_ERROR(snapshots_->discard_partial(slot));
    return false;
  }
  // The snapshot must be durable before any log segment it replaces is removed.
  SYNOD_RETURN_IF_ERROR(snapshots_->adopt(slot));
  snapshot_slot_ = slot;
  SYNOD_RETURN_IF_ERROR(log_->compact(slot));
  return true;
}

}  // namespace synod::storage
