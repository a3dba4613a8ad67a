// The Multi-Paxos replica, driven by hand through TestCluster (testing/test_cluster.h), which
// plays the driver: persist, then send, then apply, checking the Ready contract and agreement on
// every Ready. Every test ends by expecting no violation of those checks.
#include "paxos/replica.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/rng.h"
#include "paxos/testing/test_cluster.h"

namespace synod::paxos {
namespace {

using testing::ClusterOptions;
using testing::command;
using testing::MessageFilter;
using testing::TestCluster;
using testing::value_of;

constexpr NodeId N1{1};
constexpr NodeId N2{2};
constexpr NodeId N3{3};
constexpr NodeId N4{4};
constexpr NodeId N5{5};

Ballot B(uint64_t round, uint32_t node) {
  return Ballot{round, NodeId{node}};
}

// paxos_tests links GoogleTest without GoogleMock, so these stand in for its matchers.
std::string lines(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += "  " + item + "\n";
  return out;
}

bool any_contains(const std::vector<std::string>& items, const std::string& part) {
  return std::any_of(items.begin(), items.end(),
                     [&](const std::string& item) { return item.find(part) != std::string::npos; });
}

std::string log_of(const std::vector<SlotValue>& entries) {
  std::string out;
  for (const SlotValue& entry : entries) {
    if (!out.empty()) out += ' ';
    out += to_string(entry.value);
  }
  return out;
}

// Every message of type T that `id` sent, over all its recorded Readies.
template <typename T>
std::vector<std::pair<NodeId, T>> sent(TestCluster& cluster, NodeId id) {
  std::vector<std::pair<NodeId, T>> out;
  for (const Ready& ready : cluster.readies(id)) {
    for (const Envelope& envelope : ready.messages) {
      if (const T* msg = std::get_if<T>(&envelope.message)) out.emplace_back(envelope.to, *msg);
    }
  }
  return out;
}

bool message_type_is(const Envelope& e, const std::string& type) {
  return testing::message_type(e.message) == type;
}

std::vector<Slot> slots_of(const AcceptMsg& msg) {
  std::vector<Slot> out;
  for (const SlotValue& entry : msg.entries) out.push_back(entry.slot);
  return out;
}

class ReplicaTest : public ::testing::Test {
 protected:
  TestCluster& make(size_t size, ClusterOptions options = {}) {
    cluster_ = std::make_unique<TestCluster>(size, std::move(options));
    return *cluster_;
  }

  static ClusterOptions with(std::function<void(Config&)> configure) {
    ClusterOptions options;
    options.configure = std::move(configure);
    return options;
  }

  // Campaigns `id` and delivers until quiet; `id` must then lead.
  void elect(NodeId id) {
    cluster_->campaign(id);
    cluster_->stabilize();
    ASSERT_EQ(cluster_->replica(id).role(), Role::kLeader) << cluster_->recent_trace(40);
  }

  // Proposes each command in its own Ready (so each gets its own slot) and delivers until quiet.
  void commit(NodeId leader, const std::vector<Command>& commands) {
    for (const Command& cmd : commands) {
      ASSERT_EQ(cluster_->propose(leader, cmd), ProposeStatus::kQueued);
      cluster_->stabilize();
    }
  }

  // One heartbeat from the leader, delivered until quiet.
  void heartbeat(NodeId leader) {
    cluster_->tick(leader, static_cast<int>(cluster_->config_for(leader).heartbeat_interval_ticks));
    cluster_->stabilize();
  }

  void TearDown() override {
    if (cluster_) {
      EXPECT_TRUE(cluster_->violations().empty())
          << lines(cluster_->violations()) << cluster_->recent_trace(60);
    }
  }

  std::unique_ptr<TestCluster> cluster_;
};

// ---------------------------------------------------------------------------------------------
// Leader election.

TEST_F(ReplicaTest, ElectionByTimeout) {
  TestCluster& c = make(3);
  // Nobody campaigns before the minimum election timeout.
  const Config config = c.config_for(N1);
  const int min = static_cast<int>(config.election_timeout_min_ticks);
  c.tick_all(min - 1);
  for (NodeId id : c.members()) EXPECT_EQ(c.replica(id).role(), Role::kFollower);
  EXPECT_TRUE(c.in_flight().empty());

  const int ticks = min - 1 + c.campaign(N1);
  EXPECT_GE(ticks, min);
  EXPECT_LE(ticks, static_cast<int>(config.election_timeout_max_ticks));
  EXPECT_EQ(c.replica(N1).role(), Role::kCandidate);
  EXPECT_EQ(c.replica(N1).ballot(), B(1, 1));
  // Phase 1 for every slot from 1, to each peer (its own acceptor answered already).
  const auto prepares = sent<PrepareMsg>(c, N1);
  ASSERT_EQ(prepares.size(), 2u);
  for (const auto& [to, prepare] : prepares) {
    EXPECT_NE(to, N1);
    EXPECT_EQ(prepare.ballot, B(1, 1));
    EXPECT_EQ(prepare.first_slot, 1u);
  }

  c.stabilize();
  EXPECT_EQ(c.replica(N1).role(), Role::kLeader);
  EXPECT_EQ(c.replica(N1).leader(), N1);
  for (NodeId id : {N2, N3}) {
    EXPECT_EQ(c.replica(id).role(), Role::kFollower);
    EXPECT_EQ(c.replica(id).promised(), B(1, 1));
    EXPECT_EQ(c.disk(id).promised, B(1, 1));
    EXPECT_EQ(c.replica(id).leader(), N1);  // the new leader announces itself
  }
}

// The events the driver logs and counts (ready.h): every election's start and outcome, and why a
// leader stepped down.
std::vector<Event> events_of(TestCluster& c, NodeId id) {
  std::vector<Event> out;
  for (const Ready& ready : c.readies(id))
    out.insert(out.end(), ready.events.begin(), ready.events.end());
  return out;
}

TEST_F(ReplicaTest, ElectionsAndStepDownsAreReportedAsEvents) {
  TestCluster& c = make(3);
  c.campaign(N1);
  c.drop(MessageFilter{N1, {}, "Prepare"});  // its Prepares are lost
  c.stabilize();
  c.campaign(N1);  // times out as a candidate: lost, and a new election at round 2
  c.stabilize();
  ASSERT_EQ(c.replica(N1).role(), Role::kLeader);
  auto events = events_of(c, N1);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind, Event::Kind::kElectionStarted);
  EXPECT_EQ(events[0].ballot, B(1, 1));
  EXPECT_EQ(events[0].slot, 1u);
  EXPECT_EQ(events[1].kind, Event::Kind::kSteppedDown);
  EXPECT_EQ(events[1].from, Event::kCandidate);
  EXPECT_EQ(events[1].reason, StepDownReason::kTimedOut);
  EXPECT_EQ(events[2].kind, Event::Kind::kElectionStarted);
  EXPECT_EQ(events[2].ballot, B(2, 1));
  EXPECT_EQ(events[3].kind, Event::Kind::kElectionWon);
  EXPECT_EQ(events[3].ballot, B(2, 1));
  EXPECT_TRUE(events_of(c, N2).empty()) << "a follower that only promised reports nothing";

  // N2 takes over: N1 steps down as leader on N2's higher ballot, and says so.
  c.readies(N1).clear();
  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  events = events_of(c, N1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Event::Kind::kSteppedDown);
  EXPECT_EQ(events[0].from, Event::kLeader);
  EXPECT_EQ(events[0].reason, StepDownReason::kHigherBallot);
  EXPECT_EQ(events[0].ballot, B(2, 1));
  EXPECT_EQ(events[0].seen, B(3, 2));
}

TEST_F(ReplicaTest, ElectionTimeoutsAreRandomizedAndSeeded) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    ClusterOptions options;
    options.seed = seed;
    TestCluster a(3, options);
    TestCluster b(3, options);
    const int ticks = a.campaign(N1);
    EXPECT_GE(ticks, static_cast<int>(a.config_for(N1).election_timeout_min_ticks));
    EXPECT_LE(ticks, static_cast<int>(a.config_for(N1).election_timeout_max_ticks));
    EXPECT_EQ(b.campaign(N1), ticks) << "same seed, same timeout";
    seen.insert(ticks);
  }
  EXPECT_GE(seen.size(), 4u) << "timeouts should spread over [min, max]";
}

TEST_F(ReplicaTest, SingleReplicaElectsItselfAndCommits) {
  TestCluster& c = make(1);
  elect(N1);
  commit(N1, {command(1, 1), command(1, 2)});
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1] [c1.2]");
  EXPECT_EQ(c.replica(N1).commit(), 2u);
}

// A replica holds each slot's value once: what its acceptor accepted and what its learner
// learned share their commands (paxos/value.h, Commands), on the leader and on the followers.
TEST_F(ReplicaTest, AcceptedAndChosenShareOneCopyOfEachValue) {
  TestCluster& c = make(3);
  elect(N1);
  commit(N1, {command(1, 1), command(1, 2), command(1, 3)});
  heartbeat(N1);
  for (NodeId id : {N1, N2, N3}) {
    const Replica& r = c.replica(id);
    ASSERT_EQ(r.commit(), 3u) << to_string(id);
    for (const auto& [slot, value] : r.chosen()) {
      if (value.commands.empty()) continue;  // the no-op a new leader may choose
      const auto it = r.accepted().find(slot);
      ASSERT_NE(it, r.accepted().end()) << to_string(id) << " slot " << slot;
      EXPECT_EQ(value.commands.begin(), it->second.value.commands.begin())
          << to_string(id) << " holds slot " << slot << "'s commands twice";
    }
  }
  // Copies share; a change to one copies it first and leaves the others as they were.
  Value a = value_of({command(7, 1)});
  Value b = a;
  EXPECT_EQ(a.commands.begin(), b.commands.begin());
  b.commands.push_back(command(7, 2));
  EXPECT_EQ(a.commands.size(), 1u);
  EXPECT_EQ(b.commands.size(), 2u);
  EXPECT_NE(a.commands.begin(), b.commands.begin());
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(a == value_of({command(7, 1)}));  // equal by contents, not only by sharing
}

// (A replica cut off from everyone does not get this far: its pre-votes are lost, and it never
// starts phase 1 — see prevote_test.cc.)
TEST_F(ReplicaTest, CandidateWithoutQuorumRetriesWithAHigherBallot) {
  TestCluster& c = make(3);
  c.campaign(N1);
  c.drop(MessageFilter{N1, {}, "Prepare"});  // lost: no quorum of promises
  c.stabilize();
  EXPECT_EQ(c.replica(N1).role(), Role::kCandidate);
  EXPECT_EQ(c.replica(N1).ballot(), B(1, 1));
  c.campaign(N1);
  EXPECT_EQ(c.replica(N1).ballot(), B(2, 1));
  c.stabilize();
  EXPECT_EQ(c.replica(N1).role(), Role::kLeader);
}

TEST_F(ReplicaTest, DuellingCandidatesConvergeOnOneLeader) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ClusterOptions options;
    options.seed = seed;
    TestCluster c(3, options);
    // Tick in lockstep, delivering nothing but pre-votes and their answers, until at least two
    // replicas campaign at once.
    int candidates = 0;
    for (int i = 0; i < 200 && candidates < 2; ++i) {
      c.tick_all();
      for (NodeId id : c.members()) c.deliver_prevotes(id);
      candidates = 0;
      for (NodeId id : c.members()) candidates += c.replica(id).role() == Role::kCandidate;
    }
    ASSERT_GE(candidates, 2);
    c.run(100);
    const std::vector<NodeId> leaders = c.leaders();
    ASSERT_EQ(leaders.size(), 1u) << c.recent_trace(30);
    for (NodeId id : c.members()) EXPECT_EQ(c.replica(id).leader(), leaders[0]);
    EXPECT_EQ(c.propose(leaders[0], command(7, 1)), ProposeStatus::kQueued);
    c.stabilize();
    EXPECT_EQ(c.replica(leaders[0]).commit(), 1u);
    EXPECT_TRUE(c.violations().empty()) << lines(c.violations());
  }
}

// ---------------------------------------------------------------------------------------------
// Phase 1 once per leadership, and recovery of what earlier leaders left behind.

TEST_F(ReplicaTest, PhaseOneRunsOnceForAllSlotsFromTheFirstUnchosen) {
  TestCluster& c = make(3);
  elect(N1);
  commit(N1, {command(1, 1), command(1, 2), command(1, 3)});
  heartbeat(N1);
  ASSERT_EQ(c.replica(N2).commit(), 3u);

  c.readies(N2).clear();
  c.campaign(N2);
  EXPECT_EQ(c.replica(N2).ballot(), B(2, 2));
  const auto prepares = sent<PrepareMsg>(c, N2);
  ASSERT_EQ(prepares.size(), 2u);
  for (const auto& [to, prepare] : prepares) EXPECT_EQ(prepare.first_slot, 4u);
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  EXPECT_EQ(c.replica(N1).role(), Role::kFollower);
  // Promises report only slots from first_slot on: slots 1..3 are settled.
  for (const auto& [to, promise] : sent<PromiseMsg>(c, N2)) EXPECT_TRUE(promise.accepted.empty());

  commit(N2, {command(2, 1), command(2, 2), command(2, 3)});
  EXPECT_EQ(sent<PrepareMsg>(c, N2).size(), 2u) << "no phase 1 per command";
  EXPECT_EQ(c.replica(N2).chosen().at(4), value_of({command(2, 1)}));
  EXPECT_EQ(c.replica(N2).commit(), 6u);
  heartbeat(N2);
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1] [c1.2] [c1.3] [c2.1] [c2.2] [c2.3]");
  EXPECT_EQ(log_of(c.applied(N3)), log_of(c.applied(N1)));
}

TEST_F(ReplicaTest, ValueAcceptedByAMinorityIsReproposedInTheNewBallotAndChosen) {
  TestCluster& c = make(3);
  elect(N1);
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);
  // Only n2 accepts slot 1, and its answer never reaches n1, which then crashes.
  ASSERT_EQ(c.deliver(MessageFilter{N1, N2, "Accept"}), 1u);
  c.crash(N1);
  c.drop();
  EXPECT_EQ(c.replica(N2).accepted().at(1), (Proposal{B(1, 1), value_of({command(1, 1)})}));
  EXPECT_EQ(c.replica(N2).commit(), 0u);

  c.readies(N2).clear();
  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  EXPECT_EQ(c.replica(N2).ballot(), B(2, 2));
  // The recovered value goes out again under the new ballot, not the old one.
  const auto accepts = sent<AcceptMsg>(c, N2);
  ASSERT_FALSE(accepts.empty());
  EXPECT_EQ(accepts[0].second.ballot, B(2, 2));
  ASSERT_EQ(accepts[0].second.entries.size(), 1u);
  EXPECT_EQ(accepts[0].second.entries[0], (SlotValue{1, value_of({command(1, 1)})}));
  EXPECT_EQ(c.replica(N2).chosen().at(1), value_of({command(1, 1)}));
  EXPECT_EQ(c.replica(N3).accepted().at(1), (Proposal{B(2, 2), value_of({command(1, 1)})}));

  // The old leader comes back from its disk and learns the outcome by catching up.
  c.restart(N1);
  EXPECT_EQ(c.replica(N1).promised(), B(1, 1));
  heartbeat(N2);
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1]");
  EXPECT_EQ(log_of(c.applied(N3)), "[c1.1]");
}

TEST_F(ReplicaTest, TheHighestBallotValueWinsAmongRecoveredValues) {
  TestCluster& c = make(5);
  elect(N1);
  // Ballot 1.1 leaves [c1.1] at slot 1 on n1 and n3 only.
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);
  ASSERT_EQ(c.deliver(MessageFilter{N1, N3, "Accept"}), 1u);
  c.crash(N1);
  c.drop();
  // Ballot 2.2 is won without n3, so it never hears of [c1.1]; it leaves [c2.1] at slot 1 on
  // n2 and n4 only.
  c.campaign(N2);
  c.drop(MessageFilter{N2, N3, "Prepare"});
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  ASSERT_EQ(c.propose(N2, command(2, 1)), ProposeStatus::kQueued);
  ASSERT_EQ(c.deliver(MessageFilter{N2, N4, "Accept"}), 1u);
  c.crash(N2);
  c.drop();
  ASSERT_EQ(c.replica(N3).accepted().at(1).ballot, B(1, 1));
  ASSERT_EQ(c.replica(N4).accepted().at(1).ballot, B(2, 2));

  // Ballot 3.5 hears of both from n3 and n4 and must re-propose the one from the higher ballot.
  c.campaign(N5);
  EXPECT_EQ(c.replica(N5).ballot(), B(3, 5));
  c.stabilize();
  ASSERT_EQ(c.replica(N5).role(), Role::kLeader);
  EXPECT_EQ(c.replica(N5).chosen().at(1), value_of({command(2, 1)}));
}

TEST_F(ReplicaTest, GapsBelowARecoveredSlotAreFilledWithNoops) {
  TestCluster& c = make(3);
  elect(N1);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_EQ(c.propose(N1, command(1, seq)), ProposeStatus::kQueued);
  }
  // Of the three slots only slot 3 reaches n2; nothing reaches n3.
  c.drop_if([](const Envelope& e) {
    const auto* accept = std::get_if<AcceptMsg>(&e.message);
    return accept && (e.to == N3 || slots_of(*accept) != std::vector<Slot>{3});
  });
  ASSERT_EQ(c.deliver(MessageFilter{N1, N2, "Accept"}), 1u);
  c.crash(N1);
  c.drop();

  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  EXPECT_EQ(log_of(c.applied(N2)), "noop noop [c1.3]");
  heartbeat(N2);
  EXPECT_EQ(log_of(c.applied(N3)), "noop noop [c1.3]");
  // New commands go after the recovered slots.
  commit(N2, {command(2, 1)});
  EXPECT_EQ(log_of(c.applied(N2)), "noop noop [c1.3] [c2.1]");
}

TEST_F(ReplicaTest, ManyRecoveredSlotsGoOutInBoundedMessages) {
  TestCluster& c = make(3, with([](Config& config) { config.max_entries_per_message = 2; }));
  elect(N1);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_EQ(c.propose(N1, command(1, seq)), ProposeStatus::kQueued);
    c.deliver(MessageFilter{N1, N2, "Accept"});
  }
  c.crash(N1);
  c.drop();
  c.readies(N2).clear();
  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  std::vector<size_t> sizes;
  for (const auto& [to, accept] : sent<AcceptMsg>(c, N2)) {
    if (to == N3) sizes.push_back(accept.entries.size());
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 2, 1}));
  EXPECT_EQ(log_of(c.applied(N2)), "[c1.1] [c1.2] [c1.3] [c1.4] [c1.5]");
}

TEST_F(ReplicaTest, ARestartedCandidateNeverReusesABallot) {
  TestCluster& c = make(3);
  c.campaign(N1);
  EXPECT_EQ(c.replica(N1).ballot(), B(1, 1));
  // Its own promise of 1.1 was durable before its Prepares could leave.
  EXPECT_EQ(c.disk(N1).promised, B(1, 1));
  c.crash(N1);
  c.drop();
  c.restart(N1);
  c.campaign(N1);
  EXPECT_EQ(c.replica(N1).ballot(), B(2, 1));
}

// ---------------------------------------------------------------------------------------------
// Phase 2: pipelining and batching.

TEST_F(ReplicaTest, PipeliningIsBoundedByMaxInflightSlots) {
  TestCluster& c = make(3, with([](Config& config) {
                          config.max_inflight_slots = 2;
                          config.max_batch_commands = 1;
                        }));
  elect(N1);
  c.readies(N1).clear();
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_EQ(c.replica(N1).propose(command(1, seq)), ProposeStatus::kQueued);
  }
  c.process(N1);
  const auto first = sent<AcceptMsg>(c, N1);
  ASSERT_EQ(first.size(), 2u);  // one Accept to each peer...
  EXPECT_EQ(slots_of(first[0].second),
            (std::vector<Slot>{1, 2}));  // ...carrying the two-slot window

  c.stabilize();
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1] [c1.2] [c1.3] [c1.4] [c1.5]");
  // Across the run, no slot was proposed more than two ahead of the chosen prefix.
  Slot committed = 0;
  for (const Ready& ready : c.readies(N1)) {
    if (!ready.committed.empty()) committed = ready.committed.back().slot;
    for (const Envelope& envelope : ready.messages) {
      if (const auto* accept = std::get_if<AcceptMsg>(&envelope.message)) {
        for (const SlotValue& entry : accept->entries) EXPECT_LE(entry.slot, committed + 2);
      }
    }
  }
  std::vector<std::pair<uint64_t, Slot>> chosen;
  for (const ProposalOutcome& outcome : c.outcomes(N1)) {
    EXPECT_EQ(outcome.outcome, Outcome::kChosen);
    chosen.emplace_back(outcome.id.seq, outcome.slot);
  }
  const std::vector<std::pair<uint64_t, Slot>> expected = {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}};
  EXPECT_EQ(chosen, expected);
}

TEST_F(ReplicaTest, ManyCommandsAreBatchedIntoOneSlot) {
  TestCluster& c = make(3, with([](Config& config) { config.max_batch_commands = 4; }));
  elect(N1);
  for (uint64_t seq = 1; seq <= 10; ++seq) {
    ASSERT_EQ(c.replica(N1).propose(command(1, seq)), ProposeStatus::kQueued);
  }
  c.process(N1);
  c.stabilize();
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1,c1.2,c1.3,c1.4] [c1.5,c1.6,c1.7,c1.8] [c1.9,c1.10]");
  ASSERT_EQ(c.outcomes(N1).size(), 10u);
  for (const ProposalOutcome& outcome : c.outcomes(N1)) {
    EXPECT_EQ(outcome.outcome, Outcome::kChosen);
    EXPECT_EQ(outcome.slot, (outcome.id.seq - 1) / 4 + 1);
  }
}

TEST_F(ReplicaTest, BatchesAreBoundedInBytesButAnOversizedCommandStillGoes) {
  TestCluster& c = make(3, with([](Config& config) { config.max_batch_bytes = 10; }));
  elect(N1);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_EQ(c.replica(N1).propose(command(1, seq)), ProposeStatus::kQueued);  // 4 bytes each
  }
  ASSERT_EQ(c.replica(N1).propose(Command{CommandId{2, 1}, std::string(50, 'x')}),
            ProposeStatus::kQueued);
  c.process(N1);
  c.stabilize();
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1,c1.2] [c1.3] [c2.1]");
}

TEST_F(ReplicaTest, ARetriedCommandIdIsProposedOnce) {
  TestCluster& c = make(3);
  elect(N1);
  ASSERT_EQ(c.replica(N1).propose(command(1, 1)), ProposeStatus::kQueued);
  ASSERT_EQ(c.replica(N1).propose(command(1, 1)), ProposeStatus::kQueued);
  c.process(N1);
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);  // in flight: still one
  c.stabilize();
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1]");
  EXPECT_EQ(c.outcomes(N1).size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Learning.

TEST_F(ReplicaTest, FollowersLearnTheChosenPrefixFromHeartbeats) {
  TestCluster& c = make(3);
  elect(N1);
  commit(N1, {command(1, 1)});
  EXPECT_EQ(c.replica(N1).commit(), 1u);
  // The Accept carried the leader's prefix from before slot 1 was chosen.
  EXPECT_EQ(c.replica(N2).commit(), 0u);
  EXPECT_TRUE(c.applied(N2).empty());

  heartbeat(N1);
  for (NodeId id : {N2, N3}) {
    EXPECT_EQ(c.replica(id).commit(), 1u);
    EXPECT_EQ(log_of(c.applied(id)), "[c1.1]");
    EXPECT_EQ(c.disk(id).chosen.at(1), value_of({command(1, 1)}));
    // They accepted slot 1 in the leader's ballot, so they needed no catch-up.
    EXPECT_TRUE(sent<CatchupRequestMsg>(c, id).empty());
  }
}

TEST_F(ReplicaTest, AFollowerThatMissedSlotsCatchesUp) {
  TestCluster& c = make(3, with([](Config& config) { config.max_entries_per_message = 2; }));
  elect(N1);
  c.isolate(N3);
  commit(N1, {command(1, 1), command(1, 2), command(1, 3), command(1, 4), command(1, 5)});
  c.heal();
  EXPECT_EQ(c.replica(N3).commit(), 0u);

  heartbeat(N1);
  EXPECT_EQ(c.replica(N3).commit(), 5u);
  EXPECT_EQ(log_of(c.applied(N3)), log_of(c.applied(N1)));
  // Catch-up pulls max_entries_per_message slots at a time, from the leader.
  std::vector<Slot> requested;
  for (const auto& [to, request] : sent<CatchupRequestMsg>(c, N3)) {
    EXPECT_EQ(to, N1);
    requested.push_back(request.first_slot);
  }
  EXPECT_EQ(requested, (std::vector<Slot>{1, 3, 5}));
}

TEST_F(ReplicaTest, ALostCatchupRequestIsRetried) {
  TestCluster& c = make(3);
  elect(N1);
  c.isolate(N3);
  commit(N1, {command(1, 1), command(1, 2)});
  c.heal();
  c.tick(N1, static_cast<int>(c.config_for(N1).heartbeat_interval_ticks));
  c.deliver();  // n3 takes the heartbeat and asks for slots 1..
  ASSERT_EQ(c.drop(MessageFilter{N3, N1, "CatchupRequest"}), 1u);
  c.stabilize();
  EXPECT_EQ(c.replica(N3).commit(), 0u);
  c.tick(N3, static_cast<int>(c.config_for(N3).retransmit_interval_ticks));
  c.stabilize();
  EXPECT_EQ(c.replica(N3).commit(), 2u);
}

TEST_F(ReplicaTest, AnUnansweredCatchupRequestIsAskedAgainLessAndLessOften) {
  // An answer may be a large reply still on its way: asking every retransmit interval had two
  // peers building multi-MiB replies nonstop (planted bug catchup-retry-storm).
  for (const bool storm : {false, true}) {
    SCOPED_TRACE(storm ? "catchup-retry-storm" : "backoff");
    TestCluster& c =
        make(3, with([&](Config& config) { config.bugs.catchup_retry_storm = storm; }));
    elect(N1);
    c.isolate(N3);
    commit(N1, {command(1, 1), command(1, 2)});
    c.heal();
    c.tick(N1, static_cast<int>(c.config_for(N1).heartbeat_interval_ticks));
    c.deliver();  // n3 takes the heartbeat and asks for slots 1..; nothing is answered from here
    const MessageFilter asks{N3, {}, "CatchupRequest"};
    ASSERT_EQ(c.count_in_flight(asks), 1u);
    const uint32_t interval = c.config_for(N3).retransmit_interval_ticks;
    // 4 + 8 + 16 + 32 + 64 + 64 intervals' worth of ticks: six more requests with backoff, one
    // per interval (47) without.
    c.tick(N3, static_cast<int>(interval * (1 + 2 + 4 + 8 + 16 + 16)));
    EXPECT_EQ(c.count_in_flight(asks), storm ? 48u : 7u);
    c.stabilize();
    EXPECT_EQ(c.replica(N3).commit(), 2u);
  }
}

TEST_F(ReplicaTest, ARestartedReplicaReemitsItsCommittedEntriesAndCatchesUp) {
  TestCluster& c = make(3);
  elect(N1);
  commit(N1, {command(1, 1), command(1, 2)});
  heartbeat(N1);
  ASSERT_EQ(c.replica(N3).commit(), 2u);

  c.crash(N3);
  commit(N1, {command(1, 3), command(1, 4)});
  c.restart(N3);
  // Rebuilt from its disk alone: the chosen prefix is handed out again, from slot 1.
  EXPECT_EQ(c.replica(N3).commit(), 2u);
  EXPECT_EQ(log_of(c.applied(N3)), "[c1.1] [c1.2]");
  EXPECT_EQ(c.replica(N3).promised(), B(1, 1));
  EXPECT_EQ(c.replica(N3).role(), Role::kFollower);

  heartbeat(N1);
  EXPECT_EQ(c.replica(N3).commit(), 4u);
  EXPECT_EQ(log_of(c.applied(N3)), "[c1.1] [c1.2] [c1.3] [c1.4]");
}

TEST_F(ReplicaTest, RestartTakesThePromiseFromTheAcceptedBallotWhenThePromiseWasLost) {
  DurableState disk;
  disk.accepted[1] = Proposal{B(3, 2), value_of({command(1, 1)})};
  TestCluster c(3);
  Replica replica(c.config_for(N1), disk, 1);
  EXPECT_EQ(replica.promised(), B(3, 2));
  replica.step(Envelope{N2, N1, PrepareMsg{B(2, 2), 1}});
  const Ready ready = replica.take_ready();
  ASSERT_EQ(ready.messages.size(), 1u);
  const auto* reject = std::get_if<RejectMsg>(&ready.messages[0].message);
  ASSERT_NE(reject, nullptr);
  EXPECT_EQ(reject->promised, B(3, 2));
  // A later candidate picks a round above it (and asks its pre-vote for that ballot).
  EXPECT_EQ(testing::campaign_alone(replica, N2), B(4, 1));
  EXPECT_EQ(replica.ballot(), B(4, 1));
}

// ---------------------------------------------------------------------------------------------
// Stepping down and proposal outcomes.

TEST_F(ReplicaTest, ALeaderThatSeesAHigherBallotStepsDownAndReportsOutcomes) {
  TestCluster& c = make(3, with([](Config& config) {
                          config.max_inflight_slots = 1;
                          config.max_batch_commands = 1;
                        }));
  elect(N1);
  ASSERT_EQ(c.replica(N1).propose(command(1, 1)), ProposeStatus::kQueued);
  ASSERT_EQ(c.replica(N1).propose(command(1, 2)), ProposeStatus::kQueued);
  c.process(N1);  // c1.1 goes out in slot 1; c1.2 waits for the window
  c.drop(MessageFilter{kNoNode, N2, ""});
  c.drop(MessageFilter{kNoNode, N3, ""});
  EXPECT_TRUE(c.outcomes(N1).empty());

  c.campaign(N2);
  ASSERT_EQ(c.deliver(MessageFilter{N2, N1, "Prepare"}), 1u);
  EXPECT_EQ(c.replica(N1).role(), Role::kFollower);
  ASSERT_EQ(c.outcomes(N1).size(), 2u);
  // c1.1 reached an acceptor (n1's own) and may yet be chosen; c1.2 never left the queue.
  EXPECT_EQ(c.outcomes(N1)[0].id, (CommandId{1, 1}));
  EXPECT_EQ(c.outcomes(N1)[0].outcome, Outcome::kUnknown);
  EXPECT_EQ(c.outcomes(N1)[0].slot, 1u);
  EXPECT_EQ(c.outcomes(N1)[1].id, (CommandId{1, 2}));
  EXPECT_EQ(c.outcomes(N1)[1].outcome, Outcome::kFailed);
  EXPECT_EQ(c.propose(N1, command(1, 3)), ProposeStatus::kNotLeader);

  // Indeed "unknown": the new leader recovers c1.1 from n1's promise and gets it chosen.
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  EXPECT_EQ(log_of(c.applied(N2)), "[c1.1]");
  EXPECT_EQ(c.outcomes(N1).size(), 2u) << "each proposal gets exactly one outcome";
}

TEST_F(ReplicaTest, AStaleLeaderStepsDownOnTheNewLeadersAccept) {
  TestCluster& c = make(3);
  elect(N1);
  c.isolate(N1);
  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  ASSERT_EQ(c.replica(N1).role(), Role::kLeader);  // it has not noticed yet
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);
  c.stabilize();  // its Accepts are lost
  c.heal();

  c.tick(N2, static_cast<int>(c.config_for(N2).heartbeat_interval_ticks));  // at ballot 2.2
  c.deliver(MessageFilter{N2, N1, "Accept"});
  EXPECT_EQ(c.replica(N1).role(), Role::kFollower);
  EXPECT_EQ(c.replica(N1).leader(), N2);
  ASSERT_EQ(c.outcomes(N1).size(), 1u);
  EXPECT_EQ(c.outcomes(N1)[0].outcome, Outcome::kUnknown);
  c.stabilize();
}

TEST_F(ReplicaTest, AStaleLeaderThatStepsDownOnAnAcceptNamesTheNewLeader) {
  TestCluster& c = make(3);
  elect(N1);
  c.isolate(N1);
  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);
  c.stabilize();
  c.heal();
  c.tick(N2, static_cast<int>(c.config_for(N2).heartbeat_interval_ticks));
  c.deliver(MessageFilter{N2, N1, "Accept"});
  ASSERT_EQ(c.outcomes(N1).size(), 1u);
  // The Accept that ended n1's leadership names its sender's ballot, so the client should be
  // sent to n2 rather than left to guess.
  EXPECT_EQ(c.outcomes(N1)[0].leader_hint, N2);
  c.stabilize();
}

TEST_F(ReplicaTest, AProposalChosenButNotYetCommittedAtStepDownIsReportedChosenLater) {
  TestCluster& c = make(3);
  elect(N1);
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);  // slot 1
  c.drop(MessageFilter{N1, N2, "Accept"});
  c.drop(MessageFilter{N1, N3, "Accept"});
  ASSERT_EQ(c.propose(N1, command(1, 2)), ProposeStatus::kQueued);  // slot 2
  c.drop(MessageFilter{N1, N3, "Accept"});
  c.stabilize();
  // Slot 2 is chosen (n1 and n2) but slot 1 is not, so nothing is committed yet.
  ASSERT_EQ(c.replica(N1).chosen().count(2), 1u);
  ASSERT_EQ(c.replica(N1).commit(), 0u);

  c.campaign(N3);
  ASSERT_EQ(c.deliver(MessageFilter{N3, N1, "Prepare"}), 1u);
  ASSERT_EQ(c.replica(N1).role(), Role::kFollower);
  // c1.1 may or may not be chosen; c1.2 is, and its outcome waits for its slot to commit.
  ASSERT_EQ(c.outcomes(N1).size(), 1u);
  EXPECT_EQ(c.outcomes(N1)[0].id, (CommandId{1, 1}));
  EXPECT_EQ(c.outcomes(N1)[0].outcome, Outcome::kUnknown);

  c.stabilize();
  ASSERT_EQ(c.replica(N3).role(), Role::kLeader);
  heartbeat(N3);
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1] [c1.2]");
  ASSERT_EQ(c.outcomes(N1).size(), 2u);
  EXPECT_EQ(c.outcomes(N1)[1].id, (CommandId{1, 2}));
  EXPECT_EQ(c.outcomes(N1)[1].outcome, Outcome::kChosen);
  EXPECT_EQ(c.outcomes(N1)[1].slot, 2u);
}

// Review finding: the same proposal, but the deposed leader learns the prefix from a snapshot,
// not slot by slot; it must still report the command chosen (it was applied), not leak it.
TEST_F(ReplicaTest, AProposalChosenAtStepDownIsReportedChosenWhenASnapshotCoversIt) {
  TestCluster& c = make(3);
  elect(N1);
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);  // slot 1
  c.drop(MessageFilter{N1, N2, "Accept"});
  c.drop(MessageFilter{N1, N3, "Accept"});
  ASSERT_EQ(c.propose(N1, command(1, 2)), ProposeStatus::kQueued);  // slot 2
  c.drop(MessageFilter{N1, N3, "Accept"});
  c.stabilize();
  ASSERT_EQ(c.replica(N1).chosen().count(2), 1u);
  ASSERT_EQ(c.replica(N1).commit(), 0u);

  c.campaign(N3);
  ASSERT_EQ(c.deliver(MessageFilter{N3, N1, "Prepare"}), 1u);
  ASSERT_EQ(c.replica(N1).role(), Role::kFollower);
  // n3 leads and gets slots 1 and 2 chosen without n1 accepting anything in its ballot.
  c.deliver(MessageFilter{{}, N3, "Promise"});
  ASSERT_EQ(c.replica(N3).role(), Role::kLeader);
  for (int i = 0; i < 20; ++i) {
    c.drop(MessageFilter{N3, N1, "Accept"});
    c.deliver();
  }
  ASSERT_EQ(c.replica(N3).commit(), 2u);
  c.compact(N3);
  ASSERT_EQ(c.replica(N3).snapshot_slot(), 2u);
  heartbeat(N3);  // n1 hears commit=2, asks n3, and gets the snapshot
  EXPECT_EQ(c.replica(N1).snapshot_slot(), 2u);
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1] [c1.2]");
  const auto& outcomes = c.outcomes(N1);
  auto it = std::find_if(outcomes.begin(), outcomes.end(), [](const ProposalOutcome& o) {
    return o.id == CommandId{1, 2};
  });
  ASSERT_NE(it, outcomes.end()) << "c1.2 was never reported";
  EXPECT_EQ(it->outcome, Outcome::kChosen);
  EXPECT_EQ(it->slot, 2u);
}

TEST_F(ReplicaTest, AStaleLeaderStepsDownOnAReject) {
  TestCluster& c = make(3);
  elect(N1);
  c.isolate(N1);
  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);
  c.heal();
  // n1's Accept reaches n3, which promised 2.2 and refuses it.
  c.drop(MessageFilter{N1, N2, ""});
  c.deliver(MessageFilter{N1, N3, "Accept"});
  c.deliver(MessageFilter{N3, N1, "Reject"});
  EXPECT_EQ(c.replica(N1).role(), Role::kFollower);
  ASSERT_EQ(c.outcomes(N1).size(), 1u);
  EXPECT_EQ(c.outcomes(N1)[0].outcome, Outcome::kUnknown);
  c.stabilize();
}

TEST_F(ReplicaTest, ALeaderCutOffFromAQuorumStepsDown) {
  TestCluster& c = make(3);
  elect(N1);
  c.isolate(N1);
  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);
  const uint32_t window = c.config_for(N1).election_timeout_min_ticks;
  int ticks = 0;
  while (c.replica(N1).role() == Role::kLeader && ticks < 3 * static_cast<int>(window)) {
    c.tick(N1);
    c.stabilize();
    ++ticks;
  }
  EXPECT_EQ(c.replica(N1).role(), Role::kFollower);
  // It heard from the quorum just after winning, so it holds on for one whole window first.
  EXPECT_GT(ticks, static_cast<int>(window));
  EXPECT_LE(ticks, 2 * static_cast<int>(window));
  ASSERT_EQ(c.outcomes(N1).size(), 1u);
  EXPECT_EQ(c.outcomes(N1)[0].outcome, Outcome::kUnknown);
}

TEST_F(ReplicaTest, ProposeOnAFollowerOrCandidateIsNotLeader) {
  TestCluster& c = make(3);
  EXPECT_EQ(c.propose(N2, command(1, 1)), ProposeStatus::kNotLeader);
  c.campaign(N1);
  EXPECT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kNotLeader);
  c.stabilize();
  EXPECT_EQ(c.propose(N2, command(1, 1)), ProposeStatus::kNotLeader);
  EXPECT_EQ(c.replica(N2).leader(), N1);  // the hint for where to go
  EXPECT_TRUE(c.outcomes(N2).empty());
  EXPECT_TRUE(c.outcomes(N1).empty());
}

TEST_F(ReplicaTest, AFullQueueIsBusy) {
  TestCluster& c = make(3, with([](Config& config) { config.max_queued_commands = 3; }));
  elect(N1);
  Replica& leader = c.replica(N1);
  EXPECT_EQ(leader.propose(command(1, 1)), ProposeStatus::kQueued);
  EXPECT_EQ(leader.propose(command(1, 2)), ProposeStatus::kQueued);
  EXPECT_EQ(leader.propose(command(1, 3)), ProposeStatus::kQueued);
  EXPECT_EQ(leader.propose(command(1, 4)), ProposeStatus::kBusy);
  EXPECT_EQ(leader.propose(command(1, 1)), ProposeStatus::kQueued);  // a retry takes no room
  c.process(N1);                                                     // the queue drains into a slot
  EXPECT_EQ(c.propose(N1, command(1, 5)), ProposeStatus::kQueued);
  c.stabilize();
  EXPECT_EQ(log_of(c.applied(N1)), "[c1.1,c1.2,c1.3] [c1.5]");
  EXPECT_EQ(c.outcomes(N1).size(), 4u);
}

// ---------------------------------------------------------------------------------------------
// The Ready contract.

TEST_F(ReplicaTest, AnAnswerTravelsInTheSameReadyAsThePersistItNeeds) {
  TestCluster& c = make(3);
  c.campaign(N1);
  c.readies(N2).clear();
  c.deliver(MessageFilter{N1, N2, "Prepare"});
  ASSERT_EQ(c.readies(N2).size(), 1u);
  EXPECT_EQ(c.readies(N2)[0].persist.promised, B(1, 1));
  ASSERT_EQ(c.readies(N2)[0].messages.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<PromiseMsg>(c.readies(N2)[0].messages[0].message));
  c.stabilize();

  ASSERT_EQ(c.propose(N1, command(1, 1)), ProposeStatus::kQueued);
  // The leader's own acceptance is persisted in the Ready that carries its Accepts.
  const Ready& own = c.readies(N1).back();
  ASSERT_EQ(own.persist.accepted.size(), 1u);
  EXPECT_EQ(own.persist.accepted[0].slot, 1u);
  c.readies(N2).clear();
  c.deliver(MessageFilter{N1, N2, "Accept"});
  ASSERT_EQ(c.readies(N2).size(), 1u);
  const Ready& ready = c.readies(N2)[0];
  ASSERT_EQ(ready.persist.accepted.size(), 1u);
  EXPECT_EQ(ready.persist.accepted[0],
            (AcceptedEntry{1, Proposal{B(1, 1), value_of({command(1, 1)})}}));
  ASSERT_EQ(ready.messages.size(), 1u);
  const auto* accepted = std::get_if<AcceptedMsg>(&ready.messages[0].message);
  ASSERT_NE(accepted, nullptr);
  EXPECT_EQ(accepted->slots, (std::vector<Slot>{1}));
  c.stabilize();
}

TEST_F(ReplicaTest, TheHarnessCatchesAPromiseSentBeforeItIsDurable) {
  // With the planted bug no_persist_promise the promise never reaches the disk, yet the Promise
  // goes out: the harness's ordering check must say so (this is how we know it can fail).
  ClusterOptions options;
  options.bugs.no_persist_promise = true;
  TestCluster& c = make(3, options);
  c.campaign(N1);
  c.stabilize();
  EXPECT_TRUE(any_contains(c.violations(), "promised only"))
      << lines(c.violations()) << c.recent_trace(20);
  c.clear_violations();
}

// Review finding: a leader that learned a slot by catch-up announced it as chosen in its own
// ballot, where a follower had accepted the leader's other value. Five replicas, as found.
void leader_learns_a_slot_a_higher_ballot_chose(TestCluster& c) {
  // 1. n2 leads b1 and gets X chosen at slot 1 by n2..n5; n1 hears commit=1 but not X.
  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  ASSERT_EQ(c.propose(N2, command(1, 1)), ProposeStatus::kQueued);  // X
  c.drop(MessageFilter{N2, N1, "Accept"});
  c.stabilize();
  c.tick(N2, static_cast<int>(c.config_for(N2).heartbeat_interval_ticks));
  c.deliver(MessageFilter{N2, {}, "Accept"});
  ASSERT_EQ(c.drop(MessageFilter{N1, {}, "CatchupRequest"}), 1u);  // n1's request is lost
  c.stabilize();
  ASSERT_EQ(c.replica(N1).commit(), 0u);
  ASSERT_EQ(c.replica(N3).commit(), 1u);

  // 2. n1 wins b2 with n1, n2, n3, re-proposes X at slot 1 and proposes V at slot 2; only n1
  // and n2 accept anything in b2.
  c.campaign(N1);
  c.drop(MessageFilter{N1, N4, "Prepare"});
  c.drop(MessageFilter{N1, N5, "Prepare"});
  c.deliver(MessageFilter{{}, {}, "Prepare"});
  c.deliver(MessageFilter{{}, N1, "Promise"});
  ASSERT_EQ(c.replica(N1).role(), Role::kLeader) << c.recent_trace(20);
  ASSERT_EQ(c.propose(N1, command(2, 1)), ProposeStatus::kQueued);  // V
  c.drop_if([](const Envelope& e) { return e.from == N1 && e.to != N1 && e.to != N2; });
  c.drop(MessageFilter{N1, {}, "CatchupRequest"});
  c.stabilize();
  ASSERT_EQ(c.replica(N2).accepted().at(2).value, value_of({command(2, 1)}));
  ASSERT_EQ(c.replica(N1).role(), Role::kLeader);

  // 3. {n1, n2} | {n3, n4, n5}: n3 wins b3 (phase 1 from slot 2) and gets W chosen at slot 2.
  c.partition({{N1, N2}, {N3, N4, N5}});
  c.campaign(N3);
  c.stabilize();
  ASSERT_EQ(c.replica(N3).role(), Role::kLeader);
  ASSERT_EQ(c.propose(N3, command(3, 1)), ProposeStatus::kQueued);  // W
  c.stabilize();
  c.tick(N3, static_cast<int>(c.config_for(N3).heartbeat_interval_ticks));
  c.stabilize();
  ASSERT_EQ(c.replica(N4).commit(), 2u);

  // 4. Lossy links instead: n1 still leads b2 and hears only from n2, but a catch-up request of
  // its reaches n4 (with the bug, a leader keeps asking; the fix stops it asking and listening).
  c.heal();
  for (int i = 0; i < 8 && c.replica(N1).role() == Role::kLeader; ++i) {
    c.tick(N1);
    c.drop_if([](const Envelope& e) {
      return e.from == N1 && e.to != N1 && e.to != N2 && message_type_is(e, "Accept");
    });
    c.drop_if([](const Envelope& e) {
      return e.from == N1 && message_type_is(e, "CatchupRequest") && e.to != N4;
    });
    c.stabilize();
  }
  // 5. Whatever n1 announced to n2 since: n2 must not learn V where W was chosen (the cluster's
  // truth and agreement checks, in TearDown and here).
  c.tick(N1, static_cast<int>(c.config_for(N1).heartbeat_interval_ticks));
  c.deliver(MessageFilter{N1, N2, "Accept"});
}

TEST_F(ReplicaTest, ALeaderNeverLearnsBeyondItsOwnQuorumsByCatchup) {
  TestCluster& c = make(5);
  leader_learns_a_slot_a_higher_ballot_chose(c);
  EXPECT_NE(
      c.replica(N2).chosen().count(2) ? c.replica(N2).chosen().at(2) : value_of({command(3, 1)}),
      value_of({command(2, 1)}));
}

TEST_F(ReplicaTest, TheHarnessCatchesALeaderThatLearnsFromCatchup) {
  ClusterOptions options;
  options.bugs.leader_learns_from_catchup = true;
  TestCluster& c = make(5, options);
  leader_learns_a_slot_a_higher_ballot_chose(c);
  EXPECT_TRUE(any_contains(c.violations(), "slot 2"))
      << lines(c.violations()) << c.recent_trace(30);
  c.clear_violations();
}

// Review finding: a hand-made Prepare with round 2^64-1 (in node 63's name) made every acceptor
// promise it; the next round wrapped to 0 and no leader was ever elected again.
// Time (docs/core.md, "Time"). A leader's driver tells it the time of its ballot; a replica that
// leads again must not send the time it reached in its earlier leadership (its clock may have run
// on while it was cut off, past what its successor served at), and acceptors must not take "no
// time" as a higher ballot's time. sim --core found both (5 replicas, seed 1180: a key read as
// expired 385 ms into its 583 ms TTL); planted bug time-carried-into-new-ballot restores them.
void new_leader_carries_no_old_time(TestCluster& c, bool expect_fixed) {
  c.campaign(N1);
  c.stabilize();
  ASSERT_EQ(c.replica(N1).role(), Role::kLeader);
  c.replica(N1).set_time_ms(5'000);  // its clock ran on, e.g. while it was cut off
  c.tick(N1, static_cast<int>(c.config_for(N1).heartbeat_interval_ticks));
  c.stabilize();
  c.campaign(N2);
  c.stabilize();
  ASSERT_EQ(c.replica(N2).role(), Role::kLeader);
  c.replica(N2).set_time_ms(4'000);  // its successor started where the quorum's time stopped
  c.tick(N2, static_cast<int>(c.config_for(N2).heartbeat_interval_ticks));
  c.stabilize();
  ASSERT_EQ(c.replica(N3).time_seen_ms(), 4'000u);
  // N1 leads again, before its driver has told it a time in the new ballot.
  c.campaign(N1);
  std::vector<uint64_t> times;
  while (c.deliver_if([&](const Envelope& e) {
    if (const auto* a = std::get_if<AcceptMsg>(&e.message); a && e.from == N1)
      times.push_back(a->time_ms);
    return true;
  }) > 0) {
  }
  ASSERT_EQ(c.replica(N1).role(), Role::kLeader);
  ASSERT_FALSE(times.empty());
  if (expect_fixed) {
    for (uint64_t t : times) EXPECT_EQ(t, 0u) << "a new leader sent its old ballot's time";
    EXPECT_EQ(c.replica(N3).time_seen_ms(), 4'000u) << "an acceptor took no time as a time";
  } else {
    EXPECT_EQ(times.front(), 5'000u) << "the planted bug was not reproduced";
    EXPECT_EQ(c.replica(N3).time_seen_ms(), 5'000u) << "the planted bug was not reproduced";
  }
}

TEST_F(ReplicaTest, ANewLeaderSendsNoTimeOfItsEarlierLeadership) {
  new_leader_carries_no_old_time(make(3), true);
}

TEST_F(ReplicaTest, TheHarnessCatchesANewLeaderThatCarriesItsOldTime) {
  new_leader_carries_no_old_time(
      make(3, with([](Config& config) { config.bugs.time_carried_into_new_ballot = true; })),
      false);
}

TEST_F(ReplicaTest, AbsurdBallotsNeitherPoisonAcceptorsNorWrap) {
  TestCluster& c = make(3);
  elect(N1);
  commit(N1, {command(1, 1)});
  const Ballot before = c.replica(N2).promised();
  for (NodeId to : c.members()) {
    // In another node's name, at the very top, and merely far above the promise.
    c.replica(to).step(Envelope{N1, to, PrepareMsg{Ballot{UINT64_MAX, NodeId{63}}, 1}});
    c.replica(to).step(Envelope{N1, to, PrepareMsg{Ballot{UINT64_MAX, N1}, 1}});
    c.replica(to).step(
        Envelope{N3, to, PrepareMsg{Ballot{before.round + kMaxRoundStep + 1, N3}, 1}});
    c.replica(to).step(Envelope{N3, to, AcceptMsg{Ballot{kMaxBallotRound + 1, N3}, {}, 0, 0}});
    c.process(to);
  }
  c.drop(MessageFilter{{}, {}, "Reject"});
  EXPECT_EQ(c.replica(N2).promised(), before);
  EXPECT_EQ(c.replica(N3).promised(), before);
  // Elections still work, with ordinary rounds.
  c.isolate(N1);
  elect(N2);
  EXPECT_LT(c.replica(N2).ballot().round, 10u);
  c.heal();
  commit(N2, {command(2, 1)});
  EXPECT_EQ(c.replica(N2).commit(), 2u);
}

// A round within kMaxRoundStep of the promise is taken. The others, which refuse it as too far
// above what they know, hear of it in a Reject when they campaign and follow it there, so
// elections go on above it (with n1 gone, n2 and n3 must agree).
TEST_F(ReplicaTest, AFarButPlausibleRoundIsTakenAndElectionsContinueAboveIt) {
  TestCluster& c = make(3);
  elect(N1);
  const uint64_t far = c.replica(N2).promised().round + kMaxRoundStep;
  c.replica(N2).forget_leader();  // else it would ignore the Prepare (leader stickiness)
  c.replica(N2).step(Envelope{N3, N2, PrepareMsg{Ballot{far, N3}, 1}});
  c.process(N2);
  EXPECT_EQ(c.replica(N2).promised(), (Ballot{far, N3}));
  c.stabilize();
  c.crash(N1);
  c.run(200);
  const std::vector<NodeId> leaders = c.leaders();
  ASSERT_EQ(leaders.size(), 1u) << c.recent_trace(30);
  EXPECT_GT(c.replica(leaders[0]).ballot().round, far);
  commit(leaders[0], {command(2, 1)});
  heartbeat(leaders[0]);
  EXPECT_EQ(c.replica(N2).commit(), 1u);
  EXPECT_EQ(c.replica(N3).commit(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Randomized: arbitrary delivery order, loss, duplication, crashes and restarts never break
// agreement or the Ready contract, and a calm period afterwards brings everyone up to date.

struct FuzzStats {
  std::vector<std::string> violations;
  std::string trace;
  Slot commit = 0;
};

FuzzStats fuzz(uint64_t seed, const Bugs& bugs, int steps) {
  const uint32_t size = 3;
  ClusterOptions options;
  options.seed = seed;
  options.bugs = bugs;
  TestCluster c(size, options);
  Rng rng(seed);
  uint64_t next_seq = 1;
  for (int step = 0; step < steps && c.violations().empty(); ++step) {
    const NodeId id{static_cast<uint32_t>(rng.between(1, size))};
    const size_t queued = c.in_flight().size();
    // Now and then a replica's leader falls silent for it (its heartbeats lost for an election
    // timeout), so that its stickiness runs out while others' does not.
    if (rng.chance(0.02) && c.is_up(id)) c.replica(id).forget_leader();
    const uint64_t dice = rng.below(100);
    if (dice < 25) {
      if (c.is_up(id)) c.tick(id);
    } else if (dice < 65) {
      if (queued > 0) c.deliver_nth(rng.below(queued));
    } else if (dice < 72) {
      if (queued > 0) c.drop_nth(rng.below(queued));
    } else if (dice < 75) {
      if (queued > 0) c.duplicate_nth(rng.below(queued));
    } else if (dice < 88) {
      // Mostly to a leader, as clients that follow leader hints would.
      const std::vector<NodeId> leaders = c.leaders();
      const NodeId to =
          !leaders.empty() && rng.chance(0.8) ? leaders[rng.below(leaders.size())] : id;
      if (c.is_up(to)) (void)c.propose(to, command(seed, next_seq++));
    } else if (dice < 90) {
      if (c.is_up(id)) c.crash(id);
    } else {
      if (!c.is_up(id)) c.restart(id);
    }
  }
  FuzzStats stats;
  if (c.violations().empty()) {
    // Calm: everyone up, no loss; the cluster must converge.
    for (NodeId id : c.members()) {
      if (!c.is_up(id)) c.restart(id);
    }
    c.run(120);
    const std::vector<NodeId> leaders = c.leaders();
    if (leaders.size() == 1) {
      (void)c.propose(leaders[0], command(seed, next_seq++));
      c.run(10);
      stats.commit = c.replica(leaders[0]).commit();
      for (NodeId id : c.members()) {
        if (c.replica(id).commit() != stats.commit) {
          stats.violations.push_back(to_string(id) + " did not catch up");
        }
      }
    } else {
      stats.violations.push_back("no single leader after a calm period");
    }
  }
  stats.violations.insert(stats.violations.end(), c.violations().begin(), c.violations().end());
  stats.trace = c.recent_trace(40);
  return stats;
}

TEST_F(ReplicaTest, RandomSchedulesKeepAgreementAndConverge) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    const FuzzStats stats = fuzz(seed, {}, 3000);
    EXPECT_TRUE(stats.violations.empty()) << "seed " << seed << "\n"
                                          << lines(stats.violations) << "seed " << seed << "\n"
                                          << stats.trace;
    EXPECT_GT(stats.commit, 0u) << "seed " << seed;
  }
}

// The same random schedules find each planted protocol bug: the checks can fail.
TEST_F(ReplicaTest, RandomSchedulesFindEachPlantedBug) {
  for (const std::string& name : bug_names()) {
    SCOPED_TRACE(name);
    // A driver's bug, not the core's: the simulator, which plays the driver, must catch it.
    // promise-hides-snapshot needs compaction, which only the simulator's driver does;
    // read-without-quorum needs reads and acknowledged writes, which only its clients make.
    // leader-learns-from-catchup needs five replicas, a follower outside the higher ballot's
    // quorums that accepted the stale leader's value, and one-way loss that keeps the stale
    // leader leading: TheHarnessCatchesALeaderThatLearnsFromCatchup builds that schedule by
    // hand; 2,000 random five-replica schedules here, and 3,000 sim seeds, did not reach it.
    if (name == "leader-learns-from-catchup") continue;
    // time-of-any-ballot shows only in key expiry, which needs the driver's clock and a store:
    // sim --core finds it (CoreSim.ACutOffLeadersClockThatLiftsItsSuccessorsIsCaught).
    if (name == "time-of-any-ballot" || name == "time-carried-into-new-ballot") continue;
    // absurd-rounds-taken needs a peer that sends absurd rounds: the simulator's hostile peer.
    if (name == "absurd-rounds-taken") continue;
    // The configuration bugs need configuration changes, which these schedules do not make:
    // `sim --protocol --reconfig` finds them (sim_test.cc, PlantedBug.IsCaught).
    if (name == "reconfig-without-overlap" || name == "learner-votes" ||
        name == "wiped-replica-votes" || name == "silent-learner" ||
        name == "catchup-from-members-only")
      continue;
    // removed-member-disrupts breaks no safety property, only leader stability: prevote_test.cc
    // and the simulators' disruption check catch it.
    if (name == "removed-member-disrupts") continue;
    // transfer-skips-phase1 needs leader transfers, which these schedules do not ask for:
    // transfer_test.cc builds its schedule and `sim --protocol --transfer` finds it.
    if (name == "transfer-skips-phase1" || name == "transfer-unmarked") continue;
    // catchup-retry-storm costs a peer CPU and bandwidth, not safety: the simulator's catch-up
    // storm check finds it over slow links (sim --protocol --link-bytes-per-ms, PlantedBug),
    // and AnUnansweredCatchupRequestIsAskedAgainLessAndLessOften counts its requests.
    if (name == "catchup-retry-storm") continue;
    // silent-without-snapshot stalls a laggard (liveness) when a peer has no snapshot at all:
    // sim --core finds it (CoreSim.APeerWithoutASnapshotThatStaysSilentIsCaught).
    if (name == "silent-without-snapshot") continue;
    // deaf-to-askers needs a spare made the only voter that restarts knowing no configuration:
    // sim --protocol --reconfig reaches it (Simulation.ASpareMadeTheOnlyVoterAsksThoseWhoAskIt).
    if (name == "deaf-to-askers") continue;
    // unbound-replica-votes needs a wiped replica and a voter down since the start: the model
    // checker's --wipes 1 --absent finds it (ReplicaReconfigCheck.AVoterAbsentFromTheStart...).
    if (name == "unbound-replica-votes") continue;
    // catchup-asks-silent-leader stalls a replica behind a wiped leader (liveness): sim
    // --protocol --reconfig reaches it (Simulation.CatchupAsksAnotherPeerThanASilentLeader).
    if (name == "catchup-asks-silent-leader") continue;
    // read-during-change needs a configuration change in flight while a read is asked, which
    // these schedules do not make (and no checker reaches yet: sim_test.cc, not_yet_reached).
    if (name == "read-during-change") continue;
    // promise-below-binding needs a wiped replica bound before its old incarnation was, which
    // no checker reaches yet (sim_test.cc, not_yet_reached; membership_test.cc tests the rule).
    if (name == "promise-below-binding") continue;
    // known-compaction-steps-down costs a needless election (liveness): sim --protocol --reconfig
    // --replicas 5 (Simulation.ALeaderDoesNotStepDownForACompactionItHasLearned).
    if (name == "known-compaction-steps-down") continue;
    // promise-hides-released needs a driver's log to read let-go chosen values back from, which
    // these schedules' driver does not install: both simulators and check --replica --release
    // find it (ReplicaReleaseCheck.APromiseThatHidesWhatItLetGoOfIsFound).
    if (name == "promise-hides-released") continue;
    // The lease bugs need lease reads on, which these schedules do not turn on: the model
    // checker's --lease-periods finds both (check/replica_lease_test.cc).
    if (name == "lease-from-confirmation" || name == "lease-forgotten-on-restart" ||
        name == "lease-promised-by-accept" || name == "lease-stale-leader-heard")
      continue;
    // accept-lower-ballot needs an acceptor that promised a higher ballot to take a lower one's
    // Accept. Since followers that hear a leader ignore other Prepares (leader stickiness), these
    // schedules no longer reach it (0 of 1,000 seeds; 0 of 300 with a leader falling silent at 5%
    // or 20% of the steps instead of 2%); sim --protocol (PlantedBug.IsCaught) and check do.
    if (name == "accept-lower-ballot") continue;
    if (name == "ack-before-sync" || name == "skip-fdatasync" || name == "promise-hides-snapshot" ||
        name == "read-without-quorum")
      continue;
    Bugs bugs;
    ASSERT_TRUE(enable_bug(name, bugs));
    bool found = false;
    for (uint64_t seed = 1; seed <= 200 && !found; ++seed) {
      found = !fuzz(seed, bugs, 3000).violations.empty();
    }
    EXPECT_TRUE(found) << "no schedule exposed " << name;
  }
}

}  // namespace
}  // namespace synod::paxos
