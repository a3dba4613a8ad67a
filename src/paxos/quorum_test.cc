// Quorum systems: majorities (any two intersect), the planted minority_quorum bug (two quorums
// may miss each other), and weighted / flexible systems where only phase-1 x phase-2
// intersection matters (Howard et al., "Flexible Paxos").
#include "paxos/quorum.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace synod::paxos {
namespace {

std::vector<NodeId> ids(uint32_t n) {
  std::vector<NodeId> out;
  for (uint32_t i = 1; i <= n; ++i) out.push_back(NodeId{i});
  return out;
}

// The subset of members 1..n picked by the bits of `mask`.
NodeSet subset(uint32_t n, uint32_t mask) {
  NodeSet set;
  for (uint32_t i = 0; i < n; ++i) {
    if ((mask >> i) & 1u) set.insert(NodeId{i + 1});
  }
  return set;
}

bool intersect(const NodeSet& a, const NodeSet& b) {
  return (a.bits() & b.bits()) != 0;
}

// True if every phase-1 quorum meets every phase-2 quorum of `q` over members 1..n.
bool phases_intersect(const QuorumSystem& q, uint32_t n) {
  for (uint32_t a = 0; a < (1u << n); ++a) {
    if (!q.is_phase1_quorum(subset(n, a))) continue;
    for (uint32_t b = 0; b < (1u << n); ++b) {
      if (q.is_phase2_quorum(subset(n, b)) && !intersect(subset(n, a), subset(n, b))) {
        return false;
      }
    }
  }
  return true;
}

TEST(NodeSetTest, Basics) {
  NodeSet set;
  EXPECT_TRUE(set.empty());
  set.insert(NodeId{3});
  set.insert(NodeId{63});
  set.insert(NodeId{3});
  EXPECT_EQ(set.size(), 2);
  EXPECT_TRUE(set.contains(NodeId{3}));
  EXPECT_TRUE(set.contains(NodeId{63}));
  EXPECT_FALSE(set.contains(NodeId{1}));
  set.erase(NodeId{3});
  EXPECT_EQ(set.size(), 1);
  NodeSet other;
  other.insert(NodeId{63});
  EXPECT_EQ(set, other);
  set.clear();
  EXPECT_TRUE(set.empty());
}

TEST(QuorumTest, MajoritiesForOneToSevenMembers) {
  for (uint32_t n = 1; n <= 7; ++n) {
    SCOPED_TRACE("N=" + std::to_string(n));
    const QuorumSystem q = QuorumSystem::majority(ids(n));
    EXPECT_EQ(q.members(), ids(n));
    const int majority = static_cast<int>(n / 2 + 1);
    for (uint32_t mask = 0; mask < (1u << n); ++mask) {
      const NodeSet set = subset(n, mask);
      EXPECT_EQ(q.is_phase1_quorum(set), set.size() >= majority) << "mask " << mask;
      EXPECT_EQ(q.is_phase2_quorum(set), set.size() >= majority) << "mask " << mask;
    }
    EXPECT_TRUE(phases_intersect(q, n));
  }
}

TEST(QuorumTest, MajorityQuorumSizes) {
  const int expected[] = {0, 1, 2, 2, 3, 3, 4, 4};
  for (uint32_t n = 1; n <= 7; ++n) {
    const QuorumSystem q = QuorumSystem::majority(ids(n));
    int smallest = 99;
    for (uint32_t mask = 0; mask < (1u << n); ++mask) {
      if (q.is_phase2_quorum(subset(n, mask)))
        smallest = std::min(smallest, subset(n, mask).size());
    }
    EXPECT_EQ(smallest, expected[n]) << "N=" << n;
  }
}

TEST(QuorumTest, MinorityQuorumBugIsFloorHalfAndQuorumsCanMiss) {
  Bugs bugs;
  bugs.minority_quorum = true;
  for (uint32_t n = 2; n <= 7; ++n) {
    SCOPED_TRACE("N=" + std::to_string(n));
    const QuorumSystem q = QuorumSystem::majority(ids(n), bugs);
    const int size = static_cast<int>(n / 2);
    for (uint32_t mask = 0; mask < (1u << n); ++mask) {
      const NodeSet set = subset(n, mask);
      EXPECT_EQ(q.is_phase2_quorum(set), set.size() >= size) << "mask " << mask;
    }
    EXPECT_FALSE(phases_intersect(q, n)) << "two disjoint quorums must exist";
  }
}

TEST(QuorumTest, MinorityQuorumBugOnOneReplicaStillNeedsOneVote) {
  Bugs bugs;
  bugs.minority_quorum = true;
  const QuorumSystem q = QuorumSystem::majority(ids(1), bugs);
  EXPECT_FALSE(q.is_phase2_quorum(subset(1, 0)));
  EXPECT_TRUE(q.is_phase2_quorum(subset(1, 1)));
}

TEST(QuorumTest, NonMembersCarryNoWeight) {
  const QuorumSystem q = QuorumSystem::majority({NodeId{2}, NodeId{4}, NodeId{6}});
  EXPECT_TRUE(q.is_member(NodeId{4}));
  EXPECT_FALSE(q.is_member(NodeId{1}));
  NodeSet set;
  set.insert(NodeId{2});
  set.insert(NodeId{1});
  set.insert(NodeId{3});
  EXPECT_FALSE(q.is_phase2_quorum(set));
  set.insert(NodeId{6});
  EXPECT_TRUE(q.is_phase2_quorum(set));
}

TEST(QuorumTest, WeightedQuorums) {
  // n1 weighs 3, n2..n4 weigh 1 each (total 6); quorums need weight 4.
  const QuorumSystem q = QuorumSystem::weighted(ids(4), {3, 1, 1, 1}, 4, 4);
  struct Row {
    std::vector<uint32_t> voters;
    bool quorum;
  };
  const std::vector<Row> rows = {
      {{1}, false},
      {{1, 2}, true},
      {{1, 4}, true},
      {{2, 3}, false},
      {{2, 3, 4}, false} /* weight 3 */,
      {{1, 2, 3, 4}, true},
      {{}, false},
  };
  for (const Row& row : rows) {
    NodeSet set;
    for (uint32_t v : row.voters) set.insert(NodeId{v});
    EXPECT_EQ(q.is_phase1_quorum(set), row.quorum) << set.bits();
    EXPECT_EQ(q.is_phase2_quorum(set), row.quorum) << set.bits();
  }
  EXPECT_TRUE(phases_intersect(q, 4));
}

TEST(QuorumTest, FlexiblePhaseWeights) {
  // Four members: phase 1 needs 3, phase 2 needs 2. 3 + 2 > 4, so they always intersect, though
  // two phase-2 quorums need not.
  const QuorumSystem q = QuorumSystem::weighted(ids(4), {1, 1, 1, 1}, 3, 2);
  NodeSet pair = subset(4, 0b0011);
  EXPECT_TRUE(q.is_phase2_quorum(pair));
  EXPECT_FALSE(q.is_phase1_quorum(pair));
  EXPECT_TRUE(q.is_phase1_quorum(subset(4, 0b1011)));
  EXPECT_TRUE(phases_intersect(q, 4));
  EXPECT_FALSE(intersect(subset(4, 0b0011), subset(4, 0b1100)));  // two phase-2 quorums

  // Phase-1 quorums of all five and phase-2 quorums of one: still safe (the extreme of FPaxos).
  EXPECT_TRUE(phases_intersect(QuorumSystem::weighted(ids(5), {1, 1, 1, 1, 1}, 5, 1), 5));
  // 2 + 2 on four members: the construction does not check, so the caller must.
  EXPECT_FALSE(phases_intersect(QuorumSystem::weighted(ids(4), {1, 1, 1, 1}, 2, 2), 4));
}

TEST(QuorumTest, Describe) {
  EXPECT_EQ(QuorumSystem::majority(ids(5)).describe(),
            "5 members, phase-1 weight 3, phase-2 weight 3");
  EXPECT_EQ(QuorumSystem::weighted(ids(4), {1, 1, 1, 1}, 3, 2).describe(),
            "4 members, phase-1 weight 3, phase-2 weight 2");
}

TEST(QuorumDeathTest, ConstructionChecksItsArguments) {
  EXPECT_DEATH((void)QuorumSystem::majority({}), "needs members");
  EXPECT_DEATH((void)QuorumSystem::majority({NodeId{1}, NodeId{1}}), "duplicate member");
  EXPECT_DEATH((void)QuorumSystem::weighted(ids(2), {1}, 1, 1), "one weight per member");
  EXPECT_DEATH((void)QuorumSystem::weighted(ids(2), {1, 1}, 0, 1), "empty set");
  EXPECT_DEATH((void)QuorumSystem::majority({NodeId{64}}), "bad member id");
}

}  // namespace
}  // namespace synod::paxos
