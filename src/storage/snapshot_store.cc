#include "storage/snapshot_store.h"

#include <fmt/format.h>

#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"
#include "paxos/codec.h"

namespace synod::storage {
namespace {

constexpr char kMagic[8] = {'S', 'Y', 'N', 'O', 'D', 'S', 'N', 'P'};
// Version 2 adds the configuration after the data; version 1 files (none) are still read.
constexpr uint32_t kVersion = 2;
constexpr size_t kHeaderSize = 48;
// The partial file is synced after every this many bytes of data (write_partial).
constexpr size_t kSyncEveryBytes = 4u << 20;

bool parse_name(const std::string& name, Slot& slot) {
  return parse_numbered_name(name, "snap-", ".snap", slot);
}

bool is_partial(const std::string& name) {
  Slot slot = 0;
  return parse_numbered_name(name, "snap-", ".snap.partial", slot);
}

}  // namespace

std::string snapshot_file_name(Slot slot) {
  return fmt::format("snap-{:020}.snap", slot);
}

std::string snapshot_partial_name(Slot slot) {
  return snapshot_file_name(slot) + ".partial";
}

Result<Snapshot> decode_snapshot_file(const std::string& name, std::string_view bytes,
                                      uint64_t expect_cluster_id, uint32_t expect_node_id) {
  if (bytes.size() < kHeaderSize || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0 ||
      crc32c(bytes.data(), kHeaderSize - 4) != load_u32(bytes.data() + kHeaderSize - 4))
    return Status::corruption(name + ": bad snapshot header at offset 0");
  const uint32_t version = load_u32(bytes.data() + 8);
  const uint32_t node = load_u32(bytes.data() + 12);
  const uint64_t cluster = load_u64(bytes.data() + 16);
  Snapshot s;
  s.slot = load_u64(bytes.data() + 24);
  const uint64_t size = load_u64(bytes.data() + 32);
  const uint32_t data_crc = load_u32(bytes.data() + 40);
  if (version != kVersion && version != 1)
    return Status::corruption(
        fmt::format("{}: snapshot format version {} not supported", name, version));
  if ((expect_cluster_id != 0 && cluster != expect_cluster_id) ||
      (expect_node_id != 0 && node != expect_node_id))
    return Status::invalid_argument(
        fmt::format("{} belongs to cluster {} node {}, not cluster {} node {}", name, cluster, node,
                    expect_cluster_id, expect_node_id));
  const size_t rest = bytes.size() - kHeaderSize;
  if (version == 1 ? rest != size : rest < size)
    return Status::corruption(
        fmt::format("{}: snapshot holds {} bytes, header says {}", name, rest, size));
  s.data.assign(bytes.substr(kHeaderSize, size));
  if (crc32c(s.data) != data_crc)
    return Status::corruption(
        fmt::format("{}: snapshot data fails its checksum (offset {})", name, kHeaderSize));
  if (version == 1) return s;
  // The configuration: length u32, an optional membership (paxos/codec.h), its CRC-32C u32.
  const size_t at = kHeaderSize + size;
  std::string_view tail = bytes.substr(at);
  if (tail.size() < 8 || load_u32(tail.data()) != tail.size() - 8 ||
      crc32c(tail.data() + 4, tail.size() - 8) != load_u32(tail.data() + tail.size() - 4))
    return Status::corruption(
        fmt::format("{}: snapshot configuration fails its checksum (offset {})", name, at));
  Reader in(tail.substr(4, tail.size() - 8));
  if (!paxos::decode_optional_membership(in, s.membership) || in.remaining() != 0)
    return Status::corruption(
        fmt::format("{}: snapshot configuration undecodable (offset {})", name, at + 4));
  return s;
}

Status SnapshotStore::save(const Snapshot& snapshot) {
  SYNOD_RETURN_IF_ERROR(write_partial(snapshot));
  return adopt(snapshot.slot);
}

Status SnapshotStore::write_partial(const Snapshot& snapshot) const {
  std::string header(kMagic, sizeof kMagic);
  put_u32(header, kVersion);
  put_u32(header, node_id_);
  put_u64(header, cluster_id_);
  put_u64(header, snapshot.slot);
  put_u64(header, snapshot.data.size());
  put_u32(header, crc32c(snapshot.data));
  put_u32(header, crc32c(header));
  std::string membership;
  paxos::encode_optional_membership(membership, snapshot.membership);
  std::string tail;
  put_u32(tail, static_cast<uint32_t>(membership.size()));
  tail += membership;
  put_u32(tail, crc32c(membership));
  SYNOD_RETURN_IF_ERROR(fs_.create_dir(dir_));
  // Written in three pieces, so that the data (the bulk) is never copied.
  auto file = fs_.open_writable(join_path(dir_, snapshot_partial_name(snapshot.slot)));
  if (!file.is_ok()) return file.status();
  SYNOD_RETURN_IF_ERROR((*file)->truncate(0));
  SYNOD_RETURN_IF_ERROR((*file)->write_at(0, header));
  // The data goes in pieces, each synced before the next, as Redis's incremental fsync does: a
  // file written whole and synced at once put tens of megabytes in front of the log's next
  // fdatasync, and the replica's loop waited for them (seconds, on a slow disk: long enough to
  // cost an election).
  for (size_t at = 0; at < snapshot.data.size(); at += kSyncEveryBytes) {
    const std::string_view piece =
        std::string_view(snapshot.data)
            .substr(at, std::min(kSyncEveryBytes, snapshot.data.size() - at));
    SYNOD_RETURN_IF_ERROR((*file)->write_at(kHeaderSize + at, piece));
    SYNOD_RETURN_IF_ERROR((*file)->sync());
  }
  SYNOD_RETURN_IF_ERROR((*file)->write_at(kHeaderSize + snapshot.data.size(), tail));
  SYNOD_RETURN_IF_ERROR((*file)->sync());
  return (*file)->close();
}

Status SnapshotStore::adopt(Slot slot) {
  SYNOD_RETURN_IF_ERROR(fs_.rename(join_path(dir_, snapshot_partial_name(slot)),
                                   join_path(dir_, snapshot_file_name(slot))));
  SYNOD_RETURN_IF_ERROR(fs_.sync_dir(dir_));
  auto names = fs_.list(dir_);
  if (!names.is_ok()) return names.status();
  std::vector<std::string> paths;
  for (const auto& n : *names) {
    Slot older = 0;
    if ((parse_name(n, older) && older < slot) || is_partial(n))
      paths.push_back(join_path(dir_, n));
  }
  return remove_files(fs_, remover_, std::move(paths), dir_);
}

Status SnapshotStore::discard_partial(Slot slot) {
  const std::string path = join_path(dir_, snapshot_partial_name(slot));
  auto exists = fs_.exists(path);
  if (!exists.is_ok()) return exists.status();
  return *exists ? fs_.remove(path) : Status::ok();
}

Status SnapshotStore::remove_partials() {
  auto exists = fs_.exists(dir_);
  if (!exists.is_ok()) return exists.status();
  if (!*exists) return Status::ok();
  auto names = fs_.list(dir_);
  if (!names.is_ok()) return names.status();
  for (const auto& n : *names) {
    if (is_partial(n)) SYNOD_RETURN_IF_ERROR(fs_.remove(join_path(dir_, n)));
  }
  return Status::ok();
}

Result<std::string> SnapshotStore::read_data(Slot slot, uint64_t offset, size_t n) const {
  return fs_.read_range(join_path(dir_, snapshot_file_name(slot)), kHeaderSize + offset, n);
}

Result<std::optional<Snapshot>> SnapshotStore::load_newest() {
  auto exists = fs_.exists(dir_);
  if (!exists.is_ok()) return exists.status();
  if (!*exists) return std::optional<Snapshot>();
  auto names = fs_.list(dir_);
  if (!names.is_ok()) return names.status();
  std::optional<std::string> newest;
  for (const auto& n : *names) {
    Slot slot = 0;
    if (parse_name(n, slot)) newest = n;  // sorted: zero-padded slots sort numerically
  }
  if (!newest) return std::optional<Snapshot>();
  const std::string path = join_path(dir_, *newest);
  auto bytes = fs_.read_file(path);
  if (!bytes.is_ok()) return bytes.status();
  auto snap = decode_snapshot_file(path, *bytes, cluster_id_, node_id_);
  if (!snap.is_ok()) return snap.status();
  return std::optional<Snapshot>(std::move(*snap));
}

}  // namespace synod::storage
