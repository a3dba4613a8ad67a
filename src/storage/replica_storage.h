// Everything one replica keeps on disk, behind one object: the write-ahead log of acceptor state
// (paxos_log.h) and the newest snapshot of the state machine (snapshot_store.h), in one data
// directory, under the directory's identity (identity.h), checked or created first. A driver
// persists each Ready's batch here, syncs, and — when it has snapshotted its state machine, or
// installed a peer's snapshot — saves the snapshot, which compacts the log.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "storage/paxos_log.h"
#include "storage/snapshot_store.h"

namespace synod::storage {

struct Recovered {
  paxos::DurableState state;         // acceptor state above the snapshot
  std::optional<Snapshot> snapshot;  // the newest snapshot, if any
};

class ReplicaStorage {
 public:
  // Opens or creates `options.dir`: first its identity (options.identity: an empty directory
  // with InitialClusterState::kExisting, another cluster's or node's, or a damaged IDENTITY is
  // refused), then the log and snapshot; recovery refuses on corruption (docs/wal-format.md).
  static Result<std::unique_ptr<ReplicaStorage>> open(FileSystem& fs, const LogOptions& options,
                                                      Recovered* recovered);

  void append(const paxos::PersistBatch& batch) { log_->append(batch); }
  Status flush() { return log_->flush(); }
  Status sync() { return log_->sync(); }
  // sync() in steps, the fdatasync on another thread (see Log::begin_sync). save_snapshot() may
  // run while a sync is in flight: it writes other files and removes only older segments, and
  // the current segment's checkpoint of the promise was made durable when it was created.
  Result<bool> begin_sync() { return log_->begin_sync(); }
  Status sync_file() { return log_->sync_file(); }
  Status end_sync(const Status& synced) { return log_->end_sync(synced); }
  bool sync_in_flight() const { return log_->sync_in_flight(); }
  // Makes `snapshot` durable (atomically), then drops log segments it makes unnecessary.
  Status save_snapshot(const Snapshot& snapshot);
  // save_snapshot() in two steps. write_snapshot() writes and syncs the partial file and touches
  // nothing else, so a forked child may run it on its copy of this object while the parent goes
  // on. adopt_snapshot() then renames it into place and compacts the log — or, if a snapshot as
  // new was saved meanwhile (a peer's, installed), removes it and returns false.
  Status write_snapshot(const Snapshot& snapshot) const {
    return snapshots_->write_partial(snapshot);
  }
  Result<bool> adopt_snapshot(Slot slot);
  Status discard_snapshot(Slot slot) { return snapshots_->discard_partial(slot); }
  Slot snapshot_slot() const { return snapshot_slot_; }
  // Bytes of the state machine encoding in the snapshot of `slot`, read from its file (to serve
  // peers).
  Result<std::string> read_snapshot(Slot slot, uint64_t offset, size_t n) const {
    return snapshots_->read_data(slot, offset, n);
  }

  PaxosLog& log() { return *log_; }
  const Identity& identity() const { return identity_; }
  // This open wrote the identity (the directory was empty, or from before identities).
  bool identity_created() const { return identity_created_; }

 private:
  ReplicaStorage(std::unique_ptr<PaxosLog> log, std::unique_ptr<SnapshotStore> snapshots)
      : log_(std::move(log)), snapshots_(std::move(snapshots)) {}

  std::unique_ptr<PaxosLog> log_;
  std::unique_ptr<SnapshotStore> snapshots_;
  Slot snapshot_slot_ = 0;
  Identity identity_;
  bool identity_created_ = false;
};

}  // namespace synod::storage
