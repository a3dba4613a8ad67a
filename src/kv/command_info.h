// COMMAND and its subcommands, answered from the command table (kv/commands.h) as Redis 7.0
// answers them:
//
//   COMMAND                      every command's description (as COMMAND INFO gives it)
//   COMMAND INFO [name...]       name, arity, flags, first key, last key, step, ACL categories
//                                (with @fast or @slow), tips, key specs, subcommands
//   COMMAND DOCS [name...]       summary, since, group, complexity, arguments (redis-cli's hints)
//   COMMAND COUNT | LIST [FILTERBY ACLCAT c | PATTERN p | MODULE m]
//   COMMAND GETKEYS cmd arg...   the keys of a command, from the table's key positions
//
// The table gives what drives Synod (arity, flags, key positions, categories, subcommands); the
// parts that are Redis's prose and fine print — tips, key specs and DOCS — were recorded from
// Redis 7.0.15 by scripts/command-golden into redis_commands.inc. src/kv/golden_test.cc checks
// every command's COMMAND INFO against Redis's (testdata/commands/redis-7.0.txt), and lists the
// deliberate differences.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/reply.h"

namespace synod::kv {

// COMMAND ... (args[0] is COMMAND).
Reply command_command(const std::vector<std::string>& args);

// The keys of `command` (name first) by the table's key positions, or Redis's error.
Reply command_getkeys(const std::vector<std::string>& command);

// Every name COMMAND LIST gives, subcommands as "container|sub", in name order.
std::vector<std::string> command_list();

// RESP2 bytes of a reply, and a reply from RESP2 bytes (the recorded parts; tests).
std::string to_resp2(const Reply& reply);
std::optional<Reply> from_resp2(std::string_view bytes);

}  // namespace synod::kv
