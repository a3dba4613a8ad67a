// Chosen values let go of (Config::log_memory_bytes): a replica keeps the newest within its
// budget and lets go of older ones only once they are handed out and its log holds them durably
// (ChosenLog); it reads them back from the log to answer catch-up, reports them as compacted in
// promises, and answers Accepts there as for compacted slots.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "paxos/replica.h"
#include "paxos/testing/test_cluster.h"

namespace synod::paxos {
namespace {

Config config(size_t log_memory_bytes) {
  Config c;
  c.self = NodeId{1};
  c.quorum = QuorumSystem::majority({NodeId{1}, NodeId{2}, NodeId{3}});
  c.log_memory_bytes = log_memory_bytes;
  return c;
}

Value value(uint64_t seq) {
  return Value{{Command{{7, seq}, "value " + std::to_string(seq)}}};
}

using testing::sent;

// The driver's log, as far as the replica sees it: the slots it holds durably, and reads.
struct FakeLog {
  std::set<Slot> durable;
  std::set<Slot> unreadable;
  std::vector<Slot> reads;
  ChosenLog chosen_log() {
    return ChosenLog{[this](Slot s) { return durable.contains(s); },
                     [this](Slot s) -> std::optional<Value> {
                       reads.push_back(s);
                       if (!durable.contains(s) || unreadable.contains(s)) return std::nullopt;
                       return value(s);
                     }};
  }
};

// Slots 1..10 accepted and known chosen.
DurableState ten_chosen() {
  DurableState durable;
  for (Slot s = 1; s <= 10; ++s) {
    durable.chosen[s] = value(s);
    durable.accepted[s] = Proposal{Ballot{1, NodeId{2}}, value(s)};
  }
  return durable;
}

// A FakeLog that holds slots 1..10 durably.
FakeLog ten_durable() {
  FakeLog log;
  for (Slot s = 1; s <= 10; ++s) log.durable.insert(s);
  return log;
}

// A replica that knows slots 1..10 chosen and has handed them out.
std::unique_ptr<Replica> replica(FakeLog& log, size_t log_memory_bytes) {
  auto r = std::make_unique<Replica>(config(log_memory_bytes), ten_chosen(), 1);
  r->set_chosen_log(log.chosen_log());
  EXPECT_EQ(r->take_ready().committed.size(), 10u);
  return r;
}

size_t bytes_of(Slot from, Slot to) {
  size_t n = 0;
  for (Slot s = from; s <= to; ++s) n += encoded_bytes(value(s));
  return n;
}

TEST(ChosenLog, LetsGoOfHandedOutValuesOnlyOnceTheLogHoldsThem) {
  FakeLog log;
  auto r = replica(log, 0);
  EXPECT_EQ(r->chosen_bytes_held(), bytes_of(1, 10));
  (void)r->take_ready();
  EXPECT_EQ(r->released(), 0u) << "the log holds none of them";
  log.durable = {1, 2, 3, 4, 5, 6, 8};  // 7 is not durable yet: nothing above it goes either
  (void)r->take_ready();
  EXPECT_EQ(r->released(), 6u);
  EXPECT_EQ(r->chosen().begin()->first, 7u);
  EXPECT_EQ(r->accepted().begin()->first, 7u);
  EXPECT_EQ(r->chosen_bytes_held(), bytes_of(7, 10));
  for (Slot s = 7; s <= 10; ++s) log.durable.insert(s);
  (void)r->take_ready();
  EXPECT_EQ(r->released(), 10u);
  EXPECT_TRUE(r->chosen().empty());
  EXPECT_TRUE(r->accepted().empty());
  EXPECT_EQ(r->chosen_bytes_held(), 0u);
  EXPECT_EQ(r->commit(), 10u);
}

TEST(ChosenLog, KeepsTheNewestWithinItsBudget) {
  FakeLog log = ten_durable();
  auto r = replica(log, bytes_of(8, 10));
  (void)r->take_ready();
  EXPECT_EQ(r->released(), 7u);
  EXPECT_EQ(r->chosen_bytes_held(), bytes_of(8, 10));
  // Without a log to read them back from, nothing is let go of.
  Replica alone(config(0), ten_chosen(), 1);
  (void)alone.take_ready();
  EXPECT_EQ(alone.released(), 0u);
  EXPECT_EQ(alone.chosen().size(), 10u);
}

// A MiB or more let go of at once (a replica that restarted with a long log) is freed where
// compaction's forgotten entries are: by the driver's disposer, off the server's loop.
TEST(ChosenLog, MegabytesLetGoOfGoToTheDisposer) {
  DurableState durable;
  for (Slot s = 1; s <= 10; ++s)
    durable.chosen[s] = Value{{Command{{7, s}, std::string(300 << 10, 'x')}}};
  std::set<Slot> disk;
  Replica r(config(0), durable, 1);
  r.set_chosen_log(ChosenLog{[&disk](Slot s) { return disk.contains(s); },
                             [](Slot) { return std::optional<Value>(); }});
  std::vector<std::unique_ptr<Replica::Forgotten>> disposed;
  r.set_disposer([&](std::unique_ptr<Replica::Forgotten> f) { disposed.push_back(std::move(f)); });
  (void)r.take_ready();
  disk = {1, 2};  // 600 KiB: freed in place
  (void)r.take_ready();
  EXPECT_EQ(r.released(), 2u);
  EXPECT_TRUE(disposed.empty());
  for (Slot s = 3; s <= 10; ++s) disk.insert(s);  // 2.4 MiB: to the disposer
  (void)r.take_ready();
  EXPECT_EQ(r.released(), 10u);
  ASSERT_EQ(disposed.size(), 1u);
  EXPECT_EQ(disposed[0]->chosen.size(), 8u);
  EXPECT_EQ(disposed[0]->chosen.begin()->first, 3u);
  EXPECT_TRUE(r.chosen().empty());
}

TEST(ChosenLog, CatchupReadsValuesBackFromTheLog) {
  FakeLog log = ten_durable();
  auto r = replica(log, bytes_of(9, 10));
  (void)r->take_ready();
  ASSERT_EQ(r->released(), 8u);
  r->step(Envelope{NodeId{2}, NodeId{1}, CatchupRequestMsg{3}});
  auto replies = sent<CatchupReplyMsg>(r->take_ready());
  ASSERT_EQ(replies.size(), 1u);
  std::vector<SlotValue> expected;
  for (Slot s = 3; s <= 10; ++s) expected.push_back(SlotValue{s, value(s)});
  EXPECT_EQ(replies[0].chosen, expected);
  EXPECT_EQ(replies[0].commit, 10u);
  EXPECT_EQ(log.reads, (std::vector<Slot>{3, 4, 5, 6, 7, 8}));
  // A value the log cannot give now ends the reply there: the asker asks again from it.
  log.unreadable = {5};
  r->step(Envelope{NodeId{2}, NodeId{1}, CatchupRequestMsg{3}});
  replies = sent<CatchupReplyMsg>(r->take_ready());
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].chosen, (std::vector<SlotValue>{{3, value(3)}, {4, value(4)}}));
}

TEST(ChosenLog, PromisesReportLetGoSlotsAsCompactedAndAcceptsThereAreAnsweredAsChosen) {
  FakeLog log;
  for (Slot s = 1; s <= 6; ++s) log.durable.insert(s);
  auto r = replica(log, 0);
  (void)r->take_ready();
  ASSERT_EQ(r->released(), 6u);
  const Ballot ballot{2, NodeId{2}};
  r->step(Envelope{NodeId{2}, NodeId{1}, PrepareMsg{ballot, 1}});
  auto promises = sent<PromiseMsg>(r->take_ready());
  ASSERT_EQ(promises.size(), 1u);
  // A candidate behind slot 6 catches up first (snapshot_test.cc
  // Snapshot.ACandidateBehindACompactedPromiseCatchesUpInsteadOfLeading).
  EXPECT_EQ(promises[0].snapshot, 6u);
  ASSERT_FALSE(promises[0].accepted.empty());
  EXPECT_EQ(promises[0].accepted.front().slot, 7u);  // what it still holds, it reports
  // The leader of that ballot re-proposes slot 3's chosen value: a vote, and nothing to record.
  r->step(Envelope{NodeId{2}, NodeId{1}, AcceptMsg{ballot, {{3, value(3)}, {11, value(11)}}, 10}});
  const Ready ready = r->take_ready();
  auto accepted = sent<AcceptedMsg>(ready);
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].slots, (std::vector<Slot>{3, 11}));
  ASSERT_EQ(ready.persist.accepted.size(), 1u);
  EXPECT_EQ(ready.persist.accepted[0].slot, 11u);
}

}  // namespace
}  // namespace synod::paxos
