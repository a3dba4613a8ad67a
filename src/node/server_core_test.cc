// Three ServerCores on in-memory disks, wired by a hand-run network: writes are replicated and
// answered with the state machine's reply, followers refuse definitely, a retried command is
// applied once, and a replica restarted from its disk (log + snapshot) rebuilds the same state.
#include "node/server_core.h"

#include <gtest/gtest.h>

#include <deque>
#include <set>

#include "storage/mem_file_system.h"

namespace synod::node {
namespace {

class Cluster {
 public:
  // `async`: each replica's fdatasync is handed to a sync runner that this cluster completes
  // when told (or at once in run(), for replicas not in `held_syncs`); `immediate`: the runner
  // runs it on the spot, as the server's does on a follower.
  explicit Cluster(bool async = false, bool immediate = false, kv::Store::Options store = {})
      : async_(async), immediate_(immediate), store_(store) {
    for (uint32_t i = 1; i <= 3; ++i) {
      disks_.push_back(std::make_unique<storage::MemFileSystem>());
      nodes_.push_back(nullptr);
      start(i);
    }
  }

  void start(uint32_t id) {
    ServerCore::Options o;
    o.config.self = NodeId{id};
    o.config.quorum = paxos::QuorumSystem::majority({NodeId{1}, NodeId{2}, NodeId{3}});
    o.log.dir = "data";
    o.log.cluster_id = 9;
    o.log.node_id = id;
    o.log.segment_bytes = 4096;
    o.snapshot_every = 5;
    o.store = store_;
    auto core = ServerCore::open(*disks_[id - 1], o, id);
    ASSERT_TRUE(core.is_ok()) << core.status().to_string();
    (*core)->set_early_send([this, id](const paxos::Envelope& e) {
      early_[id].push_back(e);
      wire_.push_back(e);
    });
    if (async_) {
      (*core)->set_sync_runner(
          [this, id](std::function<Status()> fdatasync, std::function<void(Status)> done) {
            if (immediate_) {
              done(fdatasync());
              return;
            }
            pending_syncs_[id].push_back({std::move(fdatasync), std::move(done)});
          });
    }
    nodes_[id - 1] = std::move(*core);
    up_[id] = true;
  }

  void crash(uint32_t id) {
    pending_syncs_[id].clear();  // they never ran
    nodes_[id - 1].reset();
    up_[id] = false;
    Rng rng(id);
    disks_[id - 1]->crash(rng, {});
  }

  ServerCore& node(uint32_t id) { return *nodes_[id - 1]; }
  // Runs the syncs replica `id` started; true if there were any.
  bool complete_syncs(uint32_t id) {
    auto syncs = std::move(pending_syncs_[id]);
    pending_syncs_[id].clear();
    for (auto& [fdatasync, done] : syncs) done(fdatasync());
    return !syncs.empty();
  }
  std::set<uint32_t> held_syncs;  // replicas whose syncs run() leaves pending
  // Everything that went on the wire, for inspection.
  std::vector<paxos::Envelope> sent;
  // What each node sent before its sync (see ServerCore::set_early_send).
  std::map<uint32_t, std::vector<paxos::Envelope>> early_;

  // Flushes every node and delivers every message, repeatedly, ticking `ticks` times.
  void run(int ticks) {
    for (int t = 0; t <= ticks; ++t) {
      for (int round = 0; round < 50; ++round) {
        bool moved = false;
        for (uint32_t id = 1; id <= 3; ++id) {
          if (!up_[id]) continue;
          auto out = node(id).flush();
          ASSERT_TRUE(out.is_ok());
          for (auto& e : *out) wire_.push_back(e);
          if (!held_syncs.count(id) && complete_syncs(id)) moved = true;
        }
        while (!wire_.empty()) {
          auto e = wire_.front();
          wire_.pop_front();
          sent.push_back(e);
          if (up_[e.to.value]) node(e.to.value).receive(e);
          moved = true;
        }
        if (!moved) break;
      }
      if (t < ticks)
        for (uint32_t id = 1; id <= 3; ++id)
          if (up_[id]) node(id).tick();
    }
  }

  uint32_t leader() {
    for (uint32_t id = 1; id <= 3; ++id)
      if (up_[id] && node(id).replica().role() == paxos::Role::kLeader) return id;
    return 0;
  }

 private:
  struct PendingSync {
    std::function<Status()> fdatasync;
    std::function<void(Status)> done;
  };
  bool async_;
  bool immediate_;
  kv::Store::Options store_;
  std::map<uint32_t, std::vector<PendingSync>> pending_syncs_;
  std::vector<std::unique_ptr<storage::MemFileSystem>> disks_;
  std::vector<std::unique_ptr<ServerCore>> nodes_;
  std::map<uint32_t, bool> up_;
  std::deque<paxos::Envelope> wire_;
};

TEST(ServerCore, WritesReplicateAndAnswerWithTheStateMachinesReply) {
  Cluster c;
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  std::vector<kv::Reply> replies;
  for (uint64_t seq = 1; seq <= 12; ++seq)
    c.node(leader).submit(1, seq, {"INCR", "counter"}, 1000 + seq,
                          [&](const kv::Reply& r) { replies.push_back(r); });
  c.run(10);
  ASSERT_EQ(replies.size(), 12u);
  for (size_t i = 0; i < replies.size(); ++i)
    EXPECT_EQ(replies[i], kv::Reply::integer_of(int64_t(i + 1)));
  for (uint32_t id = 1; id <= 3; ++id)
    EXPECT_EQ(c.node(id).store().read({"GET", "counter"}, 0), kv::Reply::bulk("12")) << id;
  // A follower refuses definitely and names the leader.
  const uint32_t follower = leader % 3 + 1;
  kv::Reply refused;
  c.node(follower).submit(2, 1, {"SET", "k", "v"}, 0, [&](const kv::Reply& r) { refused = r; });
  EXPECT_EQ(refused.kind, kv::Reply::Kind::kError);
  EXPECT_EQ(refused.text.rfind("TRYAGAIN not the leader; n" + std::to_string(leader), 0), 0u)
      << refused.text;
  // A retry of an applied command gets the first reply and is not applied again.
  kv::Reply again;
  c.node(leader).submit(1, 3, {"INCR", "counter"}, 5000, [&](const kv::Reply& r) { again = r; });
  c.run(5);
  EXPECT_EQ(again, kv::Reply::integer_of(3));
  EXPECT_EQ(c.node(leader).store().read({"GET", "counter"}, 0), kv::Reply::bulk("12"));
}

// Finding 4, through the whole replica: a retry that the leader stamps two hours later (its clock
// jumped ahead) is answered from the session, on every replica; with the planted bug
// sessions-evicted-by-clock the session is dropped first and the INCR runs twice.
TEST(ServerCore, ARetryStampedHoursLaterIsAppliedOnceUnlessThePlantedBugDropsItsSession) {
  for (const bool bug : {false, true}) {
    kv::Store::Options store;
    store.bug_sessions_evicted_by_clock = bug;
    Cluster c(false, false, store);
    c.run(60);
    const uint32_t leader = c.leader();
    ASSERT_NE(leader, 0u);
    kv::Reply first, again;
    c.node(leader).submit(7, 1, {"INCR", "n"}, 1'000, [&](const kv::Reply& r) { first = r; });
    c.run(5);
    c.node(leader).submit(7, 1, {"INCR", "n"}, 1'000 + 2 * kv::Store::kSessionTtlMs,
                          [&](const kv::Reply& r) { again = r; });
    c.run(5);
    EXPECT_EQ(first, kv::Reply::integer_of(1));
    EXPECT_EQ(again, kv::Reply::integer_of(bug ? 2 : 1)) << "bug " << bug;
    for (uint32_t id = 1; id <= 3; ++id)
      EXPECT_EQ(c.node(id).store().read({"GET", "n"}, 0), kv::Reply::bulk(bug ? "2" : "1"));
  }
}

// Accepts leave before the leader's own sync, but never a message whose ballot is not yet on disk:
// a Prepare goes out in the batch that raises the candidate's promise, so always after the sync.
TEST(ServerCore, OnlyRequestsWithADurableBallotLeaveBeforeTheSync) {
  Cluster c;
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  c.node(leader).submit(1, 1, {"SET", "k", "v"}, 1000, [](const kv::Reply&) {});
  c.run(5);
  size_t accepts = 0;
  for (const auto& [id, sent] : c.early_)
    for (const auto& e : sent) {
      EXPECT_FALSE(std::holds_alternative<paxos::PrepareMsg>(e.message)) << paxos::to_string(e);
      EXPECT_FALSE(std::holds_alternative<paxos::AcceptedMsg>(e.message)) << paxos::to_string(e);
      EXPECT_FALSE(std::holds_alternative<paxos::PromiseMsg>(e.message)) << paxos::to_string(e);
      EXPECT_NE(e.to, NodeId{id});
      if (std::holds_alternative<paxos::AcceptMsg>(e.message)) ++accepts;
    }
  EXPECT_GT(accepts, 0u) << "the leader's Accepts did not leave before its sync";
}

// With the fdatasync on another thread, a replica keeps taking effects while its disk works, and
// still nothing that vouches for acceptor state leaves before the sync that covers it: no
// Accepted (or Promise) is sent, and no vote of its own counts, until then.
TEST(ServerCore, WithAsyncSyncsNoAnswerLeavesBeforeItsSync) {
  Cluster c(/*async=*/true);
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  const uint32_t f1 = leader % 3 + 1;
  const uint32_t f2 = f1 % 3 + 1;
  c.held_syncs = {1, 2, 3};
  c.sent.clear();
  std::vector<kv::Reply> replies;
  for (uint64_t seq = 1; seq <= 5; ++seq)
    c.node(leader).submit(1, seq, {"INCR", "n"}, 1000,
                          [&](const kv::Reply& r) { replies.push_back(r); });
  c.run(3);
  EXPECT_TRUE(replies.empty());
  size_t accepts = 0;
  for (const auto& e : c.sent) {
    EXPECT_FALSE(std::holds_alternative<paxos::AcceptedMsg>(e.message)) << paxos::to_string(e);
    accepts += std::holds_alternative<paxos::AcceptMsg>(e.message);
  }
  EXPECT_GT(accepts, 0u) << "the Accepts did not leave while every disk was busy";
  for (uint32_t id = 1; id <= 3; ++id) EXPECT_TRUE(c.node(id).sync_in_flight()) << id;
  // The leader's own sync alone is one vote of three: still nothing is chosen.
  c.complete_syncs(leader);
  c.run(1);
  EXPECT_TRUE(replies.empty());
  // One follower's sync makes two: chosen, applied and answered.
  c.complete_syncs(f1);
  c.run(1);
  ASSERT_EQ(replies.size(), 5u);
  for (size_t i = 0; i < replies.size(); ++i)
    EXPECT_EQ(replies[i], kv::Reply::integer_of(int64_t(i + 1)));
  c.held_syncs.clear();
  c.run(3);
  EXPECT_EQ(c.node(f2).store().read({"GET", "n"}, 0), kv::Reply::bulk("5"));
}

// The two followers' votes choose a command while the leader's own disk is still busy: the
// answer does not wait for the leader's sync (it is already durable on a quorum).
TEST(ServerCore, WithAsyncSyncsAFollowerQuorumChoosesWithoutTheLeadersSync) {
  Cluster c(/*async=*/true);
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  c.held_syncs = {leader};
  kv::Reply reply;
  c.node(leader).submit(1, 1, {"SET", "k", "v"}, 1000, [&](const kv::Reply& r) { reply = r; });
  c.run(3);
  EXPECT_TRUE(c.node(leader).sync_in_flight());
  EXPECT_EQ(reply, kv::Reply::ok());
  // A crash before the leader's sync finishes loses nothing acknowledged.
  c.crash(leader);
  c.held_syncs.clear();
  c.start(leader);
  c.run(60);
  for (uint32_t id = 1; id <= 3; ++id)
    EXPECT_EQ(c.node(id).store().read({"GET", "k"}, 0), kv::Reply::bulk("v")) << id;
}

TEST(ServerCore, ManyWritesGiveTheSameRepliesHoweverTheSyncRuns) {
  for (const int mode : {0, 1, 2}) {  // inline, deferred runner, immediate runner
    const bool async = mode > 0;
    Cluster c(async, mode == 2);
    c.run(60);
    const uint32_t leader = c.leader();
    ASSERT_NE(leader, 0u);
    std::vector<kv::Reply> replies;
    for (uint64_t seq = 1; seq <= 40; ++seq) {
      c.node(leader).submit(1, seq, {"INCR", "n"}, 1000,
                            [&](const kv::Reply& r) { replies.push_back(r); });
      if (seq % 7 == 0) c.run(1);  // batches of different sizes; snapshots every 5 slots
    }
    c.run(10);
    ASSERT_EQ(replies.size(), 40u) << mode;
    for (size_t i = 0; i < replies.size(); ++i)
      EXPECT_EQ(replies[i], kv::Reply::integer_of(int64_t(i + 1))) << mode;
    for (uint32_t id = 1; id <= 3; ++id)
      EXPECT_EQ(c.node(id).store().read({"GET", "n"}, 0), kv::Reply::bulk("40")) << id;
  }
}

// The leader's log rolls to new segments and snapshots compact the old ones while its syncs run
// in the background; a crash at any such moment keeps its promise (the newest segment's
// checkpoint is durable before the older segments can go) and every acknowledged write.
TEST(ServerCore, ACrashWhileTheLeadersSyncRunsKeepsItsPromiseAcrossRollsAndSnapshots) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    Cluster c(/*async=*/true);
    c.run(60);
    const uint32_t leader = c.leader();
    ASSERT_NE(leader, 0u);
    const Ballot promised = c.node(leader).replica().promised();
    Rng rng(seed);
    std::set<std::string> acked;
    const int writes = 40 + static_cast<int>(rng.below(40));
    for (int i = 0; i < writes; ++i) {
      const std::string key = "k" + std::to_string(i);
      c.node(leader).submit(7, static_cast<uint64_t>(i + 1), {"SET", key, std::string(200, 'v')},
                            1000, [&acked, key](const kv::Reply& r) {
                              if (r == kv::Reply::ok()) acked.insert(key);
                            });
      // The leader's syncs finish only now and then: rolls and snapshots happen meanwhile.
      c.held_syncs = rng.below(3) == 0 ? std::set<uint32_t>{} : std::set<uint32_t>{leader};
      c.run(1);
    }
    c.held_syncs = {leader};
    c.run(1);
    c.crash(leader);  // with a sync in flight, most likely
    c.held_syncs.clear();
    c.start(leader);
    EXPECT_GE(c.node(leader).replica().promised(), promised) << "seed " << seed;
    c.run(60);
    ASSERT_FALSE(acked.empty());
    for (uint32_t id = 1; id <= 3; ++id)
      for (const auto& key : acked)
        EXPECT_EQ(c.node(id).store().read({"GET", key}, 0), kv::Reply::bulk(std::string(200, 'v')))
            << "seed " << seed << " n" << id << " " << key;
  }
}

TEST(ServerCore, ReadsOnTheLeaderSeeAcknowledgedWritesWithoutUsingTheLog) {
  Cluster c;
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  kv::Reply written;
  c.node(leader).submit(1, 1, {"SET", "k", "v1"}, 1000, [&](const kv::Reply& r) { written = r; });
  c.run(5);
  ASSERT_EQ(written, kv::Reply::ok());
  const Slot commit = c.node(leader).replica().commit();
  std::vector<kv::Reply> reads;
  for (int i = 0; i < 3; ++i)
    c.node(leader).read({"GET", "k"}, 1000, [&](const kv::Reply& r) { reads.push_back(r); });
  EXPECT_TRUE(reads.empty());  // not before a quorum confirms the leadership
  c.run(2);
  ASSERT_EQ(reads.size(), 3u);
  for (const auto& r : reads) EXPECT_EQ(r, kv::Reply::bulk("v1"));
  EXPECT_EQ(c.node(leader).replica().commit(), commit);  // nothing was written to the log
  // A follower refuses definitely and names the leader.
  const uint32_t follower = leader % 3 + 1;
  kv::Reply refused;
  c.node(follower).read({"GET", "k"}, 1000, [&](const kv::Reply& r) { refused = r; });
  EXPECT_EQ(refused.kind, kv::Reply::Kind::kError);
  EXPECT_EQ(refused.text, "TRYAGAIN not the leader; n" + std::to_string(leader) +
                              " leads; the read was not served");
}

TEST(ServerCore, AReadTheLeaderCannotConfirmIsRefused) {
  Cluster c;
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  // The followers are gone: the leader cannot confirm it still leads, and steps down.
  for (uint32_t id = 1; id <= 3; ++id)
    if (id != leader) c.crash(id);
  kv::Reply refused;
  c.node(leader).read({"GET", "k"}, 1000, [&](const kv::Reply& r) { refused = r; });
  c.run(40);
  EXPECT_EQ(refused.kind, kv::Reply::Kind::kError);
  EXPECT_EQ(refused.text, "TRYAGAIN leadership changed; the read was not served");
}

TEST(ServerCore, ARestartedReplicaRebuildsItsStateFromLogAndSnapshot) {
  Cluster c;
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  const uint32_t victim = leader % 3 + 1;
  int acked = 0;
  for (uint64_t seq = 1; seq <= 30; ++seq) {
    c.node(leader).submit(1, seq, {"SET", "k" + std::to_string(seq), "v"}, 1000,
                          [&](const kv::Reply& r) { acked += r == kv::Reply::ok(); });
    c.run(1);  // one slot each, so that snapshots (every 5 slots) happen
  }
  c.run(5);
  ASSERT_EQ(acked, 30);
  const uint64_t digest = c.node(leader).store().digest();
  EXPECT_GT(c.node(victim).replica().snapshot_slot(), 0u);  // snapshots every 5 slots
  c.crash(victim);
  c.start(victim);
  c.run(20);
  EXPECT_EQ(c.node(victim).store().digest(), digest);
  EXPECT_EQ(c.node(victim).store().read({"DBSIZE"}, 0), kv::Reply::integer_of(30));
}

}  // namespace
}  // namespace synod::node
