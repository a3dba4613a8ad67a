// A Multi-Paxos replica: acceptor, proposer (leader) and learner for every slot of the log,
// composed from the single-decree rules in acceptor.h, proposer.h and learner.h.
//
// Pure and deterministic: no I/O, no threads, no clock, no global randomness. Inputs are tick()
// (logical time), step(message) and propose(command); every effect comes out of take_ready() (see
// ready.h for the order the driver must keep). The same object runs in production, in the
// simulator and under the model checker.
//
// Leadership. A follower that hears no leader for a randomized number of ticks first asks every
// member whether it would promise (PreVote); with grants from a phase-1 quorum it becomes a
// candidate: it picks a ballot above every one it has seen and runs phase 1 once for all slots
// from its first unchosen one. With promises from a phase-1 quorum it becomes leader,
// re-proposes in its own ballot the highest-ballot value reported for each slot (P2c), fills the
// remaining gaps with no-ops, and then runs only phase 2, pipelined (at most max_inflight_slots
// unchosen slots) and batched (many commands per slot). A leader that learns of a higher ballot,
// or stops hearing from a phase-2 quorum, steps down and reports every proposal it held as
// failed (never sent to an acceptor) or unknown (it may yet be chosen).
//
// Learning. The leader learns a slot is chosen from phase-2 quorum of Accepted answers, and tells
// the others its chosen prefix in every Accept and heartbeat. A follower that accepted a slot in
// the leader's ballot knows that value is the chosen one; for any other slot below the leader's
// prefix it asks for the chosen value (catch-up).
//
// Reads (read index, as in the Raft thesis §6.4). read_index() fixes the read's index — the
// highest slot this leader has assigned or re-proposed, at least its chosen prefix — and waits
// until a phase-2 quorum has answered an Accept sent after the read arrived, in this leader's
// ballot (which proves no higher ballot had completed phase 1 by then), and until the chosen
// prefix reaches the index. docs/core.md argues why every acknowledged write is covered.
#pragma once

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "base/rng.h"
#include "paxos/config.h"
#include "paxos/ready.h"

namespace synod::paxos {

enum class Role { kFollower, kCandidate, kLeader };
const char* to_string(Role role);

enum class ProposeStatus {
  kQueued,     // the outcome will come in a later Ready
  kNotLeader,  // definitely not proposed; try leader() if known
  kBusy,       // definitely not proposed; the queue is full
  kTooLarge,   // definitely not proposed; the payload exceeds Config::max_command_bytes
  kStale,      // definitely not proposed; a configuration change's epoch is not the next one,
               // or another change is in progress (read membership() and ask again)
  kInvalid,    // definitely not proposed; the configuration fails verify_membership()
  kUnheard,    // definitely not proposed; the change makes a voter of a member whose incarnation
               // this leader has not seen yet (ask again once it has heard from it)
};

enum class ReadStatus {
  kQueued,     // the ReadResult will come in a later Ready
  kNotLeader,  // not served; try leader() if known
  kBusy,       // not served; too many reads are waiting (Config::max_pending_reads)
};

class Replica {
 public:
  // Starts (or restarts after a crash) from `durable`. `seed` drives the randomized timeouts.
  Replica(Config config, const DurableState& durable, uint64_t seed);

  void tick();
  void step(const Envelope& envelope);
  ProposeStatus propose(Command command);
  // Proposes `next` as the configuration after the current one (docs/core.md, "Membership"):
  // its epoch must be membership().epoch + 1, no other change may be in progress, and it must pass
  // verify_membership(). `request` is the id (and record) of the client request that asked; its
  // outcome comes like a command's. Slots after it are proposed only once it is chosen. It binds
  // every member's incarnation the leader has seen (see bind_incarnations).
  ProposeStatus propose_membership(Command request, Membership next);
  // A linearizable read, without writing to the log. On kQueued exactly one ReadResult with this
  // `read_id` (the caller's, not interpreted here) comes in a later Ready: ok with the slot the
  // state machine must have applied before serving the read, or not ok. Reads requested between
  // two take_ready() calls share one confirmation round.
  ReadStatus read_index(uint64_t read_id);
  // The driver's monotonic clock, in ms, for lease reads only (Config::read_lease_ms; nothing
  // else reads it). With leases on, the driver sets it before every take_ready(), read after every
  // read_index() call that Ready will answer: a lease that held at a reading taken before a read
  // arrived says nothing about that read. Readings below an earlier one are ignored.
  void set_clock_ms(uint64_t now_ms) { clock_ms_ = std::max(clock_ms_, now_ms); }
  // Whether this leader serves reads by its lease now, with no confirmation round (as of the last
  // set_clock_ms and the answers received).
  bool lease_holds() const;
  // On a leader, a heartbeat to `peer` now (Accept with no entries, carrying the chosen prefix)
  // unless a message already sent to it carried a prefix reaching `slot`: a follower that was
  // given read index `slot` learns at once that the prefix is chosen, instead of at the next
  // heartbeat or proposal. Elsewhere, nothing.
  void share_commit(NodeId peer, Slot slot);

  // Leader transfer (docs/core.md, "Leader transfer"): on a leader, hands leadership to `target`,
  // a voter of the current configuration. From now on the leader cuts no new slots (commands it
  // is asked for wait in its queue: stepping down reports them kFailed, definitely not proposed,
  // with the target as the hint; if the transfer is given up they are proposed as usual). Once
  // `target` reported that it accepted (or has chosen) every slot this leader proposed, the leader
  // sends it a TimeoutNow: the target starts phase 1 at once, without PreVote, and its Prepares
  // say `transfer` so that followers still hearing this leader answer. If no higher ballot has
  // deposed this leader within election_timeout_min_ticks it gives the transfer up and goes on
  // leading. Safety never depends on any of it: the target runs all of phase 1.
  // kQueued: started (a second call for the same target is a no-op; another target restarts
  // it). kNotLeader: not a leader. kInvalid: `target` is this replica or not a voter of the
  // current configuration. kStale: the leader is still recovering (phase 1 after a change) or a
  // configuration change is in progress: ask again once membership_change_pending() is false.
  ProposeStatus transfer_leadership(NodeId target);
  // The target of the transfer in progress (kNoNode: none).
  NodeId transfer_target() const { return transfer_target_; }
  // Whether the TimeoutNow of the transfer in progress has been sent (the target caught up).
  bool transfer_handed_over() const { return transfer_sent_; }

  // The driver snapshotted its state machine through slot `upto` (at most what it was handed)
  // and made the snapshot durable: the core forgets chosen values and accepted entries up to
  // there, and serves the snapshot to peers that need those slots.
  void compact(Slot upto, std::shared_ptr<const std::string> data);
  // The same, with the snapshot's bytes left where they are (its file): the core reads them from
  // `bytes` when a peer needs them, and holds none.
  void compact(Slot upto, SnapshotBytes bytes);
  // The newest snapshot (a recovered or installed one, whose bytes the core holds) is durable
  // where `read` reads it: the core lets go of its bytes and reads them from there.
  void serve_snapshot_from(SnapshotReader read);
  // What compact() forgets: the chosen values and accepted entries of thousands of slots, whose
  // freeing took tens of ms of the server's loop (and what the replica lets go of, when that is a
  // MiB or more: released()). A driver may have them freed elsewhere (the server, on a thread of
  // its own); unset, they are freed where they are let go of.
  struct Forgotten {
    std::map<Slot, Value> chosen;
    std::map<Slot, Proposal> accepted;
  };
  void set_disposer(std::function<void(std::unique_ptr<Forgotten>)> dispose) {
    dispose_ = std::move(dispose);
  }
  // Where chosen values are read back once let go of (Config::log_memory_bytes); unset, every
  // chosen value stays in memory until a snapshot covers it.
  void set_chosen_log(ChosenLog log) { chosen_log_ = std::move(log); }
  // Chosen values are let go of up to here (at most handed out; above the snapshot, if any):
  // they are read back from the ChosenLog, and promises report these slots as compacted.
  Slot released() const { return released_; }
  // Bytes of the chosen values held above released() (encoded, as in messages).
  size_t chosen_bytes_held() const { return held_bytes_; }
  // The configuration after `slot` (at most commit()), which a snapshot through it records.
  MembershipRef membership_at(Slot slot) const;

  // Time (docs/core.md, "Time"). The core has no clock: the driver keeps the cluster clock and
  // tells the core its time before tick() and take_ready(). A leader carries the time it was told
  // in every Accept and heartbeat; an acceptor that accepts one remembers the time of the highest
  // ballot it saw (the highest such) and keeps a durable horizon above every time it saw
  // (PersistBatch::time_horizon_ms), so that its answers never vouch for a time its disk would
  // forget. A leader's own acceptor sees its time at once.
  void set_time_ms(uint64_t time_ms);
  struct TimeFloor {
    Ballot ballot;         // the highest ballot whose time an acceptor of the quorum saw
    uint64_t seen_ms = 0;  // the highest time in that ballot one of them saw
    TimeHorizon horizon;   // the newest horizon one of them recovered from its disk
    bool operator==(const TimeFloor&) const = default;
  };
  // What the promise quorum of this replica's newest candidacy reported. It rises while it leads
  // when a configuration change brings promises from new voters (docs/core.md, "Membership"):
  // every time a read or write was served at before this ballot is at most seen_ms, or, if one
  // of them restarted since, below horizon.ms (when horizon.ballot is at least ballot).
  const TimeFloor& time_floor() const { return time_floor_; }
  uint64_t time_seen_ms() const { return time_seen_ms_; }  // the acceptor's, since it started

  // Everything produced since the last call. Commands proposed since then are cut into slots
  // here, so commands that arrive together are batched together.
  Ready take_ready();

  // For the model checker (src/check, docs/model-checker.md), which abstracts time away: it
  // fires any one timer at any moment instead of counting ticks, picks the outcome of each random
  // choice itself, and deduplicates states by their encoding. Production never calls these.
  enum class Timer : uint8_t {
    kElection,     // a follower or candidate starts phase 1
    kHeartbeat,    // a leader sends its chosen prefix, and retransmits nothing
    kRetransmit,   // ... and every unanswered Accept
    kQuorumCheck,  // a leader that no phase-2 quorum answered steps down (and one that is
                   // handing over gives the transfer up)
    kCatchup,      // a catch-up or snapshot request is sent again
  };
  // Whether fire_timer(timer) can do anything in this role.
  bool timer_armed(Timer timer) const;
  // Makes `timer` due and every other timer not, then ticks once.
  void fire_timer(Timer timer);
  void reseed(uint64_t seed) { rng_ = Rng(seed); }
  // Whom broadcasts go to, ascending (itself included): a catch-up retry with no leader to ask
  // picks one of them at random, which the model checker enumerates.
  const std::vector<NodeId>& peers() const { return peers_; }
  // Leader stickiness (docs/core.md, "PreVote and leader stickiness"): whether this follower
  // accepted a leader's Accept within the last election_timeout_min_ticks, and so refuses
  // pre-votes and ignores Prepares of higher ballots (not marked transfer) from other nodes.
  bool hears_leader() const;
  // Whether it ignores other replicas' Prepares of higher ballots: it hears a leader, or, with
  // lease reads on, it started less than election_timeout_min_ticks ago.
  bool keeps_candidates_out() const;
  // For the model checker: the minimum election timeout passes with no Accept from a leader (and,
  // with lease reads on, since the replica started).
  void forget_leader();
  // Appends every field that can influence a future step, except the timers' counters and the
  // random generator (which fire_timer() and reseed() override): two replicas with equal
  // encodings (and equal configurations) behave the same from here on.
  void encode_state(std::string& out) const;
  bool catchup_outstanding() const { return catchup_outstanding_; }
  // How many times the retry timer has sent an unanswered catch-up request again (for the
  // simulator's catch-up storm check; nothing in the protocol reads it).
  uint64_t catchup_retries() const { return catchup_retries_; }

  NodeId id() const { return config_.self; }
  // The configuration that governs the first slot not chosen yet (null: a replica that joined
  // has not learned one yet).
  const MembershipRef& membership() const { return membership_; }
  // Whether a configuration change is proposed and not chosen yet (on a leader).
  bool membership_change_pending() const { return pending_config_slot_ != 0; }
  Role role() const { return role_; }
  const Ballot& ballot() const { return ballot_; }      // own ballot as candidate or leader
  const Ballot& promised() const { return promised_; }  // the acceptor's promise
  // The highest round this replica took seriously (plausible_round): its next ballot is above.
  uint64_t highest_round_seen() const { return highest_round_seen_; }
  NodeId leader() const { return leader_; }  // best guess, may be stale or none
  Slot commit() const { return commit_; }    // every slot up to here is chosen
  const std::map<Slot, Value>& chosen() const { return chosen_; }
  const std::map<Slot, Proposal>& accepted() const { return accepted_; }
  Slot snapshot_slot() const { return snapshot_.slot; }
  // On a leader, the chosen prefix `peer` last reported in this ballot (0 if none yet): how far
  // it lags, for metrics. Nothing in the protocol reads it.
  Slot peer_commit(NodeId peer) const {
    auto it = peer_commit_.find(peer);
    return it == peer_commit_.end() ? 0 : it->second;
  }

 private:
  struct InFlight {
    Value value;
    NodeSet voters;
    uint32_t ticks_since_sent = 0;
    size_t bytes = 0;  // encoded_bytes(value)
    // The quorum system of the configuration that governs the slot (the current one, except
    // under the planted bug reconfig_without_overlap).
    std::shared_ptr<const QuorumSystem> quorum;
  };

  // Acceptor.
  void on_prepare(NodeId from, const PrepareMsg& msg);
  void on_accept(NodeId from, const AcceptMsg& msg);
  void raise_promise(const Ballot& ballot);
  void see_time(const Ballot& ballot, uint64_t time_ms);
  // Proposer / leader.
  void start_prevote();
  void on_prevote(NodeId from, const PreVoteMsg& msg);
  void on_prevote_reply(NodeId from, const PreVoteReplyMsg& msg);
  // `transfer`: asked by the leader's TimeoutNow; the Prepares say so (see PrepareMsg).
  void start_election(bool transfer = false, const Ballot& transfer_from = {});
  void on_timeout_now(NodeId from, const TimeoutNowMsg& msg);
  // On a leader handing over: sends the TimeoutNow once the target has every slot proposed.
  void maybe_hand_over();
  // Notes that the target accepted `slots` and has chosen every slot up to `commit`.
  void note_transfer_progress(Slot commit, const std::vector<Slot>& slots);
  void end_transfer();
  void on_promise(NodeId from, const PromiseMsg& msg);
  // `skipped_phase1`: only under the planted bugs that skip phase 1.
  void become_leader(bool skipped_phase1 = false);
  void on_accepted(NodeId from, const AcceptedMsg& msg);
  void on_reject(const RejectMsg& msg);
  void leader_tick();
  void propose_slots(std::vector<SlotValue> entries);
  // Membership.
  void adopt_membership(MembershipRef membership, Slot first_slot);
  void on_new_membership();
  bool knows(NodeId peer) const;
  bool may_campaign() const;
  bool reads_wait() const;
  void ask_back(NodeId from, Slot their_commit);
  bool votes() const;
  Slot vote_floor() const;
  void note_members(const Membership& m);
  // Proposes a configuration change at the next slot (after the queued commands); its slot.
  Slot propose_change(Value value);
  // A leader re-proposes what phase 1 reported (held_), up to the first configuration change.
  void propose_held();
  void ask_missing_promises();
  void bind_incarnations();
  bool bind_seen(Membership& next) const;  // binds the incarnations seen; whether any was new
  void flush_queue();
  size_t inflight_bytes() const;
  // Whether one more entry of `entry_bytes` goes into a message that holds `count` entries of
  // `used_bytes` so far: within max_entries_per_message and max_message_bytes. The first entry
  // always goes in (the constructor checked that any one slot's value fits).
  bool fits_message(size_t count, size_t used_bytes, size_t entry_bytes) const;
  // A candidate or leader becomes a follower, reporting `why` (and the higher ballot `seen`).
  void step_down(StepDownReason why, const Ballot& seen = {});
  // Reports an event of this replica's own ballot; the caller may fill in the rest.
  Event& note(Event::Kind kind, Slot slot);
  // Reads.
  bool recovering() const;
  static constexpr Slot kIndexPending = ~Slot{0};
  void start_read_round();
  // Notes that read round read_round_ is sent now (for the lease), and the lease its confirmed
  // rounds give.
  void note_round_sent();
  void refresh_lease();
  void serve_reads();
  uint64_t confirmed_read_round() const;
  // Learner.
  void learn(Slot slot, const Value& value);
  void learn_from_leader(const Ballot& ballot, Slot leader_commit);
  void advance_commit();
  void on_catchup_request(NodeId from, const CatchupRequestMsg& msg);
  void on_catchup_reply(const CatchupReplyMsg& msg);
  void request_catchup(bool retry, NodeId asker = kNoNode);
  uint32_t catchup_interval() const;  // ticks before an unanswered catch-up request is re-sent
  bool may_catch_up() const;
  void send_snapshot_chunk(NodeId to, uint64_t offset);
  // Forgets chosen values, accepted entries and configurations that the snapshot through `upto`
  // makes unnecessary.
  void forget_through(Slot upto);
  void count_held_bytes();
  // The chosen value of `slot` if this replica knows it: held, or let go of and read back.
  std::optional<Value> chosen_value(Slot slot) const;
  void release_chosen();
  // Chosen slots whose values this replica no longer holds: a snapshot's, or let go of.
  Slot forgotten_through() const { return std::max(snapshot_.slot, released_); }
  void on_snapshot_request(NodeId from, const SnapshotRequestMsg& msg);
  void on_snapshot_chunk(NodeId from, const SnapshotChunkMsg& msg);
  // `digest`: its snapshot_digest (checked on arrival).
  void install_snapshot(SnapshotRef snapshot, uint64_t digest);

  void merge_promise(const PromiseMsg& msg);
  void send(NodeId to, Message message);
  void broadcast(const Message& message);
  void notice_ballot(const Ballot& ballot);
  void reset_election_timer();

  Config config_;
  Rng rng_;
  Role role_ = Role::kFollower;

  // Configuration: the one governing commit_ + 1, its quorum system, and every one that governs
  // a slot above the snapshot, by the first slot it governs (compact() needs the one at its slot).
  MembershipRef membership_;
  std::shared_ptr<const QuorumSystem> quorum_;
  std::shared_ptr<const QuorumSystem> proposal_quorum_;  // what new proposals are counted with
  std::map<Slot, MembershipRef> configs_;
  // Members of the current configuration and of changes this replica accepted or learned above
  // commit_: their messages are heard before the change is committed here.
  NodeSet also_known_;
  std::vector<NodeId> peers_;  // also_known_'s ids, ascending: whom broadcasts go to
  std::map<NodeId, uint64_t> seen_incarnation_;  // per peer, the incarnation it last spoke as

  // Acceptor state (durable).
  Ballot promised_;
  // Per peer, the highest chosen prefix our Accepts to it carried (sent, not necessarily
  // received: a lost one only delays a follower's read until the next heartbeat).
  std::map<NodeId, Slot> commit_sent_;
  std::map<Slot, Proposal> accepted_;
  // Time, as the acceptor saw it: the highest time it accepted since it started, its newest
  // horizon (handed to persist), and the horizon it recovered from disk when it started.
  Ballot time_ballot_;  // the ballot of the Accept that carried time_seen_ms_
  uint64_t time_seen_ms_ = 0;
  TimeHorizon time_horizon_;
  TimeHorizon recovered_horizon_;

  // Learner state: chosen_ is durable (lazily); commit_ and handed_out_ derive from it.
  std::map<Slot, Value> chosen_;
  Slot commit_ = 0;
  Slot handed_out_ = 0;    // committed entries handed to the driver up to here
  Slot known_commit_ = 0;  // the highest chosen prefix any leader told us of

  // Snapshots: the newest one (everything up to its slot is compacted away), and one being
  // received from a peer, chunk by chunk.
  SnapshotRef snapshot_;
  // Where its bytes are read: in memory (recovered, installed, or handed to compact() whole) until
  // the driver serves them from their file. snapshot_.data stays null.
  SnapshotBytes snapshot_bytes_;
  std::function<void(std::unique_ptr<Forgotten>)> dispose_;
  // Chosen values let go of (see released()), and the encoded bytes of those still held.
  ChosenLog chosen_log_;
  Slot released_ = 0;
  size_t held_bytes_ = 0;
  struct Incoming {
    Slot slot = 0;
    uint64_t total = 0;
    uint64_t digest = 0;
    std::string data;
    NodeId source;
  };
  std::optional<Incoming> incoming_;

  // Proposer state.
  Ballot ballot_;
  uint64_t highest_round_seen_ = 0;
  NodeId leader_;
  Ballot leader_ballot_;
  // A pre-vote round in progress (a follower whose election timer fired): the ballot it asked
  // about and the members that granted it, itself included. Volatile, like every proposer field.
  struct PreVoteRound {
    Ballot ballot;
    NodeSet granted;
  };
  std::optional<PreVoteRound> prevote_;
  // Candidate.
  Slot prepare_from_ = 0;
  NodeSet promised_by_;
  std::map<Slot, Proposal> recovered_;  // highest-ballot proposal reported per slot
  // Promises that came in parts (PromiseMsg::last_slot): per promiser, the first slot of the part
  // expected next, for ballot promise_parts_ballot_ only.
  Ballot promise_parts_ballot_;
  std::map<NodeId, Slot> promise_parts_;
  TimeFloor time_floor_;  // over the promises received
  uint64_t time_ms_ = 0;  // the driver's time: what our Accepts carry
  // Leader.
  Slot next_slot_ = 1;
  // The slot of a configuration change proposed (or known chosen) and not yet committed here: no
  // slot above it is proposed until it is (0: none).
  Slot pending_config_slot_ = 0;
  bool recovery_fence_ = false;  // ... and phase 1 reported it (or it was known chosen)
  // Whether the promises received form a phase-1 quorum of the current configuration; after a
  // change a leader asks the new voters and proposes nothing new until they answer.
  bool phase1_ready_ = false;
  Slot held_top_ = 0;  // the highest slot phase 1 reported; recovered_ keeps what is not proposed
  std::map<Slot, InFlight> inflight_;
  std::deque<Command> queue_;
  size_t queued_bytes_ = 0;            // payload bytes in queue_ (0 whenever queue_ is empty)
  std::map<CommandId, Slot> pending_;  // proposals made here: their slot, 0 while queued
  NodeSet heard_from_;
  uint32_t quorum_check_elapsed_ = 0;
  uint32_t heartbeat_elapsed_ = 0;
  // Reads waiting for confirmation or for the chosen prefix, in request order (so their rounds
  // and indexes never decrease). read_round_ is the newest round sent; it only grows, so an
  // answer's round is never mistaken for an earlier leadership's (those had other ballots too).
  struct PendingRead {
    uint64_t id = 0;
    Slot index = 0;
    uint64_t round = 0;
    uint64_t asked_tick = 0;
  };
  std::deque<PendingRead> reads_;
  uint64_t read_round_ = 0;
  std::map<NodeId, uint64_t> read_round_acked_;  // per peer: the highest round it answered
  std::map<NodeId, Slot> peer_commit_;           // for metrics: see peer_commit()
  uint64_t leader_ticks_ = 0;                    // ticks as leader, for read timeouts
  // Lease reads (Config::read_lease_ms): the driver's clock, the clock when each round not yet
  // superseded by a confirmed one was first sent (at most two: a round starts once the previous
  // one is confirmed), the end of the lease the confirmed rounds give, and whether this ballot
  // sent a TimeoutNow (whose Prepares followers answer however sticky: no lease for the ballot).
  uint64_t clock_ms_ = 0;
  std::map<uint64_t, uint64_t> round_sent_ms_;
  uint64_t lease_until_ms_ = 0;
  bool lease_forfeited_ = false;
  // Ticks since this replica started, up to election_timeout_min_ticks: with leases on, until
  // then it answers no other replica's Prepare of a higher ballot, as it might have answered a
  // lease's round just before it restarted.
  uint32_t boot_ticks_ = 0;
  // Leader transfer in progress (transfer_leadership): its target, the ticks since it began, and
  // whether the TimeoutNow went out (it goes again with every heartbeat, in case it was lost).
  // transfer_covered_: every slot up to it the target reported accepted (in this ballot) or
  // chosen; transfer_acked_: the slots above it that it reported accepted.
  NodeId transfer_target_;
  uint32_t transfer_elapsed_ = 0;
  bool transfer_sent_ = false;
  Slot transfer_covered_ = 0;
  std::set<Slot> transfer_acked_;

  // Timers, in ticks.
  uint32_t election_elapsed_ = 0;
  uint32_t election_timeout_ = 0;
  // Ticks since this replica last accepted an Accept from another node's leadership, up to
  // election_timeout_min_ticks (at which it no longer hears a leader: see hears_leader()).
  uint32_t leader_silence_ticks_ = 0;
  bool catchup_outstanding_ = false;
  uint32_t catchup_elapsed_ = 0;
  // Catch-up requests sent again with no progress since: each doubles the wait before the next,
  // up to 2^kMaxCatchupBackoff retransmit intervals (640 ms at production's defaults).
  uint32_t catchup_misses_ = 0;
  uint64_t catchup_retries_ = 0;
  static constexpr uint32_t kMaxCatchupBackoff = 4;

  Ready ready_;
};

}  // namespace synod::paxos
