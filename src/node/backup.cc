#include "node/backup.h"

#include <fmt/format.h>

#include "base/coding.h"
#include "base/crc32c.h"

namespace synod::node {
namespace {

constexpr std::string_view kMagic = "SYNODBAK";

}  // namespace

std::string encode_backup(const Backup& backup) {
  std::string out;
  out.reserve(kBackupHeaderBytes + backup.state.size());
  out.append(kMagic);
  put_u32(out, kBackupFormatVersion);
  put_u64(out, backup.cluster_id);
  put_u64(out, backup.slot);
  put_u64(out, backup.taken_unix_ms);
  put_u64(out, backup.state.size());
  put_u32(out, crc32c(backup.state.data(), backup.state.size()));
  put_u32(out, crc32c(out.data(), out.size()));
  out.append(backup.state);
  return out;
}

Result<Backup> decode_backup(std::string_view bytes) {
  if (bytes.size() < kBackupHeaderBytes || bytes.substr(0, kMagic.size()) != kMagic)
    return Status::corruption("not a Synod backup (no SYNODBAK header)");
  const uint32_t header_crc = load_u32(bytes.data() + kBackupHeaderBytes - 4);
  if (crc32c(bytes.data(), kBackupHeaderBytes - 4) != header_crc)
    return Status::corruption("the backup's header fails its checksum");
  Reader in(bytes.substr(kMagic.size(), kBackupHeaderBytes - kMagic.size() - 4));
  uint32_t version = 0, state_crc = 0;
  uint64_t length = 0;
  Backup b;
  in.u32(version);
  in.u64(b.cluster_id);
  in.u64(b.slot);
  in.u64(b.taken_unix_ms);
  in.u64(length);
  in.u32(state_crc);
  if (version != kBackupFormatVersion) {
    return Status::corruption(fmt::format("backup format version {}; this build reads version {}",
                                          version, kBackupFormatVersion));
  }
  if (bytes.size() - kBackupHeaderBytes != length) {
    return Status::corruption(fmt::format("the backup holds {} bytes of state, its header says {}",
                                          bytes.size() - kBackupHeaderBytes, length));
  }
  const std::string_view state = bytes.substr(kBackupHeaderBytes);
  if (crc32c(state.data(), state.size()) != state_crc)
    return Status::corruption("the backup's state fails its checksum");
  b.state.assign(state);
  return b;
}

}  // namespace synod::node
