// What the core hands its driver, and what the driver hands back after a crash.
//
// The contract (etcd's Ready, Paxos's durability rule): for each Ready, the driver
//   1. makes `persist` durable (in order, after every earlier Ready's persist; `chosen` marks
//      alone need not be synced first: chosen is a fact a quorum of acceptors holds durably,
//      and a replica that loses its marks in a crash learns them again from its peers),
//   2. only then sends `messages` — an acceptor's answer never leaves before the state it vouches
//      for is on disk. (A proposer's requests to peers — Prepare, Accept, catch-up and snapshot
//      requests — vouch for nothing and may leave before step 1 once the ballot they carry is
//      durable, i.e. when no batch raising `promised` is still unsynced; ServerCore does so.)
//      Messages addressed to this replica itself are its own acceptor's answers: deliver them
//      back through step(), also only after step 1;
//   3. installs `install` (a snapshot) into the state machine if set, then applies `committed`
//      in slot order, and delivers `outcomes` and `reads`. This need not wait for step 1's sync:
//      a value is committed only on the votes of acceptors whose answers left after their own
//      sync (this replica's own acceptor included, by rule 2), so it is durable on a quorum
//      already. A driver that syncs on another thread (ServerCore) applies at once, and holds
//      only the messages of step 2 until the sync that covers everything persisted before them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/messages.h"

namespace synod::paxos {

// A snapshot of the state machine: it reflects every chosen slot up to `slot`. The bytes are the
// state machine's own encoding; the core only carries them.
struct SnapshotRef {
  Slot slot = 0;
  std::shared_ptr<const std::string> data;
  // The configuration that governs slot + 1 (every change up to `slot` applied); null only in a
  // snapshot from before configurations were replicated, which leaves the configuration as is.
  MembershipRef membership = nullptr;

  bool operator==(const SnapshotRef& o) const {
    return slot == o.slot && (data == o.data || (data && o.data && *data == *o.data)) &&
           (membership == o.membership ||
            (membership && o.membership && *membership == *o.membership));
  }
};

uint64_t snapshot_digest(std::string_view data);

// Reads `n` bytes from `offset` of a snapshot (in memory, or in its file), to serve them to peers
// chunk by chunk; nullopt if they cannot be read now (the chunk is not sent; the peer asks
// again).
using SnapshotReader = std::function<std::optional<std::string>(uint64_t offset, size_t n)>;
// A snapshot's bytes as the core serves them: their size, their snapshot_digest, their reader.
struct SnapshotBytes {
  uint64_t size = 0;
  uint64_t digest = 0;
  SnapshotReader read;
};

// The driver's durable copy of chosen values (its write-ahead log's chosen records), from which the
// core reads back the values it let go of (Config::log_memory_bytes) to answer catch-up requests.
// `holds(slot)`: the chosen record of `slot` is durable (synced) where `read` finds it, so that a
// replica which lets go of the value, and answers for the slot as chosen from then on, still
// knows it chosen after a crash. `read(slot)`: that slot's chosen value; nullopt if it cannot be
// read now (the reply stops before it; the peer asks again).
struct ChosenLog {
  std::function<bool(Slot)> holds;
  std::function<std::optional<Value>(Slot)> read;
};

// An acceptor's time horizon (docs/core.md, "Time"): every cluster time it saw in Accepts of
// `ballot` is below `ms`. One of a higher ballot replaces it, even with a smaller time: the
// times of lower ballots no longer matter once a higher ballot's leader started its clock.
struct TimeHorizon {
  Ballot ballot;
  uint64_t ms = 0;
  bool operator==(const TimeHorizon&) const = default;
  bool supersedes(const TimeHorizon& other) const {
    return other.ballot < ballot || (ballot == other.ballot && ms > other.ms);
  }
};

struct PersistBatch {
  std::optional<Ballot> promised;       // the acceptor's newest promise
  std::vector<AcceptedEntry> accepted;  // newly accepted proposals; later ones replace earlier
  std::vector<SlotValue> chosen;        // newly learned chosen values
  // A snapshot received from a peer: make it durable (atomically), and drop what it covers.
  std::optional<SnapshotRef> snapshot;
  // The acceptor's new time horizon: every cluster time it has seen (and answered) is below it.
  // Vouched for like a promise: answers carrying a time past the old horizon wait for its sync.
  std::optional<TimeHorizon> time_horizon;

  bool empty() const {
    return !promised && accepted.empty() && chosen.empty() && !snapshot && !time_horizon;
  }
};

// Exactly what a replica's persisted batches made durable; a restart begins from this.
struct DurableState {
  Ballot promised;
  std::map<Slot, Proposal> accepted;  // above the snapshot
  std::map<Slot, Value> chosen;       // above the snapshot
  SnapshotRef snapshot;               // slot 0: none
  TimeHorizon time_horizon;           // the newest time horizon persisted (see supersedes)

  void apply(const PersistBatch& batch);
  // Drops everything at or below the snapshot's slot.
  void compact(const SnapshotRef& snapshot);
  bool operator==(const DurableState&) const = default;
};

enum class Outcome {
  kChosen,   // chosen, in `slot`; applied with this Ready's committed entries, or part of the
             // snapshot it installs
  kFailed,   // definitely not chosen and never will be: no acceptor was ever asked to accept it
  kUnknown,  // may have been chosen or may be chosen later: retry with the same command id
};

const char* to_string(Outcome outcome);

struct ProposalOutcome {
  CommandId id;
  Outcome outcome = Outcome::kFailed;
  Slot slot = 0;       // for kChosen
  NodeId leader_hint;  // who to try next, if known
};

// The answer to Replica::read_index(read_id).
struct ReadResult {
  uint64_t read_id = 0;
  // true: serve the read from the state machine once it has applied through `slot` (every write
  // acknowledged before the read was asked is at or below it). false: the read was not served
  // and will not be (leadership was lost or not confirmed in time): try again, maybe elsewhere.
  bool ok = false;
  Slot slot = 0;
  NodeId leader_hint;  // for !ok: who to try next, if known
};

// What the core did that an operator may want to know (the driver logs and counts them; nothing
// in the protocol depends on them). The core does no I/O, so it reports them here.
enum class StepDownReason : uint8_t {
  kHigherBallot,   // a Prepare or Accept of a higher ballot arrived (another replica campaigns)
  kRejected,       // an acceptor refused: it had promised a higher ballot
  kNoQuorum,       // a leader heard from no phase-2 quorum for an election timeout
  kPeerCompacted,  // a promiser compacted slots this candidate has not learned: catch up first
  kTimedOut,       // a candidate's election timed out: it starts a new one
  kRemoved,        // a configuration without this replica as a voter was chosen
};
const char* to_string(StepDownReason reason);

struct Event {
  enum class Kind : uint8_t {
    kElectionStarted,  // phase 1 for `ballot`, from slot `slot`
    kElectionWon,      // leads in `ballot`, with the chosen prefix at `slot`
    kSteppedDown,      // a candidate or leader (`from`) of `ballot` became a follower: `reason`
  };
  Kind kind = Kind::kElectionStarted;
  Ballot ballot;
  Slot slot = 0;
  enum Role : uint8_t { kCandidate, kLeader } from = kCandidate;
  StepDownReason reason = StepDownReason::kHigherBallot;
  Ballot seen;  // for kHigherBallot and kRejected: the higher ballot

  bool operator==(const Event&) const = default;
};
// Events kept between two take_ready() calls; past it the oldest are dropped (a driver that
// never takes them, like the model checker, holds no more than this).
inline constexpr size_t kMaxReadyEvents = 32;

struct Ready {
  PersistBatch persist;
  std::vector<Envelope> messages;
  // Replace the state machine with this snapshot (after a restart from one, or when a peer sent
  // one) before applying `committed`, which then continues from its slot + 1.
  std::optional<SnapshotRef> install;
  std::vector<SlotValue> committed;  // contiguous, in slot order, each handed out once
  std::vector<ProposalOutcome> outcomes;
  std::vector<ReadResult> reads;
  // The configuration changed (a change was committed, or a snapshot installed): the driver
  // connects to new members and forgets removed ones. Also set by the first Ready.
  MembershipRef membership = nullptr;
  // For the driver's logs and metrics only: not counted by empty(), as nothing needs doing.
  std::vector<Event> events;

  bool empty() const {
    return persist.empty() && messages.empty() && !install && committed.empty() &&
           outcomes.empty() && reads.empty() && !membership;
  }
};

}  // namespace synod::paxos
