// Linearizable reads by read index (Raft thesis §6.4): a read is served at the leader's highest
// assigned slot once a phase-2 quorum has answered an Accept sent after the read arrived, in the
// leader's ballot, and the chosen prefix reached that slot. A leader cut off while another is
// elected and acknowledges writes never serves a read; reads batch into one round; followers
// refuse; stepping down fails what is pending.
#include <gtest/gtest.h>

#include "paxos/replica.h"
#include "paxos/testing/test_cluster.h"

namespace synod::paxos {
namespace {

using testing::ClusterOptions;
using testing::command;
using testing::TestCluster;

const NodeId n1{1}, n2{2}, n3{3};

// Every ReadResult the replica reported since the test last cleared its Readies.
std::vector<ReadResult> reads(TestCluster& c, NodeId id) {
  std::vector<ReadResult> out;
  for (const Ready& ready : c.readies(id))
    out.insert(out.end(), ready.reads.begin(), ready.reads.end());
  return out;
}

bool carries_read_round(const Envelope& e, uint64_t round) {
  if (const auto* accept = std::get_if<AcceptMsg>(&e.message)) return accept->read_round == round;
  if (const auto* accepted = std::get_if<AcceptedMsg>(&e.message))
    return accepted->read_round == round;
  return false;
}

// n1 leads a 3-replica cluster and has `writes` commands chosen in slots 1..writes.
void elect_and_write(TestCluster& c, uint64_t writes) {
  c.campaign(n1);
  c.stabilize();
  ASSERT_EQ(c.leaders(), std::vector<NodeId>{n1});
  for (uint64_t seq = 1; seq <= writes; ++seq) {
    ASSERT_EQ(c.propose(n1, command(1, seq)), ProposeStatus::kQueued);
    c.stabilize();
  }
  ASSERT_EQ(c.replica(n1).commit(), writes);
  c.readies(n1).clear();
}

ClusterOptions configured(std::function<void(Config&)> configure) {
  ClusterOptions options;
  options.configure = std::move(configure);
  return options;
}

ReadStatus ask(TestCluster& c, NodeId id, uint64_t read_id) {
  const ReadStatus status = c.replica(id).read_index(read_id);
  c.process(id);
  return status;
}

TEST(ReadIndex, AQuorumConfirmsTheLeaderAndTheReadIsServedAtItsHighestSlot) {
  TestCluster c(3);
  elect_and_write(c, 3);
  ASSERT_EQ(ask(c, n1, 42), ReadStatus::kQueued);
  // One confirmation round, to one peer: with the leader's own vote, that is a quorum.
  EXPECT_EQ(c.count_in_flight({n1, {}, "Accept"}), 1u);
  EXPECT_TRUE(reads(c, n1).empty());
  c.deliver();  // the round reaches n2
  EXPECT_TRUE(reads(c, n1).empty());
  c.deliver({n2, n1, "Accepted"});  // one answer: with the leader, a majority
  const auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].read_id, 42u);
  EXPECT_TRUE(results[0].ok);
  EXPECT_EQ(results[0].slot, 3u);
  c.stabilize();
  EXPECT_EQ(reads(c, n1).size(), 1u);  // reported once
  EXPECT_TRUE(c.violations().empty()) << c.recent_trace(30);
}

TEST(ReadIndex, OneReplicaConfirmsItselfAtOnce) {
  TestCluster c(1);
  c.campaign(NodeId{1});
  c.stabilize();
  ASSERT_EQ(c.propose(NodeId{1}, command(1, 1)), ProposeStatus::kQueued);
  c.stabilize();
  c.readies(NodeId{1}).clear();
  ASSERT_EQ(ask(c, NodeId{1}, 5), ReadStatus::kQueued);
  const auto results = reads(c, NodeId{1});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok);
  EXPECT_EQ(results[0].slot, 1u);
}

TEST(ReadIndex, ReadsAskedTogetherShareOneRound) {
  TestCluster c(3);
  elect_and_write(c, 1);
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(c.replica(n1).read_index(id), ReadStatus::kQueued);
  c.process(n1);
  EXPECT_EQ(c.count_in_flight({n1, {}, "Accept"}), 1u);  // one round, not three
  EXPECT_EQ(std::count_if(c.in_flight().begin(), c.in_flight().end(),
                          [](const Envelope& e) { return carries_read_round(e, 1); }),
            1);
  c.stabilize();
  const auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].read_id, i + 1);
    EXPECT_TRUE(results[i].ok);
    EXPECT_EQ(results[i].slot, 1u);
  }
  // The next read needs a new round.
  ASSERT_EQ(ask(c, n1, 4), ReadStatus::kQueued);
  EXPECT_EQ(std::count_if(c.in_flight().begin(), c.in_flight().end(),
                          [](const Envelope& e) { return carries_read_round(e, 2); }),
            1);
}

// A round goes to the peers that answered the latest rounds, and only one round is in flight:
// reads that arrive meanwhile wait for the next, which starts once this one is answered.
TEST(ReadIndex, ARoundAsksThePeerThatAnsweredLastAndOneRoundIsInFlight) {
  TestCluster c(3);
  elect_and_write(c, 1);
  ASSERT_EQ(ask(c, n1, 1), ReadStatus::kQueued);
  c.drop_if([](const Envelope& e) { return carries_read_round(e, 1); });
  // The next heartbeat carries round 1 to both; only n3 gets to answer it.
  while (c.count_in_flight({n1, n3, "Accept"}) == 0) c.tick(n1);
  c.drop_if([](const Envelope& e) { return e.to == n2 || e.from == n2; });
  c.stabilize();
  ASSERT_EQ(reads(c, n1).size(), 1u);
  c.readies(n1).clear();
  ASSERT_EQ(ask(c, n1, 2), ReadStatus::kQueued);
  EXPECT_EQ(c.count_in_flight({n1, n3, "Accept"}), 1u);  // n3 answered last: n3 is asked
  EXPECT_EQ(c.count_in_flight({n1, n2, "Accept"}), 0u);
  ASSERT_EQ(ask(c, n1, 3), ReadStatus::kQueued);  // round 2 is in flight: no new round yet
  c.process(n1);
  EXPECT_EQ(c.count_in_flight({n1, n3, "Accept"}), 1u);
  c.deliver({n1, n3, "Accept"});
  c.deliver({n3, n1, "Accepted"});  // round 2 confirmed: read 2 served, round 3 starts
  auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].read_id, 2u);
  c.readies(n1).clear();
  EXPECT_EQ(std::count_if(c.in_flight().begin(), c.in_flight().end(),
                          [](const Envelope& e) { return carries_read_round(e, 3); }),
            1);
  c.stabilize();
  results = reads(c, n1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].read_id, 3u);
  EXPECT_TRUE(c.violations().empty()) << c.recent_trace(30);
}

// A follower given a read index learns that the prefix through it is chosen: from a heartbeat
// sent then, unless an Accept already sent to it carried that prefix. Never twice.
TEST(ReadIndex, AFollowerGivenAnIndexIsToldThePrefixOnce) {
  TestCluster c(3);
  elect_and_write(c, 2);
  c.stabilize();
  // Slot 3 is chosen by n1 and n3 while n2 hears nothing: no Accept to n2 carried commit 3.
  ASSERT_EQ(c.propose(n1, command(1, 3)), ProposeStatus::kQueued);
  c.process(n1);
  for (int i = 0; i < 20 && c.replica(n1).commit() < 3; ++i) {
    c.drop_if([](const Envelope& e) { return e.to == n2; });
    c.deliver_if([](const Envelope& e) { return e.to != n2; });
  }
  ASSERT_EQ(c.replica(n1).commit(), 3u);
  auto carries_commit_3 = [](const Envelope& e) {
    const auto* accept = std::get_if<AcceptMsg>(&e.message);
    return e.to == n2 && accept != nullptr && accept->commit >= 3;
  };
  auto in_flight_to_n2 = [&] {
    return std::count_if(c.in_flight().begin(), c.in_flight().end(), carries_commit_3);
  };
  const auto before = in_flight_to_n2();
  c.drop_if(carries_commit_3);  // whatever already told n2 is lost...
  if (before == 0) {
    c.replica(n1).share_commit(n2, 3);  // ...or nothing did: then one heartbeat goes now
    c.process(n1);
    EXPECT_EQ(in_flight_to_n2(), 1);
    c.replica(n1).share_commit(n2, 3);  // not twice
    c.process(n1);
    EXPECT_EQ(in_flight_to_n2(), 1);
    c.stabilize();
    EXPECT_EQ(c.replica(n2).commit(), 3u);
  } else {
    c.replica(n1).share_commit(n2, 3);  // an Accept already carried it (and was lost: a
    c.process(n1);                      // later heartbeat makes up for it)
    EXPECT_EQ(in_flight_to_n2(), 0);
  }
  c.replica(n2).share_commit(n1, 3);  // only a leader does it
  c.process(n2);
  EXPECT_EQ(c.count_in_flight({n2, n1, "Accept"}), 0u);
}

TEST(ReadIndex, AnswersToAcceptsSentBeforeTheReadDoNotConfirmIt) {
  TestCluster c(3);
  elect_and_write(c, 1);
  // Heartbeats leave before the read arrives; their answers prove nothing about later.
  while (c.count_in_flight({n1, {}, "Accept"}) == 0) c.tick(n1);
  ASSERT_EQ(ask(c, n1, 1), ReadStatus::kQueued);
  c.drop_if([](const Envelope& e) { return carries_read_round(e, 1); });
  c.stabilize();
  EXPECT_TRUE(reads(c, n1).empty());
  // The next heartbeat carries the round again (a lost round is made up for).
  for (int i = 0; i < 5 && reads(c, n1).empty(); ++i) c.run(1);
  const auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok);
}

TEST(ReadIndex, WaitsForTheChosenPrefixToReachItsIndex) {
  TestCluster c(3);
  elect_and_write(c, 1);
  ASSERT_EQ(c.propose(n1, command(1, 2)), ProposeStatus::kQueued);  // slot 2, not yet chosen
  ASSERT_EQ(ask(c, n1, 9), ReadStatus::kQueued);
  // Only the round and its answers travel: leadership is confirmed, slot 2 is not chosen.
  c.deliver_if([](const Envelope& e) { return carries_read_round(e, 1); });
  c.deliver_if([](const Envelope& e) { return carries_read_round(e, 1); });
  EXPECT_EQ(c.replica(n1).commit(), 1u);
  EXPECT_TRUE(reads(c, n1).empty());
  c.stabilize();
  const auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok);
  EXPECT_EQ(results[0].slot, 2u);  // covers the write in flight when the read came
}

// The partitioned-leader scenario: while n1 is cut off, n2 is elected and gets a write chosen
// and acknowledged. n1's read must fail, never succeed at n1's stale index.
void partitioned_leader_reads(TestCluster& c) {
  elect_and_write(c, 1);
  c.isolate(n1);
  ASSERT_EQ(ask(c, n1, 7), ReadStatus::kQueued);
  c.stabilize();  // the round is lost
  c.campaign(n2);
  c.stabilize();
  ASSERT_EQ(c.replica(n2).role(), Role::kLeader);
  ASSERT_EQ(c.propose(n2, command(2, 1)), ProposeStatus::kQueued);
  c.stabilize();
  ASSERT_EQ(c.outcomes(n2).back().outcome, Outcome::kChosen);
  ASSERT_GT(c.outcomes(n2).back().slot, 1u);
  for (int i = 0; i < 30; ++i) c.run(1);
}

TEST(ReadIndex, ACutOffLeaderNeverServesAStaleRead) {
  TestCluster c(3);
  partitioned_leader_reads(c);
  const auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].read_id, 7u);
  EXPECT_FALSE(results[0].ok);
  EXPECT_NE(c.replica(n1).role(), Role::kLeader);
  c.heal();
  c.run(10);
  EXPECT_EQ(reads(c, n1).size(), 1u);
  EXPECT_TRUE(c.violations().empty()) << c.recent_trace(30);
}

TEST(ReadIndex, ThePlantedBugServesTheCutOffLeadersStaleRead) {
  ClusterOptions options;
  options.bugs.read_without_quorum = true;
  TestCluster c(3, options);
  partitioned_leader_reads(c);
  const auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok);
  EXPECT_EQ(results[0].slot, 1u);  // below n2's acknowledged write: a stale read
}

TEST(ReadIndex, FollowersAndCandidatesRefuse) {
  TestCluster c(3);
  elect_and_write(c, 1);
  EXPECT_EQ(ask(c, n2, 1), ReadStatus::kNotLeader);
  EXPECT_EQ(c.replica(n2).leader(), n1);
  c.campaign(n3);  // its Prepares stay in flight
  EXPECT_EQ(c.replica(n3).role(), Role::kCandidate);
  EXPECT_EQ(ask(c, n3, 2), ReadStatus::kNotLeader);
  EXPECT_TRUE(reads(c, n2).empty());
  EXPECT_TRUE(reads(c, n3).empty());
}

TEST(ReadIndex, SteppingDownFailsPendingReads) {
  TestCluster c(3);
  elect_and_write(c, 1);
  ASSERT_EQ(ask(c, n1, 1), ReadStatus::kQueued);
  ASSERT_EQ(ask(c, n1, 2), ReadStatus::kQueued);
  c.drop({n1, {}, ""});  // the round is lost
  c.campaign(n2);        // n2's Prepare, with a higher ballot, deposes n1
  c.deliver({n2, n1, "Prepare"});
  EXPECT_EQ(c.replica(n1).role(), Role::kFollower);
  const auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_FALSE(results[0].ok);
  EXPECT_FALSE(results[1].ok);
  c.stabilize();
  c.run(5);
  EXPECT_EQ(reads(c, n1).size(), 2u);  // and nothing more
}

TEST(ReadIndex, AnUnconfirmedReadFailsWithinAnElectionTimeout) {
  TestCluster c(3);  // election_timeout_min_ticks = 10
  elect_and_write(c, 1);
  ASSERT_EQ(ask(c, n1, 3), ReadStatus::kQueued);
  c.drop_if([](const Envelope& e) { return carries_read_round(e, 1); });
  // Peers hear heartbeats but their answers are lost: nothing confirms the round.
  int ticks = 0;
  while (reads(c, n1).empty() && ticks < 100) {
    c.tick(n1);
    ++ticks;
    c.drop({{}, n1, ""});
    c.deliver();
    c.drop({{}, n1, ""});
  }
  const auto results = reads(c, n1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].ok);
  EXPECT_LE(ticks, static_cast<int>(c.config_for(n1).election_timeout_min_ticks));
}

TEST(ReadIndex, PendingReadsAreBounded) {
  TestCluster c(3, configured([](Config& config) { config.max_pending_reads = 2; }));
  elect_and_write(c, 1);
  EXPECT_EQ(c.replica(n1).read_index(1), ReadStatus::kQueued);
  EXPECT_EQ(c.replica(n1).read_index(2), ReadStatus::kQueued);
  EXPECT_EQ(c.replica(n1).read_index(3), ReadStatus::kBusy);
  c.process(n1);
  c.stabilize();
  EXPECT_EQ(reads(c, n1).size(), 2u);
  EXPECT_EQ(ask(c, n1, 4), ReadStatus::kQueued);  // room again
}

}  // namespace
}  // namespace synod::paxos
