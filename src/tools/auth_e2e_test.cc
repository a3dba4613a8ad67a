// Users and permissions on a real 3-replica cluster, configured as docs/operations.md ("Users and
// permissions") says: password hashes made with sha256sum, user lines in an ACL file, requirepass
// and the ACL file's path in the config file. redis-py (src/tools/auth_e2e.py) checks every user
// through the leader and a follower; redis-cli checks -a, --user/--pass and HELLO 3 AUTH; the
// replica's log names failed attempts without their passwords; a config the server cannot honour is
// refused at start.
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tools/e2e_support.h"

namespace synod::tools {
namespace {

// The operator's guide: printf %s 'password' | sha256sum.
std::string sha256sum(const std::string& password) {
  const Ran r = run_shell("printf %s '" + password + "' | sha256sum");
  EXPECT_EQ(r.exit_code, 0);
  return r.output.substr(0, 64);
}

class AuthE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/synod-auth-config-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_ = dir_ + "/synod.toml";
    // As docs/operations.md writes them.
    const std::string users = dir_ + "/users.acl";
    std::ofstream(users) << "# read-only, read-write, admin\n"
                         << "user reader on #" << sha256sum("r-pw")
                         << " ~* &* -@all +@read +@connection +@transaction +@scripting\n"
                         << "user writer on #" << sha256sum("w-pw")
                         << " ~* &* +@all -@admin -@dangerous\n"
                         << "user admin on #" << sha256sum("a-pw") << " ~* &* +@all\n";
    std::ofstream(config_) << "[server]\n"
                           << "requirepass = \"" << kDefaultPassword << "\"\n"
                           << "aclfile = \"" << users << "\"\n";
  }
  void TearDown() override {
    if (!HasFailure()) std::system(("rm -rf " + dir_).c_str());
  }
  static constexpr const char* kDefaultPassword = "default-pw";
  std::string dir_, config_;
};

// What redis-cli prints, without the blank lines it adds after errors when not on a terminal.
std::string cli(const std::string& port, const std::string& args) {
  std::string out = run_shell("redis-cli -p " + port + " --no-auth-warning " + args).output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

TEST_F(AuthE2E, UsersPasswordsAndPermissionsThroughRedisPyAndRedisCli) {
  RedisPyCluster c("auth_e2e.py", {"--config", config_}, {"AUTH", "admin", "a-pw"});
  const Status started = c.start();
  ASSERT_TRUE(started.is_ok()) << started.to_string();
  const std::string leader = c.port(c.leader()), follower = c.port(c.follower());

  EXPECT_EQ(c.python(leader + " " + follower + " " + kDefaultPassword), 0);

  // redis-cli: nothing before AUTH; -a with a wrong password says so and every command after it
  // is refused; -a, --user/--pass and -3 (HELLO 3 AUTH) with the right ones work.
  EXPECT_EQ(cli(follower, "GET auth:k"), "NOAUTH Authentication required.");
  const std::string wrong = cli(follower, "-a wrong PING");
  EXPECT_NE(wrong.find("AUTH failed: WRONGPASS invalid username-password pair or user is "
                       "disabled."),
            std::string::npos)
      << wrong;
  EXPECT_NE(wrong.find("NOAUTH Authentication required."), std::string::npos) << wrong;
  EXPECT_EQ(cli(follower, std::string("-a ") + kDefaultPassword + " PING"), "PONG");
  EXPECT_EQ(cli(follower, "--user writer --pass w-pw SET auth:cli v2"), "OK");
  EXPECT_EQ(cli(leader, "-3 --user reader --pass r-pw GET auth:cli"), "v2");
  EXPECT_EQ(cli(leader, "-3 --user reader --pass r-pw SET auth:cli x"),
            "NOPERM this user has no permissions to run the 'set' command");
  EXPECT_EQ(cli(leader, "--user writer --pass w-pw SYNOD.FAULT CLEAR"),
            "NOPERM this user has no permissions to run the 'synod.fault' command");
  EXPECT_EQ(cli(leader, "--user admin --pass a-pw ACL WHOAMI"), "admin");

  // The log names the user and the client's address, never a password; a name no user has (a
  // password typed in the wrong place, perhaps) is not written either.
  EXPECT_EQ(cli(follower, "--user writer --pass guess-one PING").find("AUTH failed: WRONGPASS"),
            0u);
  EXPECT_EQ(cli(follower, "--user guess-two --pass x PING").find("AUTH failed: WRONGPASS"), 0u);
  const std::string log = slurp(c.cluster().log_path(c.follower()));
  EXPECT_NE(log.find("AUTH failed for user 'writer' from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("AUTH failed for an unknown user (9 bytes) from 127.0.0.1:"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("guess-"), std::string::npos) << log;
  EXPECT_EQ(log.find(kDefaultPassword), std::string::npos) << log;

  EXPECT_TRUE(eventually([&] { return c.digests_agree(); })) << "replicas' state digests differ";
}

TEST_F(AuthE2E, AConfigTheServerCannotHonourIsRefusedAtStart) {
  const std::string base = std::string(SYNOD_BINARY) + " server --id 1 --peers 1=127.0.0.1:1 " +
                           "--data " + dir_ + "/data ";
  const Ran plaintext = run_shell(base + "--user 'u on >hunter2 ~* +@all'");
  EXPECT_EQ(plaintext.exit_code, 2);
  EXPECT_NE(plaintext.output.find("user 'u': a password in plain text"), std::string::npos)
      << plaintext.output;
  EXPECT_EQ(plaintext.output.find("hunter2"), std::string::npos) << plaintext.output;
  const Ran keys = run_shell(base + "--user 'u on nopass ~app:* +@all'");
  EXPECT_EQ(keys.exit_code, 2);
  EXPECT_NE(keys.output.find("the only key pattern is ~*"), std::string::npos) << keys.output;
  std::ofstream(dir_ + "/bad.acl") << "# users\n\nuser ok on nopass ~* +@all\nreader on ~*\n";
  const Ran file = run_shell(base + "--aclfile " + dir_ + "/bad.acl");
  EXPECT_EQ(file.exit_code, 2);
  EXPECT_NE(file.output.find("bad.acl:4: a line is 'user NAME RULE...'"), std::string::npos)
      << file.output;
}

}  // namespace
}  // namespace synod::tools
