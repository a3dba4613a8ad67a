// Transactions (MULTI/EXEC/WATCH) as the state machine sees them: one log entry, applied
// atomically at one log position.
//
// The connection (node/server.cc) queues a client's commands between MULTI and EXEC, checking each
// at queue time against the command table (check_queued); EXEC sends the whole transaction as one
// command, `EXEC`, encoded by encode_exec (docs/wal-format.md, "Transactions"):
//
//   EXEC <number of watched keys> (<key> <position>)... (<argc> <arg>...)...
//
// so it is proposed, forwarded, retried and deduplicated like any write, under one command id. On
// apply, if any watched key was modified at a log position after the one its WATCH saw
// (Keyspace::modified_at), nothing runs and the reply is the null array; otherwise every command
// runs in order at the entry's position and the reply is the array of their replies (a runtime
// error, such as WRONGTYPE, is one element, as in Redis).
//
// WATCH is the command `WATCH key...`, served as a linearizable read: its reply is the log
// position of the state it was served from. Every modification at or before that position came
// before the WATCH, every one after it after, so "modified after WATCH" is exactly
// modified_at(key) > position — the same decision on every replica.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kv/reply.h"

namespace synod::kv {

struct Transaction {
  std::vector<std::pair<std::string, uint64_t>> watches;  // (key, position its WATCH saw)
  std::vector<std::vector<std::string>> commands;
};

std::vector<std::string> encode_exec(const Transaction& tx);
// nullopt if `args` (with EXEC first) is not encode_exec's output.
std::optional<Transaction> decode_exec(const std::vector<std::string>& args);

// The error a command gets when queued after MULTI, if the command table can tell without data
// (unknown command, wrong number of arguments, a command a transaction cannot hold); nullopt if
// it may be queued.
std::optional<Reply> check_queued(const std::vector<std::string>& args);

// Redis's texts.
inline constexpr std::string_view kExecAbort =
    "EXECABORT Transaction discarded because of previous errors.";

}  // namespace synod::kv
