// Byte bounds of the Multi-Paxos replica (docs/core.md, "Bounds"): every message fits
// Config::max_message_bytes however large and numerous the values it would carry — Accepts,
// retransmissions in heartbeats, catch-up replies, and promises, which come in parts — the
// pipeline window is bounded in bytes, a command above max_command_bytes is refused, and a
// retransmitted Accept adds nothing to the acceptor's log. TestCluster checks the message size of
// every message (its "size" check) and agreement on every Ready.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "paxos/replica.h"
#include "paxos/testing/test_cluster.h"

namespace synod::paxos {
namespace {

using testing::ClusterOptions;
using testing::MessageFilter;
using testing::TestCluster;

constexpr NodeId N1{1};
constexpr NodeId N2{2};
constexpr NodeId N3{3};

constexpr size_t kPayloadBytes = 4000;  // each command's payload: about a quarter of a message

// Small bounds, so that a few commands exceed a message: any one slot's value (up to 4 KiB of
// payload) fits, four of them do not.
void small_bounds(Config& config) {
  config.max_command_bytes = 4096;
  config.max_batch_bytes = 4096;
  config.max_batch_commands = 4;
  config.max_message_bytes = 16 << 10;
  config.snapshot_chunk_bytes = 4096;
}

Command big_command(uint64_t seq) {
  return Command{CommandId{7, seq}, std::string(kPayloadBytes, static_cast<char>('a' + seq % 26))};
}

std::string lines(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += "  " + item + "\n";
  return out;
}

class BoundsTest : public ::testing::Test {
 protected:
  TestCluster& make(std::function<void(Config&)> extra = {}) {
    ClusterOptions options;
    options.configure = [extra](Config& config) {
      small_bounds(config);
      if (extra) extra(config);
    };
    cluster_ = std::make_unique<TestCluster>(3, options);
    return *cluster_;
  }

  void elect(NodeId id) {
    cluster_->campaign(id);
    cluster_->stabilize();
    ASSERT_EQ(cluster_->replica(id).role(), Role::kLeader) << cluster_->recent_trace(40);
  }

  // Every entry of type T that `id` persisted as accepted, by slot, over its recorded Readies.
  std::map<Slot, int> accepted_records(NodeId id) {
    std::map<Slot, int> out;
    for (const Ready& ready : cluster_->readies(id)) {
      for (const AcceptedEntry& entry : ready.persist.accepted) ++out[entry.slot];
    }
    return out;
  }

  void TearDown() override {
    if (cluster_) {
      EXPECT_TRUE(cluster_->violations().empty())
          << lines(cluster_->violations()) << cluster_->recent_trace(30);
    }
  }

  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(BoundsTest, ACommandAboveTheMaximumIsRefusedBeforeItIsProposed) {
  TestCluster& c = make();
  elect(N1);
  Command huge{CommandId{7, 1}, std::string(4097, 'x')};
  EXPECT_EQ(c.propose(N1, huge), ProposeStatus::kTooLarge);
  EXPECT_EQ(c.replica(N2).propose(huge), ProposeStatus::kTooLarge);  // on a follower too
  EXPECT_EQ(c.count_in_flight(MessageFilter{N1, kNoNode, "Accept"}), 0u);
  Command at_limit{CommandId{7, 2}, std::string(4096, 'x')};
  EXPECT_EQ(c.propose(N1, at_limit), ProposeStatus::kQueued);
  c.stabilize();
  EXPECT_EQ(c.replica(N1).commit(), 1u);
}

TEST_F(BoundsTest, TheQueueIsBoundedInBytes) {
  TestCluster& c = make([](Config& config) { config.max_queued_bytes = 10000; });
  elect(N1);
  // Proposed within one Ready: the queue holds two 4000-byte commands, not a third.
  Replica& leader = c.replica(N1);
  EXPECT_EQ(leader.propose(big_command(1)), ProposeStatus::kQueued);
  EXPECT_EQ(leader.propose(big_command(2)), ProposeStatus::kQueued);
  EXPECT_EQ(leader.propose(big_command(3)), ProposeStatus::kBusy);
  c.process(N1);  // the queue is cut into slots: room again
  EXPECT_EQ(leader.propose(big_command(3)), ProposeStatus::kQueued);
  c.process(N1);
  c.stabilize();
  EXPECT_EQ(c.replica(N1).commit(), 3u);
}

// The pipeline window is bounded in bytes: with room for four values, a burst of twenty commands
// has at most four slots in flight; the rest follow as slots are chosen.
TEST_F(BoundsTest, ThePipelineWindowIsBoundedInBytes) {
  TestCluster& c = make([](Config& config) { config.max_inflight_bytes = 4 * 4100; });
  elect(N1);
  Replica& leader = c.replica(N1);
  for (uint64_t seq = 1; seq <= 20; ++seq)
    ASSERT_EQ(leader.propose(big_command(seq)), ProposeStatus::kQueued);
  c.process(N1);
  std::set<Slot> sent;
  for (const Envelope& e : c.in_flight()) {
    if (const auto* accept = std::get_if<AcceptMsg>(&e.message)) {
      for (const SlotValue& entry : accept->entries) sent.insert(entry.slot);
    }
  }
  EXPECT_EQ(sent.size(), 4u);
  c.stabilize();
  for (int i = 0; i < 10 && c.replica(N1).commit() < 20; ++i) {
    c.tick(N1);
    c.stabilize();
  }
  EXPECT_EQ(c.replica(N1).commit(), 20u);
}

// Twenty 4 KB slots in one burst, a follower that missed them all: every Accept, every
// retransmission in a heartbeat and every catch-up reply fits into one message, and the
// follower still gets every slot.
TEST_F(BoundsTest, AcceptsRetransmissionsAndCatchupRepliesFitTheMessageLimit) {
  TestCluster& c = make();
  elect(N1);
  c.partition({{N1, N2}, {N3}});
  Replica& leader = c.replica(N1);
  for (uint64_t seq = 1; seq <= 20; ++seq)
    ASSERT_EQ(leader.propose(big_command(seq)), ProposeStatus::kQueued);
  c.process(N1);
  // The leader's own acceptor answers; N2's answers are lost, so the Accepts are sent again.
  c.deliver(MessageFilter{kNoNode, N1, ""});
  c.deliver(MessageFilter{N1, N2, "Accept"});
  c.drop(MessageFilter{N2, N1, "Accepted"});
  c.tick(N1, 6);
  EXPECT_GT(c.count_in_flight(MessageFilter{N1, N2, "Accept"}), 1u)
      << "the retransmission is cut into several messages";
  // Each heartbeat carries the lowest unanswered slots that fit into one message.
  for (int i = 0; i < 40 && c.replica(N1).commit() < 20; ++i) {
    c.stabilize();
    c.tick(N1);
  }
  EXPECT_EQ(c.replica(N1).commit(), 20u);
  c.heal();
  for (int i = 0; i < 20 && c.replica(N3).commit() < 20; ++i) {
    c.tick(N1);
    c.stabilize();
  }
  EXPECT_EQ(c.replica(N3).commit(), 20u);
}

// An acceptor that accepted a slot and whose answer was lost gets the same Accept again: it
// answers again, but records nothing new — the log never grows by retrying.
TEST_F(BoundsTest, ARetransmittedAcceptIsNotRecordedAgain) {
  TestCluster& c = make();
  elect(N1);
  c.readies(N2).clear();
  ASSERT_EQ(c.propose(N1, big_command(1)), ProposeStatus::kQueued);
  c.deliver(MessageFilter{N1, N2, "Accept"});
  c.drop(MessageFilter{N2, N1, "Accepted"});
  c.drop(MessageFilter{N1, N3, "Accept"});
  c.drop(MessageFilter{kNoNode, N1, "Accepted"});  // nobody's vote arrives: the slot stays open
  for (int i = 0; i < 3; ++i) {
    // Past the retransmit interval: the heartbeat carries the Accept again.
    c.tick(N1, static_cast<int>(c.config_for(N1).retransmit_interval_ticks));
    ASSERT_GE(c.deliver(MessageFilter{N1, N2, "Accept"}), 1u);
    c.drop(MessageFilter{N2, N1, "Accepted"});
    c.drop(MessageFilter{N1, N3, "Accept"});
  }
  const auto records = accepted_records(N2);
  ASSERT_EQ(records.count(1), 1u);
  EXPECT_EQ(records.at(1), 1) << "slot 1 was recorded once per retransmission";
  EXPECT_GE(c.count_in_flight(MessageFilter{}), 0u);
  c.stabilize();
  // The next retransmission gets through.
  const auto config = c.config_for(N1);
  c.tick(N1, static_cast<int>(config.retransmit_interval_ticks + config.heartbeat_interval_ticks));
  c.stabilize();
  EXPECT_EQ(c.replica(N1).commit(), 1u);
}

// A new candidate whose promiser accepted far more than one message holds: the promise comes in
// parts, and the candidate leads only once it has heard every part — then re-proposes every
// reported value, none replaced by a no-op.
TEST_F(BoundsTest, APromiseTooLargeForOneMessageComesInPartsAndIsCountedWhole) {
  TestCluster& c = make();
  elect(N1);
  c.partition({{N1, N2}, {N3}});
  Replica& leader = c.replica(N1);
  for (uint64_t seq = 1; seq <= 12; ++seq)
    ASSERT_EQ(leader.propose(big_command(seq)), ProposeStatus::kQueued);
  c.process(N1);
  // N1 and N2 accept everything, but nobody learns it is chosen (the Accepteds are lost).
  c.deliver(MessageFilter{kNoNode, N1, "Accept"});
  c.deliver(MessageFilter{N1, N2, "Accept"});
  c.drop(MessageFilter{kNoNode, kNoNode, "Accepted"});
  ASSERT_EQ(c.disk(N2).accepted.size(), 12u);
  c.crash(N1);
  c.heal();
  // N3, which has nothing, campaigns; N2's promise must report all twelve values.
  c.campaign(N3);
  int parts = 0;
  for (int round = 0; round < 100 && c.replica(N3).role() == Role::kCandidate; ++round) {
    for (const Envelope& e : c.in_flight()) {
      if (e.from == N2 && e.to == N3 && std::holds_alternative<PromiseMsg>(e.message)) ++parts;
    }
    c.deliver();
    if (c.replica(N3).role() == Role::kLeader) break;
  }
  ASSERT_EQ(c.replica(N3).role(), Role::kLeader) << c.recent_trace(30);
  EXPECT_GE(parts, 3) << "twelve 4 KB values in 16 KB messages";
  c.stabilize();
  c.tick(N3, 4);
  c.stabilize();
  ASSERT_EQ(c.replica(N3).commit(), 12u);
  for (Slot slot = 1; slot <= 12; ++slot) {
    const Value& value = c.replica(N3).chosen().at(slot);
    ASSERT_EQ(value.commands.size(), 1u) << "slot " << slot << " lost its value";
    EXPECT_EQ(value.commands[0].id.seq, slot);
  }
}

}  // namespace
}  // namespace synod::paxos
