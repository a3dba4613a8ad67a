// A user's command rules (kv/acl.h) and scripts run under them: Redis's order of rules, and the
// refusal a script gets, at run time, for a command its user may not run.
#include "kv/acl.h"

#include <gtest/gtest.h>

#include "kv/commands.h"
#include "kv/scripting.h"
#include "kv/store.h"

namespace synod::kv {
namespace {

CommandRules rules(std::string_view text) {
  auto parsed = CommandRules::parse(text);
  EXPECT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  return parsed.is_ok() ? *parsed : CommandRules{};
}

bool allows(const CommandRules& r, std::string_view name, std::string_view sub = "") {
  const CommandSpec* spec = find_command(name);
  return r.allows(name, sub, spec ? spec->categories : 0);
}

TEST(CommandRules, TheLastRuleThatNamesACommandDecides) {
  const CommandRules reader = rules("+@read");
  EXPECT_TRUE(allows(reader, "get"));
  EXPECT_TRUE(allows(reader, "hgetall"));
  EXPECT_FALSE(allows(reader, "set"));
  EXPECT_FALSE(allows(reader, "eval"));  // @scripting, not @read
  EXPECT_FALSE(reader.allows_everything());

  const CommandRules writer = rules("+@all -@dangerous -@admin");
  EXPECT_TRUE(allows(writer, "set"));
  EXPECT_TRUE(allows(writer, "eval"));
  EXPECT_FALSE(allows(writer, "flushall"));
  EXPECT_FALSE(allows(writer, "keys"));
  EXPECT_FALSE(writer.allows_everything());

  // A command named after its category is taken away wins over it, and the other way round.
  EXPECT_TRUE(allows(rules("-@all +@read -get +get"), "get"));
  EXPECT_FALSE(allows(rules("+@read -get"), "get"));
  EXPECT_TRUE(allows(rules("-@write +set"), "set"));
  EXPECT_FALSE(allows(rules("+set -@write"), "set"));
  // Subcommands: the whole command, or one subcommand.
  const CommandRules sub = rules("+script|exists");
  EXPECT_TRUE(allows(sub, "script", "exists"));
  EXPECT_FALSE(allows(sub, "script", "flush"));
  EXPECT_TRUE(allows(rules("+script -script|flush"), "script", "load"));
  EXPECT_FALSE(allows(rules("+script -script|flush"), "script", "flush"));
  // Nothing named: refused.
  EXPECT_FALSE(allows(rules(""), "get"));
}

TEST(CommandRules, AllCommandsUntilSomethingIsTakenAway) {
  EXPECT_TRUE(rules("+@all").allows_everything());
  EXPECT_TRUE(rules("allcommands").allows_everything());
  EXPECT_TRUE(rules("-@all +@all +get").allows_everything());
  EXPECT_FALSE(rules("+@all -set").allows_everything());
  EXPECT_FALSE(rules("+@all nocommands").allows_everything());
  EXPECT_FALSE(rules("+get").allows_everything());
}

TEST(CommandRules, TextIsNormalizedAndReadBackAlike) {
  const CommandRules r = rules("-@ALL +@Read +GET -Script|Flush allcommands nocommands");
  EXPECT_EQ(r.text(), "-@all +@read +get -script|flush +@all -@all");
  auto again = CommandRules::parse(r.text());
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->text(), r.text());
}

TEST(CommandRules, RefusesWhatItCannotKeep) {
  for (const char* bad : {"+@fast", "-@slow", "+@nosuch", "get", "+", "+|x", "+script|", "~*"}) {
    auto parsed = CommandRules::parse(bad);
    EXPECT_FALSE(parsed.is_ok()) << bad;
  }
  EXPECT_NE(CommandRules::parse("+@fast").status().message().find("@fast and @slow"),
            std::string::npos);
}

TEST(CommandCategories, FamiliesAndHandlersGiveRedisCategories) {
  EXPECT_EQ(find_command("get")->categories, kRead | kString);
  EXPECT_EQ(find_command("hset")->categories, kWrite | kHash);
  EXPECT_EQ(find_command("del")->categories, kWrite | kKeyspace);
  EXPECT_EQ(find_command("keys")->categories, kRead | kKeyspace | kDangerous);
  EXPECT_EQ(find_command("flushall")->categories, kWrite | kKeyspace | kDangerous);
  EXPECT_EQ(find_command("blpop")->categories, kWrite | kList | kBlocking);
  EXPECT_EQ(find_command("eval")->categories, kScripting);
  EXPECT_EQ(find_command("exec")->categories, kTransaction);
  EXPECT_EQ(category_list(kRead | kKeyspace), (std::vector<std::string_view>{"keyspace", "read"}));
}

Reply apply(Store& s, std::vector<std::string> args) {
  return s.apply({0, 0, 1000, std::move(args)});
}

bool starts_with(const Reply& r, std::string_view prefix) {
  return r.text.rfind(prefix, 0) == 0;
}

TEST(ScriptRules, AScriptRunsOnlyTheCommandsItsUserMayRun) {
  Store s;
  apply(s, {"set", "k", "old"});
  const CommandRules reader = rules("+@read +@scripting +@connection");
  auto run = [&](const std::string& body) {
    return apply(s, encode_eval_with_rules(reader, {"EVAL", body, "1", "k"}));
  };
  // Reads run; a write is refused at run time with Redis 7.0's text, where it was called.
  EXPECT_EQ(run("return redis.call('get', KEYS[1])"), Reply::bulk("old"));
  EXPECT_EQ(run("return redis.call('ping')"), Reply::simple("PONG"));
  const Reply refused = run("return redis.call('set', KEYS[1], 'new')");
  EXPECT_EQ(refused.kind, Reply::Kind::kError);
  EXPECT_TRUE(starts_with(refused, std::string(kScriptNoPerm) + " script: ")) << refused.text;
  EXPECT_NE(refused.text.find("on @user_script:1."), std::string::npos) << refused.text;
  // redis.pcall hands the refusal to the script, which cannot write either way.
  EXPECT_EQ(run("return redis.pcall('del', KEYS[1])['err']"),
            Reply::bulk(std::string(kScriptNoPerm)));
  EXPECT_EQ(apply(s, {"get", "k"}), Reply::bulk("old"));
  // EVALSHA too; the same script without rules (a user who may run everything) writes.
  const Reply sha = apply(s, {"script", "load", "return redis.call('set', KEYS[1], 'new')"});
  ASSERT_EQ(sha.kind, Reply::Kind::kBulk);
  EXPECT_EQ(apply(s, encode_eval_with_rules(reader, {"EVALSHA", sha.text, "1", "k"})).kind,
            Reply::Kind::kError);
  EXPECT_EQ(apply(s, {"get", "k"}), Reply::bulk("old"));
  EXPECT_EQ(apply(s, {"evalsha", sha.text, "1", "k"}), Reply::ok());
  EXPECT_EQ(apply(s, {"get", "k"}), Reply::bulk("new"));
}

TEST(ScriptRules, SynodEvalIsRefusedInsideScriptsAndCarriesOnlyScripts) {
  Store s;
  EXPECT_EQ(apply(s, {"SYNOD.EVAL", "+@all", "GET", "a", "b", "c"}),
            Reply::error("ERR SYNOD.EVAL carries EVAL, EVALSHA, EVAL_RO or EVALSHA_RO"));
  EXPECT_TRUE(starts_with(apply(s, {"SYNOD.EVAL", "+@fast", "EVAL", "return 1", "0"}),
                          "ERR ACL rule '+@fast'"));
  const Reply nested =
      apply(s, {"eval", "return redis.call('synod.eval', '+@all', 'eval', 'return 1', '0')", "0"});
  EXPECT_TRUE(starts_with(nested, "ERR This Redis command is not allowed from script"))
      << nested.text;
}

}  // namespace
}  // namespace synod::kv
