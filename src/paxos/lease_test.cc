// Lease reads (Config::read_lease_ms, docs/core.md "Lease reads"): a leader whose latest round a
// phase-2 quorum answered serves reads at once, with no round of its own, for read_lease_ms of its
// clock from when it sent that round; never after a TimeoutNow of its ballot; and the acceptors
// that answered keep other candidates out for an election timeout, also across a restart.
#include <gtest/gtest.h>

#include "paxos/membership.h"
#include "paxos/replica.h"
#include "paxos/testing/leader_steps.h"
#include "paxos/testing/test_cluster.h"

namespace synod::paxos {
namespace {

using testing::ClusterOptions;
using testing::command;
using testing::count_sent;
using testing::TestCluster;

const NodeId n1{1}, n2{2}, n3{3};
constexpr uint64_t kLeaseMs = 100;

ClusterOptions with_leases(Bugs bugs = {}) {
  ClusterOptions options;
  options.bugs = bugs;
  options.configure = [](Config& config) { config.read_lease_ms = kLeaseMs; };
  return options;
}

// Ticks every replica through the election timeout that a start with leases on keeps other
// candidates out for, then elects n1 and has one command chosen.
void elect_n1(TestCluster& c) {
  const int quiet = int(c.config_for(n1).election_timeout_min_ticks);
  for (NodeId id : c.members()) c.tick(id, quiet);
  c.campaign(n1);
  c.stabilize();
  ASSERT_EQ(c.leaders(), std::vector<NodeId>{n1}) << c.recent_trace(40);
  ASSERT_EQ(c.propose(n1, command(1, 1)), ProposeStatus::kQueued);
  c.stabilize();
}

// At clock `now_ms`, n1 sends a heartbeat (which starts a round) and the answers arrive at
// `answered_ms`.
void renew(TestCluster& c, uint64_t now_ms, uint64_t answered_ms) {
  c.replica(n1).set_clock_ms(now_ms);
  c.tick(n1, int(c.config_for(n1).heartbeat_interval_ticks));
  c.deliver({n1, {}, "Accept"});
  c.replica(n1).set_clock_ms(answered_ms);
  c.stabilize();
}

// Asks n1 for a read at clock `now_ms`: whether it was served at once, with no message sent.
bool served_at_once(TestCluster& c, uint64_t read_id, uint64_t now_ms) {
  c.readies(n1).clear();
  const size_t in_flight = c.in_flight().size();
  EXPECT_EQ(c.replica(n1).read_index(read_id), ReadStatus::kQueued);
  c.replica(n1).set_clock_ms(now_ms);
  c.process(n1);
  for (const Ready& ready : c.readies(n1)) {
    for (const ReadResult& read : ready.reads) {
      if (read.read_id == read_id) {
        EXPECT_TRUE(read.ok);
        EXPECT_EQ(read.slot, c.replica(n1).commit());
        EXPECT_EQ(c.in_flight().size(), in_flight);
        return true;
      }
    }
  }
  return false;
}

// n2, leading, is asked for a write; then n1 is asked for a read at `now_ms`, which its lease
// serves at once. With the planted `bug` the write is chosen and the read misses it; without it
// the write is not chosen (it needs an acceptor still keeping candidates out for n1).
void expect_stale_read_only_with_bug(TestCluster& c, bool bug, uint64_t now_ms) {
  ASSERT_EQ(c.propose(n2, command(7, 1)), ProposeStatus::kQueued);
  c.stabilize();
  Slot write = 0;
  for (const ProposalOutcome& o : c.outcomes(n2))
    if (o.id == CommandId{7, 1} && o.outcome == Outcome::kChosen) write = o.slot;
  EXPECT_EQ(write > 0, bug) << c.recent_trace(40);
  EXPECT_TRUE(served_at_once(c, 1, now_ms));
  EXPECT_EQ(write > 0 && c.replica(n1).commit() < write, bug);  // the stale read
}

// n1 proposes the configuration change `kind` of `id` (replacing `old_id`), numbered `seq`.
ProposeStatus reconfigure(TestCluster& c, MembershipChange::Kind kind, NodeId id, NodeId old_id,
                          uint64_t seq) {
  MembershipChange change;
  change.kind = kind;
  change.id = id;
  change.old_id = old_id;
  change.address = "host:" + std::to_string(id.value);
  auto next = apply_change(*c.replica(n1).membership(), change);
  EXPECT_TRUE(next.is_ok());
  const ProposeStatus status =
      c.replica(n1).propose_membership(Command{CommandId{99, seq}, "change"}, *next);
  c.process(n1);
  return status;
}

TEST(LeaseReads, ALeaderServesReadsAtOnceUntilItsLeaseEndsThenConfirmsThem) {
  TestCluster c(3, with_leases());
  elect_n1(c);
  renew(c, 1000, 1020);
  EXPECT_TRUE(c.replica(n1).lease_holds());
  EXPECT_TRUE(served_at_once(c, 1, 1050));
  EXPECT_TRUE(served_at_once(c, 2, 1099));
  // The lease ran from when the round was sent: at 1100 it is over, and a read needs a round.
  EXPECT_FALSE(served_at_once(c, 3, 1100));
  EXPECT_FALSE(c.replica(n1).lease_holds());
  EXPECT_EQ(count_sent<AcceptMsg>(c, n1), 1u);
  c.stabilize();  // the round is answered: the read is served, and the lease renewed from 1100
  EXPECT_TRUE(c.replica(n1).lease_holds());
  EXPECT_TRUE(served_at_once(c, 4, 1150));
  testing::expect_clean(c);
}

TEST(LeaseReads, WithoutLeasesEveryReadNeedsARound) {
  TestCluster c(3);
  c.campaign(n1);
  c.stabilize();
  ASSERT_EQ(c.leaders(), std::vector<NodeId>{n1});
  renew(c, 1000, 1020);
  EXPECT_FALSE(c.replica(n1).lease_holds());
  EXPECT_FALSE(served_at_once(c, 1, 1030));
}

// Answers that took long to come do not stretch the lease: the acceptors' stickiness began when
// they accepted, soon after the round was sent. The planted bug lease-from-confirmation starts
// the lease when the answers were seen.
TEST(LeaseReads, ALeaseRunsFromWhenItsRoundWasSentNotFromItsAnswers) {
  for (const bool bug : {false, true}) {
    Bugs bugs;
    bugs.lease_from_confirmation = bug;
    TestCluster c(3, with_leases(bugs));
    elect_n1(c);
    renew(c, 1000, 1090);
    EXPECT_TRUE(served_at_once(c, 1, 1095)) << bug;
    EXPECT_EQ(served_at_once(c, 2, 1120), bug);
  }
}

// An acceptor that answered a leader's round ignores another candidate's Prepare while it hears
// that leader, and after a restart for an election timeout of ticks too (it may have answered a
// round just before it crashed). The planted bug lease-forgotten-on-restart promises at once.
TEST(LeaseReads, ARestartedAcceptorKeepsOtherCandidatesOutForAnElectionTimeout) {
  for (const bool bug : {false, true}) {
    Bugs bugs;
    bugs.lease_forgotten_on_restart = bug;
    TestCluster c(3, with_leases(bugs));
    elect_n1(c);
    renew(c, 1000, 1000);
    const Ballot before = c.replica(n3).promised();
    const Ballot higher{before.round + 1, n2};
    c.replica(n3).step(Envelope{n2, n3, PrepareMsg{higher, 1}});
    c.process(n3);
    EXPECT_EQ(c.replica(n3).promised(), before) << bug;  // sticky
    c.crash(n3);
    c.restart(n3);
    c.replica(n3).step(Envelope{n2, n3, PrepareMsg{higher, 1}});
    c.process(n3);
    EXPECT_EQ(c.replica(n3).promised(), bug ? higher : before) << bug;
    // An election timeout of ticks later it answers.
    c.tick(n3, int(c.config_for(n3).election_timeout_min_ticks));
    c.replica(n3).step(Envelope{n2, n3, PrepareMsg{higher, 1}});
    c.process(n3);
    EXPECT_EQ(c.replica(n3).promised(), higher) << bug;
  }
}

// Once a TimeoutNow went out, the target's Prepares pass every follower's stickiness: the leader
// serves no read by lease for the rest of its ballot, even if the handover is given up.
TEST(LeaseReads, NoLeaseAfterATimeoutNowInTheSameBallot) {
  TestCluster c(3, with_leases());
  elect_n1(c);
  renew(c, 1000, 1000);
  ASSERT_TRUE(c.replica(n1).lease_holds());
  ASSERT_EQ(c.replica(n1).transfer_leadership(n2), ProposeStatus::kQueued);
  c.process(n1);
  EXPECT_FALSE(c.replica(n1).lease_holds());  // not during a handover
  // n2 has every slot already: the TimeoutNow goes out at once, and is lost, again and again
  // until the handover is given up.
  ASSERT_TRUE(c.replica(n1).transfer_handed_over());
  c.drop({n1, n2, "TimeoutNow"});
  c.replica(n1).set_clock_ms(1010);
  for (uint32_t t = 0; t < c.config_for(n1).election_timeout_min_ticks; ++t) {
    c.tick(n1);
    c.drop({n1, n2, "TimeoutNow"});
    c.deliver();
  }
  ASSERT_FALSE(c.replica(n1).transfer_target().valid());
  ASSERT_EQ(c.leaders(), std::vector<NodeId>{n1});
  renew(c, 1020, 1020);
  EXPECT_FALSE(c.replica(n1).lease_holds());
  EXPECT_FALSE(served_at_once(c, 1, 1030));
  c.stabilize();
  testing::expect_clean(c);
}

// Found by review. n2, cut off from n1, misses that n1 replaced n3 by n4; it is elected by n3 in
// the configuration it knows, re-proposes the change and broadcasts its Accept. n4, which
// answered n1's latest round and keeps candidates out, must not take that Accept (it promises a
// higher ballot as surely as a Prepare would): n2 would then count n4's promise in the new
// configuration and have a write chosen with it while n1 still serves reads by its lease. With
// the planted bug lease-promised-by-accept it does, and n1 serves a read below that write.
TEST(LeaseReads, AStickyAcceptorTakesNoHigherBallotsAcceptFromAnotherNode) {
  using Kind = MembershipChange::Kind;
  const NodeId n4{4};
  for (const bool bug : {false, true}) {
    Bugs bugs;
    bugs.lease_promised_by_accept = bug;
    ClusterOptions options = with_leases(bugs);
    options.spares = 1;
    TestCluster c(3, options);
    c.tick(n4, int(c.config_for(n4).election_timeout_min_ticks));  // n4 started long ago too
    elect_n1(c);
    ASSERT_EQ(reconfigure(c, Kind::kAddLearner, n4, kNoNode, 1), ProposeStatus::kQueued);
    c.stabilize();
    c.run(10);
    ASSERT_EQ(c.replica(n4).commit(), c.replica(n1).commit());
    // n2 is cut off from n1 from here on, and misses the replace, chosen by n1 and n3.
    c.block(n1, n2);
    c.block(n2, n1);
    ASSERT_EQ(reconfigure(c, Kind::kReplace, n4, n3, 2), ProposeStatus::kQueued);
    const Slot change_slot = c.replica(n1).commit() + 1;
    c.stabilize();
    ASSERT_EQ(c.replica(n1).commit(), change_slot) << c.recent_trace(30);
    // Heartbeats between n1 and n4 until n4 votes; n2 and n3 stop hearing n1.
    const int quiet = int(c.config_for(n1).election_timeout_min_ticks);
    uint64_t now = 1000;
    for (int i = 0; i < 3 * quiet; ++i, now += 10) {
      c.replica(n1).set_clock_ms(now);
      c.tick_all();
      c.drop_if([](const Envelope& e) {
        return std::holds_alternative<PreVoteMsg>(e.message) ||
               std::holds_alternative<CatchupRequestMsg>(e.message);
      });
      c.stabilize();
    }
    ASSERT_EQ(c.leaders(), std::vector<NodeId>{n1}) << c.recent_trace(30);
    ASSERT_LT(c.replica(n2).commit(), change_slot);
    // A round n1 sends at `now` and n4 answers: the lease holds until now + kLeaseMs.
    renew(c, now, now + 1);
    ASSERT_TRUE(c.replica(n1).lease_holds());
    // Nothing reaches n1 any more. n2 campaigns in the configuration it knows; n3 grants.
    c.block(n3, n1);
    c.block(n4, n1);
    c.campaign_as_is(n2);
    c.stabilize();
    ASSERT_EQ(c.replica(n2).role(), Role::kLeader) << c.recent_trace(40);
    EXPECT_EQ(c.replica(n4).promised() == c.replica(n2).ballot(), bug) << bug;
    // Without the bug the write waits for n4 (sticky to n1 for an election timeout of its ticks,
    // which have not passed); with it, it is chosen, and n1's read by lease misses it.
    expect_stale_read_only_with_bug(c, bug, now + 10);
  }
}

// Delivers everything in flight, dropping what `drop` picks, until nothing is left.
void settle_dropping(TestCluster& c, const std::function<bool(const Envelope&)>& drop) {
  for (int i = 0; i < 1000; ++i) {
    c.drop_if(drop);
    if (c.in_flight().empty()) return;
    c.deliver();
  }
  ADD_FAILURE() << "no quiescence";
}

// Found by a second review. n4 joins on a directory of its own (an incarnation), so it does not
// vote until a configuration it committed binds it. n2, cut off from n1, is elected by n3 in the
// configuration before n1 replaced n3 by n4, and re-proposes that change; its Accept reaches n4
// while n4 cannot vote yet, and n4 notes n2's higher ballot as its leader's. n4 then catches up,
// votes, and answers n1's lease rounds: it keeps candidates out for n1, so n2's Prepare asking it
// for a promise must not pass. With the planted bug lease-stale-leader-heard, n4 keeps n2 as the
// leader it hears, n2's Prepare passes (from == leader), a write is chosen by n2 and n4, and n1
// serves a read by its lease below it.
TEST(LeaseReads, AJoinerThatNotedAStaleLeaderIsStickyToTheOneItAccepted) {
  using Kind = MembershipChange::Kind;
  const NodeId n4{4};
  for (const bool bug : {false, true}) {
    Bugs bugs;
    bugs.lease_stale_leader_heard = bug;
    ClusterOptions options = with_leases(bugs);
    options.configure = [lease = options.configure](Config& config) {
      lease(config);
      config.incarnation = 1000 + config.self.value;  // each on a directory of its own
    };
    options.spares = 1;
    TestCluster c(3, options);
    const int quiet = int(c.config_for(n1).election_timeout_min_ticks);
    c.tick(n4, quiet);
    elect_n1(c);
    c.run(10);  // n1 binds n1..n3
    ASSERT_EQ(reconfigure(c, Kind::kAddLearner, n4, kNoNode, 1), ProposeStatus::kQueued);
    c.stabilize();  // no ticks: n1 sees n4's incarnation but binds nothing yet
    // n4 is a learner on a joining directory, unbound: it does not vote.
    auto n4_catchup = [&](const Envelope& e) {
      return e.from == n4 && (std::holds_alternative<CatchupRequestMsg>(e.message) ||
                              std::holds_alternative<SnapshotRequestMsg>(e.message));
    };
    c.block(n1, n2);
    c.block(n2, n1);
    ASSERT_EQ(reconfigure(c, Kind::kReplace, n4, n3, 2), ProposeStatus::kQueued);  // binds n4
    const Slot change_slot = c.replica(n1).commit() + 1;
    settle_dropping(c, n4_catchup);
    ASSERT_EQ(c.replica(n1).commit(), change_slot) << c.recent_trace(30);
    ASSERT_LT(c.replica(n4).commit(), change_slot);
    c.block(n1, n3);
    uint64_t now = 1000;
    for (int i = 0; i < 3 * quiet; ++i, now += 10) {
      c.replica(n1).set_clock_ms(now);
      c.tick_all();
      c.drop_if([&](const Envelope& e) {
        return std::holds_alternative<PreVoteMsg>(e.message) || n4_catchup(e);
      });
      settle_dropping(c, n4_catchup);
    }
    ASSERT_EQ(c.leaders(), std::vector<NodeId>{n1}) << c.recent_trace(30);
    ASSERT_LT(c.replica(n2).commit(), change_slot);
    ASSERT_LT(c.replica(n4).commit(), change_slot);
    // n2 is elected by n3 in the old configuration and re-proposes the replace; its Accept reaches
    // n4 while n4 does not vote yet.
    c.campaign_as_is(n2);
    settle_dropping(c, n4_catchup);
    ASSERT_EQ(c.replica(n2).role(), Role::kLeader) << c.recent_trace(40);
    const Ballot b2 = c.replica(n2).ballot();
    ASSERT_GT(b2, c.replica(n1).ballot());
    ASSERT_GE(c.replica(n2).commit(), change_slot);
    EXPECT_EQ(c.replica(n4).leader(), n2);
    EXPECT_LT(c.replica(n4).promised(), c.replica(n1).ballot());
    // n4 now catches up (no message of n2's leadership reaches it meanwhile) and votes.
    auto n2_to_n4 = [&](const Envelope& e) {
      return e.from == n2 && e.to == n4 &&
             (std::holds_alternative<AcceptMsg>(e.message) ||
              std::holds_alternative<PrepareMsg>(e.message));
    };
    for (int i = 0; i < 40 && c.replica(n4).commit() < change_slot; ++i) {
      c.tick(n4);
      settle_dropping(c, n2_to_n4);
    }
    ASSERT_GE(c.replica(n4).commit(), change_slot) << c.recent_trace(30);
    c.block(n2, n4);
    // n1's rounds, answered by n4 (now a voter of the new configuration): the lease holds.
    renew(c, now, now + 1);
    now += 10;
    renew(c, now, now + 1);
    ASSERT_TRUE(c.replica(n1).lease_holds());
    EXPECT_EQ(c.replica(n4).promised(), c.replica(n1).ballot());
    EXPECT_TRUE(c.replica(n4).hears_leader());
    EXPECT_EQ(c.replica(n4).leader(), bug ? n2 : n1) << bug;  // whom it keeps candidates out for
    // From here nothing reaches n1. n2's next heartbeat asks n4 for its promise.
    c.heal();
    for (NodeId other : {n2, n3, n4}) {
      c.block(n1, other);
      c.block(other, n1);
    }
    c.tick(n2, int(c.config_for(n2).heartbeat_interval_ticks));
    c.stabilize();
    EXPECT_EQ(c.replica(n4).promised() == b2, bug) << c.recent_trace(30);
    expect_stale_read_only_with_bug(c, bug, now + 10);
  }
}

}  // namespace
}  // namespace synod::paxos
