#include "node/backup.h"

#include <gtest/gtest.h>

namespace synod::node {
namespace {

Backup sample() {
  Backup b;
  b.cluster_id = 42;
  b.slot = 1234;
  b.taken_unix_ms = 1'700'000'000'000;
  b.state = std::string(1000, 's') + "end";
  return b;
}

TEST(Backup, RoundTrips) {
  const std::string bytes = encode_backup(sample());
  ASSERT_EQ(bytes.size(), kBackupHeaderBytes + sample().state.size());
  auto back = decode_backup(bytes);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->cluster_id, 42u);
  EXPECT_EQ(back->slot, 1234u);
  EXPECT_EQ(back->taken_unix_ms, 1'700'000'000'000u);
  EXPECT_EQ(back->state, sample().state);
}

// A copy damaged anywhere — any byte changed, cut short, or grown — is refused, never restored.
TEST(Backup, AnyDamageIsRefused) {
  const std::string bytes = encode_backup(sample());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x20);
    EXPECT_FALSE(decode_backup(damaged).is_ok()) << "byte " << i;
  }
  EXPECT_FALSE(decode_backup(bytes.substr(0, bytes.size() - 1)).is_ok());
  EXPECT_FALSE(decode_backup(bytes.substr(0, kBackupHeaderBytes - 1)).is_ok());
  EXPECT_FALSE(decode_backup(bytes + "x").is_ok());
  EXPECT_FALSE(decode_backup("").is_ok());
}

paxos::Value set(const std::string& key, const std::string& value) {
  kv::KvCommand c;
  c.args = {"SET", key, value};
  return paxos::Value{{paxos::Command{{}, kv::encode_command(c)}}, nullptr};
}

std::string get(const Backup& backup, const std::string& key) {
  auto store = kv::Store::restore(backup.state);
  EXPECT_TRUE(store.is_ok());
  kv::Reply r = store->read({"GET", key}, 0);
  return r.kind == kv::Reply::Kind::kBulk ? r.text : "(none)";
}

// A survivor's directory: a snapshot at slot 10 holding a; chosen b (11), a configuration change
// (12) and c (13); accepted but not known chosen d (14) and f (16), with nothing known at 15;
// chosen g (17), learned out of order.
storage::Recovered survivor() {
  kv::Store at_snapshot;
  kv::KvCommand a;
  a.args = {"SET", "a", "1"};
  at_snapshot.apply(a);
  storage::Recovered r;
  r.snapshot = storage::Snapshot{10, at_snapshot.snapshot(), nullptr};
  r.state.chosen[11] = set("b", "1");
  r.state.chosen[12] = paxos::Value{{}, std::make_shared<const paxos::Membership>()};
  r.state.chosen[13] = set("c", "1");
  r.state.accepted[13] = paxos::Proposal{Ballot{3, NodeId{1}}, set("c", "1")};
  r.state.accepted[14] = paxos::Proposal{Ballot{3, NodeId{1}}, set("d", "1")};
  r.state.accepted[16] = paxos::Proposal{Ballot{3, NodeId{1}}, set("f", "1")};
  r.state.chosen[17] = set("g", "1");
  return r;
}

// What the survivor knows was chosen, in order, up to the first slot it knows no chosen value for:
// never a value it only accepted, never one past a gap.
TEST(SurvivorBackup, HoldsWhatItKnowsWasChosenUpToTheFirstGap) {
  auto made = backup_from_survivor(42, survivor(), false, {}, 1000);
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  EXPECT_EQ(made->backup.cluster_id, 42u);
  EXPECT_EQ(made->backup.slot, 13u);
  EXPECT_EQ(made->chosen_applied, 3u);
  EXPECT_EQ(made->accepted_applied, 0u);
  EXPECT_EQ(made->left_out, 3u);  // d (14), f (16), g (17)
  EXPECT_EQ(get(made->backup, "a"), "1");
  EXPECT_EQ(get(made->backup, "b"), "1");
  EXPECT_EQ(get(made->backup, "c"), "1");
  EXPECT_EQ(get(made->backup, "d"), "(none)");
  EXPECT_EQ(get(made->backup, "g"), "(none)");
}

// With include_accepted, an accepted value fills a slot with no known chosen one, up to the first
// slot with neither; a chosen value wins over an accepted one at the same slot.
TEST(SurvivorBackup, IncludeAcceptedFillsSlotsWithoutAChosenValueUpToTheFirstEmptyOne) {
  storage::Recovered r = survivor();
  r.state.accepted[13] = paxos::Proposal{Ballot{2, NodeId{2}}, set("c", "lost")};
  auto made = backup_from_survivor(42, r, true, {}, 1000);
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  EXPECT_EQ(made->backup.slot, 14u);
  EXPECT_EQ(made->chosen_applied, 3u);
  EXPECT_EQ(made->accepted_applied, 1u);
  EXPECT_EQ(made->left_out, 2u);  // f (16), g (17)
  EXPECT_EQ(get(made->backup, "c"), "1");
  EXPECT_EQ(get(made->backup, "d"), "1");
  EXPECT_EQ(get(made->backup, "f"), "(none)");
}

// A directory with no snapshot starts from the empty state; an undecodable command is corruption.
TEST(SurvivorBackup, StartsEmptyWithoutASnapshotAndRefusesAnUndecodableCommand) {
  storage::Recovered r;
  r.state.chosen[1] = set("x", "1");
  auto made = backup_from_survivor(7, r, false, {}, 0);
  ASSERT_TRUE(made.is_ok());
  EXPECT_EQ(made->backup.slot, 1u);
  EXPECT_EQ(get(made->backup, "x"), "1");
  r.state.chosen[2] = paxos::Value{{paxos::Command{{}, "garbage"}}, nullptr};
  auto refused = backup_from_survivor(7, r, false, {}, 0);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().to_string().find("slot 2"), std::string::npos);
}

}  // namespace
}  // namespace synod::node
