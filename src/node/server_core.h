// One replica of the key-value service, independent of sockets, threads and clocks: it owns the
// protocol core (paxos::Replica), the replica's storage (log + snapshots) and the key-value state
// machine, and keeps the order of effects that ready.h demands — persist and sync, then send,
// then install/apply and answer clients. The network server (an event loop with sockets and
// timers) drives it; tests drive several of them in one thread.
//
// Writes go through the log: the leader stamps each command with its cluster time (below), and
// the client's reply is the state machine's reply when the command is
// applied. Errors say whether the command may have taken effect:
//   TRYAGAIN ...  definitely not applied (not the leader, or never reached an acceptor);
//   UNKNOWN ...   may have been applied, or may be later: retry with the same client id and
//                 sequence number, which the state machine applies at most once.
//
// Reads do not go through the log: the leader asks the core for a read index (a slot that covers
// every write acknowledged before the read arrived, with its leadership confirmed by a quorum),
// and serves the read from the state machine once it has applied through that slot. A read that
// cannot be served that way is answered TRYAGAIN (it had no effect, so retrying is always safe).
//
// Time (docs/core.md, "Time"). Key expiry and lock validity use the *cluster clock*, never a
// wall clock after the cluster's birth. A leader's cluster time is base + (its monotonic clock
// now - its monotonic clock when it started leading). The base, fixed when it starts leading,
// is the time of the highest ballot that an acceptor of its promise quorum saw (a cut-off
// leader's clock, run on at its minority, does not count once a higher ballot's does), at
// least one horizon step below a horizon of that or a higher ballot that an acceptor of the
// quorum recovered from its disk — and the new leader serves nothing until its time passes
// that horizon. If no time is reported at all, the store's log clock; at birth (all of these
// 0) the base is the first leader's wall clock,
// only so that absolute times look like Unix time. Commands are stamped with cluster time;
// reads are served at the cluster time when they arrived (or the store's log clock, if later).
// The core carries the time in every Accept and heartbeat (paxos::Replica::set_time_ms), and
// every acceptor keeps a durable horizon above what it saw, so no later leader starts below a
// time an earlier one served at. Guarantee, given every replica's monotonic clock runs at a
// rate within kClockDriftBound of real time: cluster time never goes backwards for reads or
// writes across leaders, and it advances at most (1 + kClockDriftBound) times as fast as real
// time (a failover pauses it, and never adds to it).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kv/store.h"
#include "node/clock_faults.h"
#include "paxos/replica.h"
#include "storage/replica_storage.h"

namespace synod::node {

// The refusal of a command whose encoded size (kv::encoded_command_bytes) is `bytes`, above
// `max_command_bytes`: it was not applied, and retrying cannot help.
kv::Reply too_large(size_t max_command_bytes, size_t bytes);
// The bound on the rate error of every replica's monotonic clock (paxos/config.h).
inline constexpr double kClockDriftBound = paxos::kClockDriftBound;

class ServerCore {
 public:
  // The replica's clocks, in ms. node::Server uses steady_clock and system_clock; the simulator
  // gives each replica its own. Unset, both read 0 (for tests that ignore time).
  struct Clock {
    std::function<uint64_t()> monotonic_ms;  // never goes backwards; rate within the bound
    std::function<uint64_t()> wall_ms;       // read when a cluster is born (and by planted bugs)
  };
  // Each replica snapshots after its own multiple of the intervals (Options::snapshot_every,
  // snapshot_log_bytes): 8 to 12 eighths by its id (n1 8, n2 9, ... n5 12, n6 8), so that
  // replicas do not fork at once. Saturates: a flag near 2^64 means "practically never", not a
  // product that wraps to a small interval.
  static uint64_t staggered_interval(NodeId self, uint64_t interval) {
    const uint64_t eighths = 8 + (self.value + 4) % 5;
    return interval > UINT64_MAX / eighths ? UINT64_MAX : interval * eighths / 8;
  }

  struct Options {
    Clock clock;
    paxos::Config config;
    storage::LogOptions log;
    uint64_t snapshot_every = 10'000;  // applied slots between snapshots (0: none by slots)
    // Also snapshot once the commands applied since the last snapshot add up to this many bytes
    // and to at least the last snapshot's size (0: by slots only). The replica holds every
    // value since its last snapshot in memory (chosen, and as its acceptor accepted them), and
    // batched slots can hold hundreds of commands each: counted in slots alone, that grew to
    // several times the state. The state's size as a floor keeps a large state from being
    // snapshotted over and over for little log (as Redis rewrites its AOF once it doubled).
    uint64_t snapshot_log_bytes = 16 << 20;
    // The state machine's exactly-once sessions: their bound (the same on every replica) and the
    // planted bug sessions-evicted-by-clock.
    kv::Store::Options store;
    // Planted bug, for the whole-replica simulator: requests leave before the sync even when
    // the ballot they carry is not yet durable.
    bool bug_early_undurable_ballot = false;
    // Planted bug: this replica's acceptor answers its own proposer before the sync.
    bool bug_self_answers_early = false;
    // Planted bug: the log is compacted when a snapshot starts, before its file is durable.
    bool bug_compact_before_snapshot_durable = false;
    // Planted bug: a write is answered OK as soon as the leader queues it, before it is chosen.
    bool bug_ack_on_propose = false;
    // Planted bug (the old behaviour): the leader stamps commands with its wall clock.
    bool bug_wall_clock_expiry = false;
    // Planted bug (the old behaviour): reads are served at the serving replica's wall clock.
    bool bug_reads_at_local_clock = false;
    // The leader tells the core its clock while it is still waiting out a recovered horizon, so
    // its Accepts give acceptors a time for its ballot below times served in lower ballots.
    bool bug_time_told_before_ready = false;
    // config.incarnation becomes the data directory's incarnation, folded to 64 bits (fold64),
    // so that leaders bind it in the configuration. The server's; a driver that sets it must set
    // every delivered Envelope's incarnation from the sender's directory alike (the server's
    // peer transport does, from the connection's Hello), or bound members are not heard.
    bool incarnation_from_identity = false;
    // Planted bug wiped-replica-votes, the server's half (set with config.bugs'): a peer whose
    // data directory was wiped is taken under its old node id (the identity check takes any
    // incarnation), so it votes having forgotten its promises. The server's pinned-incarnation
    // check reads it; so may a simulator's.
    bool bug_wiped_replica_votes = false;
  };
  // Turns on the planted bug `name` (src/base/planted_bugs.h) of the protocol core or of what
  // the replica adds around it (log, store, this class), wherever its switch lives in `options`;
  // false if `name` is no such bug. The server (--planted-bug) and the simulator both use it.
  static bool plant_bug(std::string_view name, Options& options);

  using Done = std::function<void(const kv::Reply&)>;

  // Recovers from `fs` (refusing corrupt storage with a clear Status) and starts the replica.
  static Result<std::unique_ptr<ServerCore>> open(storage::FileSystem& fs, Options options,
                                                  uint64_t seed);

  void tick() {
    tell_time();
    replica_->tick();
  }
  void receive(const paxos::Envelope& envelope) { replica_->step(envelope); }
  // A client's write, stamped with this leader's cluster time. `done` runs exactly once: with
  // the state machine's reply once applied, or with an error.
  void submit(uint64_t client, uint64_t seq, std::vector<std::string> args, Done done);

  // A configuration change asked for by an operator (MEMBER ADD-LEARNER | PROMOTE | REMOVE |
  // SWAP, docs/operations.md), which submit() hands here: on the leader it is checked with
  // paxos::apply_change and proposed (paxos::Replica::propose_membership); `done` runs with
  // "OK epoch N" once chosen (ADD-LEARNER: the new member's id), or with an error. PROMOTE and
  // SWAP wait for the learner to have caught up: refused with TRYAGAIN until it reported a
  // chosen prefix within kCaughtUpSlots of the leader's. A change already made answers OK again
  // (a retry of the same request), so the router may retry it like any write.
  static constexpr Slot kCaughtUpSlots = 64;
  static bool is_member_change(const std::vector<std::string>& args);

  // A linearizable read (GET, MGET, ...; see kv::Store::read) at the cluster time when it
  // arrived, for expiry. `done` runs exactly once: with the store's reply once the read is
  // confirmed and applied, or with a TRYAGAIN error (not the leader, overloaded, or leadership
  // changed before it was confirmed).
  void read(std::vector<std::string> args, Done done);

  // A read index for a follower's reads: `done(true, slot, time_ms)` once this replica's
  // leadership is confirmed by a quorum and the chosen prefix reaches `slot`, which covers every
  // write acknowledged before this call; `time_ms` is the cluster time at this call, at which
  // the follower serves the reads. `done(false, 0, 0)` if it does not lead or cannot confirm it.
  // Exactly once. The follower serves its reads once it has applied through `slot`.
  using IndexDone = std::function<void(bool ok, Slot slot, uint64_t time_ms)>;
  void read_index(IndexDone done);
  // Makes sure `peer` learns that the prefix through `slot` is chosen, if this replica leads
  // (see paxos::Replica::share_commit).
  void share_commit(NodeId peer, Slot slot) {
    tell_time();
    replica_->share_commit(peer, slot);
  }

  // Leader transfer (paxos::Replica::transfer_leadership, docs/core.md "Leader transfer"): on a
  // leader, hands leadership to `target`, a voter of the current configuration; writes asked for
  // meanwhile wait, and are answered TRYAGAIN (not applied) if the handover happens. kQueued:
  // started (watch replica().role()); kNotLeader, kInvalid (not another voter) or kStale (a
  // configuration change in progress: ask again) otherwise. The caller flushes, as after any
  // input. For the admin command and the server's SIGTERM.
  paxos::ProposeStatus transfer_leadership(NodeId target) {
    tell_time();
    return replica_->transfer_leadership(target);
  }
  // On a leader, the voter other than itself that reported the highest chosen prefix in its
  // ballot (the lowest id among equals): the best target for a handover. kNoNode elsewhere, or
  // if it is the only voter.
  NodeId most_caught_up_voter() const;
  kv::Reply transfer_reply(NodeId target, paxos::ProposeStatus status) const;
  void hand_over_first(NodeId self, const Done& done);
  // The cluster time (see the top of this file): on a leader its clock; elsewhere the highest
  // cluster time this replica knows of (its own as an earlier leader, what its acceptor saw, the
  // log clock). Never decreases.
  uint64_t cluster_time_ms();

  // Runs the core's effects in order; returns the messages to send (all durable-safe). An
  // error means storage failed: the replica must stop (what it promised may not be on disk).
  Result<std::vector<paxos::Envelope>> flush();

  // If set, a proposer's requests to peers (Prepare, Accept and heartbeats, catch-up and snapshot
  // requests) are handed to `send` before the sync instead of returned by flush(): they vouch for
  // nothing this replica's acceptor stores, so the leader's own fdatasync can run while its
  // peers receive and persist (as a Raft leader appends to its followers before its own disk).
  // Acceptor answers (Promise, Accepted, Reject) still leave only after the sync, and so does
  // everything in a batch that raises this replica's promise (its own ballot is not yet durable).
  using Send = std::function<void(const paxos::Envelope&)>;
  void set_early_send(Send send) { early_send_ = std::move(send); }

  // If set, the fdatasync runs off the caller's thread: `run(fdatasync, done)` must run
  // `fdatasync` anywhere and then `done` with its status on the caller's thread, after which the
  // caller calls flush() again. Meanwhile flush() keeps taking the core's effects: new log records
  // are buffered for the next sync, messages that vouch for acceptor state wait (in order) until
  // a sync covers what they vouch for, and chosen commands are applied and answered at once — a
  // command is chosen only by acceptors whose answers left after their own sync (this replica's
  // included), so it does not wait for this replica's disk. Without it, flush() syncs inline.
  using SyncRunner =
      std::function<void(std::function<Status()> fdatasync, std::function<void(Status)> done)>;
  void set_sync_runner(SyncRunner run) { sync_runner_ = std::move(run); }
  bool sync_in_flight() const { return storage_->sync_in_flight(); }

  // What a snapshot's work made: the synced partial file of the snapshot through `slot`
  // (storage/snapshot_store.h), the size and snapshot_digest of the state machine's encoding in
  // it, and how long the encoding and the writing (and syncing) took.
  struct SnapshotMade {
    Slot slot = 0;
    uint64_t bytes = 0;
    uint64_t digest = 0;
    uint64_t encode_ms = 0;
    uint64_t write_ms = 0;
  };
  // It runs in a forked child of a multi-threaded process: it may allocate and make system calls,
  // and must take no lock another thread may have held at the fork (no logging, no asserts that
  // log): a child that blocks forever is killed at its deadline (node/snapshot_child.h).
  using SnapshotWork = std::function<Result<SnapshotMade>()>;
  // If set, snapshots are taken off the caller's thread. `run(work, done)` must run `work` on an
  // image of this object as it is at the call — the server forks, and the child runs it on its
  // copy-on-write memory (node/snapshot_child.h) — and later call `done` with its result on the
  // caller's thread; a runner that cannot take an image must run `work` before it returns.
  // Meanwhile the replica goes on: commands are applied and answered, a peer's snapshot may be
  // installed. `done` adopts the snapshot (renames its file into place, compacts the log, serves
  // peers from the file), unless a snapshot as new came first. One that failed leaves the replica
  // as it was, and the next is tried snapshot_every slots later. Without a runner, flush()
  // snapshots inline. Either way the log is compacted only once the snapshot file is durable.
  using SnapshotRunner =
      std::function<void(SnapshotWork work, std::function<void(Result<SnapshotMade>)> done)>;
  void set_snapshot_runner(SnapshotRunner run) { snapshot_runner_ = std::move(run); }
  // Where what a snapshot lets the core forget is freed (paxos::Replica::set_disposer).
  void set_disposer(std::function<void(std::unique_ptr<paxos::Replica::Forgotten>)> dispose) {
    replica_->set_disposer(std::move(dispose));
  }
  // Where the state machine's large frees go: FLUSHALL's keyspace, a big collection deleted or
  // overwritten, the whole store a snapshot from a peer replaces (kv::Keyspace::set_disposer).
  void set_garbage_disposer(kv::Keyspace::Disposer dispose) {
    garbage_ = std::move(dispose);
    store_.set_disposer(garbage_);
  }
  bool snapshot_in_flight() const { return snapshot_in_flight_; }

  // For the simulator and tests: sees every message as the core lets it go — to a peer, or back
  // to this replica's own proposer or acceptor — and every slot as it is applied. For the
  // server's logs and metrics (node/telemetry.h): what the core reported (elections, step-downs),
  // snapshots saved and installed, and each fdatasync started. Called on the caller's thread,
  // inside flush(); none may call back into this object.
  struct Observer {
    virtual ~Observer() = default;
    virtual void released(const paxos::Envelope& /*message*/) {}
    virtual void applied(const paxos::SlotValue& /*entry*/) {}
    virtual void event(const paxos::Event& /*event*/) {}
    // A snapshot was adopted. `encode_ms`: the state machine's encoding; `save_ms`: writing and
    // syncing it (off the caller's thread with a snapshot runner, else on it); `adopt_ms`:
    // renaming it into place and compacting the log, on the caller's thread.
    virtual void snapshot_saved(Slot /*slot*/, size_t /*bytes*/, uint64_t /*encode_ms*/,
                                uint64_t /*save_ms*/, uint64_t /*adopt_ms*/) {}
    // A snapshot failed (and nothing changed), or its file could not be read to serve a peer.
    virtual void snapshot_failed(Slot /*slot*/, const Status& /*status*/) {}
    virtual void snapshot_unreadable(Slot /*slot*/, const Status& /*status*/) {}
    virtual void snapshot_installed(Slot /*slot*/, size_t /*bytes*/) {}
    // A sync began that covers `batches` appended batches (group commit: one fdatasync for all).
    virtual void sync_started(uint64_t /*batches*/) {}
  };
  void set_observer(Observer* observer) { observer_ = observer; }

  // Injected clock faults (tests only; see clock_faults.h): both clocks above are read through
  // them. `args` is a whole `SYNOD.FAULT CLOCK ...` command.
  [[nodiscard]] Status clock_fault(const std::vector<std::string>& args) {
    return clock_faults_.command(args, raw_monotonic_ms());
  }
  const ClockFaults& clock_faults() const { return clock_faults_; }

  const kv::Store& store() const { return store_; }
  // The data directory's identity (storage/identity.h), and whether this start created it.
  const storage::Identity& identity() const { return storage_->identity(); }
  bool identity_created() const { return storage_->identity_created(); }
  Slot applied() const { return applied_; }  // the state machine reflects every slot up to here
  const paxos::Replica& replica() const { return *replica_; }
  const Options& options() const { return options_; }

 private:
  ServerCore(Options options, std::unique_ptr<storage::ReplicaStorage> storage)
      : options_(std::move(options)), storage_(std::move(storage)), store_(options_.store) {}
  Status run(paxos::Ready& ready, std::vector<paxos::Envelope>& out);
  // Hands `messages` to `out`, or back to the core if addressed to this replica.
  void deliver(std::vector<paxos::Envelope>& messages, std::vector<paxos::Envelope>& out);
  // Delivers the held messages that a finished sync made safe.
  void release(std::vector<paxos::Envelope>& out);
  // Starts a sync on the runner if records await one and none is in flight; true if that made
  // more durable at once (nothing was left to sync), so held messages may be released now.
  Result<bool> start_sync();
  void apply(const paxos::SlotValue& entry);
  void submit_member_change(const paxos::CommandId& id, uint64_t time_ms,
                            std::vector<std::string> args, Done done);
  void reply(const paxos::CommandId& id, const kv::Reply& reply);
  // The TRYAGAIN answer of a replica that does not lead; `consequence` ends it ("the command
  // was not applied").
  kv::Reply not_leader(const char* consequence) const;
  void serve_reads();
  // Snapshots (see set_snapshot_runner).
  bool snapshot_due() const;
  void start_snapshot();
  void finish_snapshot(Slot slot, Result<SnapshotMade> made);
  // Reads the bytes of the snapshot through `slot` from its file, to serve peers.
  paxos::SnapshotReader snapshot_reader(Slot slot);
  // Time: the replica's clocks, through the injected faults.
  uint64_t raw_monotonic_ms() const {
    return options_.clock.monotonic_ms ? options_.clock.monotonic_ms() : 0;
  }
  uint64_t monotonic_ms() { return clock_faults_.monotonic_ms(raw_monotonic_ms()); }
  uint64_t wall_ms() const {
    return clock_faults_.wall_ms(options_.clock.wall_ms ? options_.clock.wall_ms() : 0);
  }
  void start_clock(uint64_t monotonic);
  // The time floor rose while this replica leads (new voters' promises after a configuration
  // change): the clock moves up to it, never down.
  void raise_clock(uint64_t monotonic);
  // On a leader: false while its clock is still below a restarted acceptor's horizon.
  bool clock_ready() { return cluster_time_ms() >= ready_at_ms_; }
  // Tells the core the cluster time, if this replica leads (its Accepts carry it).
  void tell_time();
  // Takes note of the time horizons that finished syncs made durable.
  void note_durable_horizon();

  struct WaitingRead {
    std::vector<std::string> args;
    uint64_t now_ms = 0;  // the cluster time when it arrived: the read is served at it
    Done done;
    IndexDone index_done;    // instead of `done`: a follower's read index (see read_index)
    bool confirmed = false;  // the core said ok: serve once applied_ reaches `slot`
    Slot slot = 0;
  };

  Options options_;
  std::unique_ptr<storage::ReplicaStorage> storage_;
  std::unique_ptr<paxos::Replica> replica_;
  kv::Store store_;
  kv::Keyspace::Disposer garbage_;
  Slot applied_ = 0;
  Slot last_snapshot_ = 0;
  uint64_t log_bytes_ = 0;            // command bytes applied since the last snapshot began
  uint64_t last_snapshot_bytes_ = 0;  // the size of the last snapshot saved or installed
  std::map<paxos::CommandId, std::vector<Done>> waiting_;
  Send early_send_;
  SyncRunner sync_runner_;
  SnapshotRunner snapshot_runner_;
  bool snapshot_in_flight_ = false;
  Observer* observer_ = nullptr;
  // Sync bookkeeping, counted in batches that vouch for acceptor state (promise or accepted).
  uint64_t appended_ = 0;       // handed to storage
  uint64_t durable_ = 0;        // of those, covered by a finished sync
  uint64_t promise_epoch_ = 0;  // the newest of them that raised the promise
  Status sync_status_;  // a failed sync, or snapshot adoption, off the loop: the replica must stop
  struct Held {
    uint64_t needs = 0;  // released once durable_ reaches it
    std::vector<paxos::Envelope> messages;
  };
  std::deque<Held> held_;  // in the order the core produced them
  uint64_t next_read_id_ = 0;
  std::map<uint64_t, WaitingRead> reads_;  // by read id, as the core knows them
  ClockFaults clock_faults_;
  // The cluster clock: the leadership (ballot) it was started for, its base and the monotonic
  // clock then, the time a new leader must reach before it serves, and the highest time used.
  Ballot clock_ballot_;
  paxos::Replica::TimeFloor clock_floor_;  // the floor the clock was started or raised from
  uint64_t base_ms_ = 0;
  uint64_t base_monotonic_ms_ = 0;
  uint64_t ready_at_ms_ = 0;
  uint64_t last_ms_ = 0;
  // This replica's acceptor's time horizon, as far as a finished sync covers it: a read is
  // served only at a time below it (the acceptor counted towards confirming it, so must not
  // forget in a crash that it saw that time). Horizons appended, by the batch that must be
  // durable first, await their sync in `horizons_`.
  paxos::TimeHorizon durable_horizon_;
  std::deque<std::pair<uint64_t, paxos::TimeHorizon>> horizons_;
};

}  // namespace synod::node
