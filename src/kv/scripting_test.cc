// Scripts on the state machine: what testdata/kv/scripts.txt (byte-for-byte Redis) cannot show —
// determinism between replicas, the bounds, failed scripts' writes, the script cache in
// snapshots, and SCRIPT EXISTS served as a read.
#include "kv/scripting.h"

#include <gtest/gtest.h>

#include "kv/store.h"

namespace synod::kv {
namespace {

using Args = std::vector<std::string>;

Reply apply(Store& s, Args args, uint64_t time_ms = 1000) {
  return s.apply({0, 0, time_ms, std::move(args)});
}

bool starts_with(const Reply& r, std::string_view prefix) {
  return r.text.rfind(prefix, 0) == 0;
}

TEST(Scripting, Sha1MatchesKnownDigests) {
  EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  // Two blocks of padding (56 bytes), and more than one block of data.
  EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(sha1_hex(std::string(1000, 'a')), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
}

TEST(Scripting, NumbersTruncateTowardZeroAndNestingIsBounded) {
  Store s;
  EXPECT_EQ(apply(s, {"eval", "return -2.9", "0"}), Reply::integer_of(-2));
  EXPECT_EQ(apply(s, {"eval", "return 2^62", "0"}), Reply::integer_of(int64_t{1} << 62));
  EXPECT_EQ(apply(s, {"eval", "return {{{{1}}}}", "0"}).kind, Reply::Kind::kArray);
  // Replies are kept 5 levels deep (sessions, the peer wire): deeper is an error, not a crash.
  const Reply deep = apply(s, {"eval", "return {{{{{1}}}}}", "0"});
  EXPECT_EQ(deep.kind, Reply::Kind::kError);
  EXPECT_TRUE(starts_with(deep, "ERR script ")) << deep.text;
  // Arguments to redis.call: numbers as "%.17g" (testdata/kv/scripts.txt has more).
  EXPECT_EQ(apply(s, {"eval", "redis.call('set','n',0.1) return redis.call('get','n')", "0"}),
            Reply::bulk("0.10000000000000001"));
  EXPECT_EQ(
      apply(s, {"eval", "redis.call('set','n',1700000000000) return redis.call('get','n')", "0"}),
      Reply::bulk("1700000000000"));
}

TEST(Scripting, PcallReturnsTheErrorAndCallRaisesItThroughPcall) {
  Store s;
  apply(s, {"set", "s", "abc"});
  EXPECT_EQ(apply(s, {"eval", "local r = redis.pcall('incr','s') return type(r) .. r.err", "0"}),
            Reply::bulk("tableERR value is not an integer or out of range"));
  // Lua's pcall catches redis.call's error as the {err=...} table.
  EXPECT_EQ(apply(s, {"eval",
                      "local ok, e = pcall(redis.call, 'incr', 's') "
                      "return {tostring(ok), e.err}",
                      "0"}),
            Reply::array({Reply::bulk("false"),
                          Reply::bulk("ERR value is not an integer or out of range")}));
}

TEST(Scripting, AFailedScriptKeepsTheWritesBeforeItsError) {
  Store s;
  const Reply r =
      apply(s, {"eval", "redis.call('set','a','1') redis.call('incr','b') error('x')", "0"});
  EXPECT_TRUE(starts_with(r, "ERR user_script:1: x script: ")) << r.text;
  EXPECT_EQ(s.read({"get", "a"}, 1000), Reply::bulk("1"));
  EXPECT_EQ(s.read({"get", "b"}, 1000), Reply::bulk("1"));
}

TEST(Scripting, RandomIsSeededByTheLogPositionAlikeOnEveryReplica) {
  const Args script = {"eval", "return {math.random(1000000), math.random(1000000)}", "0"};
  Store a, b;
  const Reply first_a = apply(a, script);
  EXPECT_EQ(first_a, apply(b, script));  // two replicas, same position: same draws
  ASSERT_EQ(first_a.elements.size(), 2u);
  EXPECT_NE(first_a.elements[0], first_a.elements[1]);
  EXPECT_NE(first_a, apply(a, script));  // the next position draws anew
  // randomseed makes a fixed sequence.
  const Args seeded = {"eval", "math.randomseed(7) return math.random(1000000)", "0"};
  EXPECT_EQ(apply(a, seeded), apply(b, seeded));  // at positions 3 and 2
}

TEST(Scripting, TimeAndTostringAreTheSameOnEveryReplica) {
  Store a, b;
  const Args script = {"eval", "return {redis.call('time')[1], tostring({}), tostring(print)}",
                       "0"};
  const Reply r = apply(a, script, 1'700'000'123'456);
  EXPECT_EQ(r, apply(b, script, 1'700'000'123'456));
  EXPECT_EQ(r, Reply::array({Reply::bulk("1700000123"), Reply::bulk("table: 0x00000001"),
                             Reply::bulk("function: 0x00000002")}));
}

TEST(Scripting, NoFileOrOperatingSystemAccess) {
  Store s;
  for (const char* name : {"os", "io", "loadfile", "dofile", "require", "debug", "package"}) {
    const Reply r = apply(s, {"eval", std::string("return ") + name, "0"});
    EXPECT_TRUE(starts_with(r, "ERR user_script:1: Script attempted to access nonexistent global"))
        << name << ": " << r.text;
  }
}

TEST(Scripting, AnEndlessScriptStopsAtTheInstructionBoundEvenUnderPcall) {
  Store s;
  apply(s, {"set", "k", "v"});
  for (const char* body :
       {"while true do end", "while true do pcall(function() while true do end end) end"}) {
    const Reply r = apply(s, {"eval", body, "0"});
    EXPECT_EQ(r.kind, Reply::Kind::kError);
    EXPECT_NE(r.text.find("Lua instructions"), std::string::npos) << r.text;
  }
  // The store is fine afterwards.
  EXPECT_EQ(apply(s, {"eval", "return redis.call('get','k')", "0"}), Reply::bulk("v"));
}

TEST(Scripting, AGreedyScriptStopsAtTheMemoryBoundEvenUnderPcall) {
  Store s;
  for (const char* body :
       {"local t = {} for i = 1, 1e9 do t[i] = i end", "return string.rep('x', 1e9)",
        "local t = {} while true do pcall(function() t[#t + 1] = string.rep('y', 1e6) .. #t end) "
        "end"}) {
    const Reply r = apply(s, {"eval", body, "0"});
    EXPECT_EQ(r.kind, Reply::Kind::kError);
    EXPECT_NE(r.text.find("bytes of Lua memory"), std::string::npos) << body << ": " << r.text;
  }
}

TEST(Scripting, CommandsThatCannotRunInAScriptAreRefused) {
  Store s;
  // By the table's "noscript" flag, a container's by its subcommand's, as in Redis.
  for (const char* name :
       {"eval", "evalsha", "script", "multi", "exec", "watch", "blpop", "client"}) {
    const std::string first = name == std::string("script")   ? "load"
                              : name == std::string("client") ? "id"
                                                              : "x";
    const Reply r = apply(
        s, {"eval", std::string("return redis.call('") + name + "', '" + first + "', 'y')", "0"});
    EXPECT_TRUE(starts_with(r, "ERR This Redis command is not allowed from script")) << r.text;
  }
  EXPECT_TRUE(starts_with(apply(s, {"eval", "return redis.call('script', 'x', 'y')", "0"}),
                          "ERR Unknown Redis command called from script"));
}

TEST(Scripting, TheScriptCacheIsInSnapshots) {
  Store s;
  const Reply sha = apply(s, {"script", "load", "return ARGV[1] .. '!'"});
  ASSERT_EQ(sha.kind, Reply::Kind::kBulk);
  apply(s, {"eval", "return 2", "0"});  // EVAL caches too
  auto restored = Store::restore(s.snapshot());
  ASSERT_TRUE(restored.is_ok()) << restored.status().message();
  EXPECT_EQ(restored->digest(), s.digest());
  EXPECT_EQ(apply(*restored, {"evalsha", sha.text, "0", "hi"}), Reply::bulk("hi!"));
  EXPECT_EQ(apply(*restored, {"evalsha", sha1_hex("return 2"), "0"}), Reply::integer_of(2));
  // FLUSHALL keeps scripts; SCRIPT FLUSH empties the cache, in snapshots too.
  apply(*restored, {"flushall"});
  EXPECT_EQ(restored->read({"script", "exists", sha.text}, 0),
            Reply::array({Reply::integer_of(1)}));
  apply(*restored, {"script", "flush"});
  auto flushed = Store::restore(restored->snapshot());
  ASSERT_TRUE(flushed.is_ok());
  EXPECT_EQ(flushed->read({"script", "exists", sha.text}, 0), Reply::array({Reply::integer_of(0)}));
  // A snapshot with a script cut short is refused.
  std::string bytes = s.snapshot();
  bytes.pop_back();
  EXPECT_FALSE(Store::restore(bytes).is_ok());
}

TEST(Scripting, ScriptExistsIsAReadAndTheRestWrite) {
  EXPECT_EQ(classify_command({"script", "exists", "x"}), CommandClass::kRead);
  EXPECT_EQ(classify_command({"SCRIPT", "EXISTS", "x"}), CommandClass::kRead);
  EXPECT_EQ(classify_command({"script", "load", "x"}), CommandClass::kWrite);
  EXPECT_EQ(classify_command({"script", "flush"}), CommandClass::kWrite);
  EXPECT_EQ(classify_command({"eval", "return 1", "0"}), CommandClass::kWrite);
  EXPECT_EQ(classify_command({"evalsha", "x", "0"}), CommandClass::kWrite);
}

TEST(Scripting, AFullCacheRefusesLoadsAndRunsEvalUncached) {
  Store s;
  for (size_t i = 0; i < ScriptCache::kMaxScripts; ++i)
    ASSERT_EQ(apply(s, {"script", "load", "return " + std::to_string(i)}).kind, Reply::Kind::kBulk);
  EXPECT_TRUE(starts_with(apply(s, {"script", "load", "return 'one more'"}),
                          "ERR the script cache is full"));
  EXPECT_EQ(apply(s, {"eval", "return 'one more'", "0"}), Reply::bulk("one more"));
  EXPECT_EQ(apply(s, {"evalsha", sha1_hex("return 'one more'"), "0"}).text,
            "NOSCRIPT No matching script. Please use EVAL.");
  EXPECT_EQ(apply(s, {"evalsha", sha1_hex("return 7"), "0"}), Reply::integer_of(7));
}

}  // namespace
}  // namespace synod::kv

namespace synod::kv {
namespace {

TEST(Scripting, ACachedReadOnlyScriptIsServedAsAReadThatChangesNothing) {
  Store s;
  s.apply({0, 0, 1000, {"set", "k", "v"}});
  s.apply({0, 0, 1000, {"set", "gone", "x", "px", "500"}});  // expires at 1500
  const std::string body = "return {redis.call('get', KEYS[1]), redis.call('exists', KEYS[2])}";
  const std::string sha = sha1_hex(body);
  const Args by_sha = {"EVALSHA_RO", sha, "2", "k", "gone"};
  const Args by_body = {"EVAL_RO", body, "2", "k", "gone"};
  // Not cached: through the log (EVAL_RO caches it there).
  EXPECT_FALSE(s.serves_as_read(by_sha));
  EXPECT_FALSE(s.serves_as_read(by_body));
  EXPECT_FALSE(s.serves_as_read({"EVAL", body, "0"}));
  s.apply({0, 0, 1000, {"script", "load", body}});
  EXPECT_TRUE(s.serves_as_read(by_sha));
  EXPECT_TRUE(s.serves_as_read(by_body));
  EXPECT_FALSE(s.serves_as_read({"EVALSHA", sha, "2", "k", "gone"}));  // may write: the log
  const uint64_t before = s.digest();
  // Served at a read's time: past `gone`'s expiry, as a GET served then would see it.
  EXPECT_EQ(s.read(by_sha, 1200), Reply::array({Reply::bulk("v"), Reply::integer_of(1)}));
  EXPECT_EQ(s.read(by_body, 2000), Reply::array({Reply::bulk("v"), Reply::integer_of(0)}));
  // A write inside is refused, and nothing changes.
  const Reply refused = s.read({"EVAL_RO", "return redis.call('set', 'k', 'w')", "0"}, 2000);
  EXPECT_NE(refused.text.find("Write commands are not allowed from read-only scripts"),
            std::string::npos)
      << refused.text;
  EXPECT_EQ(s.digest(), before);
  // Flushed since the router chose the read path: NOSCRIPT, as the script was gone at that point.
  s.apply({0, 0, 1000, {"script", "flush"}});
  EXPECT_EQ(s.read(by_sha, 2000).text, "NOSCRIPT No matching script. Please use EVAL.");
}

}  // namespace
}  // namespace synod::kv
