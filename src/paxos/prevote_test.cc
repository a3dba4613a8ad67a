// PreVote and leader stickiness (docs/core.md): a replica whose election timer fires asks before
// it campaigns, a follower that hears its leader refuses it and ignores higher Prepares, and none
// of it changes acceptor state. Each test that shows a healthy leader kept also shows, with the
// planted bug removed-member-disrupts (no PreVote, no stickiness), that the same schedule deposes
// it: the tests can fail.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "paxos/replica.h"
#include "paxos/testing/leader_steps.h"
#include "paxos/testing/test_cluster.h"

namespace synod::paxos {
namespace {

using testing::ClusterOptions;
using testing::command;
using testing::count_sent;
using testing::elect_and_commit;
using testing::expect_clean;
using testing::TestCluster;

constexpr NodeId N1{1};
constexpr NodeId N2{2};
constexpr NodeId N3{3};

Ballot B(uint64_t round, uint32_t node) {
  return Ballot{round, NodeId{node}};
}

ClusterOptions options_with(bool disrupts) {
  ClusterOptions options;
  options.bugs.removed_member_disrupts = disrupts;
  return options;
}

int max_timeout(TestCluster& c) {
  return static_cast<int>(c.config_for(N1).election_timeout_max_ticks);
}

// A follower whose timer fires while the others still hear the leader asks, is refused by the
// leader and the sticky follower, and sends no Prepare; nobody's promise moves, nothing is
// persisted for the question, and the leader stays.
TEST(PreVote, RefusedWhileTheLeaderIsHeard) {
  TestCluster c(3);
  elect_and_commit(c, N1);
  const Ballot leader_ballot = c.replica(N1).ballot();
  for (NodeId id : c.members()) c.readies(id).clear();
  c.tick(N2, max_timeout(c));  // N2's timer fires (N1's heartbeats do not reach it meanwhile)
  EXPECT_EQ(count_sent<PreVoteMsg>(c, N2), 2u);
  EXPECT_GT(c.deliver_prevotes(N2), 0u);
  for (const Ready& ready : c.readies(N2)) {
    for (const Envelope& e : ready.messages)
      EXPECT_FALSE(std::holds_alternative<PrepareMsg>(e.message)) << to_string(e);
  }
  for (NodeId id : {N1, N3}) {
    EXPECT_EQ(c.replica(id).promised(), leader_ballot) << to_string(id);
    for (const Ready& ready : c.readies(id)) EXPECT_TRUE(ready.persist.empty()) << to_string(id);
  }
  EXPECT_EQ(c.replica(N1).role(), Role::kLeader);
  EXPECT_EQ(c.replica(N2).role(), Role::kFollower);
  expect_clean(c);
}

// The answers, one by one: the leader refuses, a follower that hears it refuses, one that no
// longer does grants — unless the asker lags by more than a pipeline window (one slot here), or
// asks about a ballot it would not promise. A refusal names the promise to beat.
TEST(PreVote, GrantsOnlyWithoutALeaderForAnUpToDateAskerAndAPromisableBallot) {
  ClusterOptions options;
  options.configure = [](Config& config) { config.max_inflight_slots = 1; };
  TestCluster c(3, options);
  elect_and_commit(c, N1, 2);
  const Slot commit = c.replica(N3).commit();
  auto answer = [&](NodeId to, Ballot ballot, Slot asker_commit) {
    c.readies(to).clear();
    c.replica(to).step(Envelope{N2, to, PreVoteMsg{ballot, asker_commit}});
    c.process(to);
    std::vector<PreVoteReplyMsg> replies;
    for (const Ready& ready : c.readies(to)) {
      EXPECT_TRUE(ready.persist.empty());
      for (const Envelope& e : ready.messages)
        if (const auto* r = std::get_if<PreVoteReplyMsg>(&e.message)) replies.push_back(*r);
    }
    EXPECT_EQ(replies.size(), 1u);
    return replies.empty() ? PreVoteReplyMsg{} : replies[0];
  };
  EXPECT_FALSE(answer(N1, B(9, 2), commit).granted);  // the leader
  EXPECT_FALSE(answer(N3, B(9, 2), commit).granted);  // hears the leader
  c.replica(N3).forget_leader();
  EXPECT_TRUE(answer(N3, B(9, 2), commit).granted);
  EXPECT_TRUE(answer(N3, B(9, 2), commit - 1).granted);   // a window behind
  EXPECT_FALSE(answer(N3, B(9, 2), commit - 2).granted);  // lags
  const PreVoteReplyMsg low = answer(N3, B(0, 2), commit);
  EXPECT_FALSE(low.granted);  // not above the promise
  EXPECT_EQ(low.promised, c.replica(N3).promised());
  // Asking changed nothing: N3 still promises N1's ballot and takes its heartbeats.
  c.readies(N3).clear();
  EXPECT_EQ(c.replica(N3).promised(), c.replica(N1).ballot());
  expect_clean(c);
}

// Stickiness for real Prepares: a follower that hears its leader does not answer a higher
// ballot's Prepare (as if it were lost) unless it is marked as a transfer from that very leader's
// ballot (a late TimeoutNow of an earlier leadership ends no later one).
TEST(PreVote, AStickyFollowerIgnoresAPrepareUnlessItIsATransfer) {
  TestCluster c(3);
  elect_and_commit(c, N1);
  const Ballot before = c.replica(N3).promised();
  c.readies(N3).clear();
  c.replica(N3).step(Envelope{N2, N3, PrepareMsg{B(7, 2), 1}});
  c.process(N3);
  EXPECT_EQ(c.replica(N3).promised(), before);
  EXPECT_EQ(count_sent<PromiseMsg>(c, N3) + count_sent<RejectMsg>(c, N3), 0u);
  const Ballot earlier{before.round - 1, before.node};
  c.replica(N3).step(Envelope{N2, N3, PrepareMsg{B(7, 2), 1, /*transfer=*/true, earlier}});
  c.process(N3);
  EXPECT_EQ(c.replica(N3).promised(), before);
  EXPECT_EQ(count_sent<PromiseMsg>(c, N3) + count_sent<RejectMsg>(c, N3), 0u);
  c.replica(N3).step(Envelope{N2, N3, PrepareMsg{B(7, 2), 1, /*transfer=*/true, before}});
  c.process(N3);
  EXPECT_EQ(c.replica(N3).promised(), B(7, 2));
  EXPECT_EQ(count_sent<PromiseMsg>(c, N3), 1u);
  expect_clean(c);
}

// A follower cut off from a healthy leader (which keeps its quorum) campaigns while away and
// comes back: the leader is still the leader in the same ballot. With the planted bug the
// returning follower's higher ballot deposes it.
void isolate_and_rejoin(bool disrupts, Ballot& leader_ballot, std::vector<NodeId>& leaders_after,
                        Ballot& n3_promised) {
  TestCluster c(3, options_with(disrupts));
  elect_and_commit(c, N1);
  leader_ballot = c.replica(N1).ballot();
  c.isolate(N3);
  c.run(5 * max_timeout(c));  // N3 times out several times meanwhile
  c.heal();
  c.run(5 * max_timeout(c));
  leaders_after = c.leaders();
  n3_promised = c.replica(N3).promised();
  ASSERT_EQ(c.propose(leaders_after.empty() ? N1 : leaders_after[0], command(1, 2)),
            ProposeStatus::kQueued);
  c.run(5);
  expect_clean(c);
}

TEST(PreVote, AFollowerBackFromAPartitionDoesNotDeposeTheLeader) {
  Ballot ballot, n3_promised;
  std::vector<NodeId> leaders;
  isolate_and_rejoin(false, ballot, leaders, n3_promised);
  EXPECT_EQ(leaders, std::vector<NodeId>{N1});
  EXPECT_EQ(n3_promised, ballot);  // it follows the same ballot: nobody was deposed
  isolate_and_rejoin(true, ballot, leaders, n3_promised);
  EXPECT_NE(n3_promised, ballot) << "the planted bug should depose the leader";
}

// A replica restarted with its data used to take leadership from a healthy leader at once: its
// timer fired before the leader's heartbeats reached it (the leader's connection to it was not
// back yet), and its Prepare of ballot 2.1 beat 1.3. Now its pre-vote is refused and 1.3 stays.
void restart_while_leader_heard(bool disrupts, std::vector<NodeId>& leaders_after,
                                Ballot& leader_ballot) {
  TestCluster c(3, options_with(disrupts));
  elect_and_commit(c, N3);
  EXPECT_EQ(c.replica(N3).ballot(), B(1, 3));
  c.crash(N1);
  c.restart(N1);
  c.block(N3, N1);  // the leader's messages to n1 do not get through yet; n1's own do
  c.run(3 * max_timeout(c));
  c.heal();
  c.run(3 * max_timeout(c));
  leaders_after = c.leaders();
  leader_ballot = leaders_after.size() == 1 ? c.replica(leaders_after[0]).ballot() : Ballot{};
  expect_clean(c);
}

TEST(PreVote, ARestartedReplicaDoesNotTakeLeadershipFromAHealthyLeader) {
  std::vector<NodeId> leaders;
  Ballot ballot;
  restart_while_leader_heard(false, leaders, ballot);
  EXPECT_EQ(leaders, std::vector<NodeId>{N3});
  EXPECT_EQ(ballot, B(1, 3));
  restart_while_leader_heard(true, leaders, ballot);
  EXPECT_NE(ballot, B(1, 3)) << "the planted bug should let the restarted replica take over";
}

// Liveness: after the leader crashes, the followers stop hearing it, and one of them wins.
TEST(PreVote, AfterTheLeaderCrashesAFollowerWins) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    ClusterOptions options;
    options.seed = seed;
    TestCluster c(3, options);
    elect_and_commit(c, N1);
    c.crash(N1);
    c.run(4 * max_timeout(c));
    const std::vector<NodeId> leaders = c.leaders();
    ASSERT_EQ(leaders.size(), 1u) << "seed " << seed << "\n" << c.recent_trace(40);
    EXPECT_NE(leaders[0], N1);
    expect_clean(c);
  }
}

// Liveness: a leader cut off from its quorum still steps down, and the majority side elects one.
TEST(PreVote, ALeaderThatLostItsQuorumStepsDownAndTheMajorityElects) {
  TestCluster c(3);
  elect_and_commit(c, N1);
  c.isolate(N1);
  c.run(4 * max_timeout(c));
  EXPECT_NE(c.replica(N1).role(), Role::kLeader);
  const std::vector<NodeId> leaders = c.leaders();
  ASSERT_EQ(leaders.size(), 1u) << c.recent_trace(40);
  EXPECT_NE(leaders[0], N1);
  c.heal();
  c.run(2 * max_timeout(c));
  EXPECT_EQ(c.leaders(), leaders);  // and the old leader, back, does not depose the new one
  expect_clean(c);
}

}  // namespace
}  // namespace synod::paxos
