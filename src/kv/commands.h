// The command table of the key-value state machine and what its handlers share: one entry per
// command (name, arity, handler), from which dispatch (Store::apply, Store::read) and
// kv::classify() are derived. A command with a write handler is applied from the log; one with a
// read handler is served as a linearizable read (and runs on the log clock when applied).
//
// Handlers follow Redis 7's semantics and its error texts byte for byte; where Synod differs on
// purpose (deterministic "random" replies, refused blocking commands, per-key bounds) the handler
// says why.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/acl.h"
#include "kv/keyspace.h"
#include "kv/store.h"

namespace synod::kv {

using Args = std::vector<std::string>;

using WriteFn = Reply (*)(Keyspace& ks, const Args& args);
using ReadFn = Reply (*)(const Keyspace& ks, const Args& args, uint64_t now_ms);

// Where a command's keys are, as Redis 7.0's COMMAND INFO gives them: arguments first, first +
// step, ... up to last (negative: counted from the end, -1 the last argument); 0 0 0 for none.
// A command with movable keys (EVAL, SINTERCARD) has numkeys: the index of the argument that
// counts the keys right after it. COMMAND GETKEYS reads them (kv/command_info.h).
struct KeyPositions {
  int first = 0;
  int last = 0;
  int step = 0;
  int numkeys = 0;
};

// One command of the table. Entries with a handler are the state machine's; entries without one
// (PING, CLIENT, CONFIG, ... in command_info.cc) are answered by the server's connections
// (node/server.cc) and are here so that COMMAND, ACL rules and arity checks see every command.
struct CommandSpec {
  std::string_view name;  // lower case
  int arity;  // as Redis counts it: N means exactly N words with the name, -N at least N
  // Redis 7.0's command flags, as COMMAND INFO names them, separated by spaces ("write denyoom
  // fast"); "noscript" keeps a command out of scripts, "fast" puts it in @fast.
  std::string_view flags;
  KeyPositions keys = {};
  WriteFn write = nullptr;  // at most one of write and read is set
  ReadFn read = nullptr;
  // ACL categories (kv/acl.h). An entry gives only those its family and handler do not imply;
  // find_command() answers with the whole set: the family's type (@string, @hash, ...; the
  // keyspace family's @keyspace) and @write or @read by handler (not for transactions and
  // scripts, which are @transaction and @scripting alone, as in Redis).
  uint32_t categories = 0;
  // A container's subcommands (SCRIPT LOAD, CLIENT LIST), named without the container; the
  // container's handler (or the server) serves them.
  std::vector<CommandSpec> subcommands = {};

  bool has_flag(std::string_view flag) const;
};

// The spec of a state-machine command (one with a handler) by its lower-case name, or null.
const CommandSpec* find_command(std::string_view lower_name);
// The spec of any command of the table, the server's included, or null.
const CommandSpec* describe_command(std::string_view lower_name);
// A container's subcommand by its lower-case name, or null.
const CommandSpec* find_subcommand(const CommandSpec& container, std::string_view lower_sub);
// Commands only the server writes into the log (SYNOD.EVAL): no client may send them, and
// COMMAND does not list them.
bool is_internal_command(std::string_view lower_name);
bool arity_ok(const CommandSpec& spec, size_t argc);
// Every flag name a spec may give, in the order COMMAND INFO lists them.
const std::vector<std::string_view>& command_flag_names();
// Every command of the table, the server's included, in name order (ACL CAT, COMMAND).
void for_each_command(const std::function<void(const CommandSpec&)>& visit);

// Each family's part of the table (string_commands.cc, hash_commands.cc, ...).
std::vector<CommandSpec> string_commands();
std::vector<CommandSpec> keyspace_commands();  // string_commands.cc: DEL, EXPIRE, SCAN, ...
std::vector<CommandSpec> hash_commands();
std::vector<CommandSpec> list_commands();
std::vector<CommandSpec> blocking_commands();  // list_commands.cc: refused, BLPOP, BZPOPMIN, ...
std::vector<CommandSpec> set_commands();
std::vector<CommandSpec> zset_commands();
std::vector<CommandSpec> transaction_commands();  // EXEC and WATCH (kv/transaction.h)
std::vector<CommandSpec> script_commands();       // scripting.cc
std::vector<CommandSpec> server_commands();       // command_info.cc: answered by the server

// --- Shared by the handlers ---

std::string lower(std::string_view s);
bool parse_i64(std::string_view s, int64_t& v);
// A float as Redis reads one (strtod): the whole text, no leading space, "inf"/"-inf" allowed,
// never NaN.
bool parse_double(std::string_view s, double& v);
bool parse_long_double(std::string_view s, long double& v);
// A double as Redis 7.0 replies one (a score): "%.17g", "inf", "-inf".
std::string format_double(double v);
// A long double as INCRBYFLOAT and HINCRBYFLOAT store it: "%.17Lf" without trailing zeros.
std::string format_long_double(long double v);

Reply wrong_type();
Reply syntax_error();
Reply not_integer();
Reply not_float();
Reply arity_error(std::string_view name);
// Redis's "ERR unknown command 'name', with args beginning with: 'a' 'b' " (at most 3 args).
Reply unknown_command(const Args& args);
Reply bulks(const std::vector<std::string>& items);

// The "random" choices of SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER and RANDOMKEY: seeded by the
// log position and the key, so every replica at the same position draws the same.
uint64_t draw_seed(const Keyspace& ks, std::string_view key);
// For the *RANDMEMBER family: `count` picks from `n` items (distinct when count >= 0, at most
// n of them; with repetitions when negative, |count| of them), as indices.
std::vector<size_t> random_picks(uint64_t seed, size_t n, int64_t count);

// SCAN, HSCAN, SSCAN and ZSCAN: "cursor [MATCH pattern] [COUNT n] [TYPE t]" from args[first].
struct ScanRequest {
  uint64_t cursor = 0;
  int64_t count = 10;
  std::optional<std::string> match;
  std::optional<std::string> type;  // SCAN only
};
std::optional<Reply> parse_scan(const Args& args, size_t first, bool allow_type, ScanRequest& out);
// Walks `names` in scan order (a stable hash of each name, then the name) from req.cursor, visiting
// about req.count of them, and calls emit(index) for each visited one that MATCH allows; returns
// the cursor to resume at (0: done). A name present for a whole iteration is returned at least
// once, whatever is added or removed meanwhile, and every replica orders names alike.
template <class Emit>
uint64_t scan_names(const std::vector<std::string_view>& names, const ScanRequest& req, Emit emit);
uint64_t scan_hash(std::string_view name);

template <class Emit>
uint64_t scan_names(const std::vector<std::string_view>& names, const ScanRequest& req, Emit emit) {
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < names.size(); ++i) {
    const uint64_t h = scan_hash(names[i]);
    if (h >= req.cursor) order.emplace_back(h, i);
  }
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && names[a.second] < names[b.second]);
  });
  int64_t visited = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    // Names with one hash are never split between calls: the cursor could not say where.
    if (visited >= req.count && order[i].first != order[i - 1].first) return order[i].first;
    ++visited;
    if (req.match && !glob_match(*req.match, names[order[i].second])) continue;
    emit(order[i].second);
  }
  return 0;
}

}  // namespace synod::kv
