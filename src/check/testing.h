// What the replica model checker's tests share: three voters, and one exploration.
#pragma once

#include <gtest/gtest.h>

#include "check/replica_explorer.h"

namespace synod::check::testing {

// Three voters, n1..n3 (with reconfiguration, n4 joins as a learner in the warm start).
inline paxos::QuorumSystem three() {
  return paxos::QuorumSystem::majority({NodeId{1}, NodeId{2}, NodeId{3}});
}

// Every state within `bounds`, with the planted `bug` if one is named (which the model must be
// able to find: check::replica_bug_not_applicable).
inline ReplicaExploreResult run(const ReplicaBounds& bounds, const char* bug = nullptr) {
  paxos::Bugs bugs;
  if (bug != nullptr) {
    EXPECT_TRUE(paxos::enable_bug(bug, bugs));
    EXPECT_FALSE(replica_bug_not_applicable(bug)) << bug;
  }
  return explore_replicas(ReplicaModel(ReplicaModelConfig{bounds, three(), three(), bugs}));
}

}  // namespace synod::check::testing
