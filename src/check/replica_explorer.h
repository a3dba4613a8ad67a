// Breadth-first exploration of every World a ReplicaModel can reach, checking safety in each.
// Worlds are deduplicated by a 128-bit hash of their canonical encoding (hash compaction: two
// distinct worlds merge only on a hash collision, with probability below states^2 / 2^129);
// breadth-first order makes the first violation found one with a shortest trace, which is then
// replayed from the initial world step by step.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "check/explorer.h"
#include "check/replica_model.h"

namespace synod::check {

struct ReplicaExploreResult {
  uint64_t states = 0;       // distinct worlds reached (including the initial one)
  uint64_t transitions = 0;  // actions applied, including those that led to known worlds
  int max_depth = 0;         // the longest shortest path from the initial world
  double seconds = 0;
  // False when the search stopped at max_states before exhausting the space: then the absence
  // of a violation proves nothing.
  bool complete = true;
  std::optional<std::string> violation;  // the first property broken, if any
  std::vector<TraceStep> trace;          // a shortest path to it
  std::vector<std::string> final_state;  // the violating world, one line per replica
};

// Stops after `max_states` distinct worlds (0: no limit). With `progress` set, one line per
// breadth-first level is written there.
ReplicaExploreResult explore_replicas(const ReplicaModel& model, uint64_t max_states = 0,
                                      std::ostream* progress = nullptr);

}  // namespace synod::check
