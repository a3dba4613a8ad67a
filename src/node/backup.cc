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

Result<SurvivorBackup> backup_from_survivor(uint64_t cluster_id,
                                            const storage::Recovered& recovered,
                                            bool include_accepted,
                                            const kv::StoreOptions& store_options,
                                            uint64_t now_unix_ms) {
  SurvivorBackup out;
  Slot slot = 0;
  auto store = recovered.snapshot ? kv::Store::restore(recovered.snapshot->data, store_options)
                                  : Result<kv::Store>(kv::Store(store_options));
  if (!store.is_ok()) return store.status();
  if (recovered.snapshot) slot = recovered.snapshot->slot;
  const paxos::DurableState& state = recovered.state;
  for (;; ++slot) {
    const paxos::Value* value = nullptr;
    if (auto c = state.chosen.find(slot + 1); c != state.chosen.end()) {
      value = &c->second;
      ++out.chosen_applied;
    } else if (auto a = state.accepted.find(slot + 1);
               include_accepted && a != state.accepted.end()) {
      value = &a->second.value;
      ++out.accepted_applied;
    } else {
      break;
    }
    if (value->membership) continue;
    for (const auto& command : value->commands) {
      auto decoded = kv::decode_command(command.payload);
      if (!decoded.is_ok())
        return Status::corruption(fmt::format("slot {}: an undecodable command ({})", slot + 1,
                                              decoded.status().to_string()));
      store->apply(*decoded);
    }
  }
  for (const auto& [s, v] : state.chosen) out.left_out += s > slot;
  for (const auto& [s, p] : state.accepted) out.left_out += s > slot && !state.chosen.count(s);
  out.backup.cluster_id = cluster_id;
  out.backup.slot = slot;
  out.backup.taken_unix_ms = now_unix_ms;
  out.backup.state = store->snapshot();
  return out;
}

}  // namespace synod::node
