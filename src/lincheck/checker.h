// The linearizability checker: does some single order of the operations, each placed at one
// instant inside its [call, return] interval, explain every reply a client saw?
//
// Keys are independent registers, so each key is checked on its own (P-compositionality), except
// keys that txn records tie together, which are checked as one object (a tuple of registers). Per
// key (or group), the search is Wing & Gong's with Lowe's just-in-time linearization and a memo of
// visited (set of linearized operations, register value) pairs, the algorithm of Knossos and
// Porcupine; docs/lincheck.md describes it and the meaning given to each kind of record.
//
// check() never fails on bad input: a History holds only well-typed operations. It may fail to
// decide within its Limits; an undecided verdict is not a pass.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lincheck/history.h"

namespace synod::lincheck {

struct Limits {
  double timeout_seconds = 60.0;             // wall-clock budget for the whole history; <= 0: none
  uint64_t max_states_per_key = 10'000'000;  // memo entries per key (the search's memory)
};

enum class Outcome { kLinearizable, kNotLinearizable, kUndecided };

std::string_view outcome_name(Outcome outcome);  // "LINEARIZABLE", "NOT LINEARIZABLE", ...

// The operations of one key, for a person to read.
struct KeyReport {
  std::string key;
  std::vector<Operation> ops;  // every record for the key, in call order
  // Not linearizable: the longest order the search found that explains a prefix of the history
  // (indices into `ops`), and the completed operation that no order could fit in after it.
  std::vector<size_t> longest_partial;
  std::optional<size_t> stuck_op;
};

struct Verdict {
  Outcome outcome = Outcome::kLinearizable;
  std::string reason;  // undecided: which limit was hit
  size_t keys_checked = 0;
  size_t keys_failed = 0;
  size_t ops_checked = 0;  // operations that constrain the store (after dropping no-ops)
  uint64_t states_explored = 0;
  double elapsed_s = 0;
  // Not linearizable: the failing key with the fewest operations. Undecided: the undecided key.
  std::optional<KeyReport> report;
};

Verdict check(const History& history, const Limits& limits = {});

// The verdict as the CLI prints it: the first line starts with outcome_name(); a failing or
// undecided key's history follows, one operation per line.
std::string format_verdict(const Verdict& verdict);

}  // namespace synod::lincheck
