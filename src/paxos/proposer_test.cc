// The single-decree proposer: phase 1 needs promises from a phase-1 quorum, and phase 2 must
// propose the value of the highest-ballot proposal those promises reported (P2c, "Paxos Made
// Simple" section 2.2), else the proposer's own.
#include "paxos/proposer.h"

#include <gtest/gtest.h>

#include <optional>
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

const Value kOwn = V(9, 9);

Proposer make(uint32_t n, Bugs bugs = {}) {
  return Proposer(NodeId{1}, QuorumSystem::majority(ids(n)), kOwn, bugs);
}

TEST(ProposerTest, BeginStartsPhaseOneWithItsOwnBallot) {
  Proposer proposer = make(3);
  EXPECT_EQ(proposer.phase(), Proposer::Phase::kIdle);
  const Prepare prepare = proposer.begin(4);
  EXPECT_EQ(prepare.ballot, B(4, 1));
  EXPECT_EQ(proposer.ballot(), B(4, 1));
  EXPECT_EQ(proposer.phase(), Proposer::Phase::kPreparing);
  EXPECT_EQ(proposer.highest_round_seen(), 4u);
}

// P2c as a table: which value goes into phase 2 for a given set of promise reports.
struct ValueCase {
  const char* name;
  std::vector<std::optional<Proposal>> reports;  // from n1, n2, ... (one quorum of 5)
  Value expected;
};

TEST(ProposerTest, AdoptsTheHighestBallotReportedValue) {
  const std::vector<ValueCase> cases = {
      {"nothing reported: own value", {std::nullopt, std::nullopt, std::nullopt}, kOwn},
      {"one report wins over own value",
       {std::nullopt, Proposal{B(1, 2), V(2, 1)}, std::nullopt},
       V(2, 1)},
      {"highest round wins",
       {Proposal{B(1, 2), V(2, 1)}, Proposal{B(3, 4), V(4, 1)}, Proposal{B(2, 5), V(5, 1)}},
       V(4, 1)},
      {"node id breaks a round tie",
       {Proposal{B(2, 5), V(5, 1)}, Proposal{B(2, 3), V(3, 1)}, std::nullopt},
       V(5, 1)},
      {"order of arrival does not matter",
       {Proposal{B(3, 4), V(4, 1)}, Proposal{B(1, 2), V(2, 1)}, std::nullopt},
       V(4, 1)},
  };
  for (const ValueCase& c : cases) {
    SCOPED_TRACE(c.name);
    Proposer proposer = make(5);
    const Prepare prepare = proposer.begin(7);
    std::optional<Accept> accept;
    for (size_t i = 0; i < c.reports.size(); ++i) {
      ASSERT_FALSE(accept.has_value()) << "phase 2 before a quorum";
      accept = proposer.on_promise(NodeId{static_cast<uint32_t>(i + 1)},
                                   Promise{prepare.ballot, c.reports[i]});
    }
    ASSERT_TRUE(accept.has_value());
    EXPECT_EQ(accept->ballot, B(7, 1));
    EXPECT_EQ(accept->value, c.expected);
    EXPECT_EQ(proposer.phase(), Proposer::Phase::kAccepting);
  }
}

TEST(ProposerTest, NeedsAPhaseOneQuorum) {
  for (uint32_t n = 1; n <= 7; ++n) {
    SCOPED_TRACE("N=" + std::to_string(n));
    Proposer proposer = make(n);
    const Prepare prepare = proposer.begin(1);
    const uint32_t quorum = n / 2 + 1;
    for (uint32_t i = 1; i <= n; ++i) {
      const std::optional<Accept> accept =
          proposer.on_promise(NodeId{i}, Promise{prepare.ballot, std::nullopt});
      // Exactly once: at the promise that completes a quorum.
      EXPECT_EQ(accept.has_value(), i == quorum) << "promise " << i;
    }
  }
}

TEST(ProposerTest, DuplicatePromisesAreNotDoubleCounted) {
  Proposer proposer = make(3);
  const Prepare prepare = proposer.begin(1);
  EXPECT_FALSE(proposer.on_promise(NodeId{2}, Promise{prepare.ballot, std::nullopt}));
  EXPECT_FALSE(proposer.on_promise(NodeId{2}, Promise{prepare.ballot, std::nullopt}));
  EXPECT_FALSE(proposer.on_promise(NodeId{2}, Promise{prepare.ballot, std::nullopt}));
  EXPECT_EQ(proposer.phase(), Proposer::Phase::kPreparing);
  EXPECT_TRUE(proposer.on_promise(NodeId{3}, Promise{prepare.ballot, std::nullopt}));
}

TEST(ProposerTest, IgnoresNonMembersAndOtherBallots) {
  Proposer proposer = make(3);
  (void)proposer.begin(1);
  const Prepare prepare = proposer.begin(2);
  EXPECT_FALSE(proposer.on_promise(NodeId{9}, Promise{prepare.ballot, std::nullopt}));
  // Promises for the abandoned ballot 1.1 or someone else's ballot do not count.
  EXPECT_FALSE(proposer.on_promise(NodeId{2}, Promise{B(1, 1), std::nullopt}));
  EXPECT_FALSE(proposer.on_promise(NodeId{3}, Promise{B(2, 3), std::nullopt}));
  EXPECT_FALSE(proposer.on_promise(NodeId{2}, Promise{prepare.ballot, std::nullopt}));
  EXPECT_TRUE(proposer.on_promise(NodeId{3}, Promise{prepare.ballot, std::nullopt}));
}

TEST(ProposerTest, ReportsFromAnEarlierBallotAreForgotten) {
  Proposer proposer = make(3);
  const Prepare first = proposer.begin(1);
  // A report counted under ballot 1.1 must not leak into ballot 2.1's choice.
  EXPECT_FALSE(proposer.on_promise(NodeId{2}, Promise{first.ballot, Proposal{B(1, 3), V(3, 1)}}));
  const Prepare second = proposer.begin(2);
  EXPECT_FALSE(proposer.on_promise(NodeId{1}, Promise{second.ballot, std::nullopt}));
  const std::optional<Accept> accept =
      proposer.on_promise(NodeId{3}, Promise{second.ballot, std::nullopt});
  ASSERT_TRUE(accept.has_value());
  EXPECT_EQ(accept->value, kOwn);
}

TEST(ProposerTest, RejectAbandonsTheBallot) {
  Proposer proposer = make(3);
  const Prepare prepare = proposer.begin(1);
  EXPECT_TRUE(proposer.on_reject(Reject{prepare.ballot, B(4, 2)}));
  EXPECT_EQ(proposer.phase(), Proposer::Phase::kAbandoned);
  EXPECT_EQ(proposer.highest_round_seen(), 4u);
  // Promises for the abandoned ballot no longer count.
  EXPECT_FALSE(proposer.on_promise(NodeId{1}, Promise{prepare.ballot, std::nullopt}));
  EXPECT_FALSE(proposer.on_promise(NodeId{2}, Promise{prepare.ballot, std::nullopt}));
  // The next ballot must exceed the round that defeated this one.
  EXPECT_EQ(proposer.begin(5).ballot, B(5, 1));
}

TEST(ProposerTest, RejectInPhaseTwoAbandonsToo) {
  Proposer proposer = make(3);
  const Prepare prepare = proposer.begin(1);
  (void)proposer.on_promise(NodeId{1}, Promise{prepare.ballot, std::nullopt});
  ASSERT_TRUE(proposer.on_promise(NodeId{2}, Promise{prepare.ballot, std::nullopt}));
  EXPECT_TRUE(proposer.on_reject(Reject{prepare.ballot, B(1, 3)}));
  EXPECT_EQ(proposer.phase(), Proposer::Phase::kAbandoned);
}

TEST(ProposerTest, StaleOrBogusRejectsAreIgnoredButRoundsAreNoted) {
  Proposer proposer = make(3);
  (void)proposer.begin(1);
  const Prepare prepare = proposer.begin(3);
  // A reject of an older ballot: the current one stands, but the round is remembered.
  EXPECT_FALSE(proposer.on_reject(Reject{B(1, 1), B(6, 2)}));
  EXPECT_EQ(proposer.phase(), Proposer::Phase::kPreparing);
  EXPECT_EQ(proposer.highest_round_seen(), 6u);
  // A "reject" naming a promise that is not higher is no refusal at all.
  EXPECT_FALSE(proposer.on_reject(Reject{prepare.ballot, prepare.ballot}));
  EXPECT_FALSE(proposer.on_reject(Reject{prepare.ballot, B(2, 3)}));
  EXPECT_EQ(proposer.phase(), Proposer::Phase::kPreparing);
  // An idle proposer has nothing to abandon.
  Proposer idle = make(3);
  EXPECT_FALSE(idle.on_reject(Reject{Ballot{}, B(1, 2)}));
  EXPECT_EQ(idle.phase(), Proposer::Phase::kIdle);
}

TEST(ProposerDeathTest, ABallotMustExceedEveryRoundSeen) {
  Proposer proposer = make(3);
  (void)proposer.begin(2);
  EXPECT_DEATH((void)proposer.begin(2), "exceed every round");
}

TEST(ProposerTest, KeepHighestAndChooseValue) {
  std::optional<Proposal> highest;
  keep_highest(highest, std::nullopt);
  EXPECT_FALSE(highest.has_value());
  keep_highest(highest, Proposal{B(2, 1), V(1, 1)});
  keep_highest(highest, Proposal{B(1, 9), V(2, 1)});
  keep_highest(highest, std::nullopt);
  ASSERT_TRUE(highest.has_value());
  EXPECT_EQ(highest->value, V(1, 1));
  keep_highest(highest, Proposal{B(2, 2), V(3, 1)});
  EXPECT_EQ(highest->value, V(3, 1));

  EXPECT_EQ(choose_value(std::nullopt, kOwn, {}), kOwn);
  EXPECT_EQ(choose_value(highest, kOwn, {}), V(3, 1));
  Bugs bugs;
  bugs.ignore_promised_value = true;
  EXPECT_EQ(choose_value(highest, kOwn, bugs), kOwn);
  EXPECT_EQ(choose_value(std::nullopt, kOwn, bugs), kOwn);
}

TEST(ProposerTest, IgnorePromisedValueBugProposesOwnValueOverAReport) {
  Bugs bugs;
  bugs.ignore_promised_value = true;
  for (bool buggy : {false, true}) {
    SCOPED_TRACE(buggy ? "with ignore_promised_value" : "correct");
    Proposer proposer = make(3, buggy ? bugs : Bugs{});
    const Prepare prepare = proposer.begin(2);
    (void)proposer.on_promise(NodeId{1}, Promise{prepare.ballot, std::nullopt});
    const std::optional<Accept> accept =
        proposer.on_promise(NodeId{2}, Promise{prepare.ballot, Proposal{B(1, 3), V(3, 1)}});
    ASSERT_TRUE(accept.has_value());
    // The bug changes the value only; quorum counting and the ballot are as before.
    EXPECT_EQ(accept->ballot, B(2, 1));
    EXPECT_EQ(accept->value, buggy ? kOwn : V(3, 1));
  }
}

TEST(ProposerTest, FlexibleQuorumDecidesWhenPhaseOneEnds) {
  // Four acceptors, phase-1 quorums of 3 and phase-2 quorums of 2 (they always intersect).
  Proposer proposer(NodeId{1}, QuorumSystem::weighted(ids(4), {1, 1, 1, 1}, 3, 2), kOwn);
  const Prepare prepare = proposer.begin(1);
  EXPECT_FALSE(proposer.on_promise(NodeId{1}, Promise{prepare.ballot, std::nullopt}));
  EXPECT_FALSE(proposer.on_promise(NodeId{2}, Promise{prepare.ballot, std::nullopt}));
  EXPECT_TRUE(proposer.on_promise(NodeId{4}, Promise{prepare.ballot, std::nullopt}));
}

}  // namespace
}  // namespace synod::paxos
