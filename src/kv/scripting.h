// Redis scripting on the replicated state machine: EVAL, EVALSHA and SCRIPT LOAD/EXISTS/FLUSH,
// with Lua 5.1 (Debian's liblua5.1) and Redis 7.0's semantics: redis.call/pcall dispatch through
// the command table (the same handlers, so errors are Redis's), KEYS/ARGV, and Redis's
// conversions between Lua values and replies.
//
// A script is one log entry, run at apply time on every replica, and must do the same there:
//   - no os, io, loadfile, dofile, require or debug (the last could remove the bounds' hook);
//   - math.random is a 48-bit LCG (Redis's rand48) seeded from the log position, so it differs
//     between calls but not between replicas; TIME and expiries see the log clock;
//   - tostring() of a table or function names it by the order it was first printed, not by its
//     address;
//   - bounded alike everywhere: kMaxInstructions Lua VM instructions (a count hook) and
//     kMaxMemoryBytes of Lua heap (a counting allocator). A script over either fails with an
//     error, even if it catches the error with pcall.
// A script that fails keeps the writes it made before failing, as in Redis (there is no
// rollback): the failure point is deterministic, so every replica keeps the same writes.
//
// Each run gets a fresh Lua state: nothing a script leaves behind can reach the next one, and a
// replica restored from a snapshot runs scripts exactly as one that applied the whole log.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kv/acl.h"
#include "kv/keyspace.h"
#include "kv/reply.h"

namespace synod::kv {

struct CommandSpec;

// Bounds on one run of a script: part of the state machine's definition (equal on every replica).
inline constexpr uint64_t kMaxInstructions = 50'000'000;
inline constexpr size_t kMaxMemoryBytes = 64u << 20;

// script_commands() (commands.h) has EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT and SYNOD.EVAL:
// writes, through the log. EVAL_RO and EVALSHA_RO refuse redis.call of a write command (Redis's
// "Write commands are not allowed from read-only scripts."). One whose script is already cached
// changes nothing, so the router serves it as a linearizable read (a read index, no log entry);
// one whose script is not cached goes through the log, because EVAL_RO caches its script, as in
// Redis, and the cache is replicated state.
bool is_cached_read_only_script(const Keyspace& ks, const std::vector<std::string>& args);
// EVAL_RO or EVALSHA_RO served as a read at `now_ms` (at least the log clock): its reads see the
// state as a GET served then would. A script flushed since the router chose the read path runs
// uncached (EVAL_RO) or answers NOSCRIPT (EVALSHA_RO), as it would have at that point.
Reply read_only_script(const Keyspace& ks, const std::vector<std::string>& args, uint64_t now_ms);

// SCRIPT EXISTS changes nothing, so it is served as a read (kv::classify of the whole command).
bool is_script_read(const std::vector<std::string>& args);
Reply script_exists(const Keyspace& ks, const std::vector<std::string>& args);

// Runs `body` (whose SHA-1 is `sha`) with KEYS and ARGV against the keyspace; for tests too.
// With `rules`, a command they do not allow fails in the script with kScriptNoPerm; with
// `read_only`, writes through redis.call are refused.
Reply run_script(Keyspace& ks, const std::string& sha, const std::string& body,
                 const std::vector<std::string>& keys, const std::vector<std::string>& argv,
                 const CommandRules* rules = nullptr, bool read_only = false,
                 uint64_t read_now_ms = 0);

// SYNOD.EVAL: EVAL, EVALSHA, EVAL_RO or EVALSHA_RO run under a user's command rules (kv/acl.h),
// as the server sends the script of a user who may not run every command. The user's rules
// travel in the log entry, so every replica checks the script's commands alike.
//   SYNOD.EVAL <rules> EVAL|EVALSHA|EVAL_RO|EVALSHA_RO <script|sha> <numkeys> <key>... <arg>...
std::vector<std::string> encode_eval_with_rules(const CommandRules& rules,
                                                std::vector<std::string> args);

}  // namespace synod::kv
