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
  return a.intersects(b);
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
    EXPECT_EQ(q.is_phase1_quorum(set), row.quorum) << to_string(set);
    EXPECT_EQ(q.is_phase2_quorum(set), row.quorum) << to_string(set);
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
  EXPECT_DEATH((void)QuorumSystem::majority({NodeId{0}}), "bad member id");
}

// verify_quorum_system(): majorities and flexible systems with p1 + p2 > total pass; the planted
// minority quorums and flexible systems with a gap fail, naming two disjoint quorums.

QuorumSystem flexible(uint32_t n, uint64_t phase1, uint64_t phase2) {
  return QuorumSystem::weighted(ids(n), std::vector<uint32_t>(n, 1), phase1, phase2);
}

// Parses the two sets out of the error message and checks they are disjoint quorums.
void expect_names_disjoint_quorums(const QuorumSystem& q, const Status& status) {
  ASSERT_FALSE(status.is_ok());
  const std::string& msg = status.message();
  auto set_after = [&](const std::string& label) {
    NodeSet set;
    size_t at = msg.find(label);
    EXPECT_NE(at, std::string::npos) << msg;
    if (at == std::string::npos) return set;
    size_t open = msg.find('{', at), close = msg.find('}', at);
    std::string body = msg.substr(open + 1, close - open - 1);
    for (size_t pos = 0; pos < body.size();) {
      size_t comma = body.find(',', pos);
      if (comma == std::string::npos) comma = body.size();
      set.insert(NodeId{uint32_t(std::stoul(body.substr(pos + 1, comma - pos - 1)))});
      pos = comma + 1;
    }
    return set;
  };
  const NodeSet phase1 = set_after("phase-1 quorum {");
  const NodeSet phase2 = set_after("phase-2 quorum {");
  EXPECT_TRUE(q.is_phase1_quorum(phase1)) << msg;
  EXPECT_TRUE(q.is_phase2_quorum(phase2)) << msg;
  EXPECT_FALSE(phase1.intersects(phase2)) << msg;
}

TEST(VerifyQuorumTest, MajoritiesOfOneToNineAreSafe) {
  for (uint32_t n = 1; n <= 9; ++n) {
    EXPECT_TRUE(verify_quorum_system(QuorumSystem::majority(ids(n))).is_ok()) << n;
  }
  EXPECT_TRUE(verify_quorum_system(QuorumSystem::majority(ids(63))).is_ok());
}

TEST(VerifyQuorumTest, PlantedMinorityQuorumIsFlagged) {
  Bugs bugs;
  bugs.minority_quorum = true;
  for (uint32_t n = 2; n <= 9; ++n) {
    const QuorumSystem q = QuorumSystem::majority(ids(n), bugs);
    expect_names_disjoint_quorums(q, verify_quorum_system(q));
  }
}

TEST(VerifyQuorumTest, FlexibleTenNodes) {
  EXPECT_TRUE(verify_quorum_system(flexible(10, 7, 4)).is_ok());
  EXPECT_TRUE(verify_quorum_system(flexible(10, 4, 7)).is_ok());
  EXPECT_TRUE(verify_quorum_system(flexible(10, 10, 1)).is_ok());
  const QuorumSystem gap = flexible(10, 6, 4);
  const Status status = verify_quorum_system(gap);
  expect_names_disjoint_quorums(gap, status);
  EXPECT_NE(status.message().find("is unsafe"), std::string::npos) << status.message();
}

TEST(VerifyQuorumTest, Weighted) {
  // Weights 1,1,1,2 (total 5): any weight-3 quorums intersect, weight 2 and 3 do not.
  const std::vector<uint32_t> weights = {1, 1, 1, 2};
  EXPECT_TRUE(verify_quorum_system(QuorumSystem::weighted(ids(4), weights, 3, 3)).is_ok());
  EXPECT_TRUE(verify_quorum_system(QuorumSystem::weighted(ids(4), weights, 4, 2)).is_ok());
  const QuorumSystem gap = QuorumSystem::weighted(ids(4), weights, 2, 3);
  expect_names_disjoint_quorums(gap, verify_quorum_system(gap));
  // A heavy member alone is a phase-1 quorum; the rest together are a phase-2 quorum.
  const QuorumSystem heavy = QuorumSystem::weighted(ids(3), {5, 1, 1}, 5, 2);
  expect_names_disjoint_quorums(heavy, verify_quorum_system(heavy));
  // A member of weight 0 never helps.
  EXPECT_TRUE(verify_quorum_system(QuorumSystem::weighted(ids(4), {1, 1, 1, 0}, 2, 2)).is_ok());
}

TEST(VerifyQuorumTest, UnreachableQuorumsAreRefused) {
  const Status status = verify_quorum_system(flexible(3, 4, 2));
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.message().find("phase-1"), std::string::npos) << status.message();
}

TEST(VerifyQuorumTest, AgreesWithExhaustiveSearch) {
  // Every threshold pair over a few weight vectors: the verdict matches brute force.
  const std::vector<std::vector<uint32_t>> cases = {
      {1, 1, 1}, {1, 2, 3}, {2, 2, 1, 1, 1}, {3, 1, 1, 1, 1, 1}};
  for (const std::vector<uint32_t>& weights : cases) {
    const uint32_t n = uint32_t(weights.size());
    uint64_t total = 0;
    for (uint32_t w : weights) total += w;
    for (uint64_t p1 = 1; p1 <= total; ++p1) {
      for (uint64_t p2 = 1; p2 <= total; ++p2) {
        const QuorumSystem q = QuorumSystem::weighted(ids(n), weights, p1, p2);
        bool disjoint = false;
        for (uint32_t mask = 0; mask < (1u << n); ++mask) {
          NodeSet s, rest;
          for (uint32_t i = 0; i < n; ++i) ((mask >> i) & 1u ? s : rest).insert(NodeId{i + 1});
          disjoint = disjoint || (q.is_phase1_quorum(s) && q.is_phase2_quorum(rest));
        }
        const Status status = verify_quorum_system(q);
        EXPECT_EQ(status.is_ok(), !disjoint) << q.describe() << ": " << status.message();
        if (disjoint) expect_names_disjoint_quorums(q, status);
      }
    }
  }
}

TEST(VerifyQuorumTest, MakeFromConfig) {
  auto majority = make_quorum_system(5, QuorumConfig{});
  ASSERT_TRUE(majority.is_ok());
  EXPECT_EQ(majority->phase1_weight(), 3u);
  EXPECT_FALSE(make_quorum_system(4, QuorumConfig{{1, 1, 1}, 0, 0}).is_ok());
  EXPECT_FALSE(make_quorum_system(0, QuorumConfig{}).is_ok());
  auto weighted = make_quorum_system(4, QuorumConfig{{1, 1, 1, 2}, 0, 4});
  ASSERT_TRUE(weighted.is_ok());
  EXPECT_EQ(weighted->phase1_weight(), 3u);
  EXPECT_EQ(weighted->phase2_weight(), 4u);
  EXPECT_TRUE(verify_quorum_system(*weighted).is_ok());
}

}  // namespace
}  // namespace synod::paxos
