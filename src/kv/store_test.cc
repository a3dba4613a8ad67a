// The key-value state machine: Redis semantics command by command (table-driven), expiry on log
// time, exactly-once replies to retried commands, SCAN completeness, snapshots, and determinism.
#include "kv/store.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "base/coding.h"
#include "base/rng.h"

namespace synod::kv {
namespace {

using Args = std::vector<std::string>;

Reply ok() {
  return Reply::ok();
}
Reply nil() {
  return Reply::null();
}
Reply i(int64_t v) {
  return Reply::integer_of(v);
}
Reply b(std::string s) {
  return Reply::bulk(std::move(s));
}
Reply err(std::string s) {
  return Reply::error(std::move(s));
}

struct Step {
  uint64_t time_ms;
  Args args;
  Reply want;
};

void run(const std::vector<Step>& steps) {
  Store store;
  uint64_t seq = 0;
  for (const auto& s : steps) {
    std::string line;
    for (const auto& a : s.args) line += a + " ";
    const Reply got = classify(s.args[0]) == CommandClass::kRead
                          ? store.read(s.args, s.time_ms)
                          : store.apply({0, ++seq, s.time_ms, s.args});
    EXPECT_EQ(got, s.want) << "t=" << s.time_ms << " " << line << " got " << got.text
                           << got.integer;
  }
}

TEST(Store, StringsAndConditionalWrites) {
  run({
      {0, {"GET", "k"}, nil()},
      {0, {"SET", "k", "v1"}, ok()},
      {0, {"get", "k"}, b("v1")},
      {0, {"SET", "k", "v2", "NX"}, nil()},
      {0, {"SET", "k", "v2", "XX", "GET"}, b("v1")},
      {0, {"SET", "k", "v3", "IFEQ", "wrong"}, nil()},
      {0, {"SET", "k", "v3", "IFEQ", "v2"}, ok()},
      {0, {"SET", "absent", "x", "IFEQ", "x"}, nil()},
      {0, {"SET", "absent", "x", "XX"}, nil()},
      {0, {"SET", "k", "v", "NX", "XX"}, err("ERR syntax error")},
      {0, {"SET", "k", "v", "IFEQ", "a", "NX"}, err("ERR syntax error")},
      {0, {"SET", "k"}, err("ERR wrong number of arguments for 'set' command")},
      {0, {"DELIFEQ", "k", "nope"}, i(0)},
      {0, {"DELIFEQ", "k", "v3"}, i(1)},
      {0, {"EXISTS", "k", "k"}, i(0)},
      {0, {"MSET", "a", "1", "b", "2"}, ok()},
      {0, {"MGET", "a", "zz", "b"}, Reply::array({b("1"), nil(), b("2")})},
      {0, {"MSET", "a"}, err("ERR wrong number of arguments for 'mset' command")},
      {0, {"APPEND", "a", "23"}, i(3)},
      {0, {"STRLEN", "a"}, i(3)},
      {0, {"INCR", "a"}, i(124)},
      {0, {"INCRBY", "a", "-200"}, i(-76)},
      {0, {"DECRBY", "n", "5"}, i(-5)},
      {0, {"DECR", "n"}, i(-6)},
      {0, {"INCRBY", "a", "x"}, err("ERR value is not an integer or out of range")},
      {0, {"SET", "big", "9223372036854775807"}, ok()},
      {0, {"INCR", "big"}, err("ERR increment or decrement would overflow")},
      {0, {"INCR", "b2"}, i(1)},
      {0, {"SET", "s", "abc"}, ok()},
      {0, {"INCR", "s"}, err("ERR value is not an integer or out of range")},
      {0, {"DEL", "a", "b", "zz"}, i(2)},
      {0, {"DBSIZE"}, i(4)},  // n, big, b2, s
      {0, {"NOSUCH", "a"}, err("ERR unknown command 'NOSUCH', with args beginning with: 'a' ")},
  });
}

TEST(Store, ExpiryRunsOnLogTime) {
  run({
      {1000, {"SET", "k", "v", "PX", "500"}, ok()},
      {1000, {"PTTL", "k"}, i(500)},
      {1200, {"TTL", "k"}, i(0)},  // 300 ms left rounds to 0 s
      {1499, {"GET", "k"}, b("v")},
      {1500, {"GET", "k"}, nil()},  // a read at a later clock already misses it
      {1500, {"TTL", "k"}, i(-2)},
      {2000, {"SET", "k", "v", "EX", "10"}, ok()},
      {2000, {"SET", "k", "w", "KEEPTTL"}, ok()},
      {2000, {"TTL", "k"}, i(10)},
      {2000, {"SET", "k", "x"}, ok()},  // a plain SET clears the TTL
      {2000, {"TTL", "k"}, i(-1)},
      {2000, {"EXPIRE", "k", "5"}, i(1)},
      {2000, {"EXPIRE", "k", "10", "NX"}, i(0)},
      {2000, {"EXPIRE", "k", "10", "GT"}, i(1)},
      {2000, {"PEXPIRE", "k", "1000", "LT"}, i(1)},
      {2000, {"PERSIST", "k"}, i(1)},
      {2000, {"PERSIST", "k"}, i(0)},
      {2000, {"SET", "k", "v", "PXAT", "2500"}, ok()},
      {1000, {"GET", "k"}, b("v")},  // the clock never goes back: 2000 still
      {3000, {"EXISTS", "k"}, i(0)},
      {3000, {"SET", "k", "v", "EX", "0"}, err("ERR invalid expire time in 'set' command")},
      {3000, {"SET", "k", "v", "EXAT", "1"}, ok()},  // in the past: set and gone
      {3000, {"GET", "k"}, nil()},
      {3000, {"EXPIRE", "k", "1"}, i(0)},
      {3000, {"SET", "k", "v"}, ok()},
      {3000, {"EXPIRE", "k", "-1"}, i(1)},  // a non-positive TTL deletes
      {3000, {"DBSIZE"}, i(0)},
  });
}

// INFO's db0:keys=N,expires=M,avg_ttl=T: the keys with an expiry and their mean TTL from the log
// clock, exactly.
TEST(Store, ExpiryStatsCountKeysWithATtlAndTheirMeanTtl) {
  Store store;
  EXPECT_EQ(store.expiry_stats().expires, 0u);
  EXPECT_EQ(store.expiry_stats().avg_ttl_ms, 0u);
  uint64_t seq = 0;
  auto apply = [&](uint64_t time_ms, Args args) {
    return store.apply({0, ++seq, time_ms, std::move(args)});
  };
  EXPECT_EQ(apply(1000, {"SET", "plain", "v"}), ok());
  EXPECT_EQ(apply(1000, {"SET", "a", "v", "PX", "1000"}), ok());
  EXPECT_EQ(apply(1000, {"SET", "b", "v", "PX", "3000"}), ok());
  EXPECT_EQ(store.expiry_stats().expires, 2u);
  EXPECT_EQ(store.expiry_stats().avg_ttl_ms, 2000u);
  EXPECT_EQ(apply(1500, {"PERSIST", "b"}), i(1));  // the clock moved on 500 ms
  EXPECT_EQ(store.expiry_stats().expires, 1u);
  EXPECT_EQ(store.expiry_stats().avg_ttl_ms, 500u);
  EXPECT_EQ(apply(2500, {"SET", "c", "v"}), ok());  // "a" expired at 2000
  EXPECT_EQ(store.expiry_stats().expires, 0u);
  EXPECT_EQ(store.size(), 3u);
  // The mean is kept as deadlines come and go (no walk over them), exactly, even where their sum
  // passes 64 bits; an overwrite, a new deadline, a snapshot and FLUSHALL each keep it true.
  constexpr uint64_t kFar = 9'000'000'000'000'000'000u;
  for (int k = 0; k < 3; ++k)
    EXPECT_EQ(apply(3000, {"SET", "far" + std::to_string(k), "v", "PXAT",
                           std::to_string(kFar + uint64_t(k))}),
              ok());
  EXPECT_EQ(apply(3000, {"SET", "d", "v", "PX", "600"}), ok());
  EXPECT_EQ(apply(3000, {"SET", "d", "w", "PX", "1000"}), ok());  // an overwrite: 1000 left
  EXPECT_EQ(apply(3000, {"PEXPIRE", "c", "3000"}), i(1));
  EXPECT_EQ(apply(3000, {"PEXPIRE", "c", "2000"}), i(1));  // a new deadline replaces the old
  __extension__ using Wide = unsigned __int128;
  const auto mean = [](Wide sum, Wide n) { return static_cast<uint64_t>(sum / n); };
  const uint64_t far_mean = mean(3 * Wide(kFar - 3000) + 3 + 1000 + 2000, 5);
  EXPECT_EQ(store.expiry_stats().expires, 5u);
  EXPECT_EQ(store.expiry_stats().avg_ttl_ms, far_mean);
  auto restored = Store::restore(store.snapshot());
  ASSERT_TRUE(restored.is_ok());
  EXPECT_EQ(restored->expiry_stats().avg_ttl_ms, far_mean);
  EXPECT_EQ(apply(3000, {"SET", "d", "x"}), ok());  // its deadline goes
  EXPECT_EQ(store.expiry_stats().avg_ttl_ms, mean(3 * Wide(kFar - 3000) + 3 + 2000, 4));
  EXPECT_EQ(apply(3000, {"FLUSHALL"}), ok());
  EXPECT_EQ(store.expiry_stats().expires, 0u);
  EXPECT_EQ(apply(3000, {"SET", "e", "v", "PX", "10"}), ok());
  EXPECT_EQ(store.expiry_stats().avg_ttl_ms, 10u);
}

// FLUSHALL of many keys, and a big collection deleted or overwritten, are handed to the disposer
// (the server frees them off its loop); small ones are freed in place. The state is the same.
TEST(Store, LargeFreesGoToTheDisposer) {
  Store store, plain;
  std::vector<std::shared_ptr<void>> handed;
  store.set_disposer([&](std::shared_ptr<void> garbage) { handed.push_back(std::move(garbage)); });
  uint64_t seq = 0;
  auto apply = [&](Args args) {
    const KvCommand c{0, ++seq, 1000, std::move(args)};
    EXPECT_EQ(store.apply(c), plain.apply(c));
  };
  Args sadd = {"SADD", "big"}, small = {"SADD", "small", "a", "b"};
  for (size_t i = 0; i < Keyspace::kDisposeElements; ++i) sadd.push_back(std::to_string(i));
  apply(sadd);
  apply(small);
  apply({"DEL", "small"});
  EXPECT_EQ(handed.size(), 0u);
  apply({"DEL", "big"});
  EXPECT_EQ(handed.size(), 1u);
  apply(sadd);
  apply({"SET", "big", "now a string"});  // an overwrite frees the set
  EXPECT_EQ(handed.size(), 2u);
  // RENAME moves the value out before it erases the old key: nothing to free there.
  Args zadd = {"ZADD", "z"};
  for (size_t i = 0; i < Keyspace::kDisposeElements; ++i) {
    zadd.push_back(std::to_string(i));
    zadd.push_back("m" + std::to_string(i));
  }
  apply(zadd);
  apply({"RENAME", "z", "z2"});
  apply(small);
  apply({"RENAME", "small", "z3"});
  EXPECT_EQ(handed.size(), 2u);
  apply({"DEL", "z2"});
  EXPECT_EQ(handed.size(), 3u);
  for (size_t i = 0; i < Keyspace::kDisposeElements; ++i) apply({"SET", std::to_string(i), "v"});
  apply({"FLUSHALL"});
  EXPECT_EQ(handed.size(), 4u);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.digest(), plain.digest());
  apply({"SET", "after", "v"});
  EXPECT_EQ(store.digest(), plain.digest());
}

TEST(Store, EveryReplicaExpiresTheSameKeysAtTheSameSlot) {
  Store a, b2;
  Rng rng(5);
  uint64_t t = 0;
  for (uint64_t seq = 1; seq <= 2000; ++seq) {
    t += rng.below(50);
    Args args = {"SET", "k" + std::to_string(rng.below(50)), std::to_string(seq)};
    if (rng.chance(0.5)) args.insert(args.end(), {"PX", std::to_string(1 + rng.below(300))});
    KvCommand c{1 + rng.below(3), seq, t, args};
    EXPECT_EQ(a.apply(c), b2.apply(c));
    ASSERT_EQ(a.size(), b2.size());
    ASSERT_EQ(a.digest(), b2.digest());
  }
}

TEST(Store, ARetriedCommandIsAppliedOnceAndGetsTheFirstReply) {
  Store s;
  const KvCommand incr{42, 7, 0, {"INCR", "n"}};
  EXPECT_EQ(s.apply(incr), i(1));
  EXPECT_EQ(s.apply({43, 1, 0, {"INCR", "n"}}), i(2));
  EXPECT_EQ(s.apply(incr), i(1));  // a retry: the first reply, not applied again
  EXPECT_EQ(s.read({"GET", "n"}, 0), b("2"));
  // A retry that arrives after the client moved far ahead cannot be told apart: refused.
  for (uint64_t seq = 8; seq < 8 + Store::kRepliesPerClient; ++seq)
    (void)s.apply({42, seq, 0, {"INCR", "m"}});
  EXPECT_EQ(s.apply(incr).kind, Reply::Kind::kError);
  EXPECT_EQ(s.read({"GET", "m"}, 0), b(std::to_string(Store::kRepliesPerClient)));
}

// Finding 4: a retry stamped by a leader whose clock is hours ahead still finds its session.
// Sessions never leave by time, only by count, in log order.
TEST(Store, ARetryStampedByAClockHoursAheadIsStillAppliedOnce) {
  Store s;
  const KvCommand incr{42, 1, 1'000, {"INCR", "n"}};
  EXPECT_EQ(s.apply(incr), i(1));
  KvCommand retry = incr;
  retry.log_time_ms = 1'000 + 2 * Store::kSessionTtlMs;  // a leader's clock two hours ahead
  EXPECT_EQ(s.apply(retry), i(1));
  EXPECT_EQ(s.read({"GET", "n"}, 0), b("1"));
}

// The planted bug sessions-evicted-by-clock brings back the old eviction by log time before the
// lookup, and with it the double application the finding reported (INCR answered 1, then 2).
TEST(Store, PlantedBugSessionsEvictedByClockAppliesARetryTwice) {
  Store::Options o;
  o.bug_sessions_evicted_by_clock = true;
  Store s(o);
  const KvCommand incr{42, 1, 1'000, {"INCR", "n"}};
  EXPECT_EQ(s.apply(incr), i(1));
  KvCommand retry = incr;
  retry.log_time_ms = 1'000 + 2 * Store::kSessionTtlMs;
  EXPECT_EQ(s.apply(retry), i(2));
  EXPECT_EQ(s.read({"GET", "n"}, 0), b("2"));
}

// Finding 7: the session table holds at most max_sessions, evicting the least recently used in
// log order; a retry of an evicted client is refused (never applied again), a new client is
// served, and the client being applied keeps its session.
TEST(Store, SessionsAreBoundedByCountAndAnEvictedRetryIsRefusedNotReapplied) {
  Store::Options o;
  o.max_sessions = 3;
  Store s(o);
  // Clients number their commands from first_seq(), as the server's connections do.
  std::map<uint64_t, uint64_t> seq;
  auto next = [&](uint64_t client) {
    return seq[client] = std::max(seq[client] + 1, s.first_seq());
  };
  const KvCommand a{1, next(1), 0, {"INCR", "a"}};
  EXPECT_EQ(s.apply(a), i(1));
  for (uint64_t c = 2; c <= 4; ++c) EXPECT_EQ(s.apply({c, next(c), 0, {"INCR", "x"}}), i(c - 1));
  EXPECT_EQ(s.sessions(), 3u);
  EXPECT_EQ(s.session_evictions(), 1u);  // client 1, the least recently used
  const Reply refused = s.apply(a);
  EXPECT_EQ(refused.kind, Reply::Kind::kError);
  EXPECT_EQ(refused.text.rfind("SESSIONEXPIRED", 0), 0u) << refused.text;
  EXPECT_EQ(s.read({"GET", "a"}, 0), b("1"));
  // A client that was used recently keeps its session and its remembered reply.
  EXPECT_EQ(s.apply({4, seq[4], 0, {"INCR", "x"}}), i(3));
  // Thousands of one-command clients: the table stays at its bound, each new one is served.
  for (uint64_t c = 100; c < 3'100; ++c)
    ASSERT_EQ(s.apply({c, next(c), 0, {"INCR", "y"}}).kind, Reply::Kind::kInteger);
  EXPECT_EQ(s.sessions(), 3u);
  EXPECT_EQ(s.read({"GET", "y"}, 0), b("3000"));
  // The evicted client's later, never-applied command opens a new session and is applied; its
  // old one stays refused.
  EXPECT_EQ(s.apply({1, next(1), 0, {"INCR", "a"}}), i(2));
  EXPECT_EQ(s.apply(a).text.rfind("ERR command too old", 0), 0u);
  EXPECT_EQ(s.read({"GET", "a"}, 0), b("2"));
}

// The table never evicts the session of the command being applied, even with room for one.
TEST(Store, TheSessionBeingAppliedIsNeverTheOneEvicted) {
  Store::Options o;
  o.max_sessions = 1;
  Store s(o);
  EXPECT_EQ(s.apply({1, 1, 0, {"INCR", "k"}}), i(1));
  EXPECT_EQ(s.apply({1, 2, 0, {"INCR", "k"}}), i(2));
  EXPECT_EQ(s.apply({1, 2, 0, {"INCR", "k"}}), i(2));  // its retry
  EXPECT_EQ(s.session_evictions(), 0u);
  EXPECT_EQ(s.apply({2, s.first_seq(), 0, {"INCR", "k"}}), i(3));
  EXPECT_EQ(s.session_evictions(), 1u);
  EXPECT_EQ(s.apply({1, 2, 0, {"INCR", "k"}}).text.rfind("SESSIONEXPIRED", 0), 0u);
}

// Replicas that evict by count stay identical, through snapshots too, and a snapshot made with
// another bound is refused.
TEST(Store, EvictionIsDeterministicAndSurvivesSnapshots) {
  Store::Options o;
  o.max_sessions = 5;
  Store a(o), b2(o);
  Rng rng(3);
  std::map<uint64_t, uint64_t> seq;
  for (int n = 0; n < 400; ++n) {
    const uint64_t client = 1 + rng.below(12);
    seq[client] = std::max(seq[client] + 1, a.first_seq());
    const KvCommand c{client, seq[client], uint64_t(n), {"INCR", "k"}};
    EXPECT_EQ(a.apply(c), b2.apply(c));
    if (n % 50 == 0) {
      auto restored = Store::restore(b2.snapshot(), o);
      ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
      b2 = std::move(*restored);
    }
    ASSERT_EQ(a.digest(), b2.digest());
  }
  EXPECT_EQ(a.sessions(), 5u);
  EXPECT_GT(a.session_evictions(), 0u);
  Store::Options other = o;
  other.max_sessions = 6;
  EXPECT_FALSE(Store::restore(a.snapshot(), other).is_ok());
}

// A version 1 snapshot (before the bound) still restores, its sessions ordered by their time.
TEST(Store, AVersionOneSnapshotRestores) {
  std::string v1;
  put_u64(v1, 5'000);  // clock
  put_u64(v1, 1);      // one key
  put_bytes(v1, "k");
  put_bytes(v1, "7");
  put_u64(v1, 0);
  put_u64(v1, 2);  // two sessions: client 9 active at 4000, client 8 at 3000
  for (auto [client, at] : {std::pair<uint64_t, uint64_t>{8, 3'000}, {9, 4'000}}) {
    put_u64(v1, client);
    put_u64(v1, at);
    put_u32(v1, 1);
    put_u64(v1, 1);
    encode_reply(v1, Reply::integer_of(static_cast<int64_t>(client)));
  }
  Store::Options o;
  o.max_sessions = 1;
  auto s = Store::restore(v1, o);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->read({"GET", "k"}, 0), b("7"));
  EXPECT_EQ(s->sessions(), 1u);  // client 8, the older, left
  EXPECT_EQ(s->apply({9, 1, 6'000, {"INCR", "k"}}), i(9));
  EXPECT_EQ(s->apply({8, 1, 6'000, {"INCR", "k"}}).text.rfind("SESSIONEXPIRED", 0), 0u);
}

TEST(Store, ScanReturnsEveryKeyThatStaysThroughout) {
  Store s;
  for (int k = 0; k < 500; ++k) (void)s.apply({0, 0, 0, {"SET", "key:" + std::to_string(k), "v"}});
  (void)s.apply({0, 0, 0, {"SET", "other", "v"}});
  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    Reply r = s.read({"SCAN", cursor, "MATCH", "key:*", "COUNT", "37"}, 0);
    ASSERT_EQ(r.kind, Reply::Kind::kArray);
    cursor = r.elements[0].text;
    for (const auto& k : r.elements[1].elements) seen.insert(k.text);
    // Writes between calls must not make the scan miss keys that stay.
    (void)s.apply({0, 0, 0, {"SET", "new" + std::to_string(calls), "v"}});
    ASSERT_LT(++calls, 100);
  } while (cursor != "0");
  EXPECT_EQ(seen.size(), 500u);
  EXPECT_EQ(seen.count("other"), 0u);
  EXPECT_EQ(s.read({"SCAN", "x"}, 0), err("ERR invalid cursor"));
}

TEST(Store, SnapshotsRoundTripAndGarbageIsRefused) {
  Store s;
  (void)s.apply({1, 1, 100, {"SET", "a", "1", "PX", "1000"}});
  (void)s.apply({1, 2, 200, {"SET", "b", "2"}});
  auto restored = Store::restore(s.snapshot());
  ASSERT_TRUE(restored.is_ok());
  EXPECT_EQ(restored->digest(), s.digest());
  EXPECT_EQ(restored->apply({1, 1, 300, {"SET", "a", "x"}}), ok());  // the remembered reply
  EXPECT_EQ(restored->read({"GET", "a"}, 300), b("1"));
  Rng rng(9);
  for (int n = 0; n < 2000; ++n) {
    std::string junk = s.snapshot();
    junk[rng.below(junk.size())] ^= static_cast<char>(1 + rng.below(255));
    junk.resize(rng.below(junk.size() + 1));
    (void)Store::restore(junk);  // must not crash or over-allocate
    (void)decode_command(junk);
  }
  KvCommand c{3, 4, 5, {"SET", "k", std::string("v\0v", 3)}};
  auto back = decode_command(encode_command(c));
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->args, c.args);
}

// A command applied as part of a snapshot is answered from the exactly-once memory.
TEST(StoreTest, RemembersRepliesForCommandsAppliedBeforeASnapshot) {
  Store store;
  EXPECT_EQ(store.apply(KvCommand{9, 1, 1000, {"INCR", "n"}}), Reply::integer_of(1));
  auto restored = Store::restore(store.snapshot());
  ASSERT_TRUE(restored.is_ok());
  EXPECT_EQ(restored->remembered_reply(9, 1), Reply::integer_of(1));
  EXPECT_FALSE(restored->remembered_reply(9, 2).has_value());
  EXPECT_FALSE(restored->remembered_reply(8, 1).has_value());
}

}  // namespace
}  // namespace synod::kv
