// Messages between Multi-Paxos replicas. One promise covers every slot from a starting slot
// onward, so phase 1 runs once per leadership rather than once per slot; phase-2 messages carry
// many slots at once (pipelining and batching).
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "base/types.h"
#include "paxos/acceptor.h"
#include "paxos/value.h"

namespace synod::paxos {

struct SlotValue {
  Slot slot = 0;
  Value value;
  bool operator==(const SlotValue&) const = default;
};

struct AcceptedEntry {
  Slot slot = 0;
  Proposal proposal;
  bool operator==(const AcceptedEntry&) const = default;
};

// Phase 1a: "promise me ballot, and tell me what you accepted at first_slot and above".
// `transfer`: the sender was asked to take over by the leader of `transfer_from`, handing over on
// purpose, so a follower that still hears that very leader answers it anyway (leader stickiness,
// see PreVoteMsg); one that hears another leader does not (a late TimeoutNow).
struct PrepareMsg {
  Ballot ballot;
  Slot first_slot = 0;
  bool transfer = false;
  Ballot transfer_from =
      {};  // with transfer: the ballot of the leader whose TimeoutNow asked for it
};

// Phase 1b: the promise, with every accepted proposal from first_slot through last_slot.
// `snapshot`: the sender compacted every slot up to it into a snapshot and can no longer report
// what it accepted there (all of those slots are chosen); a candidate that has not learned them
// must catch up before it may lead. `last_slot`: kEverySlot, or — when the rest would not fit into
// one message — the last slot this part reports; the candidate asks for the next part with a
// Prepare of the same ballot from last_slot + 1, and counts the promise only once it has heard
// every part (see Replica::on_promise). `time_ms`: the highest cluster time the sender's acceptor
// saw in an Accept of `time_ballot`, the highest ballot whose Accept it accepted since it started;
// `time_horizon_ms`: the time horizon it recovered (of `time_horizon_ballot`) from its disk (every
// time it saw before its restart is below it). A new leader's clock starts above both (see
// node::ServerCore and docs/core.md, "Time").
inline constexpr Slot kEverySlot = ~Slot{0};
struct PromiseMsg {
  Ballot ballot;
  Slot first_slot = 0;
  std::vector<AcceptedEntry> accepted;
  Slot snapshot = 0;
  Slot last_slot = kEverySlot;
  uint64_t time_ms = 0;
  uint64_t time_horizon_ms = 0;
  Ballot time_ballot{};
  Ballot time_horizon_ballot{};  // the ballot of time_horizon_ms
};

// Phase 2a, from the leader of `ballot`: accept these values. With no entries it is the
// leader's heartbeat. `commit`: every slot up to it is chosen (the leader's chosen prefix).
// `read_round`: the leader's newest read-confirmation round, sent no earlier than every read
// that waits for it arrived; the answer echoes it (see Replica::read_index). `time_ms`: the
// leader's cluster time when it sent this (Replica::set_time_ms); an acceptor that accepts it
// remembers the highest, durably (see PromiseMsg).
struct AcceptMsg {
  Ballot ballot;
  std::vector<SlotValue> entries;
  Slot commit = 0;
  uint64_t read_round = 0;
  uint64_t time_ms = 0;
};

// Phase 2b: the sender accepted `slots` in `ballot` (empty: it acknowledges a heartbeat).
// `commit` is the sender's own chosen prefix, so the leader can see who lags. `read_round`
// echoes the Accept's: the sender had promised no higher ballot when that round was asked.
struct AcceptedMsg {
  Ballot ballot;
  std::vector<Slot> slots;
  Slot commit = 0;
  uint64_t read_round = 0;
};

// A refusal: the sender promised `promised`, which is above the `ballot` it was asked for.
struct RejectMsg {
  Ballot ballot;
  Ballot promised;
};

// Before its phase 1, a replica whose election timer fired asks every member: "would you promise
// `ballot` (the one I would use) if I asked, knowing my chosen prefix is `commit`?" Nothing about
// the answerer changes (no promise, nothing persisted): see Replica::on_prevote and docs/core.md,
// "PreVote and leader stickiness".
struct PreVoteMsg {
  Ballot ballot;
  Slot commit = 0;
};

// The answer: `granted` if the sender heard from no leader for the minimum election timeout,
// would promise `ballot`, and the asker's commit is at most a pipeline window (max_inflight_slots)
// behind its own. `promised`: the sender's promise, so that an asker refused for a low ballot
// picks a higher one next time. `commit`: the sender's chosen prefix, so that an asker behind it
// catches up (and learns a configuration change that removed or demoted it) instead of
// campaigning under an old configuration.
struct PreVoteReplyMsg {
  Ballot ballot;
  bool granted = false;
  Ballot promised;
  Slot commit = 0;
};

// Leader transfer (docs/core.md, "Leader transfer"): the leader of `ballot` hands over to the
// receiver, which it saw accept every slot it proposed: "start phase 1 now". The receiver skips
// its election timer and PreVote and marks its Prepares `transfer`, so that followers still
// hearing the old leader answer them; it still runs all of phase 1. Ignored unless the receiver
// is a follower that may campaign and has promised no ballot above `ballot`.
struct TimeoutNowMsg {
  Ballot ballot;
};

// A lagging replica asks for chosen values from `first_slot` onward.
struct CatchupRequestMsg {
  Slot first_slot = 0;
};

// Chosen values, in slot order from `first_slot` (the request's), and the sender's chosen
// prefix. `membership`: the configuration that governs first_slot, if the sender knows it (a
// replica that joined with no configuration of its own starts from it).
struct CatchupReplyMsg {
  std::vector<SlotValue> chosen;
  Slot commit = 0;
  Slot first_slot = 0;
  MembershipRef membership = nullptr;
};

// Part of a snapshot, for a replica that needs slots the sender compacted away. `slot`: the
// snapshot covers every slot up to it; `total` bytes in all, whose digest is `digest`; this chunk
// holds the bytes from `offset`. `membership`: the configuration after the snapshot's slot (the
// one that governs slot + 1).
struct SnapshotChunkMsg {
  Slot slot = 0;
  uint64_t total = 0;
  uint64_t digest = 0;
  uint64_t offset = 0;
  std::string data;
  MembershipRef membership = nullptr;
};

// The receiver of a snapshot asks for the bytes from `offset` of the snapshot at `slot` (the
// sender answers from offset 0 of its newest snapshot if it has moved on).
struct SnapshotRequestMsg {
  Slot slot = 0;
  uint64_t offset = 0;
};

// Byte bounds. Every message body is at most kMessageOverheadBytes plus its entries' bytes: the
// version, type, sender, receiver, ballot, counts and scalar fields of any message type, with room
// for fields added later. An entry costs its slot (and, in a Promise, its ballot) and its value.
inline constexpr size_t kMessageOverheadBytes = 256;
inline constexpr size_t kEntryOverheadBytes = 8 + 12;  // slot u64, ballot (round u64, node u32)
inline size_t encoded_bytes(const SlotValue& entry) {
  return 8 + encoded_bytes(entry.value);
}
inline size_t encoded_bytes(const AcceptedEntry& entry) {
  return kEntryOverheadBytes + encoded_bytes(entry.proposal.value);
}

// The wire type of each is its index here plus one (docs/wire-format.md): append only.
using Message = std::variant<PrepareMsg, PromiseMsg, AcceptMsg, AcceptedMsg, RejectMsg,
                             CatchupRequestMsg, CatchupReplyMsg, SnapshotChunkMsg,
                             SnapshotRequestMsg, PreVoteMsg, PreVoteReplyMsg, TimeoutNowMsg>;

struct Envelope {
  NodeId from;
  NodeId to;
  Message message;
  // The incarnation of the sender's data directory (Config::incarnation; 0: not known). It is not
  // a field of any message: the receiving driver sets it from the connection's Hello, which the
  // peer's certificate authenticates; the simulators carry it from the sender.
  uint64_t incarnation = 0;
};

// One line describing a message, for traces: stable across runs and platforms.
std::string to_string(const Message& message);
std::string to_string(const Envelope& envelope);

}  // namespace synod::paxos
