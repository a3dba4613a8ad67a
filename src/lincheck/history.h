// A history of client operations on a key-value store, as recorded by a harness and read back
// from JSON Lines (the format is specified in HISTORY-FORMAT.md and docs/lincheck.md).
//
// A History is plain data: a harness may build one in memory and hand it to lincheck::check()
// without going through text at all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace synod::lincheck {

// kTxn: several gets, puts, cas and dels on (usually) several keys, applied together at one
// instant (MULTI/EXEC, a script).
enum class OpKind { kGet, kPut, kCas, kDel, kTxn };

// One client operation, exactly as the client saw it. Which fields matter depends on `kind`.
struct Operation {
  int64_t client = 0;
  OpKind kind = OpKind::kGet;
  std::string key;             // empty for a txn, whose parts name their keys
  std::string value;           // put: the value written
  std::string expect;          // cas: the value it must find (unless expect_absent)
  bool expect_absent = false;  // cas: succeed only if the key is missing (SET ... NX)
  std::string new_value;       // cas: the value written when it matched
  int64_t call_ns = 0;
  std::optional<int64_t> return_ns;  // nullopt: the outcome is unknown
  bool ok = false;                   // it succeeded (cas: matched and replaced)
  std::optional<bool> found;         // get: false means the key was missing; del: it existed
  std::string output;                // get: the value read
  std::optional<std::string> error;  // a definite failure: no effect, now or later
  int line = 0;                      // 1-based line in the source text; 0 when built in memory
  // txn: its parts in order, each a get, put, cas or del with its own key and arguments (a get's
  // found and output when the txn succeeded); their call, return, ok and error are the txn's.
  // A txn that returned ok:false without an error is one whose single cas part did not match:
  // nothing was written.
  std::vector<Operation> parts;

  bool outcome_unknown() const { return !return_ns.has_value(); }
};

struct History {
  std::vector<Operation> ops;
};

// At most this many parts in a txn.
inline constexpr size_t kMaxTxnParts = 64;

// The keys `op` reads or writes: its key, or its parts' keys (with repeats).
std::vector<std::string> keys_of(const Operation& op);

// Line length bound: a history line is a few hundred bytes; anything far longer is not one.
inline constexpr size_t kMaxLineBytes = 1 << 20;

// Parses JSON Lines. Blank lines and lines starting with '#' or '//' are comments. Unknown
// fields are ignored. The first malformed line fails the whole parse with a Status whose
// message starts with "line N: ".
Result<History> parse_history(std::string_view text);

// Parses one JSON object (no comment handling); `line` is only used in error messages.
Result<Operation> parse_operation(std::string_view json, int line);

std::string_view op_kind_name(OpKind kind);

// A one-line, human-readable rendering, e.g.
// `client 3  put "7"             [1200, 1850]  ok  (line 4)`.
std::string describe(const Operation& op);

}  // namespace synod::lincheck
