// A data directory's identity, and the incarnations this replica has seen its peers present.
//
// IDENTITY (docs/storage-format.md) is the first file a replica writes into an empty data
// directory — durably (temporary file, fdatasync, rename, fsync the directory) before the log or
// any snapshot exists — and it names the cluster, the node and a fresh random incarnation. Every
// start checks it: a directory of another cluster or node is refused, and so is a damaged file.
// A replica whose directory was wiped therefore comes back with a new incarnation, however its
// command line reads, and cannot pass for its old self (whose promises it forgot).
//
// Whether an empty directory may be initialized is the operator's `--initial-cluster-state`, as
// etcd's: `new` (a founding member of a new cluster) may; `existing` may not — an empty directory
// there means the replica lost its data, and it refuses to start with the safe procedure — unless
// `join` says this is a member just added to a running cluster. A non-empty directory starts as
// before whatever the state (one from before identities existed gets an identity, "adopted").
//
// PEERS (PeerPins) records, like SSH's known_hosts, the incarnation each peer presented the
// first time this replica accepted it; a peer that later presents another one is refused.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "base/incarnation.h"
#include "base/status.h"
#include "base/types.h"
#include "storage/file_system.h"

namespace synod::storage {

inline constexpr const char* kIdentityFileName = "IDENTITY";
inline constexpr const char* kPeerPinsFileName = "PEERS";

enum class InitialClusterState {
  kNew,       // may initialize an empty directory, as a founding member
  kExisting,  // refuses an empty directory: the replica's data is lost
  kJoin,      // may initialize an empty directory, as a member just added at run time
};
// "new", "existing", "join".
const char* to_string(InitialClusterState state);

struct Identity {
  // How the directory got its identity.
  enum class Origin : uint32_t { kNew = 1, kJoin = 2, kAdopted = 3 };
  uint64_t cluster_id = 0;
  uint32_t node_id = 0;
  Incarnation incarnation;
  uint64_t created_ms = 0;  // Unix time, ms
  Origin origin = Origin::kNew;
  bool operator==(const Identity&) const = default;
};

// The 56 bytes of an IDENTITY file, and their inverse (corruption names `name` and the offset).
std::string encode_identity(const Identity& identity);
Result<Identity> decode_identity(const std::string& name, std::string_view bytes);
// One line per field, for `synod identity`.
std::string describe_identity(const Identity& identity);

struct IdentityOptions {
  InitialClusterState initial_state = InitialClusterState::kNew;
  // Unset: the operating system's random source. The simulator sets a seeded one.
  std::function<Incarnation()> incarnation_source;
  // Unset: the system clock. Only dates the file.
  std::function<uint64_t()> wall_ms;
};

// Checks the identity of `dir` (which may not exist yet) against the command line's cluster and
// node, creating it as described above. Must run before anything else writes into `dir`.
// `created` (optional) tells whether this call wrote the file.
Result<Identity> open_identity(FileSystem& fs, const std::string& dir, uint64_t cluster_id,
                               uint32_t node_id, const IdentityOptions& options,
                               bool* created = nullptr);
// Reads the identity of `dir` without creating or checking anything (for `synod identity`).
Result<Identity> read_identity(FileSystem& fs, const std::string& dir);

// The incarnation each peer presented when this replica first accepted it, kept durably in
// DIR/PEERS. One object per data directory, on one thread.
class PeerPins {
 public:
  struct Pin {
    Incarnation incarnation;
    uint64_t first_seen_ms = 0;  // Unix time
    bool operator==(const Pin&) const = default;
  };
  struct Check {
    bool pinned_now = false;     // first sight: recorded, durably
    std::optional<Pin> refused;  // the pin that `incarnation` contradicts
  };

  // Loads DIR/PEERS (none: no pins). A damaged file is corruption.
  static Result<PeerPins> open(FileSystem& fs, const std::string& dir, uint64_t cluster_id,
                               uint32_t node_id);

  // `peer` presents `incarnation`: the same as its pin passes; first sight pins it (durable when
  // this returns ok); another incarnation is refused, with the pin it contradicts.
  Result<Check> check(NodeId peer, const Incarnation& incarnation, uint64_t now_ms);
  // Drops `peer`'s pin (durably); false if it had none.
  Result<bool> forget(NodeId peer);
  const std::map<NodeId, Pin>& pins() const { return pins_; }

 private:
  PeerPins(FileSystem& fs, std::string dir, uint64_t cluster_id, uint32_t node_id)
      : fs_(&fs), dir_(std::move(dir)), cluster_id_(cluster_id), node_id_(node_id) {}
  Status save();

  FileSystem* fs_;
  std::string dir_;
  uint64_t cluster_id_;
  uint32_t node_id_;
  std::map<NodeId, Pin> pins_;
};

std::string encode_peer_pins(uint64_t cluster_id, uint32_t node_id,
                             const std::map<NodeId, PeerPins::Pin>& pins);
// `expect_*` of 0 accept any.
Result<std::map<NodeId, PeerPins::Pin>> decode_peer_pins(const std::string& name,
                                                         std::string_view bytes,
                                                         uint64_t expect_cluster_id,
                                                         uint32_t expect_node_id);

// "2026-12-05T23:45:39.123Z".
std::string format_unix_ms(uint64_t ms);

}  // namespace synod::storage
