// An online backup of a cluster's state machine (`synod snapshot save`), and its file: the
// key-value state as of a linearizable point, with the cluster and slot it came from, checksummed
// so that a copy damaged anywhere is refused. Byte format: docs/backup-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

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

}  // namespace synod::node
