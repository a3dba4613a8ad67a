// Breadth-first exploration of every state a Model can reach, checking safety in each. States
// are deduplicated by their canonical encoding; breadth-first order makes the first violation
// found one with a shortest trace, which is then replayed from the initial state step by step.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "check/model.h"

namespace synod::check {

struct TraceStep {
  std::string action;                // what happened
  std::vector<std::string> changes;  // role lines that changed, as "before => after"
  std::vector<std::string> sent;     // messages that entered the network
};

struct ExploreResult {
  uint64_t states = 0;       // distinct states reached (including the initial one)
  uint64_t transitions = 0;  // actions applied, including those that led to known states
  int max_depth = 0;         // the longest shortest path from the initial state
  double seconds = 0;
  std::optional<std::string> violation;  // the first property broken, if any
  std::vector<TraceStep> trace;          // a shortest path to it
  std::vector<std::string> final_state;  // the violating state, one line per role
};

// With `progress` set, one line per breadth-first level is written there.
ExploreResult explore(const Model& model, std::ostream* progress = nullptr);

}  // namespace synod::check
