// The whole-replica simulator's tests: runs are reproducible, clean runs stay clean with every
// fault on (3 and 5 replicas, torn disks), and each of its checks (vouching, linearizable,
// agreement) catches planted bugs in the code the server runs: answers sent before their sync,
// requests sent before their ballot is durable, a checkpoint left to an unfinished sync, syncs
// that never reach the disk, log markers that a client's value can forge, and protocol bugs that
// break agreement.
#include "sim/core_sim.h"

#include <gtest/gtest.h>

#include <iostream>
#include <sstream>

namespace synod::sim {
namespace {

std::string describe(const CoreResult& r) {
  std::string out = "seed " + std::to_string(r.seed) + ": " + r.violation.value_or("clean");
  for (const auto& e : r.last_events) out += "\n  " + e;
  return out;
}

CoreOptions short_runs() {
  CoreOptions o;
  o.fault_phase_us = 1'500'000;
  return o;
}

TEST(CoreSim, TheSameSeedGivesTheSameRun) {
  std::ostringstream a, b;
  const CoreResult x = run_core_seed(short_runs(), 7, &a);
  const CoreResult y = run_core_seed(short_runs(), 7, &b);
  EXPECT_EQ(x.digest, y.digest);
  EXPECT_EQ(a.str(), b.str());
  EXPECT_NE(run_core_seed(short_runs(), 8).digest, x.digest);
}

TEST(CoreSim, CleanRunsStayCleanUnderEveryFault) {
  CoreResult total;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    const CoreResult r = run_core_seed(short_runs(), seed);
    ASSERT_FALSE(r.violation) << describe(r);
    total.writes_acknowledged += r.writes_acknowledged;
    total.reads_ok += r.reads_ok;
    total.crashes += r.crashes;
    total.syncs_deferred += r.syncs_deferred;
    total.syncs_inline += r.syncs_inline;
    total.partitions += r.partitions;
    total.snapshots_deferred += r.snapshots_deferred;
    total.snapshots_superseded += r.snapshots_superseded;
    total.snapshots_failed += r.snapshots_failed;
    total.crashes_in_snapshot += r.crashes_in_snapshot;
  }
  // The runs did what they are for: work got done, under crashes, with syncs both ways.
  EXPECT_GT(total.writes_acknowledged, 5000u);
  EXPECT_GT(total.reads_ok, 2000u);
  EXPECT_GT(total.crashes, 1000u);
  EXPECT_GT(total.partitions, 500u);
  EXPECT_GT(total.syncs_deferred, 10000u);
  EXPECT_GT(total.syncs_inline, 3000u);
  // ... and with snapshots off the loop, as the server's forked child takes them: adopted, made
  // stale by a peer's snapshot installed meanwhile, failed, and cut short by a crash.
  EXPECT_GT(total.snapshots_deferred, 2000u);
  EXPECT_GT(total.snapshots_superseded, 0u);
  EXPECT_GT(total.snapshots_failed, 50u);
  EXPECT_GT(total.crashes_in_snapshot, 200u);
}

// Lease reads (`--lease-reads`) in the whole replica: each replica's ServerCore tells its core
// its own drifting monotonic clock before every Ready, and the histories stay linearizable under
// every fault, with reads served.
TEST(CoreSim, LeaseReadsKeepHistoriesLinearizable) {
  CoreOptions o = short_runs();
  o.lease = true;
  uint64_t reads = 0;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    const CoreResult r = run_core_seed(o, seed);
    ASSERT_FALSE(r.violation) << describe(r);
    reads += r.reads_ok;
  }
  EXPECT_GT(reads, 700u);
}

// The same named fault mixes as the protocol simulator's (`synod sim --core --faults MIX`).
TEST(CoreSim, AFaultMixTurnsOffWhatItDoesNotName) {
  CoreOptions o = short_runs();
  ASSERT_TRUE(apply_fault_mix("crash", o));
  EXPECT_EQ(o.loss, 0.0);
  EXPECT_EQ(o.duplicate, 0.0);
  EXPECT_EQ(o.long_delay, 0.0);
  EXPECT_TRUE(o.crashes);
  EXPECT_FALSE(o.partitions);
  EXPECT_FALSE(apply_fault_mix("some", o));
  ASSERT_TRUE(apply_fault_mix("none", o));
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const CoreResult r = run_core_seed(o, seed);
    ASSERT_FALSE(r.violation) << describe(r);
    EXPECT_EQ(r.crashes, 0u);
    EXPECT_EQ(r.partitions, 0u);
    EXPECT_GT(r.writes_acknowledged, 100u);
  }
}

// With disk faults, some clients' values hold synced and seal markers (forged_markers): torn in a
// crash, they must not make a replica's recovery take its torn tail for synced data.
TEST(CoreSim, FiveReplicasAndTornDisksStayClean) {
  CoreOptions o = short_runs();
  o.replicas = 5;
  o.disk_faults = true;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const CoreResult r = run_core_seed(o, seed);
    ASSERT_FALSE(r.violation) << describe(r);
  }
}

// Planted bug `bug` must make the check named `check` fire within `seeds` seeds.
// (`check` may name several, separated by '|': any of them counts.)
void expect_caught(const char* bug, const std::string& check, uint64_t seeds,
                   CoreOptions o = short_runs()) {
  ASSERT_TRUE(enable_core_bug(bug, o));
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    const CoreResult r = run_core_seed(o, seed);
    if (!r.violation) continue;
    size_t begin = 0;
    while (begin <= check.size()) {
      const size_t end = std::min(check.find('|', begin), check.size());
      if (r.violation->rfind(check.substr(begin, end - begin) + ":", 0) == 0) {
        std::cout << "[caught] " << bug << " at seed " << seed << ": " << *r.violation << "\n";
        return;
      }
      begin = end + 1;
    }
  }
  ADD_FAILURE() << bug << " did not trip the " << check << " check in " << seeds << " seeds";
}

// Without the checks at every apply: what the clients saw, and the replicas' end states.
CoreOptions without_apply_checks() {
  CoreOptions o = short_runs();
  o.check_applies = false;
  return o;
}

// What the server adds to the core: each rule of ServerCore's effect order, broken on purpose.
TEST(CoreSim, AnswersSentBeforeTheirSyncAreCaught) {
  expect_caught("ack-before-sync", "vouching", 20);
}

TEST(CoreSim, AnswersToItsOwnProposerBeforeTheSyncAreCaught) {
  expect_caught("self-answers-early", "vouching", 20);
}

// A snapshot is taken off the loop (the server forks a child that writes it): the log may be
// compacted only once its file is durable. Compacted when it starts, a crash before it is done
// loses accepted entries the replica vouched for.
TEST(CoreSim, ALogCompactedBeforeItsSnapshotIsDurableIsCaught) {
  expect_caught("compact-before-snapshot-durable", "vouching", 20);
}

// Replicas with snapshot settings of their own (a third of the seeds run one that never
// snapshots): a laggard that began one peer's snapshot asks the next leader for the rest, and a
// leader without a snapshot must say so (an empty chunk of slot 0: the laggard turns to catch-up)
// rather than stay silent, which left the laggard asking forever.
TEST(CoreSim, APeerWithoutASnapshotThatStaysSilentIsCaught) {
  CoreOptions o;  // (full runs: the short ones calm down before the transfer stalls)
  expect_caught("silent-without-snapshot", "liveness", 1000, o);
}

// An OK for every write: a mistyped reply (an INCR answered OK) gives it away at once; with
// only GETs and SETs, the durability check and the history catch it on their own.
TEST(CoreSim, WritesAnsweredBeforeTheyAreChosenAreCaught) {
  expect_caught("ack-on-propose", "client", 20);
  CoreOptions o = short_runs();
  o.mixed_commands = false;
  expect_caught("ack-on-propose", "durability", 50, o);
  o.check_applies = false;  // (the durability check is one of them)
  expect_caught("ack-on-propose", "linearizable", 1000, o);
}

// The router runs in every simulated replica (node::Router, as in the server). A forwarded write
// sent again under a new command id may apply twice: an INCR then counts one more than was sent
// (the counters check), or a SET's value comes back after a later write (lincheck). In
// `synod sim --core --seeds 1-1000 --keep-going --bug forward-retry-new-id`: 222 seeds (126
// counters, 96 linearizable, the first at seed 4); in these short runs each check within 100.
TEST(CoreSim, AForwardRetriedUnderANewCommandIdIsCaught) {
  expect_caught("forward-retry-new-id", "counters", 100);
  expect_caught("forward-retry-new-id", "linearizable", 100);
}

TEST(CoreSim, FollowerReadsThatSkipTheReadIndexAreCaught) {
  expect_caught("stale-follower-reads", "reads", 20);
  expect_caught("follower-read-before-apply", "reads", 20);
}

TEST(CoreSim, ARouterThatAcknowledgesProposedWritesIsCaught) {
  expect_caught("ack-before-chosen", "client", 20);  // an INCR answered OK
  expect_caught("ack-before-chosen", "durability", 50);
}

// Every command of the mix reaches the state machine through the routers, forwarded and not,
// and follower reads are served by read index.
TEST(CoreSim, TheRoutersForwardAndServeFollowerReads) {
  CoreResult total;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const CoreResult r = run_core_seed(short_runs(), seed);
    ASSERT_FALSE(r.violation) << describe(r);
    total.forwarded += r.forwarded;
    total.follower_reads += r.follower_reads;
    total.router_retries += r.router_retries;
    total.incrs_acknowledged += r.incrs_acknowledged;
  }
  EXPECT_GT(total.forwarded, 1000u);
  EXPECT_GT(total.follower_reads, 200u);  // (295 in 50 seeds)
  EXPECT_GT(total.router_retries, 1000u);
  EXPECT_GT(total.incrs_acknowledged, 100u);
}

// The faults production meets from peers and clients run here too: a hostile peer's absurd
// messages, values up to the size limit, and commands over it, which are refused whole.
TEST(CoreSim, HostileMessagesAndValuesUpToTheLimitRunCleanly) {
  CoreResult total;
  CoreOptions o = short_runs();
  o.large_values = 0.2;  // (3% by default: a command over the limit is then rare)
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    const CoreResult r = run_core_seed(o, seed);
    ASSERT_FALSE(r.violation) << describe(r);
    total.hostile_messages += r.hostile_messages;
    total.large_values += r.large_values;
    total.refused_too_large += r.refused_too_large;
  }
  EXPECT_GT(total.hostile_messages, 100u);
  EXPECT_GT(total.large_values, 50u);
  EXPECT_GT(total.refused_too_large, 0u);
}

// Found by the disk-fault soak (seeds 2165 and 19966 of 50,000, 3 replicas): a forward the leader
// refused (TRYAGAIN: its clock had not yet passed its predecessors') was duplicated by the
// network, its copy arrived once the leader was ready and was applied, while the follower's
// router had already told its client TRYAGAIN, "not applied". The leader now drops a copy of a
// forward it took before. With ten times the default duplication the simulator finds it about
// once in 5,000 seeds (`synod sim --seeds 1-20000 --dup 0.3 --bug duplicate-forwards-run
// --keep-going`: since a snapshot due when the last one ends starts at once, seeds 8134 and 19667
// as linearizable, 13128, 14215 and 15203 as counters), too rarely for a search here;
// the seeds replay
// exactly and must be found again with that command whenever the simulator's schedule changes.
namespace {

// Seeds that found a router bug in a soak: each runs clean, and each is caught by its check (a
// history that is not linearizable, or a counter that an increment moved twice) with the bug
// planted (the old router) in the same options.
void expect_seeds_replay(const CoreOptions& o, const std::string& router_bug,
                         const std::vector<std::pair<uint64_t, std::string>>& seeds) {
  CoreOptions planted = o;
  planted.router_bug = router_bug;
  // Found before replicas let go of chosen values by seed (ReplicaClock::log_memory_bytes_for).
  if (!planted.log_memory_bytes) planted.log_memory_bytes = paxos::Config{}.log_memory_bytes;
  for (const auto& [seed, check] : seeds) {
    const CoreResult clean = run_core_seed(o, seed);
    EXPECT_FALSE(clean.violation) << describe(clean);
    const CoreResult r = run_core_seed(planted, seed);
    ASSERT_TRUE(r.violation) << "seed " << seed << ": the planted bug was not reproduced";
    EXPECT_EQ(r.violation->rfind(check + ":", 0), 0u) << *r.violation;
  }
}

}  // namespace

TEST(CoreSim, ACopyOfAForwardTheLeaderRefusedIsNeverApplied) {
  CoreOptions o;
  o.duplicate = 0.3;
  expect_seeds_replay(o, "duplicate-forwards-run", {{8134, "linearizable"}, {15203, "counters"}});
}

// Found by the disk-fault soak at HEAD of 2026-12-05 (seed 40640 of 50,000, 3 replicas): a
// follower's forward reached the leader, which proposed it and crashed; a network copy of the
// forward reached the restarted replica, which refused it (TRYAGAIN: not the leader), and the
// follower's router told its client "not applied" of a write that was then chosen. A refusal of
// a forward now leaves the write's outcome open. Since PreVote (fewer elections) the default
// duplication no longer reaches it in 50,000 seeds; with ten times as much, 3 of 20,000 do
// (`synod sim --seeds 1-20000 --disk-faults --dup 0.3 --bug forward-refusal-trusted
// --keep-going`: since a snapshot due when the last one ends starts at once, seed 524 as
// linearizable and 6611 as counters). The seeds replay exactly and must be found again with that
// command whenever the simulator's schedule changes.
TEST(CoreSim, AWriteWhoseForwardWasRefusedIsNotReportedUnapplied) {
  CoreOptions o;
  o.disk_faults = true;
  o.duplicate = 0.3;
  expect_seeds_replay(o, "forward-refusal-trusted", {{524, "linearizable"}, {6611, "counters"}});
}

// Review's forged Prepare that ended all elections: acceptors that take any round, however
// implausible, are stuck once the hostile peer has sent one at the ceiling (128 of 300 seeds in
// `synod sim --seeds 1-300 --bug absurd-rounds-taken --keep-going`).
TEST(CoreSim, AcceptorsThatTakeAbsurdRoundsFailLiveness) {
  expect_caught("absurd-rounds-taken", "liveness", 30);
}

// Review finding 9: recovery trusted any checksummed marker in a torn tail, so a value holding one
// made a replica refuse to start (first at seed 5).
TEST(CoreSim, MarkersThatAValueCanForgeAreCaught) {
  CoreOptions o = short_runs();
  o.disk_faults = true;
  expect_caught("marker-in-payload", "storage", 300, o);
}

// Review findings 2 and 3: expiry on a wall clock. Each simulated replica has its own wall clock
// (seconds to hours off) and a monotonic clock within the drift bound; the ttl check catches a
// key read as expired before its PX ran out in real time, or read as present after a read saw it
// expired.
TEST(CoreSim, ReadsAtTheServersWallClockAreCaught) {
  expect_caught("reads-at-local-clock", "ttl", 100);
}

TEST(CoreSim, CommandsStampedWithTheLeadersWallClockAreCaught) {
  expect_caught("wall-clock-expiry", "ttl", 100);
}

// Review finding 4: sessions idle for an hour of log time were forgotten, so a retry stamped by a
// leader whose clock ran an hour ahead applied twice. Log time no longer jumps, so the bug needs
// a clock that makes it jump: with wall-clock-expiry too (leaders stamp their wall clocks, hours
// apart here), an INCR retried across such a leader change applies twice, and the counters check
// or lincheck sees it. Without TTL keys, so that the ttl check does not fire first. Wall-clock
// stamps alone never apply anything twice: the session bug is what is caught.
TEST(CoreSim, SessionsForgottenByALeapOfLogTimeAreCaught) {
  CoreOptions o;
  o.ttl_share = 0;
  ASSERT_TRUE(enable_core_bug("wall-clock-expiry", o));
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    const CoreResult r = run_core_seed(o, seed);
    ASSERT_FALSE(r.violation && (r.violation->rfind("counters:", 0) == 0 ||
                                 r.violation->rfind("linearizable:", 0) == 0))
        << describe(r);
  }
  expect_caught("sessions-evicted-by-clock", "counters|linearizable", 1000, o);  // (seed 490)
}

// Found by a review of the cluster clock: a leader cut off from its quorum runs its clock on at
// the acceptors still on its ballot until it steps down, while its successor's clock paused for
// the election. A later leader that took the highest time its promise quorum reported, of any
// ballot, started ahead of the time its predecessor served at, and keys expired early. The
// planted bug restores that rule; 5 replicas, frequent partitions and many TTL keys make the
// three-leader schedule it needs common enough. When clients asked the leader directly it was
// caught first at seed 112 of 1,500, five times. With the router in every replica a client
// waits out a partition at its replica instead of following the leader, and 5 clients found it
// in none of 2,500 seeds: so 10 clients, that pick a replica at random far more often (first at
// seed 382, three times in 1,500). Since a snapshot due when the last one ends starts at once and
// catch-up stops asking a silent leader, the first is seed 2878 (3 minutes of search in the plain
// build): the seed replays here, clean without the bug, and must be found again whenever the
// simulator's schedule changes, with the loop below run over seeds 1-6000.
TEST(CoreSim, ACutOffLeadersClockThatLiftsItsSuccessorsIsCaught) {
  CoreOptions o = short_runs();
  o.replicas = 5;
  o.ttl_share = 0.6;
  o.crashes = false;
  o.nemesis_interval_min_us = 50'000;
  o.nemesis_interval_max_us = 250'000;
  o.fault_phase_us = 4'000'000;
  o.clients = 10;
  o.wander = 1.0;
  const CoreResult clean = run_core_seed(o, 2878);
  EXPECT_FALSE(clean.violation) << describe(clean);
  o.bugs.time_of_any_ballot = true;
  for (uint64_t seed = 2878; seed <= 2878; ++seed) {
    const CoreResult r = run_core_seed(o, seed);
    if (!r.violation) continue;
    EXPECT_EQ(r.violation->rfind("ttl:", 0), 0u) << describe(r);
    return;
  }
  ADD_FAILURE() << "time-of-any-ballot did not trip the ttl check at seed 2878";
}

TEST(CoreSim, RequestsSentBeforeTheirBallotIsDurableAreCaught) {
  expect_caught("early-undurable-ballot", "vouching", 100);
}

// The bug 604a2f3 fixed, which 5,000 seeds of the protocol simulator did not find: a snapshot
// during a sync that had started a segment removed the only durable copy of the promise.
// Rarer since snapshots are taken off the loop: a compaction comes when a snapshot is done, less
// often right after a sync that started a segment (6 of 6,000 seeds, the first at 1131; 3 of
// 1,000 when snapshots were inline).
TEST(CoreSim, APromiseLeftToAnUnfinishedSyncAcrossACompactionIsCaught) {
  expect_caught("unsynced-checkpoint", "vouching", 3000);
}

// The disk and the protocol: durability and agreement bugs surface as the checks say.
TEST(CoreSim, SyncsThatNeverReachTheDiskAreCaught) {
  expect_caught("skip-fdatasync", "vouching", 20);
}

TEST(CoreSim, APromiseThatIsNotDurableIsCaught) {
  expect_caught("no-persist-promise", "vouching", 20);
}

TEST(CoreSim, QuorumsThatNeedNotIntersectAreCaughtByEveryCheck) {
  expect_caught("minority-quorum", "agreement", 20);
  // (Since leaders bind incarnations in the log the first linearizability violation moved past
  // seed 300; the search stays about a second.)
  expect_caught("minority-quorum", "linearizable", 1000, without_apply_checks());
  expect_caught("minority-quorum", "agreement", 300, without_apply_checks());  // end states
}

TEST(CoreSim, ALeaderThatIgnoresPromisedValuesIsCaught) {
  expect_caught("ignore-promised-value", "agreement", 20);
  expect_caught("ignore-promised-value", "linearizable", 100, without_apply_checks());
}

TEST(CoreSim, ALeaderThatSkipsPhaseOneIsCaught) {
  expect_caught("leader-skip-phase1", "agreement", 50);
}

// Rare in short runs (about 1 seed in 1,000); which seeds find it moves with anything that
// changes what the simulated disks hold (the key-value snapshot's version 2 moved the first from
// below 1,000 to 2302).
TEST(CoreSim, ALeaderThatServesReadsAloneIsCaught) {
  // Full-length runs: an acceptor that answers a retransmitted Accept without a second log
  // record (and so without waiting for another sync) leaves a cut-off leader fewer chances in a
  // short run to serve a stale read before it steps down.
  // It trips about one seed in 1,000 (first at 1860): too long a search for the sanitizer build,
  // which runs a seed ~25 times slower.
#ifdef NDEBUG
  CoreOptions o;
  expect_caught("read-without-quorum", "reads", 2500, o);
#else
  GTEST_SKIP() << "searched in the release build only";
#endif
}

// An acceptor that accepts below its promise keeps a superseded leader in business: the replicas
// never settle on one promise once calm.
TEST(CoreSim, AnAcceptorThatAcceptsBelowItsPromiseFailsLiveness) {
  // A vote below the promise breaks liveness (a superseded leader keeps leading) or, with a
  // quorum of such votes, agreement itself.
  expect_caught("accept-lower-ballot", "liveness|agreement", 300);
}

TEST(CoreSim, APromiseThatHidesItsSnapshotIsCaught) {
  expect_caught("promise-hides-snapshot", "agreement", 100);
}

// Seeds whose replicas let go of chosen values at once (CoreOptions::log_memory_bytes_for) find
// it (first at seed 100).
TEST(CoreSim, APromiseThatHidesWhatItLetGoOfIsCaught) {
  expect_caught("promise-hides-released", "agreement", 300);
}

// Review finding 1: a leader learned slots from catch-up replies and announced them in its own
// ballot. Random schedules do not reach the agreement violation it can cause (0 of 2,000 seeds
// with 5 replicas), but the leader-learning check sees the defect itself: 5 of the first 1,000
// full-length seeds, the first at 70 (`synod sim --replicas 5 --bug leader-learns-from-catchup
// --seeds 1-1000 --keep-going` finds them again). The same seeds run clean without the bug.
TEST(CoreSim, ALeaderThatLearnsFromCatchupIsCaught) {
  CoreOptions o;
  o.replicas = 5;
  CoreOptions planted = o;
  ASSERT_TRUE(enable_core_bug("leader-learns-from-catchup", planted));
  int caught = 0;
  for (uint64_t seed = 61; seed <= 70; ++seed) {
    const CoreResult clean = run_core_seed(o, seed);
    EXPECT_FALSE(clean.violation) << describe(clean);
    const CoreResult r = run_core_seed(planted, seed);
    if (!r.violation) continue;
    EXPECT_EQ(r.violation->rfind("leader learning: ", 0), 0u) << describe(r);
    ++caught;
  }
  EXPECT_GE(caught, 1);
}

TEST(CoreSim, UnknownBugNamesAreRefused) {
  CoreOptions o;
  EXPECT_FALSE(enable_core_bug("no-such-bug", o));
  EXPECT_TRUE(enable_core_bug("unsynced-checkpoint", o));
  EXPECT_EQ(o.replica_bugs, std::vector<std::string>{"unsynced-checkpoint"});
  // The router runs in every simulated replica, so its bugs are this simulator's too.
  EXPECT_TRUE(enable_core_bug("stale-follower-reads", o));
  EXPECT_EQ(o.router_bug, "stale-follower-reads");
}

}  // namespace
}  // namespace synod::sim
