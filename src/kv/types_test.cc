// Hashes, lists, sets and sorted sets in the replicated store: expiry on the log clock, the
// per-key bounds, snapshots of every type, determinism of "random" commands across replicas,
// and scan cursors. Redis's reply bytes for each command are checked by golden_test.cc.
#include <gtest/gtest.h>

#include <set>

#include "base/coding.h"
#include "base/rng.h"
#include "kv/store.h"

namespace synod::kv {
namespace {

using Args = std::vector<std::string>;

Reply i(int64_t v) {
  return Reply::integer_of(v);
}
Reply b(std::string s) {
  return Reply::bulk(std::move(s));
}

// Applies a command from the log (or serves a read) at log time t.
Reply run(Store& s, uint64_t t, Args args) {
  static uint64_t seq = 0;
  if (classify(args[0]) == CommandClass::kRead) return s.read(args, t);
  return s.apply({0, ++seq, t, std::move(args)});
}

// One key of each type, with and without expiry.
void fill_every_type(Store& s, uint64_t t) {
  run(s, t, {"SET", "str", "v", "PX", "5000"});
  run(s, t, {"HSET", "hash", "f1", "v1", "f2", std::string("v\0x", 3)});
  run(s, t, {"RPUSH", "list", "a", "b", "a"});
  run(s, t, {"SADD", "set", "x", "y", ""});
  run(s, t, {"ZADD", "zset", "1.5", "m1", "-inf", "m0", "2", "m2"});
  run(s, t, {"PEXPIRE", "zset", "7000"});
  run(s, t, {"PEXPIRE", "hash", "9000"});
}

TEST(Types, EveryTypeExpiresOnTheLogClock) {
  Store s;
  fill_every_type(s, 1000);
  run(s, 1000, {"PEXPIRE", "list", "300"});
  run(s, 1000, {"EXPIRE", "set", "1"});
  EXPECT_EQ(run(s, 1000, {"PTTL", "list"}), i(300));
  EXPECT_EQ(run(s, 1000, {"PEXPIRETIME", "set"}), i(2000));
  EXPECT_EQ(run(s, 1299, {"LLEN", "list"}), i(3));
  EXPECT_EQ(run(s, 1300, {"LLEN", "list"}), i(0));  // a read at a later clock misses it
  EXPECT_EQ(run(s, 1300, {"TYPE", "list"}), Reply::simple("none"));
  EXPECT_EQ(run(s, 2000, {"SCARD", "set"}), i(0));
  // A write at 2000 removes both from the state, on every replica at the same slot.
  const size_t before = s.size();
  run(s, 2000, {"SET", "other", "1"});
  EXPECT_EQ(s.size(), before + 1 - 2);
  // Writes to an expired collection start from nothing, without its old expiry.
  EXPECT_EQ(run(s, 2000, {"RPUSH", "list", "z"}), i(1));
  EXPECT_EQ(run(s, 2000, {"PTTL", "list"}), i(-1));
  // RENAME and COPY carry the expiry; PERSIST removes it from a hash.
  EXPECT_EQ(run(s, 2000, {"RENAME", "zset", "z2"}), Reply::ok());
  EXPECT_EQ(run(s, 2000, {"PEXPIRETIME", "z2"}), i(8000));
  EXPECT_EQ(run(s, 2000, {"COPY", "z2", "z3"}), i(1));
  EXPECT_EQ(run(s, 2000, {"PEXPIRETIME", "z3"}), i(8000));
  EXPECT_EQ(run(s, 2000, {"PERSIST", "hash"}), i(1));
  EXPECT_EQ(run(s, 8000, {"ZCARD", "z3"}), i(0));
  EXPECT_EQ(run(s, 8000, {"HLEN", "hash"}), i(2));
  EXPECT_EQ(run(s, 8000, {"TIME"}), Reply::array({b("8"), b("0")}));
}

TEST(Types, CollectionsAreBoundedPerKeyAndARefusedWriteChangesNothing) {
  Store::Options o;
  o.key_limits.max_elements = 3;
  o.key_limits.max_value_bytes = 10;
  Store s(o);
  const std::string too_many =
      "ERR the value would hold more than 3 elements (the per-key limit); nothing was changed";
  const std::string too_big =
      "ERR the value would hold more than 10 bytes (the per-key limit); nothing was changed";
  EXPECT_EQ(run(s, 0, {"RPUSH", "l", "a", "b", "c", "d"}), Reply::error(too_many));
  EXPECT_EQ(run(s, 0, {"EXISTS", "l"}), i(0));
  EXPECT_EQ(run(s, 0, {"RPUSH", "l", "a", "b", "c"}), i(3));
  EXPECT_EQ(run(s, 0, {"LPUSH", "l", "x"}), Reply::error(too_many));
  EXPECT_EQ(run(s, 0, {"LINSERT", "l", "BEFORE", "a", "x"}), Reply::error(too_many));
  EXPECT_EQ(run(s, 0, {"LSET", "l", "0", "0123456789"}), Reply::error(too_big));
  EXPECT_EQ(run(s, 0, {"LRANGE", "l", "0", "-1"}), Reply::array({b("a"), b("b"), b("c")}));
  EXPECT_EQ(run(s, 0, {"RPUSH", "m", "z"}), i(1));
  EXPECT_EQ(run(s, 0, {"RPOPLPUSH", "m", "l"}), Reply::error(too_many));
  EXPECT_EQ(run(s, 0, {"LLEN", "m"}), i(1));  // not popped either
  // Hashes count fields and values; replacing a value is measured by its new size.
  EXPECT_EQ(run(s, 0, {"HSET", "h", "f", "12345"}), i(1));
  EXPECT_EQ(run(s, 0, {"HSET", "h", "f", "1234567890"}), Reply::error(too_big));
  EXPECT_EQ(run(s, 0, {"HSET", "h", "f", "12345678"}), i(0));
  EXPECT_EQ(run(s, 0, {"HINCRBY", "h", "n", "1"}), Reply::error(too_big));
  EXPECT_EQ(run(s, 0, {"SADD", "s", "a", "b", "c", "a"}), i(3));
  EXPECT_EQ(run(s, 0, {"SADD", "s", "a", "d"}), Reply::error(too_many));
  EXPECT_EQ(run(s, 0, {"SADD", "s", "a", "b"}), i(0));  // nothing new: allowed
  EXPECT_EQ(run(s, 0, {"SADD", "t", "c", "d", "e"}), i(3));
  EXPECT_EQ(run(s, 0, {"SUNIONSTORE", "u", "s", "t"}), Reply::error(too_many));
  EXPECT_EQ(run(s, 0, {"ZADD", "z", "1", "a"}), i(1));  // a member and its 8-byte score
  EXPECT_EQ(run(s, 0, {"ZADD", "z", "2", "b"}), Reply::error(too_big));
  EXPECT_EQ(run(s, 0, {"ZINCRBY", "z", "2", "b"}), Reply::error(too_big));
  EXPECT_EQ(run(s, 0, {"ZADD", "z", "XX", "2", "b"}), i(0));
  EXPECT_EQ(run(s, 0, {"APPEND", "str", "12345678901"}),
            Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
  EXPECT_EQ(run(s, 0, {"SETRANGE", "str", "10", "x"}),
            Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
  EXPECT_EQ(run(s, 0, {"SRANDMEMBER", "s", "-4"}), Reply::error("ERR value is out of range"));
  // A snapshot records the bounds; a replica with others refuses it.
  EXPECT_FALSE(Store::restore(s.snapshot()).is_ok());
  EXPECT_TRUE(Store::restore(s.snapshot(), o).is_ok());
}

TEST(Types, SnapshotsRoundTripEveryTypeAndTheDigestCoversIt) {
  Store s;
  fill_every_type(s, 1000);
  auto restored = Store::restore(s.snapshot());
  ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
  EXPECT_EQ(restored->digest(), s.digest());
  EXPECT_EQ(restored->snapshot(), s.snapshot());
  for (const Args& read : std::vector<Args>{{"GET", "str"},
                                            {"PTTL", "str"},
                                            {"HGETALL", "hash"},
                                            {"PTTL", "hash"},
                                            {"LRANGE", "list", "0", "-1"},
                                            {"SMEMBERS", "set"},
                                            {"ZRANGE", "zset", "0", "-1", "WITHSCORES"},
                                            {"PTTL", "zset"},
                                            {"TYPE", "zset"}})
    EXPECT_EQ(restored->read(read, 1000), s.read(read, 1000)) << read[0];
  // Expiry survives: the restored store drops the zset at 8000 as the original does.
  EXPECT_EQ(run(*restored, 8000, {"ZCARD", "zset"}), i(0));
  // Every type's contents are in the digest: one element's change changes it.
  for (const Args& change : std::vector<Args>{{"HSET", "hash", "f1", "w"},
                                              {"LSET", "list", "1", "c"},
                                              {"SADD", "set", "z"},
                                              {"ZADD", "zset", "1.25", "m1"},
                                              {"PEXPIRE", "list", "100000"}}) {
    Store copy = std::move(*Store::restore(s.snapshot()));
    run(copy, 1000, change);
    EXPECT_NE(copy.digest(), s.digest()) << change[0];
  }
  // Corrupt or truncated snapshots are refused without crashing or over-allocating.
  Rng rng(11);
  const std::string good = s.snapshot();
  for (int n = 0; n < 3000; ++n) {
    std::string junk = good;
    junk[rng.below(junk.size())] ^= static_cast<char>(1 + rng.below(255));
    if (rng.chance(0.5)) junk.resize(rng.below(junk.size() + 1));
    (void)Store::restore(junk);
  }
}

// A version 2 snapshot (strings only) still restores.
TEST(Types, AVersionTwoSnapshotRestores) {
  std::string v2 = "SYNODKVS";
  put_u32(v2, 2);
  for (uint64_t v : {uint64_t{5000}, uint64_t{0}, uint64_t{0}, uint64_t{0}, kDefaultMaxSessions})
    put_u64(v2, v);
  put_u64(v2, 1);  // one key
  put_bytes(v2, "k");
  put_bytes(v2, "v");
  put_u64(v2, 9000);
  put_u64(v2, 0);  // no sessions
  auto s = Store::restore(v2);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->read({"GET", "k"}, 5000), b("v"));
  EXPECT_EQ(s->read({"PTTL", "k"}, 5000), i(4000));
  EXPECT_EQ(s->read({"TYPE", "k"}, 5000), Reply::simple("string"));
}

// The same log gives every replica the same state and replies, "random" commands included, and
// a replica that restored a snapshot midway stays identical.
TEST(Types, TheSameLogGivesTheSameStateOnEveryReplica) {
  Store a, c;
  Rng rng(7);
  const std::vector<std::string> keys = {"h", "l", "s", "z", "t"};
  auto word = [&] { return std::string(1, static_cast<char>('a' + rng.below(6))); };
  for (uint64_t n = 1; n <= 3000; ++n) {
    const std::string k = keys[rng.below(keys.size())];
    Args args;
    switch (rng.below(14)) {
      case 0:
        args = {"HSET", k, word(), word()};
        break;
      case 1:
        args = {"HDEL", k, word()};
        break;
      case 2:
        args = {"RPUSH", k, word(), word()};
        break;
      case 3:
        args = {"LPOP", k, "2"};
        break;
      case 4:
        args = {"SADD", k, word(), word()};
        break;
      case 5:
        args = {"SPOP", k, "2"};
        break;
      case 6:
        args = {"ZADD", k, std::to_string(rng.below(5)), word()};
        break;
      case 7:
        args = {"ZPOPMIN", k};
        break;
      case 8:
        args = {"PEXPIRE", k, std::to_string(1 + rng.below(40))};
        break;
      case 9:
        args = {"SRANDMEMBER", k, "-3"};
        break;
      case 10:
        args = {"RANDOMKEY"};
        break;
      case 11:
        args = {"SUNIONSTORE", k, keys[rng.below(5)], keys[rng.below(5)]};
        break;
      case 12:
        args = {"HRANDFIELD", k, "2", "WITHVALUES"};
        break;
      default:
        args = {"ZRANDMEMBER", k, "-2", "WITHSCORES"};
        break;
    }
    const KvCommand cmd{1, n, n * 3, args};
    ASSERT_EQ(a.apply(cmd), c.apply(cmd)) << args[0];
    ASSERT_EQ(a.read({"SRANDMEMBER", k, "2"}, n * 3), c.read({"SRANDMEMBER", k, "2"}, n * 3));
    if (n % 500 == 0) {
      auto restored = Store::restore(c.snapshot());
      ASSERT_TRUE(restored.is_ok());
      c = std::move(*restored);
    }
    ASSERT_EQ(a.digest(), c.digest()) << "after " << n << " commands";
  }
}

// SPOP really draws: different log positions pop different members.
TEST(Types, SpopDrawsDifferentMembersAtDifferentLogPositions) {
  std::set<std::string> popped;
  for (int n = 0; n < 20; ++n) {
    Store s;
    for (int pad = 0; pad < n; ++pad) run(s, 0, {"SET", "pad", "x"});
    run(s, 0, {"SADD", "s", "a", "b", "c", "d", "e", "f", "g", "h"});
    popped.insert(run(s, 0, {"SPOP", "s"}).text);
  }
  EXPECT_GT(popped.size(), 3u);
}

// HSCAN, SSCAN and ZSCAN return every element present for the whole iteration, with writes
// between the calls.
TEST(Types, CollectionScansReturnEveryElementThatStays) {
  Store s;
  for (int k = 0; k < 300; ++k) {
    const std::string m = "m" + std::to_string(k);
    run(s, 0, {"HSET", "h", m, "v"});
    run(s, 0, {"SADD", "s", m});
    run(s, 0, {"ZADD", "z", std::to_string(k), m});
  }
  for (const std::string cmd : {"HSCAN", "SSCAN", "ZSCAN"}) {
    const std::string key(1, static_cast<char>(std::tolower(cmd[0])));
    std::set<std::string> seen;
    std::string cursor = "0";
    int calls = 0;
    do {
      Reply r = run(s, 0, {cmd, key, cursor, "COUNT", "17", "MATCH", "m*"});
      ASSERT_EQ(r.kind, Reply::Kind::kArray) << r.text;
      cursor = r.elements[0].text;
      const auto& items = r.elements[1].elements;
      const size_t step = cmd == "SSCAN" ? 1 : 2;
      for (size_t j = 0; j < items.size(); j += step) seen.insert(items[j].text);
      const std::string extra = "x" + std::to_string(calls);
      run(s, 0, {"HSET", "h", extra, "v"});
      run(s, 0, {"SADD", "s", extra});
      run(s, 0, {"ZADD", "z", "1", extra});
      ASSERT_LT(++calls, 100);
    } while (cursor != "0");
    EXPECT_EQ(seen.size(), 300u) << cmd;
  }
  EXPECT_EQ(run(s, 0, {"SCAN", "0", "TYPE", "zset", "COUNT", "100"}),
            Reply::array({b("0"), Reply::array({b("z")})}));
}

TEST(Types, BlockingCommandsAreRefusedWithAReason) {
  Store s;
  const std::vector<std::vector<std::string>> commands = {
      {"BLPOP", "k", "0"},
      {"BRPOP", "k", "0"},
      {"BLMOVE", "k", "d", "LEFT", "RIGHT", "0"},
      {"BRPOPLPUSH", "k", "d", "0"},
      {"BZPOPMIN", "k", "0"},
      {"BZPOPMAX", "k", "0"},
      {"BLMPOP", "0", "1", "k", "LEFT"},
      {"BZMPOP", "0", "1", "k", "MIN"}};
  for (const auto& command : commands) {
    ASSERT_EQ(classify(command[0]), CommandClass::kRead);  // answered at once, never proposed
    const Reply r = run(s, 0, command);
    EXPECT_EQ(r.kind, Reply::Kind::kError);
    EXPECT_NE(r.text.find("is not supported: a blocked client"), std::string::npos) << r.text;
  }
}

}  // namespace
}  // namespace synod::kv
