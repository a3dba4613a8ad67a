// Users, passwords and permissions (node/acl.h): the user table from configuration lines, AUTH
// and HELLO's options with Redis 7.0's replies, the gate every command passes, and the categories
// Synod gives each command, compared with Redis's (testdata/acl/categories.txt).
#include "node/acl.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "kv/commands.h"

namespace synod::node {
namespace {

using kv::Reply;
using Args = std::vector<std::string>;

const std::string kReaderLine = "reader on #" + hex(sha256("r-pw")) +
                                " ~* &* -@all +@read +@connection +@transaction +@scripting";
const std::string kWriterLine =
    "writer on #" + hex(sha256("w-pw")) + " ~* &* +@all -@admin -@dangerous";
const std::string kAdminLine = "admin on #" + hex(sha256("a-pw")) + " ~* &* +@all";

std::unique_ptr<Acl> make(const std::vector<std::string>& lines, const std::string& pass = "") {
  auto acl = Acl::create(lines, pass);
  EXPECT_TRUE(acl.is_ok()) << acl.status().to_string();
  return acl.is_ok() ? std::move(*acl) : nullptr;
}

std::string refusal(const Acl& acl, const AuthState& state, const Args& args) {
  auto r = acl.check(state, args);
  return r ? r->text : "";
}

AuthState login(const Acl& acl, const std::string& user, const std::string& pass) {
  AuthState state = acl.connect();
  Acl::Failure failure;
  EXPECT_EQ(acl.auth(state, {"AUTH", user, pass}, failure), Reply::ok()) << user;
  return state;
}

TEST(Sha256, MatchesKnownDigests) {
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Acl, WithoutAuthEveryConnectionIsTheDefaultUserWithEveryRight) {
  auto acl = make({});
  AuthState state = acl->connect();
  EXPECT_TRUE(state.authenticated);
  EXPECT_EQ(state.user->name, "default");
  for (const Args& args : {Args{"SET", "k", "v"}, Args{"FLUSHALL"}, Args{"CONFIG", "GET", "x"},
                           Args{"SYNOD.FAULT", "CLEAR"}, Args{"ACL", "LIST"}})
    EXPECT_EQ(refusal(*acl, state, args), "") << args[0];
  Acl::Failure failure;
  EXPECT_EQ(acl->auth(state, {"AUTH", "pw"}, failure).text,
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?");
  EXPECT_EQ(acl->auth(state, {"AUTH", "default", "anything"}, failure), Reply::ok());
  EXPECT_EQ(acl->command(state, {"ACL", "LIST"}),
            kv::bulks({"user default on nopass ~* &* +@all"}));
}

TEST(Acl, RequirepassRefusesEverythingButAuthHelloAndQuitUntilAuth) {
  auto acl = make({}, "s3cret");
  AuthState state = acl->connect();
  EXPECT_FALSE(state.authenticated);
  for (const Args& args : {Args{"GET", "k"}, Args{"PING"}, Args{"MULTI"}, Args{"ACL", "WHOAMI"},
                           Args{"CLIENT", "SETNAME", "x"}, Args{"EVAL", "return 1", "0"}})
    EXPECT_EQ(refusal(*acl, state, args), "NOAUTH Authentication required.") << args[0];
  for (const Args& args : {Args{"AUTH", "x"}, Args{"HELLO", "3"}, Args{"QUIT"}})
    EXPECT_EQ(refusal(*acl, state, args), "") << args[0];
  // Redis's order: a known command with the wrong arity before NOAUTH. (Redis answers an unknown
  // command before NOAUTH too; Synod refuses whatever it does not know until AUTH.)
  EXPECT_EQ(refusal(*acl, state, {"GET"}), "ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(refusal(*acl, state, {"NOSUCH"}), "NOAUTH Authentication required.");

  Acl::Failure failure;
  EXPECT_EQ(acl->auth(state, {"AUTH", "wrong"}, failure).text,
            "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(failure, Acl::Failure::kWrongPassword);
  EXPECT_FALSE(state.authenticated);
  EXPECT_EQ(acl->auth(state, {"AUTH"}, failure).text,
            "ERR wrong number of arguments for 'auth' command");
  EXPECT_EQ(acl->auth(state, {"AUTH", "a", "b", "c"}, failure).text, "ERR syntax error");
  EXPECT_EQ(acl->auth(state, {"AUTH", "s3cret"}, failure), Reply::ok());
  EXPECT_TRUE(state.authenticated);
  EXPECT_EQ(refusal(*acl, state, {"FLUSHALL"}), "");
  // A failed AUTH afterwards leaves the connection as it was, as in Redis.
  EXPECT_EQ(acl->auth(state, {"AUTH", "default", "nope"}, failure).kind, Reply::Kind::kError);
  EXPECT_TRUE(state.authenticated);
}

TEST(Acl, ReadOnlyReadWriteAndAdminUsers) {
  auto acl = make({kReaderLine, kWriterLine, kAdminLine}, "");
  const AuthState reader = login(*acl, "reader", "r-pw");
  const AuthState writer = login(*acl, "writer", "w-pw");
  const AuthState admin = login(*acl, "admin", "a-pw");
  auto noperm = [](const std::string& what) {
    return "NOPERM this user has no permissions to run the '" + what + "' command";
  };
  // Read-only: reads, transactions and scripts (whose writes are refused as they run).
  for (const Args& args : {Args{"GET", "k"}, Args{"MGET", "a", "b"}, Args{"PING"}, Args{"MULTI"},
                           Args{"EXEC"}, Args{"WATCH", "k"}, Args{"EVAL", "return 1", "0"}})
    EXPECT_EQ(refusal(*acl, reader, args), "") << args[0];
  EXPECT_EQ(refusal(*acl, reader, {"SET", "k", "v"}), noperm("set"));
  EXPECT_EQ(refusal(*acl, reader, {"del", "k"}), noperm("del"));
  EXPECT_EQ(refusal(*acl, reader, {"INFO"}), noperm("info"));
  EXPECT_EQ(refusal(*acl, reader, {"MEMBER", "PROMOTE", "4"}), noperm("member|promote"));
  // What no table knows is in no category: refused unless a rule names it or +@all.
  EXPECT_EQ(refusal(*acl, reader, {"NOSUCH"}), noperm("nosuch"));
  EXPECT_EQ(refusal(*acl, reader, {"CLIENT", "PAUSE", "10"}), noperm("client|pause"));
  // CLIENT LIST and KILL are @admin @dangerous @connection, as in Redis: a user with +@connection
  // may run them (as in Redis), one without @admin may not.
  EXPECT_EQ(refusal(*acl, reader, {"CLIENT", "LIST"}), "");
  EXPECT_EQ(refusal(*acl, writer, {"CLIENT", "LIST"}), noperm("client|list"));
  EXPECT_EQ(refusal(*acl, writer, {"CLIENT", "KILL", "ID", "1"}), noperm("client|kill"));
  EXPECT_EQ(refusal(*acl, writer, {"CLIENT", "SETNAME", "x"}), "");
  EXPECT_EQ(refusal(*acl, writer, {"NOSUCH"}), "");
  // Read-write: data, not administration.
  EXPECT_EQ(refusal(*acl, writer, {"SET", "k", "v"}), "");
  EXPECT_EQ(refusal(*acl, writer, {"EVAL", "return 1", "0"}), "");
  for (const auto& [args, what] : std::vector<std::pair<Args, std::string>>{
           {{"FLUSHALL"}, "flushall"},
           {{"KEYS", "*"}, "keys"},
           {{"INFO"}, "info"},
           {{"CONFIG", "GET", "save"}, "config|get"},
           {{"SYNOD.FAULT", "BLOCK", "2"}, "synod.fault"},
           {{"MEMBER", "LIST"}, "member|list"},
           {{"MEMBER", "ADD-LEARNER", "h:1"}, "member|add-learner"},
           {{"member", "remove", "2"}, "member|remove"},
           {{"MEMBER", "REPLACE", "2", "h:1"}, "member|replace"},
           {{"ACL", "LIST"}, "acl|list"},
           {{"acl", "users"}, "acl|users"},
           {{"ACL", "WHOAMI"}, "acl|whoami"}})  // @slow alone in Redis: not in @all minus these
    EXPECT_EQ(refusal(*acl, writer, args), what == "acl|whoami" ? "" : noperm(what)) << what;
  // Admin: everything.
  for (const Args& args : {Args{"FLUSHALL"}, Args{"SYNOD.FAULT", "CLEAR"}, Args{"ACL", "LIST"},
                           Args{"CONFIG", "GET", "x"}, Args{"INFO"}, Args{"MEMBER", "LIST"},
                           Args{"MEMBER", "PROMOTE", "4"}, Args{"MEMBER", "SWAP", "4", "2"}})
    EXPECT_EQ(refusal(*acl, admin, args), "") << args[0];
  // No client sends the log's own form of a script.
  EXPECT_EQ(refusal(*acl, admin, {"SYNOD.EVAL", "+@all", "EVAL", "return 1", "0"}),
            "ERR unknown command 'SYNOD.EVAL', with args beginning with: '+@all' 'EVAL' 'return 1' "
            "'0' ");
}

TEST(Acl, ARestrictedUsersScriptCarriesItsRules) {
  auto acl = make({kReaderLine, kAdminLine});
  Args eval = {"EVAL", "return 1", "0"};
  acl->bind_script(login(*acl, "admin", "a-pw"), eval);
  EXPECT_EQ(eval, (Args{"EVAL", "return 1", "0"}));
  acl->bind_script(login(*acl, "reader", "r-pw"), eval);
  EXPECT_EQ(eval, (Args{"SYNOD.EVAL", "-@all +@read +@connection +@transaction +@scripting", "EVAL",
                        "return 1", "0"}));
  Args get = {"GET", "k"};
  acl->bind_script(login(*acl, "reader", "r-pw"), get);
  EXPECT_EQ(get, (Args{"GET", "k"}));
}

TEST(Acl, WrongUsersAndDisabledUsersAreWrongpass) {
  auto acl =
      make({kReaderLine, "gone off #" + hex(sha256("g")) + " ~* +@all", "open on nopass ~* +@read"},
           "top");
  AuthState state = acl->connect();
  EXPECT_EQ(acl->authenticate(state, "nobody", "x"), Acl::Failure::kUnknownUser);
  EXPECT_EQ(acl->authenticate(state, "gone", "g"), Acl::Failure::kDisabled);
  EXPECT_EQ(acl->authenticate(state, "reader", "R-PW"), Acl::Failure::kWrongPassword);
  EXPECT_FALSE(state.authenticated);
  EXPECT_EQ(acl->authenticate(state, "open", "whatever"), Acl::Failure::kNone);
  EXPECT_EQ(state.user->name, "open");
  EXPECT_EQ(acl->authenticate(state, "default", "top"), Acl::Failure::kNone);
  EXPECT_EQ(state.user->name, "default");
}

TEST(Acl, ListsUsersWithoutTheirSecrets) {
  auto acl = make({kReaderLine, kAdminLine}, "top");
  const AuthState admin = login(*acl, "admin", "a-pw");
  EXPECT_EQ(acl->command(admin, {"ACL", "WHOAMI"}), Reply::bulk("admin"));
  EXPECT_EQ(acl->command(admin, {"ACL", "USERS"}), kv::bulks({"admin", "default", "reader"}));
  const Reply list = acl->command(admin, {"ACL", "LIST"});
  EXPECT_EQ(list, kv::bulks({"user admin on #<redacted> ~* &* +@all",
                             "user default on #<redacted> ~* &* +@all",
                             "user reader on #<redacted> ~* &* -@all +@read +@connection "
                             "+@transaction +@scripting"}));
  EXPECT_EQ(acl->command(admin, {"ACL", "CAT"}).elements.size(), 19u);
  const Reply admin_commands = acl->command(admin, {"ACL", "CAT", "admin"});
  EXPECT_NE(std::find(admin_commands.elements.begin(), admin_commands.elements.end(),
                      Reply::bulk("synod.fault")),
            admin_commands.elements.end());
  EXPECT_EQ(acl->command(admin, {"ACL", "CAT", "nope"}).text, "ERR Unknown category 'nope'");
  EXPECT_EQ(acl->command(admin, {"ACL", "SETUSER", "x", "on"})
                .text.rfind("ERR ACL SETUSER is not "
                            "supported: users come "
                            "from",
                            0),
            0u);
  EXPECT_EQ(acl->command(admin, {"ACL", "WHOAMI", "x"}).text,
            "ERR wrong number of arguments for 'acl|whoami' command");
  EXPECT_EQ(acl->command(admin, {"ACL", "FOO"}).text,
            "ERR unknown subcommand 'FOO'. Try ACL HELP.");
}

TEST(Acl, RefusesUserLinesItCannotHonour) {
  const std::string hash = hex(sha256("x"));
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"u on >plaintext-secret ~* +@all"}, "a password in plain text"},
      {{"u on #abc ~* +@all"}, "64 hex digits"},
      {{"u on #" + hash + " ~app:* +@all"}, "the only key pattern is ~*"},
      {{"u on #" + hash + " +@all"}, "no key pattern"},
      {{"u on #" + hash + " ~* +nosuch"}, "no such command"},
      {{"u on #" + hash + " ~* +config|nosuch"}, "no such command"},
      {{"u on #" + hash + " ~* +@fast"}, "@fast and @slow"},
      {{"u on #" + hash + " ~* +@all sanitize-payload"}, "not an ACL rule"},
      {{"u on ~*", "u off ~*"}, "defined twice"},
      {{""}, "empty user line"},
  };
  for (const auto& [lines, why] : cases) {
    auto acl = Acl::create(lines, "");
    ASSERT_FALSE(acl.is_ok()) << lines[0];
    EXPECT_NE(acl.status().message().find(why), std::string::npos) << acl.status().message();
    EXPECT_EQ(acl.status().message().find("plaintext-secret"), std::string::npos);
  }
  auto both = Acl::create({"default on nopass ~* +@all"}, "pw");
  ASSERT_FALSE(both.is_ok());
  EXPECT_NE(both.status().message().find("keep one"), std::string::npos);
  // What it can: subcommand rules, channels, reset, uppercase.
  EXPECT_TRUE(Acl::create({"u ON #" + hash.substr(0, 10) + std::string(54, 'A') +
                           " allkeys allchannels -@ALL +config|get +acl|whoami reset on ~* +get"},
                          "")
                  .is_ok());
}

TEST(Hello, OptionsAsRedisParsesThem) {
  HelloRequest h;
  EXPECT_FALSE(parse_hello({"HELLO", "3", "AUTH", "u", "p", "SETNAME", "me"}, h));
  EXPECT_EQ(h.protocol, 3);
  EXPECT_EQ(h.auth, (std::pair<std::string, std::string>{"u", "p"}));
  EXPECT_EQ(h.setname, "me");
  auto error = [](const Args& args) {
    HelloRequest ignored;
    auto e = parse_hello(args, ignored);
    return e ? e->text : "";
  };
  EXPECT_EQ(error({"HELLO", "3", "AUTH", "u"}), "ERR Syntax error in HELLO option 'AUTH'");
  EXPECT_EQ(error({"HELLO", "3", "foo"}), "ERR Syntax error in HELLO option 'foo'");
  EXPECT_EQ(error({"HELLO", "4"}), "NOPROTO unsupported protocol version");
  EXPECT_EQ(error({"HELLO", "x"}), "ERR Protocol version is not an integer or out of range");
  EXPECT_EQ(error({"HELLO", "2", "SETNAME", "a b"}),
            "ERR Client names cannot contain spaces, newlines or special characters.");
}

// testdata/acl/categories.txt: "name @cat..." as Redis 7.0 gives them (scripts/acl-golden).
std::map<std::string, uint32_t> redis_categories() {
  std::ifstream in(SYNOD_SOURCE_DIR "/testdata/acl/categories.txt");
  EXPECT_TRUE(in.good());
  std::map<std::string, uint32_t> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string name, category;
    words >> name;
    uint32_t bits = 0;
    while (words >> category) {
      for (const auto& [known, bit] : kv::category_names())
        if ("@" + std::string(known) == category) bits |= bit;
    }
    out[name] = bits;
  }
  return out;
}

TEST(CommandCategories, AreRedisCategoriesForEveryCommandSynodHas) {
  const auto redis = redis_categories();
  ASSERT_GT(redis.size(), 300u);
  // Where Synod differs on purpose: TIME is a linearizable read of the cluster clock; DELIFEQ is
  // Valkey's, SYNOD.FAULT, SYNOD.EVAL and MEMBER Synod's, CLIENT SETINFO Redis 7.2's.
  const std::set<std::string> differ = {"time",        "delifeq",        "synod.eval",
                                        "synod.fault", "client|setinfo", "member"};
  int compared = 0;
  // Every command of the table, the server's own included, and every subcommand.
  kv::for_each_command([&](const kv::CommandSpec& spec) {
    const std::string name(spec.name);
    if (differ.count(name)) return;
    ASSERT_TRUE(redis.count(name)) << name;
    EXPECT_EQ(command_categories(name, ""), redis.at(name)) << name;
    ++compared;
    for (const kv::CommandSpec& sub : spec.subcommands) {
      const std::string full = name + "|" + std::string(sub.name);
      if (differ.count(full)) continue;
      ASSERT_TRUE(redis.count(full)) << full;
      EXPECT_EQ(command_categories(name, sub.name), redis.at(full)) << full;
      ++compared;
    }
  });
  EXPECT_GT(compared, 170);
}

}  // namespace
}  // namespace synod::node
