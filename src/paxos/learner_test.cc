// The single-decree learner: a value is chosen exactly when a phase-2 quorum of acceptors
// accepted it in one ballot ("Paxos Made Simple", section 2.3); votes in different ballots do not
// add up, and a learner told by another learner believes it.
#include "paxos/learner.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace synod::paxos {
namespace {

Ballot B(uint64_t round, uint32_t node) {
  return Ballot{round, NodeId{node}};
}

Value V(uint64_t client, uint64_t seq) {
  return Value{{Command{CommandId{client, seq}, "x"}}};
}

std::vector<NodeId> ids(uint32_t n) {
  std::vector<NodeId> out;
  for (uint32_t i = 1; i <= n; ++i) out.push_back(NodeId{i});
  return out;
}

struct Vote {
  uint32_t from;
  Ballot ballot;
  Value value;
};

// Which vote (0-based) makes the learner decide, and on what; -1: it never decides.
struct LearnCase {
  const char* name;
  uint32_t members;
  std::vector<Vote> votes;
  int decides_at;
  Value value;
};

TEST(LearnerTest, ChosenOnlyWithAPhaseTwoQuorumInOneBallot) {
  const std::vector<LearnCase> cases = {
      {"a majority in one ballot",
       3,
       {{1, B(1, 1), V(1, 1)}, {2, B(1, 1), V(1, 1)}, {3, B(1, 1), V(1, 1)}},
       1,
       V(1, 1)},
      {"a single acceptor of three is not enough", 3, {{2, B(1, 1), V(1, 1)}}, -1, {}},
      {"one acceptor is a quorum of one", 1, {{1, B(4, 1), V(1, 1)}}, 0, V(1, 1)},
      {"votes split across ballots do not count, even for the same value",
       3,
       {{1, B(1, 1), V(1, 1)}, {2, B(2, 2), V(1, 1)}},
       -1,
       {}},
      {"split votes, then a quorum forms in the later ballot",
       3,
       {{1, B(1, 1), V(1, 1)}, {2, B(2, 2), V(2, 1)}, {3, B(2, 2), V(2, 1)}},
       2,
       V(2, 1)},
      {"the same acceptor voting twice is one vote",
       5,
       {{1, B(1, 1), V(1, 1)},
        {1, B(1, 1), V(1, 1)},
        {2, B(1, 1), V(1, 1)},
        {2, B(1, 1), V(1, 1)},
        {3, B(1, 1), V(1, 1)}},
       4,
       V(1, 1)},
      {"an acceptor moving to a higher ballot counts there",
       3,
       {{1, B(1, 1), V(1, 1)}, {1, B(3, 2), V(1, 1)}, {2, B(3, 2), V(1, 1)}},
       2,
       V(1, 1)},
      {"votes from non-members are ignored",
       3,
       {{7, B(1, 1), V(1, 1)}, {9, B(1, 1), V(1, 1)}, {1, B(1, 1), V(1, 1)}},
       -1,
       {}},
      {"five acceptors need three",
       5,
       {{5, B(2, 5), V(5, 1)}, {4, B(2, 5), V(5, 1)}, {1, B(2, 5), V(5, 1)}},
       2,
       V(5, 1)},
  };
  for (const LearnCase& c : cases) {
    SCOPED_TRACE(c.name);
    Learner learner(QuorumSystem::majority(ids(c.members)));
    int decided_at = -1;
    for (size_t i = 0; i < c.votes.size(); ++i) {
      const Vote& vote = c.votes[i];
      const std::optional<Value> chosen =
          learner.on_accepted(NodeId{vote.from}, Accepted{vote.ballot, vote.value});
      if (!chosen) continue;
      EXPECT_EQ(decided_at, -1) << "decided twice, again at vote " << i;
      decided_at = static_cast<int>(i);
      EXPECT_EQ(*chosen, c.value);
    }
    EXPECT_EQ(decided_at, c.decides_at);
    EXPECT_EQ(learner.chosen().has_value(), c.decides_at >= 0);
    if (learner.chosen()) {
      EXPECT_EQ(*learner.chosen(), c.value);
    }
  }
}

TEST(LearnerTest, DecidesOnceThenStaysQuiet) {
  Learner learner(QuorumSystem::majority(ids(3)));
  EXPECT_FALSE(learner.on_accepted(NodeId{1}, Accepted{B(1, 1), V(1, 1)}));
  EXPECT_TRUE(learner.on_accepted(NodeId{2}, Accepted{B(1, 1), V(1, 1)}));
  // Later votes, in this or a later ballot (which by P2 carries the same value), say nothing new.
  EXPECT_FALSE(learner.on_accepted(NodeId{3}, Accepted{B(1, 1), V(1, 1)}));
  EXPECT_FALSE(learner.on_accepted(NodeId{1}, Accepted{B(2, 2), V(1, 1)}));
  EXPECT_FALSE(learner.on_accepted(NodeId{2}, Accepted{B(2, 2), V(1, 1)}));
  EXPECT_EQ(learner.chosen(), V(1, 1));
}

TEST(LearnerTest, LearnsFromAnotherLearnersChosen) {
  Learner learner(QuorumSystem::majority(ids(3)));
  EXPECT_FALSE(learner.chosen().has_value());
  EXPECT_TRUE(learner.on_chosen(Chosen{V(2, 1)}));
  EXPECT_EQ(learner.chosen(), V(2, 1));
  EXPECT_FALSE(learner.on_chosen(Chosen{V(2, 1)}));  // nothing new
  // Having decided, acceptances completing a quorum do not announce again.
  EXPECT_FALSE(learner.on_accepted(NodeId{1}, Accepted{B(1, 1), V(2, 1)}));
  EXPECT_FALSE(learner.on_accepted(NodeId{2}, Accepted{B(1, 1), V(2, 1)}));
  EXPECT_EQ(learner.chosen(), V(2, 1));
}

TEST(LearnerTest, ChosenAfterDecidingIsNotNews) {
  Learner learner(QuorumSystem::majority(ids(1)));
  EXPECT_TRUE(learner.on_accepted(NodeId{1}, Accepted{B(1, 1), V(1, 1)}));
  EXPECT_FALSE(learner.on_chosen(Chosen{V(1, 1)}));
}

TEST(LearnerTest, FlexiblePhaseTwoQuorum) {
  // Four acceptors; phase-2 quorums of weight 2 (phase-1 quorums of 3 make them safe).
  Learner learner(QuorumSystem::weighted(ids(4), {1, 1, 1, 1}, 3, 2));
  EXPECT_FALSE(learner.on_accepted(NodeId{3}, Accepted{B(1, 1), V(1, 1)}));
  EXPECT_TRUE(learner.on_accepted(NodeId{4}, Accepted{B(1, 1), V(1, 1)}));
}

TEST(LearnerTest, WeightedPhaseTwoQuorum) {
  // n1 weighs 3 and the others 1 each; phase 2 needs weight 4: n1 and any one other.
  Learner heavy(QuorumSystem::weighted(ids(4), {3, 1, 1, 1}, 4, 4));
  EXPECT_FALSE(heavy.on_accepted(NodeId{1}, Accepted{B(1, 1), V(1, 1)}));
  EXPECT_TRUE(heavy.on_accepted(NodeId{3}, Accepted{B(1, 1), V(1, 1)}));
  // Three light acceptors weigh only 3.
  Learner light(QuorumSystem::weighted(ids(4), {3, 1, 1, 1}, 4, 4));
  EXPECT_FALSE(light.on_accepted(NodeId{2}, Accepted{B(1, 1), V(1, 1)}));
  EXPECT_FALSE(light.on_accepted(NodeId{3}, Accepted{B(1, 1), V(1, 1)}));
  EXPECT_FALSE(light.on_accepted(NodeId{4}, Accepted{B(1, 1), V(1, 1)}));
  EXPECT_TRUE(light.on_accepted(NodeId{1}, Accepted{B(1, 1), V(1, 1)}));
}

TEST(LearnerDeathTest, TwoValuesInOneBallotIsABrokenInvariant) {
  Learner learner(QuorumSystem::majority(ids(3)));
  (void)learner.on_accepted(NodeId{1}, Accepted{B(1, 1), V(1, 1)});
  EXPECT_DEATH((void)learner.on_accepted(NodeId{2}, Accepted{B(1, 1), V(2, 1)}),
               "two values accepted in one ballot");
}

}  // namespace
}  // namespace synod::paxos
