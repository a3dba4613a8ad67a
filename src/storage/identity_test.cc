// The data directory's identity (IDENTITY) and the peer pins (PEERS): byte formats that refuse
// every damage, the --initial-cluster-state rules, durability before anything else is written,
// and pins that refuse a second incarnation.
#include "storage/identity.h"

#include <gtest/gtest.h>

#include "base/rng.h"
#include "storage/mem_file_system.h"
#include "storage/replica_storage.h"

namespace synod::storage {
namespace {

constexpr Incarnation kInc{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

Identity sample() {
  return Identity{7, 3, kInc, 1'796'000'000'123ULL, Identity::Origin::kJoin};
}

IdentityOptions with_state(InitialClusterState state) {
  IdentityOptions o;
  o.initial_state = state;
  o.incarnation_source = [] { return kInc; };
  o.wall_ms = [] { return uint64_t{1000}; };
  return o;
}

LogOptions log_options(InitialClusterState state) {
  LogOptions o;
  o.dir = "data";
  o.cluster_id = 7;
  o.node_id = 3;
  o.segment_bytes = 2048;
  o.identity = with_state(state);
  return o;
}

TEST(Identity, RoundTripsIn56Bytes) {
  const std::string bytes = encode_identity(sample());
  ASSERT_EQ(bytes.size(), 56u);
  EXPECT_EQ(bytes.substr(0, 8), "SYNODIDN");
  auto back = decode_identity("IDENTITY", bytes);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, sample());
  EXPECT_EQ(to_string(kInc), "0123456789abcdeffedcba9876543210");
  EXPECT_EQ(parse_incarnation("0123456789ABCDEFfedcba9876543210"), kInc);
  EXPECT_FALSE(parse_incarnation("0123").has_value());
  EXPECT_FALSE(parse_incarnation("0123456789abcdeffedcba987654321g").has_value());
}

// CRC-32C over the whole file catches any change confined to one byte: every value of every
// byte, and every truncation or extension, is refused — never taken for another identity.
TEST(Identity, EveryByteDamageIsRefused) {
  const std::string good = encode_identity(sample());
  for (size_t i = 0; i < good.size(); ++i) {
    for (int x = 1; x < 256; ++x) {
      std::string bad = good;
      bad[i] = static_cast<char>(static_cast<uint8_t>(bad[i]) ^ x);
      EXPECT_FALSE(decode_identity("IDENTITY", bad).is_ok()) << "byte " << i << " ^ " << x;
    }
  }
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(decode_identity("IDENTITY", good.substr(0, n)).is_ok()) << n;
  EXPECT_FALSE(decode_identity("IDENTITY", good + '\0').is_ok());
  // A well-checksummed file with an impossible value (zero incarnation) is refused too.
  Identity zero = sample();
  zero.incarnation = {};
  EXPECT_FALSE(decode_identity("IDENTITY", encode_identity(zero)).is_ok());
}

TEST(Identity, NewInitializesAnEmptyDirectoryAndLaterStartsKeepIt) {
  MemFileSystem fs;
  bool created = false;
  auto id = open_identity(fs, "data", 7, 3, with_state(InitialClusterState::kNew), &created);
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  EXPECT_TRUE(created);
  EXPECT_EQ(id->incarnation, kInc);
  EXPECT_EQ(id->origin, Identity::Origin::kNew);
  // Durable: a power cut right after keeps it.
  Rng rng(1);
  fs.crash(rng, CrashFaults{true, 0.5});
  // A non-empty directory starts as before whatever the state: existing takes it, and a new
  // start draws no new incarnation.
  IdentityOptions other = with_state(InitialClusterState::kExisting);
  other.incarnation_source = [] { return Incarnation{1, 1}; };
  auto again = open_identity(fs, "data", 7, 3, other, &created);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_FALSE(created);
  EXPECT_EQ(*again, *id);
  other.initial_state = InitialClusterState::kNew;
  EXPECT_EQ(open_identity(fs, "data", 7, 3, other)->incarnation, kInc);
}

TEST(Identity, ExistingRefusesAnEmptyOrMissingDirectoryNamingTheProcedure) {
  MemFileSystem fs;
  for (bool make_dir : {false, true}) {
    if (make_dir) {
      ASSERT_TRUE(fs.create_dir("data").is_ok());
      ASSERT_TRUE(write_file_atomically(fs, "data", "x.tmp", "half-made").is_ok());
    }
    auto id = open_identity(fs, "data", 7, 3, with_state(InitialClusterState::kExisting));
    ASSERT_FALSE(id.is_ok());
    const std::string why = id.status().to_string();
    EXPECT_NE(why.find("empty or missing"), std::string::npos) << why;
    EXPECT_NE(why.find("add this machine as a new member"), std::string::npos) << why;
    EXPECT_NE(why.find("synod member replace 3"), std::string::npos) << why;
    EXPECT_FALSE(*fs.exists("data/IDENTITY"));
  }
  // A member just added (join) may initialize it.
  auto joined = open_identity(fs, "data", 7, 3, with_state(InitialClusterState::kJoin));
  ASSERT_TRUE(joined.is_ok());
  EXPECT_EQ(joined->origin, Identity::Origin::kJoin);
}

TEST(Identity, AnotherClusterOrNodeIsRefused) {
  MemFileSystem fs;
  ASSERT_TRUE(open_identity(fs, "data", 7, 3, with_state(InitialClusterState::kNew)).is_ok());
  for (auto [cluster, node] : {std::pair<uint64_t, uint32_t>{8, 3}, {7, 4}}) {
    auto id = open_identity(fs, "data", cluster, node, with_state(InitialClusterState::kNew));
    ASSERT_FALSE(id.is_ok());
    EXPECT_NE(id.status().to_string().find("belongs to cluster 7 node 3"), std::string::npos)
        << id.status().to_string();
  }
}

TEST(Identity, ADirectoryFromBeforeIdentitiesIsAdoptedWhateverTheState) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.create_dir("data").is_ok());
  ASSERT_TRUE(write_file_atomically(fs, "data", "wal-00000000000000000001.log", "x").is_ok());
  auto id = open_identity(fs, "data", 7, 3, with_state(InitialClusterState::kExisting));
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  EXPECT_EQ(id->origin, Identity::Origin::kAdopted);
}

TEST(Identity, ReplicaStorageRefusesADamagedIdentity) {
  MemFileSystem fs;
  {
    auto storage = ReplicaStorage::open(fs, log_options(InitialClusterState::kNew), nullptr);
    ASSERT_TRUE(storage.is_ok()) << storage.status().to_string();
    EXPECT_EQ((*storage)->identity().incarnation, kInc);
    EXPECT_TRUE((*storage)->identity_created());
  }
  fs.flip_bit("data/IDENTITY", 30, 2);
  auto storage = ReplicaStorage::open(fs, log_options(InitialClusterState::kNew), nullptr);
  ASSERT_FALSE(storage.is_ok());
  EXPECT_NE(storage.status().to_string().find("data/IDENTITY"), std::string::npos)
      << storage.status().to_string();
}

// Whatever point a crash interrupts the first start at, what it leaves either holds a good
// IDENTITY or nothing but temporary files: the log never exists without the identity.
TEST(Identity, WrittenDurablyBeforeAnythingElse) {
  uint64_t ops = 0;
  {
    MemFileSystem fs;
    ASSERT_TRUE(ReplicaStorage::open(fs, log_options(InitialClusterState::kNew), nullptr).is_ok());
    ops = fs.mutating_ops();
  }
  ASSERT_GT(ops, 3u);
  for (uint64_t n = 0; n <= ops; ++n) {
    SCOPED_TRACE(n);
    MemFileSystem fs;
    fs.fail_after(static_cast<int64_t>(n));
    (void)ReplicaStorage::open(fs, log_options(InitialClusterState::kNew), nullptr);
    Rng rng(n);
    fs.crash(rng, CrashFaults{true, 0.5});
    fs.fail_after(-1);
    auto names = fs.list("data");
    if (!names.is_ok()) continue;  // not even the directory
    bool identity = false, other = false;
    for (const auto& name : *names) {
      if (name == "IDENTITY")
        identity = true;
      else if (!name.ends_with(".tmp"))
        other = true;
    }
    if (identity) {
      EXPECT_TRUE(read_identity(fs, "data").is_ok());
    }
    EXPECT_TRUE(identity || !other) << "files without an identity";
    // Restarted as a member of a running cluster: a directory the crash left empty is refused,
    // one with its identity starts.
    auto again = ReplicaStorage::open(fs, log_options(InitialClusterState::kExisting), nullptr);
    EXPECT_EQ(again.is_ok(), identity) << (again.is_ok() ? "" : again.status().to_string());
  }
}

TEST(PeerPins, FirstSightPinsAndAnotherIncarnationIsRefused) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.create_dir("data").is_ok());
  auto pins = PeerPins::open(fs, "data", 7, 3);
  ASSERT_TRUE(pins.is_ok());
  auto first = pins->check(NodeId{1}, kInc, 5000);
  ASSERT_TRUE(first.is_ok());
  EXPECT_TRUE(first->pinned_now);
  EXPECT_FALSE(first->refused);
  auto same = pins->check(NodeId{1}, kInc, 6000);
  EXPECT_FALSE(same->pinned_now);
  EXPECT_FALSE(same->refused);
  // Durable: after a power cut a reopened replica still refuses a wiped peer.
  Rng rng(2);
  fs.crash(rng, CrashFaults{true, 0.5});
  auto reopened = PeerPins::open(fs, "data", 7, 3);
  ASSERT_TRUE(reopened.is_ok()) << reopened.status().to_string();
  auto other = reopened->check(NodeId{1}, Incarnation{9, 9}, 7000);
  ASSERT_TRUE(other.is_ok());
  ASSERT_TRUE(other->refused.has_value());
  EXPECT_EQ(other->refused->incarnation, kInc);
  EXPECT_EQ(other->refused->first_seen_ms, 5000u);
  // Cleared (the documented procedure), the next incarnation is pinned.
  EXPECT_TRUE(*reopened->forget(NodeId{1}));
  EXPECT_FALSE(*reopened->forget(NodeId{1}));
  auto pinned_again = PeerPins::open(fs, "data", 7, 3)->check(NodeId{1}, Incarnation{9, 9}, 8000);
  EXPECT_TRUE(pinned_again->pinned_now);
}

TEST(PeerPins, FileRefusesEveryByteDamage) {
  std::map<NodeId, PeerPins::Pin> pins = {{NodeId{1}, {kInc, 5}}, {NodeId{2}, {{4, 4}, 6}}};
  const std::string good = encode_peer_pins(7, 3, pins);
  ASSERT_EQ(good.size(), 28u + 2 * 28 + 4);
  EXPECT_EQ(*decode_peer_pins("PEERS", good, 7, 3), pins);
  for (size_t i = 0; i < good.size(); ++i) {
    for (int x = 1; x < 256; x += 3) {
      std::string bad = good;
      bad[i] = static_cast<char>(static_cast<uint8_t>(bad[i]) ^ x);
      EXPECT_FALSE(decode_peer_pins("PEERS", bad, 7, 3).is_ok()) << i << " ^ " << x;
    }
  }
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(decode_peer_pins("PEERS", good.substr(0, n), 7, 3).is_ok()) << n;
  EXPECT_FALSE(decode_peer_pins("PEERS", good, 7, 4).is_ok());  // another node's
}

}  // namespace
}  // namespace synod::storage
