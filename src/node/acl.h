// Client authentication and permissions, as Redis 6+ has them: `requirepass` and ACL users
// (`AUTH [user] password`, `HELLO 3 AUTH user password`, `ACL WHOAMI | USERS | LIST | CAT`).
//
// Users are configuration: `user` lines of `synod server` (an ACL file, as Redis's `aclfile`, or
// --user), in Redis's ACL rule syntax — "alice on #<sha256 of the password> ~* +@all" — the same on
// every replica. A password is kept only as its SHA-256 (OpenSSL's libcrypto), written `#<64 hex
// digits>`; a candidate is hashed and compared in constant time. `requirepass` gives the default
// user that password, as in Redis. With neither, every connection is the default user with every
// right. Users cannot change at run time (ACL SETUSER and the rest are refused): a user table that
// differed between replicas, or changed outside the log, would let a script do different things
// on different replicas.
//
// Every client command passes check() before it runs (node/server.cc): Redis's order — a
// command the table knows with the wrong arity is refused first, then NOAUTH before AUTH (only
// AUTH, HELLO and QUIT are let through), then NOPERM if the user's rules (kv/acl.h) do not allow
// the command's categories, name or subcommand. Categories come from the command table
// (kv/commands.h), which holds the commands the server answers itself too; a command it does not
// know is in no category, so only +@all or a rule naming it lets it through.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "kv/acl.h"
#include "kv/reply.h"

namespace synod::node {

using Sha256 = std::array<unsigned char, 32>;
Sha256 sha256(std::string_view data);
std::string hex(const Sha256& digest);

struct User {
  std::string name;
  bool enabled = false;
  bool nopass = false;
  std::vector<Sha256> passwords;
  bool all_keys = false;
  kv::CommandRules rules;
  // As ACL LIST shows it, with every password hash left out.
  std::string describe() const;
};

// The ACL categories of command `name` (lower case) with subcommand `sub` ("" if none), from the
// command table; nullopt if it has no such command (its handler refuses it).
std::optional<uint32_t> command_categories(std::string_view name, std::string_view sub);

// One connection's state: whose rules apply, and whether it has authenticated.
struct AuthState {
  const User* user = nullptr;
  bool authenticated = false;
};

// HELLO [protover [AUTH user password] [SETNAME name]], parsed as Redis parses it.
struct HelloRequest {
  int protocol = 0;  // 0: unchanged
  std::optional<std::pair<std::string, std::string>> auth;
  std::optional<std::string> setname;
};
// The error Redis answers for a malformed HELLO, or nullopt with `out` filled.
std::optional<kv::Reply> parse_hello(const std::vector<std::string>& args, HelloRequest& out);

// The user lines of an ACL file, as Redis's `aclfile`: one `user NAME RULE...` a line; blank lines
// and lines starting with '#' are skipped. Refused with the file and line at fault.
Result<std::vector<std::string>> read_acl_file(const std::string& path);

class Acl {
 public:
  // `user_lines`: "name rule rule ...", each a user (Redis's `user` directive); `requirepass`:
  // the default user's password ("" for none). Refused with a message naming the line and the
  // rule at fault.
  static Result<std::unique_ptr<Acl>> create(const std::vector<std::string>& user_lines,
                                             const std::string& requirepass);

  // A new connection: the default user, authenticated if it needs no password.
  AuthState connect() const;

  // Why an AUTH failed, for the log (the client hears only WRONGPASS).
  enum class Failure { kNone, kUnknownUser, kDisabled, kWrongPassword };
  // Checks `user`'s `password`; on success `state` becomes that user's. Every password is hashed
  // and compared in constant time, whether the user exists or not.
  Failure authenticate(AuthState& state, std::string_view user, std::string_view password) const;
  // AUTH [user] password, with Redis's replies; `failure` says why it was refused, if it was.
  kv::Reply auth(AuthState& state, const std::vector<std::string>& args, Failure& failure) const;

  // The refusal of `args` for a connection in `state` (arity, NOAUTH, NOPERM, or an internal
  // command no client may send), or nullopt if it may run.
  std::optional<kv::Reply> check(const AuthState& state,
                                 const std::vector<std::string>& args) const;
  // EVAL and EVALSHA of a user who may not run every command become SYNOD.EVAL with the user's
  // rules (kv/scripting.h), so the script is checked as it runs; anything else is left alone.
  void bind_script(const AuthState& state, std::vector<std::string>& args) const;
  // ACL WHOAMI | USERS | LIST | CAT [category]; SETUSER, DELUSER, LOAD, SAVE are refused.
  kv::Reply command(const AuthState& state, const std::vector<std::string>& args) const;

  const User* find(std::string_view name) const;

 private:
  Acl() = default;
  std::map<std::string, User, std::less<>> users_;
};

}  // namespace synod::node
