// An online backup of a cluster's state machine (`synod snapshot save`), and its file: the
// key-value state as of a linearizable point, with the cluster and slot it came from, checksummed
// so that a copy damaged anywhere is refused. Byte format: docs/backup-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "kv/store.h"
#include "storage/replica_storage.h"

namespace synod::node {

inline constexpr uint32_t kBackupFormatVersion = 1;
inline constexpr size_t kBackupHeaderBytes = 52;
// SYNOD.BACKUP READ hands out at most this much per call.
inline constexpr size_t kBackupChunkBytes = size_t{4} << 20;

struct Backup {
  uint64_t cluster_id = 0;     // the cluster it was taken from
  uint64_t slot = 0;           // every log slot up to here is reflected in `state`
  uint64_t taken_unix_ms = 0;  // when (the serving replica's wall clock; for people only)
  std::string state;           // kv::Store::snapshot()
};

std::string encode_backup(const Backup& backup);
// Refuses (Status::corruption, naming what is wrong) anything but a whole, undamaged backup of
// a format this build reads.
Result<Backup> decode_backup(std::string_view bytes);

// A backup made from what one replica's data directory holds (`synod snapshot save --data`), for
// the recovery after a majority is lost (docs/operations.md, "After losing a majority"): its
// newest snapshot, then the values it knows were chosen above it applied in slot order, up to the
// first slot it knows no chosen value for. With `include_accepted`, a slot it knows no chosen
// value for takes the value it accepted there instead (the highest ballot it accepted): that
// recovers acknowledged writes it had accepted but not yet learned were chosen, at the price of
// perhaps applying a write that was never acknowledged, or one that lost its slot to another
// value (a risk only the lost replicas could have ruled out). Configuration changes and no-ops
// change no state.
struct SurvivorBackup {
  Backup backup;
  uint64_t chosen_applied = 0;    // values known chosen, applied above the snapshot
  uint64_t accepted_applied = 0;  // values only accepted, applied (include_accepted)
  uint64_t left_out = 0;          // values above the first gap, not applied
};
Result<SurvivorBackup> backup_from_survivor(uint64_t cluster_id,
                                            const storage::Recovered& recovered,
                                            bool include_accepted,
                                            const kv::StoreOptions& store_options,
                                            uint64_t now_unix_ms);

}  // namespace synod::node
