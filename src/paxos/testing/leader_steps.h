// Steps and checks that the leadership tests (prevote_test.cc, transfer_test.cc) share over a
// TestCluster.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <variant>

#include "paxos/testing/test_cluster.h"

namespace synod::paxos::testing {

// Elects `id`, commits `commands` commands through it one by one, and sends a heartbeat, so that
// every follower knows the chosen prefix (and hears the leader: followers are sticky).
inline void elect_and_commit(TestCluster& c, NodeId id, uint64_t commands = 1) {
  c.campaign(id);
  c.stabilize();
  ASSERT_EQ(c.replica(id).role(), Role::kLeader) << c.recent_trace(40);
  for (uint64_t seq = 1; seq <= commands; ++seq) {
    ASSERT_EQ(c.propose(id, command(1, seq)), ProposeStatus::kQueued);
    c.stabilize();
  }
  c.tick(id, static_cast<int>(c.config_for(id).heartbeat_interval_ticks));
  c.stabilize();
}

// How many messages of type T replica `id` has sent.
template <typename T>
size_t count_sent(TestCluster& c, NodeId id) {
  size_t n = 0;
  for (const Ready& ready : c.readies(id)) {
    for (const Envelope& e : ready.messages) n += std::holds_alternative<T>(e.message) ? 1 : 0;
  }
  return n;
}

inline void expect_clean(TestCluster& c) {
  EXPECT_TRUE(c.violations().empty()) << c.recent_trace(60);
}

}  // namespace synod::paxos::testing
