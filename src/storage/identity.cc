#include "storage/identity.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <ctime>

#include "base/coding.h"
#include "base/crc32c.h"

namespace synod::storage {
namespace {

constexpr char kIdentityMagic[8] = {'S', 'Y', 'N', 'O', 'D', 'I', 'D', 'N'};
constexpr uint32_t kIdentityVersion = 1;
constexpr size_t kIdentitySize = 56;

constexpr char kPinsMagic[8] = {'S', 'Y', 'N', 'O', 'D', 'P', 'I', 'N'};
constexpr uint32_t kPinsVersion = 1;
constexpr size_t kPinsHeaderSize = 28;
constexpr size_t kPinSize = 28;  // node u32, incarnation 16, first seen u64
constexpr uint32_t kMaxPins = 1 << 20;

uint64_t system_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void put_incarnation(std::string& out, const Incarnation& i) {
  put_u64(out, i.hi);
  put_u64(out, i.lo);
}
Incarnation load_incarnation(const char* p) {
  return Incarnation{load_u64(p), load_u64(p + 8)};
}

// Empty: missing, or holding nothing but files being created and a file system's lost+found
// (a data directory is often a mount point).
Result<bool> is_empty_dir(FileSystem& fs, const std::string& dir) {
  auto exists = fs.exists(dir);
  if (!exists.is_ok()) return exists.status();
  if (!*exists) return true;
  auto names = fs.list(dir);
  if (!names.is_ok()) return names.status();
  for (const auto& n : *names)
    if (!n.ends_with(".tmp") && n != "lost+found") return false;
  return true;
}

// "" for a directory named without a slash.
std::string parent_of(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : dir.substr(0, slash);
}

Status write_identity(FileSystem& fs, const std::string& dir, const Identity& identity) {
  auto there_before = fs.exists(dir);
  if (!there_before.is_ok()) return there_before.status();
  const bool existed = *there_before;
  SYNOD_RETURN_IF_ERROR(fs.create_dir(dir));
  // The directory's own name must be durable too, or a crash could lose the whole directory
  // after the replica promised something in it.
  if (const std::string parent = parent_of(dir); !existed && !parent.empty()) {
    auto there = fs.exists(parent);
    if (there.is_ok() && *there) SYNOD_RETURN_IF_ERROR(fs.sync_dir(parent));
  }
  return write_file_atomically(fs, dir, kIdentityFileName, encode_identity(identity));
}

std::string lost_data_refusal(const std::string& dir, uint32_t node_id) {
  return fmt::format(
      "data directory {} is empty or missing, and --initial-cluster-state is existing: node {}'s "
      "data is lost (or --data names the wrong directory). A replica must never rejoin under its "
      "old identity without its data: it would vote against promises it no longer remembers. "
      "Safe procedure: remove node {} from the cluster and add this machine as a new member, or "
      "run `synod member replace {} ...` (docs/operations.md, \"Replacing a failed machine\"). "
      "Only a member just added to a running cluster starts on an empty directory (--join); "
      "only the founding members of a new cluster with --initial-cluster-state new",
      dir, node_id, node_id, node_id);
}

}  // namespace

const char* to_string(InitialClusterState state) {
  switch (state) {
    case InitialClusterState::kNew:
      return "new";
    case InitialClusterState::kExisting:
      return "existing";
    case InitialClusterState::kJoin:
      return "join";
  }
  return "?";
}

std::string format_unix_ms(uint64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

std::string encode_identity(const Identity& identity) {
  std::string out(kIdentityMagic, sizeof kIdentityMagic);
  put_u32(out, kIdentityVersion);
  put_u32(out, identity.node_id);
  put_u64(out, identity.cluster_id);
  put_incarnation(out, identity.incarnation);
  put_u64(out, identity.created_ms);
  put_u32(out, static_cast<uint32_t>(identity.origin));
  put_u32(out, crc32c(out));
  return out;
}

Result<Identity> decode_identity(const std::string& name, std::string_view bytes) {
  if (bytes.size() != kIdentitySize)
    return Status::corruption(
        fmt::format("{}: identity file of {} bytes, not {}", name, bytes.size(), kIdentitySize));
  if (std::memcmp(bytes.data(), kIdentityMagic, sizeof kIdentityMagic) != 0)
    return Status::corruption(name + ": not an identity file (bad magic at offset 0)");
  if (crc32c(bytes.data(), kIdentitySize - 4) != load_u32(bytes.data() + kIdentitySize - 4))
    return Status::corruption(name + ": identity file fails its checksum (offset 52)");
  const uint32_t version = load_u32(bytes.data() + 8);
  if (version != kIdentityVersion)
    return Status::corruption(
        fmt::format("{}: identity format version {} not supported", name, version));
  Identity id;
  id.node_id = load_u32(bytes.data() + 12);
  id.cluster_id = load_u64(bytes.data() + 16);
  id.incarnation = load_incarnation(bytes.data() + 24);
  id.created_ms = load_u64(bytes.data() + 40);
  const uint32_t origin = load_u32(bytes.data() + 48);
  if (origin < 1 || origin > 3 || !id.incarnation.valid() || id.node_id == 0)
    return Status::corruption(name + ": identity file holds an impossible value");
  id.origin = static_cast<Identity::Origin>(origin);
  return id;
}

std::string describe_identity(const Identity& identity) {
  const char* origin = identity.origin == Identity::Origin::kNew    ? "new"
                       : identity.origin == Identity::Origin::kJoin ? "join"
                                                                    : "adopted";
  return fmt::format(
      "cluster_id: {}\nnode_id: {}\nincarnation: {}\ncreated: {} ({} ms)\norigin: {}\n",
      identity.cluster_id, identity.node_id, to_string(identity.incarnation),
      format_unix_ms(identity.created_ms), identity.created_ms, origin);
}

Result<Identity> read_identity(FileSystem& fs, const std::string& dir) {
  const std::string path = join_path(dir, kIdentityFileName);
  auto bytes = fs.read_file(path);
  if (!bytes.is_ok()) return bytes.status();
  return decode_identity(path, *bytes);
}

Result<Identity> open_identity(FileSystem& fs, const std::string& dir, uint64_t cluster_id,
                               uint32_t node_id, const IdentityOptions& options, bool* created) {
  if (created != nullptr) *created = false;
  const std::string path = join_path(dir, kIdentityFileName);
  auto exists = fs.exists(path);
  if (!exists.is_ok()) return exists.status();
  if (*exists) {
    auto identity = read_identity(fs, dir);
    if (!identity.is_ok()) return identity.status();
    if (identity->cluster_id != cluster_id || identity->node_id != node_id)
      return Status::invalid_argument(fmt::format(
          "data directory {} belongs to cluster {} node {} (incarnation {}), not to cluster {} "
          "node {} as the command line says: check --data, --id and --cluster-id",
          dir, identity->cluster_id, identity->node_id, to_string(identity->incarnation),
          cluster_id, node_id));
    return identity;
  }
  auto empty = is_empty_dir(fs, dir);
  if (!empty.is_ok()) return empty.status();
  Identity identity;
  identity.cluster_id = cluster_id;
  identity.node_id = node_id;
  if (!*empty) {
    identity.origin = Identity::Origin::kAdopted;  // a directory from before identities
  } else if (options.initial_state == InitialClusterState::kExisting) {
    return Status::invalid_argument(lost_data_refusal(dir, node_id));
  } else {
    identity.origin = options.initial_state == InitialClusterState::kJoin ? Identity::Origin::kJoin
                                                                          : Identity::Origin::kNew;
  }
  identity.incarnation =
      options.incarnation_source ? options.incarnation_source() : random_incarnation();
  if (!identity.incarnation.valid()) identity.incarnation.lo = 1;
  identity.created_ms = options.wall_ms ? options.wall_ms() : system_ms();
  SYNOD_RETURN_IF_ERROR(write_identity(fs, dir, identity));
  if (created != nullptr) *created = true;
  return identity;
}

std::string encode_peer_pins(uint64_t cluster_id, uint32_t node_id,
                             const std::map<NodeId, PeerPins::Pin>& pins) {
  std::string out(kPinsMagic, sizeof kPinsMagic);
  put_u32(out, kPinsVersion);
  put_u32(out, node_id);
  put_u64(out, cluster_id);
  put_u32(out, static_cast<uint32_t>(pins.size()));
  for (const auto& [peer, pin] : pins) {
    put_u32(out, peer.value);
    put_incarnation(out, pin.incarnation);
    put_u64(out, pin.first_seen_ms);
  }
  put_u32(out, crc32c(out));
  return out;
}

Result<std::map<NodeId, PeerPins::Pin>> decode_peer_pins(const std::string& name,
                                                         std::string_view bytes,
                                                         uint64_t expect_cluster_id,
                                                         uint32_t expect_node_id) {
  if (bytes.size() < kPinsHeaderSize + 4 ||
      std::memcmp(bytes.data(), kPinsMagic, sizeof kPinsMagic) != 0)
    return Status::corruption(name + ": not a peer pins file (bad header at offset 0)");
  if (crc32c(bytes.data(), bytes.size() - 4) != load_u32(bytes.data() + bytes.size() - 4))
    return Status::corruption(
        fmt::format("{}: peer pins fail their checksum (offset {})", name, bytes.size() - 4));
  const uint32_t version = load_u32(bytes.data() + 8);
  if (version != kPinsVersion)
    return Status::corruption(
        fmt::format("{}: peer pins format version {} not supported", name, version));
  const uint32_t node = load_u32(bytes.data() + 12);
  const uint64_t cluster = load_u64(bytes.data() + 16);
  if ((expect_cluster_id != 0 && cluster != expect_cluster_id) ||
      (expect_node_id != 0 && node != expect_node_id))
    return Status::invalid_argument(
        fmt::format("{} belongs to cluster {} node {}, not cluster {} node {}", name, cluster, node,
                    expect_cluster_id, expect_node_id));
  const uint32_t count = load_u32(bytes.data() + 24);
  if (count > kMaxPins || bytes.size() != kPinsHeaderSize + size_t{count} * kPinSize + 4)
    return Status::corruption(
        fmt::format("{}: {} pins do not fit its {} bytes", name, count, bytes.size()));
  std::map<NodeId, PeerPins::Pin> pins;
  for (uint32_t i = 0; i < count; ++i) {
    const char* p = bytes.data() + kPinsHeaderSize + size_t{i} * kPinSize;
    const NodeId peer{load_u32(p)};
    const PeerPins::Pin pin{load_incarnation(p + 4), load_u64(p + 20)};
    if (!peer.valid() || !pin.incarnation.valid() || !pins.emplace(peer, pin).second)
      return Status::corruption(fmt::format("{}: pin {} is impossible", name, i));
  }
  return pins;
}

Result<PeerPins> PeerPins::open(FileSystem& fs, const std::string& dir, uint64_t cluster_id,
                                uint32_t node_id) {
  PeerPins out(fs, dir, cluster_id, node_id);
  const std::string path = join_path(dir, kPeerPinsFileName);
  auto exists = fs.exists(path);
  if (!exists.is_ok()) return exists.status();
  if (!*exists) return out;
  auto bytes = fs.read_file(path);
  if (!bytes.is_ok()) return bytes.status();
  auto pins = decode_peer_pins(path, *bytes, cluster_id, node_id);
  if (!pins.is_ok()) return pins.status();
  out.pins_ = std::move(*pins);
  return out;
}

Result<PeerPins::Check> PeerPins::check(NodeId peer, const Incarnation& incarnation,
                                        uint64_t now_ms) {
  Check out;
  if (auto it = pins_.find(peer); it != pins_.end()) {
    if (it->second.incarnation != incarnation) out.refused = it->second;
    return out;
  }
  pins_[peer] = Pin{incarnation, now_ms};
  if (Status s = save(); !s.is_ok()) {
    pins_.erase(peer);  // not durable: not pinned
    return s;
  }
  out.pinned_now = true;
  return out;
}

Result<bool> PeerPins::forget(NodeId peer) {
  auto it = pins_.find(peer);
  if (it == pins_.end()) return false;
  const Pin was = it->second;
  pins_.erase(it);
  if (Status s = save(); !s.is_ok()) {
    pins_[peer] = was;
    return s;
  }
  return true;
}

Status PeerPins::save() {
  return write_file_atomically(*fs_, dir_, kPeerPinsFileName,
                               encode_peer_pins(cluster_id_, node_id_, pins_));
}

}  // namespace synod::storage
