// Redis's ACL command rules, as far as the state machine needs them: the command categories
// (@read, @write, @admin, ...) that the command table gives each command, and a user's rules
// (+@read -set +config|get ...) that say which commands the user may run.
//
// The server checks every client command against its user's rules (node/acl.h). A script is
// checked at run time too, command by command, as Redis checks redis.call: the rules of a user
// who may not run everything travel with the script in its log entry (SYNOD.EVAL, below), so
// every replica refuses the same commands inside it whatever its own configuration says.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace synod::kv {

// ACL categories, as Redis 7.0 names them (ACL CAT). Redis's @fast and @slow are not kept:
// Synod does not sort its commands by speed, and refuses rules that name them.
enum Category : uint32_t {
  kKeyspace = 1u << 0,
  kRead = 1u << 1,
  kWrite = 1u << 2,
  kSet = 1u << 3,
  kSortedSet = 1u << 4,
  kList = 1u << 5,
  kHash = 1u << 6,
  kString = 1u << 7,
  kBitmap = 1u << 8,
  kHyperLogLog = 1u << 9,
  kGeo = 1u << 10,
  kStream = 1u << 11,
  kPubSub = 1u << 12,
  kAdmin = 1u << 13,
  kBlocking = 1u << 14,
  kDangerous = 1u << 15,
  kConnection = 1u << 16,
  kTransaction = 1u << 17,
  kScripting = 1u << 18,
};

// Every category's name, in ACL CAT's order, and its bit.
const std::vector<std::pair<std::string_view, uint32_t>>& category_names();
// The names of the categories in `categories`, in ACL CAT's order.
std::vector<std::string_view> category_list(uint32_t categories);

// A user's command rules, applied in order as Redis applies them: the last rule that names a
// command (by a category it is in, by its name, or by name|subcommand) decides; a command no
// rule names is refused. Rules: +@cat -@cat +@all -@all allcommands nocommands +cmd -cmd
// +cmd|sub -cmd|sub. Command names are not checked here (the server checks them against the
// commands it has, node/acl.h): the state machine must accept whatever the server accepted.
class CommandRules {
 public:
  // Rules separated by single spaces, as text() writes them.
  static Result<CommandRules> parse(std::string_view text);
  [[nodiscard]] Status add(std::string_view rule);

  // May a command `name` (lower case), with subcommand `sub` ("" if none), in `categories`, run?
  bool allows(std::string_view name, std::string_view sub, uint32_t categories) const;
  // Every command may run (the last +@all is followed only by other + rules).
  bool allows_everything() const;
  // The rules, normalized (lower case), separated by spaces; "" for none.
  std::string text() const;

 private:
  struct Rule {
    bool allow = false;
    bool all = false;
    uint32_t categories = 0;
    std::string command;  // with `sub`, or alone for every subcommand
    std::string sub;
  };
  std::vector<Rule> rules_;
};

// The error a script gets when its user may not run a command it calls (Redis 7.0's text).
inline constexpr std::string_view kScriptNoPerm =
    "ERR The user executing the script can't run this command or subcommand";

}  // namespace synod::kv
