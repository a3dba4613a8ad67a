// Transactions in the state machine (kv/transaction.h): one EXEC entry applies its commands
// together at one log position, aborts with the null array when a watched key was modified after
// its WATCH, answers a retry with the first reply, and keeps the versions WATCH needs across a
// snapshot.
#include "kv/transaction.h"

#include <gtest/gtest.h>

#include "kv/commands.h"
#include "kv/store.h"

namespace synod::kv {
namespace {

using Args = std::vector<std::string>;

Reply i(int64_t v) {
  return Reply::integer_of(v);
}

// A client's command, with its own client id and increasing seqs.
struct Client {
  Store& store;
  uint64_t id;
  uint64_t seq = 0;
  Reply run(Args args) { return store.apply({id, ++seq, 0, std::move(args)}); }
  uint64_t watch(const std::string& key) {
    const Reply r = store.read({"WATCH", key}, 0);
    EXPECT_EQ(r.kind, Reply::Kind::kInteger);
    return static_cast<uint64_t>(r.integer);
  }
  Reply exec(std::vector<std::pair<std::string, uint64_t>> watches, std::vector<Args> commands) {
    return run(encode_exec({std::move(watches), std::move(commands)}));
  }
};

TEST(Transaction, AppliesEveryCommandAtOneLogPositionWithRuntimeErrorsPerCommand) {
  Store s;
  Client c{s, 7};
  const uint64_t before = s.first_seq();
  EXPECT_EQ(c.exec({}, {{"SET", "a", "x"}, {"INCR", "a"}, {"LPUSH", "a", "b"}, {"GET", "a"}}),
            Reply::array({Reply::ok(), not_integer(), wrong_type(), Reply::bulk("x")}));
  EXPECT_EQ(s.first_seq(), before + 1);  // one command of the log, not four
  EXPECT_EQ(c.exec({}, {}), Reply::array({}));
}

TEST(Transaction, TheEncodingRoundTripsAndRefusesWhatItDidNotMake) {
  const Transaction tx{{{"k", 12}, {"", 0}}, {{"SET", "a", "1"}, {"GET", "a"}}};
  const auto decoded = decode_exec(encode_exec(tx));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->watches, tx.watches);
  EXPECT_EQ(decoded->commands, tx.commands);
  EXPECT_FALSE(decode_exec({"EXEC"}));
  EXPECT_FALSE(decode_exec({"EXEC", "1", "k"}));
  EXPECT_FALSE(decode_exec({"EXEC", "0", "3", "SET", "a"}));
  EXPECT_FALSE(decode_exec({"EXEC", "0", "0"}));
  Store s;
  EXPECT_EQ(s.apply({0, 0, 0, {"EXEC", "x"}}), Reply::error("ERR malformed transaction"));
  // A crafted entry cannot nest transactions.
  EXPECT_EQ(s.apply({0, 0, 0, encode_exec({{}, {encode_exec({})}})}),
            Reply::array({Reply::error("ERR Command not allowed inside a transaction")}));
}

TEST(Transaction, QueueTimeChecksComeFromTheCommandTable) {
  EXPECT_EQ(check_queued({"SET", "a", "1"}), std::nullopt);
  EXPECT_EQ(check_queued({"GET"}), Reply::error("ERR wrong number of arguments for 'get' command"));
  EXPECT_EQ(check_queued({"foo", "x", "y", "z", "w"}),
            Reply::error("ERR unknown command 'foo', with args beginning with: 'x' 'y' 'z' 'w' "));
  EXPECT_EQ(check_queued({"EXEC"}), Reply::error("ERR Command not allowed inside a transaction"));
}

TEST(Transaction, WatchAbortsOnlyWhenTheKeyWasModifiedAfterIt) {
  Store s;
  Client a{s, 1}, b{s, 2};
  (void)b.run({"SET", "k", "1"});
  uint64_t at = a.watch("k");
  (void)b.run({"SET", "other", "1"});  // another key: no abort
  EXPECT_EQ(a.exec({{"k", at}}, {{"INCR", "k"}}), Reply::array({i(2)}));
  at = a.watch("k");
  (void)b.run({"SET", "k", "2"});  // same as ever counts, as in Redis: a write is a modification
  EXPECT_EQ(a.exec({{"k", at}}, {{"SET", "k", "9"}, {"SET", "x", "9"}}), Reply::null_array());
  EXPECT_EQ(s.read({"GET", "k"}, 0), Reply::bulk("2"));  // nothing of it applied
  EXPECT_EQ(s.read({"GET", "x"}, 0), Reply::null());
  // The transaction's own earlier write does not abort it; a later WATCH sees the new position.
  at = a.watch("k");
  EXPECT_EQ(a.exec({{"k", at}}, {{"SET", "k", "3"}}), Reply::array({Reply::ok()}));
}

TEST(Transaction, DeletionExpiryAndAKeyCreatedAndDeletedAgainAllCountAsModified) {
  Store s;
  Client a{s, 1}, b{s, 2};
  // Absent at WATCH, created and deleted again before EXEC: modified, as Redis counts it.
  uint64_t at = a.watch("ghost");
  (void)b.run({"SET", "ghost", "1"});
  (void)b.run({"DEL", "ghost"});
  EXPECT_EQ(a.exec({{"ghost", at}}, {{"SET", "ghost", "mine"}}), Reply::null_array());
  // Absent and untouched: runs.
  at = a.watch("never");
  (void)b.run({"DEL", "unrelated"});
  EXPECT_EQ(a.exec({{"never", at}}, {{"SET", "never", "1"}}), Reply::array({Reply::ok()}));
  // Expiring between WATCH and EXEC is a modification (Redis 7 aborts too).
  (void)s.apply({2, ++b.seq, 1000, {"SET", "e", "1", "PX", "100"}});
  at = a.watch("e");
  EXPECT_EQ(s.apply({1, ++a.seq, 2000, encode_exec({{{"e", at}}, {{"SET", "e", "2"}}})}),
            Reply::null_array());
  // EXPIRE on the key is one.
  (void)b.run({"SET", "t", "1"});
  at = a.watch("t");
  (void)b.run({"EXPIRE", "t", "100"});
  EXPECT_EQ(a.exec({{"t", at}}, {{"GET", "t"}}), Reply::null_array());
}

TEST(Transaction, ADeletionStillCountsAfterItsTombstoneIsLetGo) {
  Store s;
  Client a{s, 1}, b{s, 2};
  (void)b.run({"SET", "k", "1"});
  const uint64_t at = a.watch("k");
  (void)b.run({"DEL", "k"});
  // More deletions than tombstones are kept: k's tombstone leaves and the floor rises past it.
  for (size_t n = 0; n <= Keyspace::kMaxTombstones; ++n) {
    const std::string key = "d" + std::to_string(n);
    (void)s.apply({0, 0, 0, encode_exec({{}, {{"SET", key, "1"}, {"DEL", key}}})});
  }
  EXPECT_EQ(a.exec({{"k", at}}, {{"SET", "k", "2"}}), Reply::null_array());
}

TEST(Transaction, ARetriedExecGetsItsFirstArrayAndAppliesOnce) {
  Store s;
  const KvCommand exec{9, 1, 0, encode_exec({{}, {{"INCR", "n"}, {"INCR", "n"}}})};
  EXPECT_EQ(s.apply(exec), Reply::array({i(1), i(2)}));
  EXPECT_EQ(s.apply(exec), Reply::array({i(1), i(2)}));
  EXPECT_EQ(s.read({"GET", "n"}, 0), Reply::bulk("2"));
  // And across a snapshot (a replica that restores it answers the retry alike).
  auto restored = Store::restore(s.snapshot());
  ASSERT_TRUE(restored.is_ok());
  EXPECT_EQ(restored->apply(exec), Reply::array({i(1), i(2)}));
}

TEST(Transaction, ASnapshotKeepsEveryVersionAndTombstoneSoReplicasDecideAlike) {
  Store s;
  Client a{s, 1}, b{s, 2};
  (void)b.run({"SET", "live", "1"});
  (void)b.run({"SET", "gone", "1"});
  const uint64_t at_live = a.watch("live"), at_gone = a.watch("gone");
  (void)b.run({"DEL", "gone"});
  (void)b.run({"SET", "live", "2"});
  auto restored = Store::restore(s.snapshot());
  ASSERT_TRUE(restored.is_ok());
  EXPECT_EQ(restored->digest(), s.digest());
  const KvCommand tx1{1, 10, 0, encode_exec({{{"live", at_live}}, {{"SET", "x", "1"}}})};
  const KvCommand tx2{1, 11, 0, encode_exec({{{"gone", at_gone}}, {{"SET", "x", "1"}}})};
  EXPECT_EQ(restored->apply(tx1), Reply::null_array());
  EXPECT_EQ(restored->apply(tx2), Reply::null_array());
  EXPECT_EQ(s.apply(tx1), Reply::null_array());
  EXPECT_EQ(s.apply(tx2), Reply::null_array());
  EXPECT_EQ(restored->digest(), s.digest());
}

// Two clients increment one counter by WATCH, GET, MULTI SET value+1 EXEC, retrying aborted
// transactions, with their steps interleaved; returns the increments lost (0 when WATCH works).
int64_t lost_increments(bool bug) {
  Store::Options o;
  o.bug_exec_ignores_watch = bug;
  Store s(o);
  Client clients[2] = {{s, 1}, {s, 2}};
  const int kEach = 20;
  int done[2] = {0, 0};
  while (done[0] < kEach || done[1] < kEach) {
    // Both read, then both try to write what they read plus one.
    uint64_t at[2];
    int64_t seen[2];
    for (int c = 0; c < 2; ++c) {
      at[c] = clients[c].watch("n");
      const Reply v = s.read({"GET", "n"}, 0);
      seen[c] = v.kind == Reply::Kind::kBulk ? std::stoll(v.text) : 0;
    }
    for (int c = 0; c < 2; ++c) {
      if (done[c] == kEach) continue;
      const Reply r = clients[c].exec({{"n", at[c]}}, {{"SET", "n", std::to_string(seen[c] + 1)}});
      if (r.kind == Reply::Kind::kArray) ++done[c];
    }
  }
  const Reply v = s.read({"GET", "n"}, 0);
  return 2 * kEach - std::stoll(v.text);
}

TEST(Transaction, ConcurrentWatchIncrementersLoseNothing) {
  EXPECT_EQ(lost_increments(false), 0);
}

// The planted bug exec-ignores-watch: the same loop loses increments, which the check sees.
TEST(Transaction, PlantedBugExecIgnoresWatchLosesAnUpdate) {
  EXPECT_GT(lost_increments(true), 0);
}

}  // namespace
}  // namespace synod::kv
