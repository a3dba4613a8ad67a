// Three ServerCores on in-memory disks, wired by a hand-run network: writes are replicated and
// answered with the state machine's reply, followers refuse definitely, a retried command is
// applied once, and a replica restarted from its disk (log + snapshot) rebuilds the same state.
#include "node/server_core.h"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <set>

#include "storage/mem_file_system.h"

namespace synod::node {
namespace {

class Cluster {
 public:
  // `async`: each replica's fdatasync is handed to a sync runner that this cluster completes
  // when told (or at once in run(), for replicas not in `held_syncs`); `immediate`: the runner
  // runs it on the spot, as the server's does on a follower.
  explicit Cluster(bool async = false, bool immediate = false, kv::Store::Options store = {},
                   std::function<void(Cluster&)> before_start = {})
      : async_(async), immediate_(immediate), store_(store) {
    if (before_start) before_start(*this);
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
    o.snapshot_every = snapshot_every;
    o.snapshot_log_bytes = snapshot_log_bytes;
    o.store = store_;
    o.bug_wall_clock_expiry = bug_wall_clock_expiry;
    o.bug_reads_at_local_clock = bug_reads_at_local_clock;
    o.bug_time_told_before_ready = bug_time_told_before_ready;
    // Each replica's clocks: real time plus its own offsets (see wall_offset_ms, mono_offset_ms).
    o.clock.monotonic_ms = [this, id] { return real_ms_ + mono_offset_ms[id]; };
    o.clock.wall_ms = [this, id] {
      return static_cast<uint64_t>(int64_t{1'700'000'000'000} + int64_t(real_ms_) +
                                   wall_offset_ms[id]);
    };
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
    if (snapshots_held) {
      // As the server's forked child: the work runs on the replica as it is now; it is done only
      // when the test says so.
      (*core)->set_snapshot_runner(
          [this, id](ServerCore::SnapshotWork work,
                     std::function<void(Result<ServerCore::SnapshotMade>)> done) {
            pending_snapshots_[id].push_back({work(), std::move(done)});
          });
    }
    nodes_[id - 1] = std::move(*core);
    up_[id] = true;
  }

  // Completes the snapshots replica `id` started; the number completed.
  size_t complete_snapshots(uint32_t id) {
    auto snapshots = std::move(pending_snapshots_[id]);
    pending_snapshots_[id].clear();
    for (auto& [made, done] : snapshots) done(std::move(made));
    return snapshots.size();
  }

  void crash(uint32_t id) {
    pending_syncs_[id].clear();  // they never ran
    pending_snapshots_[id].clear();
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
  bool snapshots_held = false;    // snapshots run off the loop, done by complete_snapshots()
  uint64_t snapshot_every = 5;
  uint64_t snapshot_log_bytes = 16 << 20;
  // Clocks: real time advances 10 ms per tick of run(); each replica's wall clock is off by its
  // offset (either sign), its monotonic clock starts at its own offset.
  uint64_t real_ms_ = 0;
  std::map<uint32_t, int64_t> wall_offset_ms;
  std::map<uint32_t, uint64_t> mono_offset_ms;
  bool bug_wall_clock_expiry = false;
  bool bug_reads_at_local_clock = false;
  bool bug_time_told_before_ready = false;
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
      if (t < ticks) {
        real_ms_ += 10;
        for (uint32_t id = 1; id <= 3; ++id)
          if (up_[id]) node(id).tick();
      }
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
  struct PendingSnapshot {
    Result<ServerCore::SnapshotMade> made;
    std::function<void(Result<ServerCore::SnapshotMade>)> done;
  };
  std::map<uint32_t, std::vector<PendingSnapshot>> pending_snapshots_;
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
    c.node(leader).submit(1, seq, {"INCR", "counter"},
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
  c.node(follower).submit(2, 1, {"SET", "k", "v"}, [&](const kv::Reply& r) { refused = r; });
  EXPECT_EQ(refused.kind, kv::Reply::Kind::kError);
  EXPECT_EQ(refused.text.rfind("TRYAGAIN not the leader; n" + std::to_string(leader), 0), 0u)
      << refused.text;
  // A retry of an applied command gets the first reply and is not applied again.
  kv::Reply again;
  c.node(leader).submit(1, 3, {"INCR", "counter"}, [&](const kv::Reply& r) { again = r; });
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
    c.node(leader).submit(7, 1, {"INCR", "n"}, [&](const kv::Reply& r) { first = r; });
    c.run(5);
    c.real_ms_ += 2 * kv::Store::kSessionTtlMs;  // the leader, paused two hours, resumes
    c.node(leader).submit(7, 1, {"INCR", "n"}, [&](const kv::Reply& r) { again = r; });
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
  c.node(leader).submit(1, 1, {"SET", "k", "v"}, [](const kv::Reply&) {});
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
    c.node(leader).submit(1, seq, {"INCR", "n"}, [&](const kv::Reply& r) { replies.push_back(r); });
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
  c.node(leader).submit(1, 1, {"SET", "k", "v"}, [&](const kv::Reply& r) { reply = r; });
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
      c.node(leader).submit(1, seq, {"INCR", "n"},
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
                            [&acked, key](const kv::Reply& r) {
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
  c.node(leader).submit(1, 1, {"SET", "k", "v1"}, [&](const kv::Reply& r) { written = r; });
  c.run(5);
  ASSERT_EQ(written, kv::Reply::ok());
  const Slot commit = c.node(leader).replica().commit();
  std::vector<kv::Reply> reads;
  for (int i = 0; i < 3; ++i)
    c.node(leader).read({"GET", "k"}, [&](const kv::Reply& r) { reads.push_back(r); });
  EXPECT_TRUE(reads.empty());  // not before a quorum confirms the leadership
  c.run(2);
  ASSERT_EQ(reads.size(), 3u);
  for (const auto& r : reads) EXPECT_EQ(r, kv::Reply::bulk("v1"));
  EXPECT_EQ(c.node(leader).replica().commit(), commit);  // nothing was written to the log
  // A follower refuses definitely and names the leader.
  const uint32_t follower = leader % 3 + 1;
  kv::Reply refused;
  c.node(follower).read({"GET", "k"}, [&](const kv::Reply& r) { refused = r; });
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
  c.node(leader).read({"GET", "k"}, [&](const kv::Reply& r) { refused = r; });
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
    c.node(leader).submit(1, seq, {"SET", "k" + std::to_string(seq), "v"},
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

// Snapshots off the loop (the server forks a child that writes them): while one is being
// written the replica applies and answers on, and its log is compacted only when it is done; a
// replica that crashes meanwhile recovers from its older snapshot and its whole log; a laggard
// is sent the snapshot from its file, which the core reads chunk by chunk.
TEST(ServerCore, ASnapshotOffTheLoopIsAdoptedWhenDoneAndServedFromItsFile) {
  Cluster c(false, false, {}, [](Cluster& cluster) { cluster.snapshots_held = true; });
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  const uint32_t laggard = leader % 3 + 1;
  const uint32_t other = 6 - leader - laggard;
  c.crash(laggard);
  int acked = 0;
  auto write = [&](uint64_t seq) {
    c.node(leader).submit(1, seq, {"SET", "k" + std::to_string(seq), std::string(700, 'v')},
                          [&](const kv::Reply& r) { acked += r == kv::Reply::ok(); });
    c.run(1);  // one slot each
  };
  for (uint64_t seq = 1; seq <= 12; ++seq) write(seq);
  ASSERT_EQ(acked, 12);
  // The first snapshot (due 5 slots in) is still being written: nothing is compacted, and the
  // replica went on applying and answering.
  ASSERT_TRUE(c.node(leader).snapshot_in_flight());
  EXPECT_EQ(c.node(leader).replica().snapshot_slot(), 0u);
  EXPECT_GE(c.node(leader).applied(), 12u);
  // The other follower crashes while its snapshot is in flight: it recovers from its log alone.
  ASSERT_TRUE(c.node(other).snapshot_in_flight());
  c.crash(other);
  c.start(other);
  c.run(5);
  // Done: the snapshot covers the slot it was started at, not what was applied since.
  ASSERT_EQ(c.complete_snapshots(leader), 1u);
  const Slot first = c.node(leader).replica().snapshot_slot();
  EXPECT_GE(first, 5u);
  EXPECT_LT(first, 12u);
  // The writes applied while it ran made the next due: it starts at once, not at the next write
  // (which may never come, and the log since the first is held in memory until then).
  EXPECT_TRUE(c.node(leader).snapshot_in_flight());
  ASSERT_EQ(c.complete_snapshots(leader), 1u);
  EXPECT_EQ(c.node(leader).replica().snapshot_slot(), c.node(leader).applied());
  EXPECT_FALSE(c.node(leader).snapshot_in_flight());
  for (uint64_t seq = 13; seq <= 40; ++seq) {
    write(seq);
    c.complete_snapshots(leader);
    c.complete_snapshots(other);
  }
  ASSERT_EQ(acked, 40);
  EXPECT_GT(c.node(leader).replica().snapshot_slot(), first);
  // The laggard is sent the leader's newest snapshot, read from its file in chunks.
  c.sent.clear();
  c.start(laggard);
  for (int i = 0; i < 40 && c.node(laggard).applied() < c.node(leader).applied(); ++i) {
    c.run(1);
    c.complete_snapshots(laggard);
  }
  size_t chunks = 0;
  for (const auto& e : c.sent)
    if (std::holds_alternative<paxos::SnapshotChunkMsg>(e.message) && e.to.value == laggard)
      ++chunks;
  EXPECT_GT(chunks, 0u);
  EXPECT_EQ(c.node(laggard).store().digest(), c.node(leader).store().digest());
  EXPECT_EQ(c.node(laggard).store().read({"DBSIZE"}, 0), kv::Reply::integer_of(40));
}

// Slots can hold hundreds of commands each: the log a replica keeps in memory is bounded in bytes
// too. A snapshot comes once the commands applied since the last one add up to
// snapshot_log_bytes and to the last snapshot's size, however few the slots.
TEST(ServerCore, ASnapshotComesOnceTheLogOutgrowsItsBytesAndTheState) {
  Cluster c(false, false, {}, [](Cluster& cluster) {
    cluster.snapshot_every = 0;  // never by slots
    cluster.snapshot_log_bytes = 4000;
  });
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  uint64_t seq = 0;
  // Every replica applies each write before the next (a heartbeat tells the followers).
  auto write = [&](size_t bytes) {
    ++seq;
    c.node(leader).submit(1, seq, {"SET", "k" + std::to_string(seq), std::string(bytes, 'v')},
                          [](const kv::Reply&) {});
    c.run(8);
  };
  // n1 waits the intervals themselves; n3 waits 1.25 times as long (10 eighths), so that
  // replicas do not all fork at once.
  EXPECT_EQ(ServerCore::staggered_interval(NodeId{1}, 4000), 4000u);
  EXPECT_EQ(ServerCore::staggered_interval(NodeId{3}, 4000), 5000u);
  EXPECT_EQ(ServerCore::staggered_interval(NodeId{5}, 4000), 6000u);
  EXPECT_EQ(ServerCore::staggered_interval(NodeId{6}, 4000), 4000u);
  // A huge flag stays huge (it wrapped to a small interval, a snapshot every few slots).
  EXPECT_EQ(ServerCore::staggered_interval(NodeId{3}, UINT64_MAX / 2), UINT64_MAX);
  for (int i = 0; i < 5; ++i) write(700);  // about 3,600 bytes of commands: no snapshot yet
  EXPECT_EQ(c.node(1).replica().snapshot_slot(), 0u);
  write(700);  // past 4,000
  const Slot first = c.node(1).replica().snapshot_slot();
  EXPECT_GT(first, 0u);
  EXPECT_EQ(c.node(3).replica().snapshot_slot(), 0u);  // under 5,000
  write(700);                                          // past 5,000
  EXPECT_GT(c.node(3).replica().snapshot_slot(), first);
  // The state (about 5,000 bytes now) is the floor for n1's next: 4,000 more bytes are not
  // enough.
  for (int i = 0; i < 5; ++i) write(700);
  EXPECT_EQ(c.node(1).replica().snapshot_slot(), first);
  for (int i = 0; i < 3; ++i) write(700);
  EXPECT_GT(c.node(1).replica().snapshot_slot(), first);
  // Off (0) with snapshot_every 0 too: never.
  Cluster never(false, false, {}, [](Cluster& cluster) {
    cluster.snapshot_every = 0;
    cluster.snapshot_log_bytes = 0;
  });
  never.run(60);
  const uint32_t l = never.leader();
  ASSERT_NE(l, 0u);
  for (uint64_t i = 1; i <= 30; ++i) {
    never.node(l).submit(1, i, {"SET", "k", std::string(700, 'v')}, [](const kv::Reply&) {});
    never.run(1);
  }
  EXPECT_EQ(never.node(l).replica().snapshot_slot(), 0u);
}

// Findings 2 and 3: expiry and locks on the cluster clock, whatever the replicas' wall clocks say.
struct ClockBugs {
  bool wall_clock_expiry = false;
  bool reads_at_local_clock = false;
  bool time_told_before_ready = false;
};

Cluster skewed_cluster(ClockBugs bugs) {
  return Cluster(false, false, {}, [bugs](Cluster& c) {
    c.bug_wall_clock_expiry = bugs.wall_clock_expiry;
    c.bug_reads_at_local_clock = bugs.reads_at_local_clock;
    c.bug_time_told_before_ready = bugs.time_told_before_ready;
  });
}

kv::Reply read_on(Cluster& c, uint32_t id, std::vector<std::string> args) {
  std::optional<kv::Reply> reply;
  c.node(id).read(std::move(args), [&](const kv::Reply& r) { reply = r; });
  for (int i = 0; i < 20 && !reply; ++i) c.run(1);
  return reply.value_or(kv::Reply::error("no answer"));
}

kv::Reply write_on(Cluster& c, uint32_t id, uint64_t client, std::vector<std::string> args) {
  std::optional<kv::Reply> reply;
  c.node(id).submit(client, 1, std::move(args), [&](const kv::Reply& r) { reply = r; });
  for (int i = 0; i < 20 && !reply; ++i) c.run(1);
  return reply.value_or(kv::Reply::error("no answer"));
}

// Fails the leader and returns the next one, elected among the others.
uint32_t fail_over(Cluster& c) {
  c.crash(c.leader());
  for (int i = 0; i < 40 && c.leader() == 0; ++i) c.run(5);
  return c.leader();
}

// Finding 2: L1 serves GET k -> nil after k's PX ran out; L1 fails; L2's wall clock is an hour
// behind. L2 must not show k again.
void expired_key_stays_expired(ClockBugs bugs, bool expect_nil) {
  Cluster c = skewed_cluster(bugs);
  c.run(60);
  const uint32_t l1 = c.leader();
  ASSERT_NE(l1, 0u);
  for (uint32_t id = 1; id <= 3; ++id)
    if (id != l1) c.wall_offset_ms[id] = -3'600'000;
  ASSERT_EQ(write_on(c, l1, 5, {"SET", "k", "v", "PX", "1000"}), kv::Reply::ok());
  c.run(150);  // 1.5 s
  ASSERT_EQ(read_on(c, l1, {"GET", "k"}), kv::Reply::null());
  const uint32_t l2 = fail_over(c);
  ASSERT_NE(l2, 0u);
  const kv::Reply later = read_on(c, l2, {"GET", "k"});
  if (expect_nil) {
    EXPECT_EQ(later, kv::Reply::null()) << "a key a read saw expired came back";
  } else {
    EXPECT_EQ(later, kv::Reply::bulk("v")) << "the planted bug was not reproduced";
  }
}

TEST(ServerCoreTime, AKeyAReadSawExpiredNeverComesBack) {
  expired_key_stays_expired({}, true);
  expired_key_stays_expired({.reads_at_local_clock = true}, false);
}

// Finding 3: A holds the lock (PX 30 s); L1 fails; L2's wall clock is 40 s ahead. B must not get
// the lock within A's 30 s.
void lock_has_one_holder(ClockBugs bugs, bool expect_refused) {
  Cluster c = skewed_cluster(bugs);
  c.run(60);
  const uint32_t l1 = c.leader();
  ASSERT_NE(l1, 0u);
  for (uint32_t id = 1; id <= 3; ++id)
    if (id != l1) c.wall_offset_ms[id] = 40'000;
  ASSERT_EQ(write_on(c, l1, 5, {"SET", "lock", "A", "NX", "PX", "30000"}), kv::Reply::ok());
  const uint32_t l2 = fail_over(c);
  ASSERT_NE(l2, 0u);
  ASSERT_LT(c.real_ms_, 30'000u);
  const kv::Reply b = write_on(c, l2, 6, {"SET", "lock", "B", "NX", "PX", "30000"});
  if (expect_refused) {
    EXPECT_EQ(b, kv::Reply::null()) << "two holders of one lock";
  } else {
    EXPECT_EQ(b, kv::Reply::ok()) << "the planted bug was not reproduced";
  }
}

TEST(ServerCoreTime, ALockHasOneHolderWhateverTheNextLeadersWallClockSays) {
  lock_has_one_holder({}, true);
  lock_has_one_holder({.wall_clock_expiry = true}, false);
}

// Finding 3, the converse: a first leader a day ahead, once deposed, does not freeze expiry.
void expiry_runs_after_a_leader_a_day_ahead(ClockBugs bugs, bool expect_nil) {
  Cluster c = skewed_cluster(bugs);
  for (uint32_t id = 1; id <= 3; ++id) c.wall_offset_ms[id] = 86'400'000;  // all a day ahead
  c.run(60);
  const uint32_t l1 = c.leader();
  ASSERT_NE(l1, 0u);
  ASSERT_EQ(write_on(c, l1, 5, {"SET", "x", "1"}), kv::Reply::ok());
  for (uint32_t id = 1; id <= 3; ++id) c.wall_offset_ms[id] = 0;  // NTP steps them back
  const uint32_t l2 = fail_over(c);
  ASSERT_NE(l2, 0u);
  ASSERT_EQ(write_on(c, l2, 6, {"SET", "k", "v", "PX", "1000"}), kv::Reply::ok());
  c.run(150);  // 1.5 s
  const kv::Reply later = read_on(c, l2, {"GET", "k"});
  if (expect_nil) {
    EXPECT_EQ(later, kv::Reply::null()) << "expiry froze";
  } else {
    EXPECT_EQ(later, kv::Reply::bulk("v")) << "the planted bug was not reproduced";
  }
}

TEST(ServerCoreTime, ExpiryRunsAfterALeaderADayAheadIsDeposed) {
  expiry_runs_after_a_leader_a_day_ahead({}, true);
  expiry_runs_after_a_leader_a_day_ahead({.wall_clock_expiry = true, .reads_at_local_clock = true},
                                         false);
}

// Every replica restarts (monotonic clocks from zero, wall clocks an hour behind): nothing of the
// cluster clock survives but the durable horizons and the log clock, and a key a read saw
// expired must stay expired. The first leader after may refuse (TRYAGAIN) until its clock has
// passed the horizon it recovered, at most one step.
TEST(ServerCoreTime, AKeyAReadSawExpiredStaysExpiredAfterEveryReplicaRestarts) {
  Cluster c = skewed_cluster({});
  c.run(60);
  const uint32_t l1 = c.leader();
  ASSERT_NE(l1, 0u);
  ASSERT_EQ(write_on(c, l1, 5, {"SET", "k", "v", "PX", "1000"}), kv::Reply::ok());
  c.run(150);  // 1.5 s
  ASSERT_EQ(read_on(c, l1, {"GET", "k"}), kv::Reply::null());
  for (uint32_t id = 1; id <= 3; ++id) c.crash(id);
  for (uint32_t id = 1; id <= 3; ++id) {
    c.mono_offset_ms[id] = uint64_t{0} - c.real_ms_;  // (wraps: the clock restarts at 0)
    c.wall_offset_ms[id] = -3'600'000;
    c.start(id);
  }
  for (int i = 0; i < 40 && c.leader() == 0; ++i) c.run(5);
  const uint32_t l2 = c.leader();
  ASSERT_NE(l2, 0u);
  const kv::Reply early = read_on(c, l2, {"GET", "k"});
  if (early.kind == kv::Reply::Kind::kError) {
    EXPECT_TRUE(early.text.starts_with("TRYAGAIN")) << early.text;
    c.run(100);  // one horizon step
  } else {
    EXPECT_EQ(early, kv::Reply::null()) << "a key a read saw expired came back";
  }
  EXPECT_EQ(read_on(c, l2, {"GET", "k"}), kv::Reply::null())
      << "a key a read saw expired came back";
}

// Found by sim --disk-faults (3 replicas seed 18211, 5 replicas seed 30789): a leader elected on
// restarted acceptors' horizons starts its clock up to a step below the times served before, and
// waits. If it told its acceptors that clock and then failed before it was ready, the next leader
// took it for the ballot's time, which outranks the lower ballot's horizons, and served below a
// time already served: a key a read saw expired came back. Every replica restarts (nothing but
// the horizons survives), the first leader after fails while waiting, and the one after it reads.
void key_stays_expired_when_a_waiting_leader_fails(ClockBugs bugs, bool expect_nil) {
  Cluster c = skewed_cluster(bugs);
  c.run(60);
  const uint32_t l1 = c.leader();
  ASSERT_NE(l1, 0u);
  ASSERT_EQ(write_on(c, l1, 5, {"SET", "k", "v", "PX", "1000"}), kv::Reply::ok());
  c.run(102);  // just past the expiry
  ASSERT_EQ(read_on(c, l1, {"GET", "k"}), kv::Reply::null());
  for (uint32_t id = 1; id <= 3; ++id) c.crash(id);
  for (uint32_t id = 1; id <= 3; ++id) c.start(id);
  for (int i = 0; i < 40 && c.leader() == 0; ++i) c.run(1);
  const uint32_t l2 = c.leader();
  ASSERT_NE(l2, 0u);
  ASSERT_FALSE(c.node(l2).replica().role() == paxos::Role::kLeader &&
               read_on(c, l2, {"GET", "k"}).kind != kv::Reply::Kind::kError)
      << "a leader served before it waited out the horizons";
  c.run(10);  // 100 ms of heartbeats, still waiting
  ASSERT_EQ(c.leader(), l2);
  const uint32_t l3 = fail_over(c);
  ASSERT_NE(l3, 0u);
  const kv::Reply later = read_on(c, l3, {"GET", "k"});
  if (expect_nil) {
    if (later.kind == kv::Reply::Kind::kError) {
      EXPECT_TRUE(later.text.starts_with("TRYAGAIN")) << later.text;
      c.run(100);  // one horizon step
      EXPECT_EQ(read_on(c, l3, {"GET", "k"}), kv::Reply::null())
          << "a key a read saw expired came back";
    } else {
      EXPECT_EQ(later, kv::Reply::null()) << "a key a read saw expired came back";
    }
  } else {
    EXPECT_EQ(later, kv::Reply::bulk("v"))
        << "the planted bug was not reproduced: " << later.text << " l1 " << l1 << " l2 " << l2
        << " l3 " << l3 << " floor " << to_string(c.node(l3).replica().time_floor().ballot) << " "
        << c.node(l3).replica().time_floor().seen_ms << " horizon "
        << to_string(c.node(l3).replica().time_floor().horizon.ballot) << " "
        << c.node(l3).replica().time_floor().horizon.ms;
  }
}

TEST(ServerCoreTime, AKeyAReadSawExpiredStaysExpiredWhenALeaderFailsWhileItWaits) {
  key_stays_expired_when_a_waiting_leader_fails({}, true);
  key_stays_expired_when_a_waiting_leader_fails({.time_told_before_ready = true}, false);
}

}  // namespace
}  // namespace synod::node

namespace synod::node {
namespace {

// MEMBER changes on the leader (ServerCore::submit_member_change): a learner's id is answered
// once the change is chosen, and asking again answers the same; a learner that never answered is
// not promoted (TRYAGAIN: it has not caught up); a removal asked for again answers OK without a
// change; a follower refuses definitely, naming the leader; the leader that is to leave hands
// leadership over first.
TEST(ServerCoreMembers, ChangesAreCheckedOnTheLeaderAndRetriesAnswerTheSame) {
  Cluster c;
  c.run(60);
  const uint32_t leader = c.leader();
  ASSERT_NE(leader, 0u);
  std::vector<kv::Reply> replies;
  auto submit = [&](uint32_t node, uint64_t seq, std::vector<std::string> args) {
    c.node(node).submit(7, seq, std::move(args), [&](const kv::Reply& r) { replies.push_back(r); });
    c.run(5);
    return replies.empty() ? kv::Reply::error("no answer") : replies.back();
  };
  EXPECT_EQ(submit(leader, 1, {"MEMBER", "ADD-LEARNER", "127.0.0.1:9"}), kv::Reply::integer_of(4));
  EXPECT_EQ(c.node(leader).replica().membership()->epoch, 1u);
  EXPECT_EQ(submit(leader, 2, {"member", "add-learner", "127.0.0.1:9"}), kv::Reply::integer_of(4));
  EXPECT_EQ(c.node(leader).replica().membership()->epoch, 1u);
  const kv::Reply early = submit(leader, 3, {"MEMBER", "PROMOTE", "4"});
  EXPECT_EQ(early.text.rfind("TRYAGAIN learner n4 has not caught up", 0), 0u) << early.text;
  const uint32_t follower = leader % 3 + 1;
  const kv::Reply there = submit(follower, 5, {"MEMBER", "REMOVE", "4"});
  EXPECT_EQ(there.text.rfind("TRYAGAIN not the leader; n" + std::to_string(leader), 0), 0u)
      << there.text;
  EXPECT_EQ(submit(leader, 6, {"MEMBER", "REMOVE", "4"}), kv::Reply::simple("OK epoch 2"));
  EXPECT_EQ(submit(leader, 7, {"MEMBER", "REMOVE", "4"}), kv::Reply::simple("OK epoch 2"));
  EXPECT_EQ(c.node(follower).replica().membership()->describe(),
            c.node(leader).replica().membership()->describe());
  const kv::Reply reused = submit(leader, 8, {"MEMBER", "ADD-LEARNER", "127.0.0.1:10", "4"});
  EXPECT_NE(reused.text.find("ids are never reused"), std::string::npos) << reused.text;
  const kv::Reply usage = submit(leader, 9, {"MEMBER", "PROMOTE"});
  EXPECT_EQ(usage.text.rfind("ERR usage: MEMBER", 0), 0u) << usage.text;
  // The leader itself is to leave: it hands leadership over first and asks for a retry, which
  // the new leader takes.
  const kv::Reply self = submit(leader, 10, {"MEMBER", "REMOVE", std::to_string(leader)});
  EXPECT_EQ(self.text.rfind(
                "TRYAGAIN n" + std::to_string(leader) + " leads: handing leadership over to n", 0),
            0u)
      << self.text;
  c.run(60);
  const uint32_t next = c.leader();
  ASSERT_NE(next, 0u);
  EXPECT_NE(next, leader);
  const kv::Reply removed = submit(next, 11, {"MEMBER", "REMOVE", std::to_string(leader)});
  EXPECT_EQ(removed.text.rfind("OK epoch ", 0), 0u) << removed.text;
  EXPECT_FALSE(c.node(next).replica().membership()->is_member(NodeId{leader}));
}

}  // namespace
}  // namespace synod::node
