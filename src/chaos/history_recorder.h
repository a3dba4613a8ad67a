// The history of one chaos run: every client operation as the client saw it, on one steady clock,
// written as JSON Lines (HISTORY-FORMAT.md) and handed to the linearizability checker. Thread-safe:
// every client thread and the nemesis record into the same recorder.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "lincheck/history.h"

namespace synod::chaos {

// One operation as one JSON object on one line, in the format lincheck::parse_operation reads.
std::string to_json_line(const lincheck::Operation& op);

// How many operations ended which way, for the summary line.
struct OutcomeCounts {
  size_t total = 0;
  size_t acknowledged = 0;  // a definite reply (including cas ok:false and reads)
  size_t failed = 0;        // a definite failure (`error`): no effect
  size_t unknown = 0;       // no reply we can trust: may have taken effect
};
OutcomeCounts count_outcomes(const lincheck::History& history);

class HistoryRecorder {
 public:
  HistoryRecorder() : origin_(std::chrono::steady_clock::now()) {}

  // Nanoseconds since the recorder was made; the `call` and `return` clock of every operation.
  int64_t now_ns() const;
  // Records a finished operation (its call_ns and return_ns already set from now_ns()).
  void add(lincheck::Operation op);
  // A comment line (a fault injected or healed), stamped with now_ns().
  void note(const std::string& text);

  lincheck::History history() const;
  // Writes the operations in call order, then the notes as `#` comments.
  Status write(const std::string& path) const;

 private:
  const std::chrono::steady_clock::time_point origin_;
  mutable std::mutex mu_;
  std::vector<lincheck::Operation> ops_;
  std::vector<std::string> notes_;
};

}  // namespace synod::chaos
