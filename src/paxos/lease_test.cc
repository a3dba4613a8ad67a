// Lease reads (Config::read_lease_ms, docs/core.md "Lease reads"): a leader whose latest round a
// phase-2 quorum answered serves reads at once, with no round of its own, for read_lease_ms of its
// clock from when it sent that round; never after a TimeoutNow of its ballot; and the acceptors
// that answered keep other candidates out for an election timeout, also across a restart.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace synod::paxos
