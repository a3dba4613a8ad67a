#include "paxos/replica.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <utility>

#include "paxos/codec.h"
#include "paxos/proposer.h"

namespace synod::paxos {
namespace {

// Bytes of a snapshot held in memory, and their snapshot_digest.
SnapshotBytes in_memory(std::shared_ptr<const std::string> data, uint64_t digest) {
  const uint64_t size = data->size();
  return SnapshotBytes{
      size, digest,
      [data = std::move(data)](uint64_t offset, size_t n) -> std::optional<std::string> {
        return data->substr(offset, n);
      }};
}

}  // namespace

const char* to_string(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

Replica::Replica(Config config, const DurableState& durable, uint64_t seed)
    : config_(std::move(config)), rng_(seed) {
  SYNOD_ASSERT(config_.election_timeout_min_ticks > config_.heartbeat_interval_ticks &&
                   config_.election_timeout_min_ticks <= config_.election_timeout_max_ticks,
               "election timeouts must exceed the heartbeat interval");
  SYNOD_ASSERT(config_.max_inflight_slots > 0 && config_.max_batch_commands > 0 &&
                   config_.max_entries_per_message > 0,
               "bounds must be positive");
  SYNOD_ASSERT(config_.max_message_bytes >= config_.min_message_bytes(),
               "max_message_bytes must hold any one slot's value (Config::min_message_bytes)");
  SYNOD_ASSERT(config_.snapshot_chunk_bytes + kMessageOverheadBytes <= config_.max_message_bytes,
               "a snapshot chunk must fit into a message");
  promised_ = durable.promised;
  accepted_ = durable.accepted;
  chosen_ = durable.chosen;
  time_horizon_ = recovered_horizon_ = durable.time_horizon;
  if (!config_.join) {
    adopt_membership(std::make_shared<const Membership>(membership_of(config_.quorum)), 1);
  }
  if (durable.snapshot.slot > 0) {
    // The state machine restarts from the snapshot; the log continues above it.
    SYNOD_ASSERT(durable.snapshot.data != nullptr, "a snapshot without data");
    snapshot_ = durable.snapshot;
    snapshot_bytes_ = in_memory(snapshot_.data, snapshot_digest(*snapshot_.data));
    commit_ = handed_out_ = known_commit_ = snapshot_.slot;
    std::erase_if(accepted_, [&](const auto& kv) { return kv.first <= snapshot_.slot; });
    std::erase_if(chosen_, [&](const auto& kv) { return kv.first <= snapshot_.slot; });
    ready_.install = snapshot_;
    snapshot_.data = nullptr;  // (snapshot_bytes_ holds them until the driver serves its file)
    if (snapshot_.membership) adopt_membership(snapshot_.membership, snapshot_.slot + 1);
  }
  count_held_bytes();
  // Accepting (b, v) promised b, even if the promise record itself did not survive.
  for (const auto& [slot, proposal] : accepted_) promised_ = std::max(promised_, proposal.ballot);
  highest_round_seen_ = promised_.round;
  leader_silence_ticks_ = config_.election_timeout_min_ticks;  // it has heard no leader yet
  // With lease reads, a replica that (re)starts may have answered a lease's round just before,
  // and keeps out other candidates as if it still heard that leader (see on_prepare).
  if (config_.read_lease_ms == 0 || config_.bugs.lease_forgotten_on_restart)
    boot_ticks_ = config_.election_timeout_min_ticks;
  advance_commit();
  reset_election_timer();
}

// ---------------------------------------------------------------------------------------------
// Inputs.

void Replica::tick() {
  if (boot_ticks_ < config_.election_timeout_min_ticks) ++boot_ticks_;
  if (role_ == Role::kLeader) {
    leader_tick();
  } else {
    if (hears_leader()) ++leader_silence_ticks_;
    if (++election_elapsed_ >= election_timeout_) {
      // A learner (or a replica that has not learned its configuration) does not campaign,
      // unless a change it accepted makes it a voter (docs/core.md, "Membership").
      if (may_campaign()) {
        start_prevote();
      } else {
        // It hears no leader, though: ask a peer what is chosen. A change this replica missed
        // may have made it a voter, perhaps the only one (the leader that removed itself
        // announced the commit, and the announcement was lost): otherwise nobody would lead.
        reset_election_timer();
        if (may_catch_up() && !config_.bugs.silent_learner) request_catchup(/*retry=*/true);
      }
    }
  }
  if (catchup_outstanding_ && ++catchup_elapsed_ >= catchup_interval() && may_catch_up()) {
    // Asked and not answered in time: perhaps lost, perhaps a large reply still on its way. Ask
    // again, and wait twice as long before the next time unless an answer moves us on: a laggard
    // that re-asked every retransmit interval had two peers building multi-MiB replies nonstop
    // for answers it already had coming (E2E.ValuesAtTheSizeLimit, 100% CPU in
    // on_catchup_request).
    if (!config_.bugs.catchup_retry_storm) ++catchup_misses_;
    ++catchup_retries_;
    request_catchup(/*retry=*/true);
  }
}

void Replica::step(const Envelope& envelope) {
  SYNOD_ASSERT(envelope.to == config_.self, "message delivered to the wrong replica");
  const NodeId from = envelope.from;
  // Not one of ours: ignore it, unless it answers a catch-up. Chosen values are the same whoever
  // tells them, and a replica behind a change that added members learns of them only from what
  // they send it: a learner whose configuration predated the leader's membership dropped every
  // answer of that leader and never caught up (sim --protocol --reconfig, seed 1155).
  const bool catchup_answer = std::holds_alternative<CatchupReplyMsg>(envelope.message) ||
                              std::holds_alternative<SnapshotChunkMsg>(envelope.message);
  if (!knows(from) && (!catchup_answer || config_.bugs.catchup_from_members_only)) return;
  // Ids are never reused, so a peer that spoke as one incarnation and now speaks as another lost
  // its directory in between (until the configuration binds it, this replica's memory is all
  // that tells; the server also pins first incarnations durably, node/server.cc).
  if (envelope.incarnation != 0) {
    auto [seen, first] = seen_incarnation_.try_emplace(from, envelope.incarnation);
    if (!first && seen->second != envelope.incarnation && !config_.bugs.wiped_replica_votes) return;
  }
  // A member bound to another incarnation: its directory was wiped or replaced since, and what it
  // says now does not vouch for what it promised and accepted then (the planted bug listens).
  if (const Member* m = membership_ ? membership_->find(from) : nullptr;
      m != nullptr && m->incarnation != 0 && m->incarnation != envelope.incarnation &&
      !config_.bugs.wiped_replica_votes)
    return;
  // A proposer prepares and proposes only its own ballots: a Prepare or Accept in another
  // node's name is not from an honest peer.
  if (const auto* prepare = std::get_if<PrepareMsg>(&envelope.message);
      prepare != nullptr && prepare->ballot.node != from)
    return;
  if (const auto* accept = std::get_if<AcceptMsg>(&envelope.message);
      accept != nullptr && accept->ballot.node != from)
    return;
  std::visit(
      [&](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, PrepareMsg>) on_prepare(from, msg);
        if constexpr (std::is_same_v<T, PromiseMsg>) on_promise(from, msg);
        if constexpr (std::is_same_v<T, AcceptMsg>) on_accept(from, msg);
        if constexpr (std::is_same_v<T, AcceptedMsg>) on_accepted(from, msg);
        if constexpr (std::is_same_v<T, RejectMsg>) on_reject(msg);
        if constexpr (std::is_same_v<T, CatchupRequestMsg>) on_catchup_request(from, msg);
        if constexpr (std::is_same_v<T, CatchupReplyMsg>) on_catchup_reply(msg);
        if constexpr (std::is_same_v<T, SnapshotChunkMsg>) on_snapshot_chunk(from, msg);
        if constexpr (std::is_same_v<T, SnapshotRequestMsg>) on_snapshot_request(from, msg);
        if constexpr (std::is_same_v<T, PreVoteMsg>) on_prevote(from, msg);
        if constexpr (std::is_same_v<T, PreVoteReplyMsg>) on_prevote_reply(from, msg);
        if constexpr (std::is_same_v<T, TimeoutNowMsg>) on_timeout_now(from, msg);
      },
      envelope.message);
}

ProposeStatus Replica::propose(Command command) {
  // Too large for any slot under this configuration: refused here, before it can reach a log.
  if (command.payload.size() > config_.max_command_bytes) return ProposeStatus::kTooLarge;
  if (role_ != Role::kLeader) return ProposeStatus::kNotLeader;
  // A retry of a command still in progress here: its one outcome will answer both.
  if (pending_.count(command.id) != 0) return ProposeStatus::kQueued;
  if (queue_.empty()) queued_bytes_ = 0;  // stepping down empties the queue wholesale
  const size_t size = command.payload.size();
  if (queue_.size() >= config_.max_queued_commands ||
      (!queue_.empty() && queued_bytes_ + size > config_.max_queued_bytes))
    return ProposeStatus::kBusy;
  queued_bytes_ += size;
  pending_.emplace(command.id, 0);
  queue_.push_back(std::move(command));
  return ProposeStatus::kQueued;
}

ProposeStatus Replica::propose_membership(Command request, Membership next) {
  if (role_ != Role::kLeader) return ProposeStatus::kNotLeader;
  if (pending_.count(request.id) != 0) return ProposeStatus::kQueued;  // a retry in progress
  if (request.payload.size() > config_.max_command_bytes) return ProposeStatus::kTooLarge;
  if (pending_config_slot_ != 0 || !phase1_ready_ || next.epoch != membership_->epoch + 1 ||
      transfer_target_.valid())
    return ProposeStatus::kStale;
  if (!verify_membership(next).is_ok()) return ProposeStatus::kInvalid;
  // A change binds every incarnation this leader has seen, and makes no member a voter before its
  // incarnation is bound: a replica on a joining directory votes only once bound (votes()), and
  // a voter that does not vote could be the one the binding's own quorum needs.
  bind_seen(next);
  if (config_.incarnation != 0) {
    for (const Member& m : next.members) {
      if (m.voter && m.incarnation == 0 && !membership_->is_voter(m.id))
        return ProposeStatus::kUnheard;
    }
  }
  Value value;
  value.membership = std::make_shared<const Membership>(std::move(next));
  const CommandId id = request.id;
  value.commands.push_back(std::move(request));
  pending_.emplace(id, propose_change(std::move(value)));
  return ProposeStatus::kQueued;
}

// Commands queued before a change take the slots before it; those queued later wait for it.
Slot Replica::propose_change(Value value) {
  flush_queue();
  SlotValue entry{next_slot_++, std::move(value)};
  note_members(*entry.value.membership);
  pending_config_slot_ = entry.slot;
  std::vector<SlotValue> entries;
  entries.push_back(std::move(entry));
  propose_slots(std::move(entries));
  return pending_config_slot_;
}

// ---------------------------------------------------------------------------------------------
// Leader transfer (docs/core.md, "Leader transfer").

ProposeStatus Replica::transfer_leadership(NodeId target) {
  if (role_ != Role::kLeader) return ProposeStatus::kNotLeader;
  if (target == config_.self || !membership_->is_voter(target)) return ProposeStatus::kInvalid;
  if (recovering() || pending_config_slot_ != 0) return ProposeStatus::kStale;
  if (transfer_target_ == target) return ProposeStatus::kQueued;
  end_transfer();
  transfer_target_ = target;
  // What the target reported in this ballot so far: its chosen prefix, and the slots in flight
  // it accepted.
  note_transfer_progress(peer_commit(target), {});
  for (const auto& [slot, flight] : inflight_) {
    if (flight.voters.contains(target)) transfer_acked_.insert(slot);
  }
  note_transfer_progress(transfer_covered_, {});
  // A heartbeat now, so that the target reports its chosen prefix at once.
  send(target, AcceptMsg{ballot_, {}, commit_, read_round_});
  maybe_hand_over();
  return ProposeStatus::kQueued;
}

void Replica::note_transfer_progress(Slot commit, const std::vector<Slot>& slots) {
  transfer_covered_ = std::max(transfer_covered_, commit);
  for (Slot slot : slots) {
    if (slot > transfer_covered_) transfer_acked_.insert(slot);
  }
  while (!transfer_acked_.empty() && *transfer_acked_.begin() <= transfer_covered_ + 1) {
    transfer_covered_ = std::max(transfer_covered_, *transfer_acked_.begin());
    transfer_acked_.erase(transfer_acked_.begin());
  }
}

// No slot is cut while a transfer is in progress, so once the target covers every slot proposed
// it holds (accepted in this ballot, or knows chosen) everything this leader may have had chosen:
// its phase 1 then needs nothing from the others to catch up, and it wins at once.
void Replica::maybe_hand_over() {
  if (role_ != Role::kLeader || !transfer_target_.valid() || transfer_sent_) return;
  if (transfer_covered_ + 1 < next_slot_) return;
  transfer_sent_ = true;
  lease_forfeited_ = true;  // the target's Prepares pass every follower's stickiness from now on
  send(transfer_target_, TimeoutNowMsg{ballot_});
}

void Replica::end_transfer() {
  transfer_target_ = kNoNode;
  transfer_elapsed_ = 0;
  transfer_sent_ = false;
  transfer_covered_ = 0;
  transfer_acked_.clear();
}

// A follower told by its leader to take over campaigns at once: no election timer, no PreVote
// (the leader is handing over, so a quorum still hearing it would refuse), and Prepares marked
// `transfer` (so that followers still hearing that leader answer). Only from the leader of a
// ballot this replica has not promised beyond: a late TimeoutNow from an earlier leadership, after
// another leader took over, is dropped. Phase 1 runs in full whatever the leader thought it knew.
void Replica::on_timeout_now(NodeId from, const TimeoutNowMsg& msg) {
  if (msg.ballot.node != from || from == config_.self) return;  // not an honest leader
  if (role_ != Role::kFollower || !may_campaign() || msg.ballot < promised_) return;
  start_election(/*transfer=*/true, msg.ballot);
}

ReadStatus Replica::read_index(uint64_t read_id) {
  if (role_ != Role::kLeader) return ReadStatus::kNotLeader;
  if (reads_.size() >= config_.max_pending_reads) return ReadStatus::kBusy;
  // Every slot this leader assigned or re-proposed is below next_slot_, and everything at or
  // below commit_ is chosen: together they hold every write acknowledged so far (docs/core.md).
  // Not yet while it recovers past a configuration change, nor while one it proposed is in flight:
  // the read's index is fixed when it has recovered (see reads_wait()).
  const Slot index = reads_wait() ? kIndexPending : std::max(commit_, next_slot_ - 1);
  reads_.push_back(PendingRead{read_id, index, read_round_ + 1, leader_ticks_});
  return ReadStatus::kQueued;
}

void Replica::set_time_ms(uint64_t time_ms) {
  time_ms_ = time_ms;
  if (role_ == Role::kLeader && promised_ == ballot_) see_time(ballot_, time_ms);
}

void Replica::share_commit(NodeId peer, Slot slot) {
  if (role_ != Role::kLeader || peer == config_.self || !knows(peer)) return;
  if (auto it = commit_sent_.find(peer); it != commit_sent_.end() && it->second >= slot) return;
  send(peer, AcceptMsg{ballot_, {}, commit_, read_round_});
}

Event& Replica::note(Event::Kind kind, Slot slot) {
  auto& events = ready_.events;
  if (events.size() >= kMaxReadyEvents) events.erase(events.begin());
  Event& event = events.emplace_back();
  event.kind = kind;
  event.ballot = ballot_;
  event.slot = slot;
  return event;
}

const char* to_string(StepDownReason reason) {
  switch (reason) {
    case StepDownReason::kHigherBallot:
      return "a higher ballot arrived";
    case StepDownReason::kRejected:
      return "an acceptor had promised a higher ballot";
    case StepDownReason::kNoQuorum:
      return "no phase-2 quorum answered for an election timeout";
    case StepDownReason::kPeerCompacted:
      return "a promiser compacted slots this replica has not learned (catching up first)";
    case StepDownReason::kTimedOut:
      return "the election timed out";
    case StepDownReason::kRemoved:
      return "a configuration without this replica as a voter was chosen";
  }
  return "?";
}

Ready Replica::take_ready() {
  release_chosen();  // (what the last Readies made durable may go now)
  flush_queue();
  refresh_lease();
  serve_reads();  // (first: reads the lease serves need no round)
  start_read_round();
  return std::exchange(ready_, Ready{});
}

// ---------------------------------------------------------------------------------------------
// Acceptor.

void Replica::raise_promise(const Ballot& ballot) {
  if (ballot <= promised_) return;
  promised_ = ballot;
  // The planted bug no_persist_promise keeps the promise in memory only.
  if (!config_.bugs.no_persist_promise) ready_.persist.promised = promised_;
}

// The time seen is kept per ballot: a higher ballot's time replaces a lower one's, even if it is
// smaller. A deposed leader that has not noticed yet keeps running its clock at the acceptors
// still on its ballot, and a later candidate that took the max over all of them would start
// from that clock, ahead of the one its predecessor served at: expiry would come early. Every
// time served in a ballot is below the times of every higher ballot's leader (its base covers
// it), so the highest ballot's time is the one to keep (docs/core.md, "Time"). The horizon,
// which only makes a new leader wait, covers every time seen.
void Replica::see_time(const Ballot& ballot, uint64_t time_ms) {
  // 0 is no time (a leader whose driver has not told it one in this ballot yet): a higher ballot
  // with no time must not replace a time the acceptor saw (the planted bug lets it).
  if (time_ms == 0 && !config_.bugs.time_carried_into_new_ballot) return;
  if (config_.bugs.time_of_any_ballot) {  // the planted bug: the old rule, the highest time
    if (time_ms <= time_seen_ms_) return;
  } else if (ballot < time_ballot_ || (ballot == time_ballot_ && time_ms <= time_seen_ms_)) {
    return;
  }
  time_ballot_ = std::max(time_ballot_, ballot);
  time_seen_ms_ = time_ms;
  // Renewed half a step early, so that the leader's own acceptor (which sees each new time as
  // it is set) rarely makes a read wait for the sync of a new horizon.
  if (ballot == time_horizon_.ballot &&
      time_ms + config_.time_horizon_step_ms / 2 < time_horizon_.ms)
    return;
  time_horizon_ = {ballot, time_ms + config_.time_horizon_step_ms};
  ready_.persist.time_horizon = time_horizon_;
}

void Replica::on_prepare(NodeId from, const PrepareMsg& msg) {
  if (!votes()) {
    if (msg.first_slot > 0) ask_back(from, msg.first_slot - 1);
    return;
  }
  // Leader stickiness: while a follower hears its leader, a higher ballot from anyone else is
  // ignored, as if lost (docs/core.md, "PreVote and leader stickiness"): not even its round is
  // taken in. The leader itself, a Prepare the follower promised already (the next part of a
  // promise) and a handover on purpose pass.
  // A handover is answered only if it is from the very leader this follower hears: a late
  // TimeoutNow of an earlier leadership must not end a later one (whose lease counts on us).
  const bool handover = msg.transfer && msg.transfer_from == leader_ballot_;
  if (hears_leader() && from != leader_ && msg.ballot > promised_ && !handover) return;
  // Just (re)started with lease reads on: no higher ballot from another replica for an election
  // timeout, handovers included (we cannot tell whether the leader we may have heard sent it).
  if (boot_ticks_ < config_.election_timeout_min_ticks && from != config_.self &&
      msg.ballot > promised_)
    return;
  notice_ballot(msg.ballot);
  const bool may = config_.bugs.absurd_rounds_taken
                       ? msg.ballot >= promised_  // the planted bug: no plausibility check
                       : may_promise(promised_, msg.ballot, highest_round_seen_);
  if (!may) {
    send(from, RejectMsg{msg.ballot, promised_});
    return;
  }
  raise_promise(msg.ballot);
  if (from != config_.self) {
    if (role_ != Role::kFollower && msg.ballot > ballot_)
      step_down(StepDownReason::kHigherBallot, msg.ballot);
    if (msg.ballot > leader_ballot_) leader_ = kNoNode;  // a new leader may be coming
    reset_election_timer();  // give the candidate time to finish before competing with it
    prevote_.reset();        // ... and do not start a rival candidacy meanwhile
  }
  PromiseMsg promise{msg.ballot,
                     msg.first_slot,
                     {},
                     config_.bugs.promise_hides_snapshot
                         ? 0
                         : std::max({snapshot_.slot, vote_floor(),
                                     config_.bugs.promise_hides_released ? 0 : released_})};
  // As many accepted entries as fit into one message; the candidate asks for the rest.
  size_t used_bytes = 0;
  promise.time_ballot = time_ballot_;
  promise.time_ms = time_seen_ms_;
  promise.time_horizon_ms = recovered_horizon_.ms;
  promise.time_horizon_ballot = recovered_horizon_.ballot;
  for (auto it = accepted_.lower_bound(msg.first_slot); it != accepted_.end(); ++it) {
    const size_t bytes = kEntryOverheadBytes + encoded_bytes(it->second.value);
    if (!fits_message(promise.accepted.size(), used_bytes, bytes)) {
      promise.last_slot = std::prev(it)->first;
      break;
    }
    used_bytes += bytes;
    promise.accepted.push_back(AcceptedEntry{it->first, it->second});
  }
  send(from, std::move(promise));
}

void Replica::on_accept(NodeId from, const AcceptMsg& msg) {
  // With lease reads, an Accept of a higher ballot promises that ballot just as a Prepare does:
  // while this acceptor keeps candidates out, one from another node than the leader it hears is
  // ignored too, as if lost. Its sender ran phase 1 without us, perhaps in a configuration we
  // left behind, whose quorums the lease's need not meet; once we promised, it would count us in
  // the new one (found by review: a stale leader re-proposing a replace). A leader's Accepts pass
  // at acceptors that promised it; the others take them once their stickiness runs out.
  if (config_.read_lease_ms > 0 && !config_.bugs.lease_promised_by_accept && votes() &&
      from != config_.self && from != leader_ && msg.ballot > promised_ && keeps_candidates_out())
    return;
  notice_ballot(msg.ballot);
  const bool voting = votes();
  if (!may_accept(promised_, msg.ballot, config_.bugs, highest_round_seen_)) {
    if (voting) send(from, RejectMsg{msg.ballot, promised_});
    return;
  }
  if (!voting) {
    // Not an acceptor yet (or any more): it learns what the leader says is chosen, by catch-up,
    // and tells it only its progress and its incarnation (which the leader binds): no slot, no
    // read round.
    if (from != config_.self && msg.ballot >= leader_ballot_) {
      leader_ = msg.ballot.node;
      leader_ballot_ = msg.ballot;
      leader_silence_ticks_ = 0;
      election_elapsed_ = 0;
    }
    learn_from_leader(msg.ballot, msg.commit);
    if (from != config_.self) send(from, AcceptedMsg{msg.ballot, {}, commit_, 0});
    return;
  }
  raise_promise(msg.ballot);
  see_time(msg.ballot, msg.time_ms);
  if (from != config_.self) {
    // Note the new leader first, so that stepping down can point our clients at it. Always the
    // ballot accepted (it is our promise now): stickiness, renewed below, is to this leader, and
    // a higher ballot noted earlier without a promise (as a non-voter, or as a candidate whose
    // own Prepare stickiness dropped) must not keep passing it (found by review: a joiner that
    // noted a stale leader's ballot let it through after answering the lease holder's round).
    // (The planted bug lease_stale_leader_heard keeps a higher ballot noted earlier.)
    if (msg.ballot >= leader_ballot_ || !config_.bugs.lease_stale_leader_heard) {
      leader_ = msg.ballot.node;
      leader_ballot_ = msg.ballot;
    }
    if (role_ != Role::kFollower && msg.ballot > ballot_)
      step_down(StepDownReason::kHigherBallot, msg.ballot);
    if (role_ == Role::kFollower) {
      election_elapsed_ = 0;
      leader_silence_ticks_ = 0;
      prevote_.reset();  // the leader is alive: no need to campaign
    }
  }
  AcceptedMsg reply{msg.ballot, {}, 0, msg.read_round};
  reply.slots.reserve(msg.entries.size());
  const Slot floor = vote_floor();
  for (const SlotValue& entry : msg.entries) {
    if (entry.slot <= floor) {
      // Below this incarnation's binding its old one may have voted, and this one never
      // promised what that one did: a leader of a ballot below the old vote (cut off since)
      // would count it for another value than the one chosen there. It votes only for the value
      // it learned chosen there, which no ballot can contradict (and records nothing).
      if (chosen_value(entry.slot) == entry.value) reply.slots.push_back(entry.slot);
      continue;
    }
    if (entry.slot <= forgotten_through()) {
      // Chosen and compacted (or let go of) here: a leader proposes nothing but the chosen value
      // for a chosen slot (P2c), so the vote is safe; there is nothing left to record.
      reply.slots.push_back(entry.slot);
      continue;
    }
    if (auto it = accepted_.find(entry.slot); it != accepted_.end() &&
                                              it->second.ballot == msg.ballot &&
                                              it->second.value == entry.value) {
      // A retransmission of what we accepted already. Its record is in an earlier Ready's
      // persist, which is durable before this answer leaves (ready.h): a second record would
      // only grow the log by the value's size for every retransmission.
      reply.slots.push_back(entry.slot);
      continue;
    }
    Proposal proposal{msg.ballot, entry.value};
    if (entry.value.membership) note_members(*entry.value.membership);
    ready_.persist.accepted.push_back(AcceptedEntry{entry.slot, proposal});
    accepted_[entry.slot] = std::move(proposal);
    reply.slots.push_back(entry.slot);
  }
  learn_from_leader(msg.ballot, msg.commit);
  reply.commit = commit_;
  send(from, std::move(reply));
}

// ---------------------------------------------------------------------------------------------
// Proposer: PreVote (docs/core.md, "PreVote and leader stickiness").

bool Replica::hears_leader() const {
  // (The planted bug removed_member_disrupts has no stickiness: a follower answers any Prepare.)
  return role_ != Role::kLeader && leader_silence_ticks_ < config_.election_timeout_min_ticks &&
         !config_.bugs.removed_member_disrupts;
}

bool Replica::keeps_candidates_out() const {
  return hears_leader() || boot_ticks_ < config_.election_timeout_min_ticks;
}

void Replica::forget_leader() {
  leader_silence_ticks_ = config_.election_timeout_min_ticks;
  boot_ticks_ = config_.election_timeout_min_ticks;
}

// The election timer fired: before a real phase 1, which would raise promises and so depose a
// leader that is alive, ask whether a phase-1 quorum has stopped hearing it too. A refused round
// is asked again when the (randomized) election timer fires next.
void Replica::start_prevote() {
  if (config_.bugs.removed_member_disrupts) return start_election();  // the planted bug
  step_down(StepDownReason::kTimedOut);  // report anything held from an earlier leadership
  forget_leader();                       // we gave up on it ourselves
  reset_election_timer();
  const uint64_t top_round = std::max(highest_round_seen_, promised_.round);
  if (top_round >= kMaxBallotRound) return;  // no ballot left to ask about (see start_election)
  prevote_ = PreVoteRound{Ballot{top_round + 1, config_.self}, {}};
  prevote_->granted.insert(config_.self);
  // Asked of the voters phase 1 would ask: those of the configuration of the first unchosen slot.
  if (quorum_->is_phase1_quorum(prevote_->granted)) return start_election();
  for (NodeId member : quorum_->members()) {
    if (member != config_.self) send(member, PreVoteMsg{prevote_->ballot, commit_});
  }
}

// Answers without changing anything here: no promise, nothing persisted, no timer reset, not even
// the round seen. Granted only if (1) no leader is heard (stickiness; a leader hears itself), (2)
// a Prepare of that ballot would be promised now, and (3) the asker is at most a pipeline window
// (max_inflight_slots) behind our chosen prefix: a badly lagging replica would have to catch up
// before it could serve, so it should not lead (a nearly current one is as good as any).
void Replica::on_prevote(NodeId from, const PreVoteMsg& msg) {
  if (msg.ballot.node != from || from == config_.self) return;  // not an honest asker
  const bool voting = votes();
  if (!voting) ask_back(from, msg.commit);
  const bool granted = voting && role_ != Role::kLeader && !keeps_candidates_out() &&
                       may_promise(promised_, msg.ballot, highest_round_seen_) &&
                       msg.commit + config_.max_inflight_slots >= commit_;
  send(from, PreVoteReplyMsg{msg.ballot, granted, promised_, commit_});
}

void Replica::on_prevote_reply(NodeId from, const PreVoteReplyMsg& msg) {
  if (msg.commit > known_commit_) {
    // Behind the answerer: what it has chosen may have changed the configuration (removed or
    // demoted this replica, or the voters to ask), so catch up rather than campaign on old news.
    known_commit_ = msg.commit;
    if (may_catch_up()) request_catchup(/*retry=*/false);
  }
  if (!msg.granted) {
    notice_ballot(msg.promised);  // refused, maybe for a low ballot: ask above it next time
    return;
  }
  if (!prevote_ || role_ != Role::kFollower || msg.ballot != prevote_->ballot) return;
  if (!may_campaign()) {
    // A change learned since the round began removed or demoted this replica.
    prevote_.reset();
    return;
  }
  prevote_->granted.insert(from);
  if (quorum_->is_phase1_quorum(prevote_->granted)) start_election();
}

// ---------------------------------------------------------------------------------------------
// Proposer: phase 1.

void Replica::start_election(bool transfer, const Ballot& transfer_from) {
  step_down(StepDownReason::kTimedOut);  // report anything held from an earlier leadership
  const uint64_t top_round = std::max(highest_round_seen_, promised_.round);
  if (top_round >= kMaxBallotRound) {
    // Only a disk poisoned before acceptors refused absurd rounds gets here: no ballot above its
    // promise is one any acceptor takes, so campaigning could only fail (or, unchecked, wrap).
    reset_election_timer();
    return;
  }
  role_ = Role::kCandidate;
  prevote_.reset();
  ballot_ = Ballot{top_round + 1, config_.self};
  highest_round_seen_ = ballot_.round;
  leader_ = kNoNode;
  prepare_from_ = commit_ + 1;
  promised_by_.clear();
  recovered_.clear();
  held_top_ = 0;
  phase1_ready_ = false;
  pending_config_slot_ = 0;
  time_floor_ = {};
  reset_election_timer();
  // The planted bugs: promise to ourselves and treat our own acceptor as a quorum (the target of a
  // transfer, trusting that it is caught up: the old leader waited for it, after all).
  if (config_.bugs.leader_skip_phase1 || (transfer && config_.bugs.transfer_skips_phase1)) {
    raise_promise(ballot_);
    time_floor_ = {time_ballot_, time_seen_ms_, recovered_horizon_};
    for (auto it = accepted_.lower_bound(prepare_from_); it != accepted_.end(); ++it) {
      recovered_.emplace(it->first, it->second);
    }
    become_leader(/*skipped_phase1=*/true);
    return;
  }
  note(Event::Kind::kElectionStarted, prepare_from_);
  // (The planted bug transfer_unmarked forgets to say so.)
  broadcast(PrepareMsg{ballot_, prepare_from_, transfer && !config_.bugs.transfer_unmarked,
                       transfer && !config_.bugs.transfer_unmarked ? transfer_from : Ballot{}});
}

// A leader keeps taking promises of its ballot: after a configuration change it needs a phase-1
// quorum of the new voters before it proposes in the slots they govern (docs/core.md,
// "Membership"), and a promise that comes late still reports what its sender accepted.
void Replica::on_promise(NodeId from, const PromiseMsg& msg) {
  if (role_ == Role::kFollower || msg.ballot != ballot_) return;
  if (promised_by_.contains(from)) return;  // a duplicate
  if (promise_parts_ballot_ != ballot_) {
    promise_parts_.clear();
    promise_parts_ballot_ = ballot_;
  }
  const auto part = promise_parts_.find(from);
  // Only the part asked for next counts: anything else is a duplicate or from an earlier ask. A
  // first part may start lower than asked last (a leader asks again from a higher slot after a
  // change): it covers more.
  if (part != promise_parts_.end() ? msg.first_slot != part->second
                                   : msg.first_slot > prepare_from_)
    return;
  if (msg.last_slot < msg.first_slot) return;
  if (msg.snapshot >= prepare_from_ &&
      (msg.snapshot > commit_ || config_.bugs.known_compaction_steps_down)) {
    // The sender compacted chosen slots we have not learned, so it cannot report what it
    // accepted there: leading now could overwrite a chosen value. Catch up from it first. (Not
    // for slots we have learned since we asked: a leader asking the new voters after a change,
    // from where its phase 1 began, stepped down for a compaction below its own chosen prefix,
    // a needless election (sim --protocol --reconfig --replicas 5 seed 7836).)
    step_down(StepDownReason::kPeerCompacted);
    known_commit_ = std::max(known_commit_, msg.snapshot);
    catchup_outstanding_ = true;
    catchup_elapsed_ = 0;
    send(from, CatchupRequestMsg{commit_ + 1});
    return;
  }
  // The time floor is the promise quorum's: a leader adds to it only the promises it needs after
  // a configuration change (a late promise of a quorum it has reports nothing it must wait for).
  if (role_ == Role::kCandidate || !phase1_ready_) {
    if (config_.bugs.time_of_any_ballot) {
      time_floor_.ballot = std::max(time_floor_.ballot, msg.time_ballot);
      time_floor_.seen_ms = std::max(time_floor_.seen_ms, msg.time_ms);
    } else if (msg.time_ballot > time_floor_.ballot) {
      time_floor_.ballot = msg.time_ballot;
      time_floor_.seen_ms = msg.time_ms;
    } else if (msg.time_ballot == time_floor_.ballot) {
      time_floor_.seen_ms = std::max(time_floor_.seen_ms, msg.time_ms);
    }
    if (const TimeHorizon h{msg.time_horizon_ballot, msg.time_horizon_ms};
        h.supersedes(time_floor_.horizon))
      time_floor_.horizon = h;
  }
  merge_promise(msg);
  if (msg.last_slot != kEverySlot) {
    // A promise too large for one message comes in parts. The sender promised this ballot, so
    // until it promises a higher one (and then refuses our next ask) it accepts nothing at all:
    // the parts together report exactly what it had accepted when it promised. It counts toward
    // a quorum only once every part is in, so no accepted value above prepare_from_ is missed.
    promise_parts_[from] = msg.last_slot + 1;
    election_elapsed_ = 0;  // phase 1 is making progress: do not start over meanwhile
    send(from, PrepareMsg{ballot_, msg.last_slot + 1});
    return;
  }
  promised_by_.insert(from);
  if (role_ == Role::kCandidate) {
    if (quorum_->is_phase1_quorum(promised_by_)) become_leader();
    return;
  }
  if (!phase1_ready_ && quorum_->is_phase1_quorum(promised_by_)) {
    phase1_ready_ = true;
    propose_held();
  }
}

// The highest-ballot proposal reported for each slot that this replica has not proposed in its
// ballot yet. Taken over more promisers than a quorum it is still safe: a proposal of a higher
// ballot than every quorum member's was proposed as safe by its own leader, and no ballot between
// it and ours can have chosen anything (the quorum promised ours, and accepted nothing there).
void Replica::merge_promise(const PromiseMsg& msg) {
  const Slot from = role_ == Role::kLeader ? next_slot_ : 0;
  for (const AcceptedEntry& entry : msg.accepted) {
    if (entry.slot < msg.first_slot || entry.slot > msg.last_slot || entry.slot < from) continue;
    held_top_ = std::max(held_top_, entry.slot);
    auto [it, inserted] = recovered_.try_emplace(entry.slot, entry.proposal);
    if (!inserted && entry.proposal.ballot > it->second.ballot) it->second = entry.proposal;
  }
}

void Replica::become_leader(bool skipped_phase1) {
  role_ = Role::kLeader;
  end_transfer();
  // The time the driver gave us is of an earlier ballot, or none: a time of this ballot comes
  // from the driver's clock once it sees us lead (ServerCore::start_clock). Until then our
  // Accepts carry no time, which acceptors ignore. Carrying the old one would tell the next
  // leader that this ballot reached a time it may never have served at: a deposed leader's
  // clock, run on while it was cut off, starting its successor's ahead (early expiry).
  if (!config_.bugs.time_carried_into_new_ballot) time_ms_ = 0;
  if (!config_.bugs.leader_learns_from_catchup) {
    // Phase 1 told us every slot above prepare_from_ (a promiser that compacted one made us step
    // down instead), so nothing is left to catch up on: stop asking.
    catchup_outstanding_ = false;
    incoming_.reset();
  }
  leader_ = config_.self;
  leader_ballot_ = ballot_;
  note(Event::Kind::kElectionWon, commit_);
  heard_from_.clear();
  peer_commit_.clear();
  quorum_check_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  Slot top = commit_;
  if (!recovered_.empty()) top = std::max(top, recovered_.rbegin()->first);
  if (!chosen_.empty()) top = std::max(top, chosen_.rbegin()->first);
  held_top_ = top;
  // Slots up to commit_ are chosen and known (possibly only as a snapshot, if we caught up
  // during the election): nothing to propose there.
  next_slot_ = std::max(prepare_from_, commit_ + 1);
  pending_config_slot_ = 0;
  recovery_fence_ = false;
  SYNOD_ASSERT(reads_.empty(), "reads left over from an earlier leadership");
  read_round_acked_.clear();
  round_sent_ms_.clear();
  lease_until_ms_ = 0;
  lease_forfeited_ = false;
  // Catching up during the election may have committed a configuration change: the promises
  // must then be a phase-1 quorum of the configuration that governs the slots to propose.
  // (The planted bugs that skip phase 1 count no promises at all.)
  phase1_ready_ = quorum_->is_phase1_quorum(promised_by_) || skipped_phase1;
  if (phase1_ready_) {
    propose_held();
  } else {
    ask_missing_promises();
  }
  if (inflight_.empty()) broadcast(AcceptMsg{ballot_, {}, commit_, read_round_});  // announce
}

// P2c, slot by slot, from next_slot_ through the highest slot phase 1 reported: the highest-ballot
// reported value, else a no-op (the leader's own value for a slot it has no command for). It stops
// after a configuration change (reported, or known chosen): the slots above it are governed by
// whatever that slot's chosen value says, so they wait until it is committed here, and then for a
// phase-1 quorum of the new configuration (docs/core.md, "Membership").
void Replica::propose_held() {
  if (role_ != Role::kLeader || !phase1_ready_ || pending_config_slot_ != 0) return;
  const bool bug = config_.bugs.reconfig_without_overlap;
  std::vector<SlotValue> entries;
  const Value own = noop();
  next_slot_ = std::max(next_slot_, commit_ + 1);
  while (next_slot_ <= held_top_) {
    const Slot slot = next_slot_++;
    if (auto c = chosen_.find(slot); c != chosen_.end()) {
      if (c->second.membership && !bug) {
        pending_config_slot_ = slot;
        recovery_fence_ = true;
        break;
      }
      continue;
    }
    auto it = recovered_.find(slot);
    std::optional<Proposal> highest;
    if (it != recovered_.end()) {
      highest = std::move(it->second);
      recovered_.erase(it);
    }
    entries.push_back(SlotValue{slot, choose_value(highest, own, config_.bugs)});
    if (const MembershipRef& m = entries.back().value.membership) {
      note_members(*m);
      if (!bug) {
        pending_config_slot_ = slot;
        recovery_fence_ = true;
        break;
      }
    }
  }
  if (pending_config_slot_ == 0) recovered_.clear();  // everything reported is proposed
  propose_slots(std::move(entries));
  flush_queue();
}

// After a configuration change, a leader asks the voters of the new configuration that have not
// promised its ballot yet (again at every heartbeat, until a phase-1 quorum has).
void Replica::ask_missing_promises() {
  prepare_from_ = commit_ + 1;
  for (const Member& m : membership_->members) {
    if (!m.voter || promised_by_.contains(m.id)) continue;
    promise_parts_.erase(m.id);
    send(m.id, PrepareMsg{ballot_, prepare_from_});
  }
}

// ---------------------------------------------------------------------------------------------
// Proposer: phase 2.

void Replica::propose_slots(std::vector<SlotValue> entries) {
  if (entries.empty()) return;
  for (const SlotValue& entry : entries) {
    SYNOD_ASSERT(inflight_.count(entry.slot) == 0, "a slot proposed twice in one ballot");
    inflight_.emplace(entry.slot,
                      InFlight{entry.value, {}, 0, encoded_bytes(entry.value), proposal_quorum_});
    // The planted bug: the slots after a change are counted with the new configuration's quorums
    // before the change is chosen.
    if (entry.value.membership && config_.bugs.reconfig_without_overlap)
      proposal_quorum_ =
          std::make_shared<const QuorumSystem>(entry.value.membership->quorum(config_.bugs));
  }
  // As many slots per Accept as fit into one message, to every acceptor (ourselves included).
  for (size_t begin = 0; begin < entries.size();) {
    size_t end = begin;
    size_t used_bytes = 0;
    while (end < entries.size() &&
           fits_message(end - begin, used_bytes, encoded_bytes(entries[end]))) {
      used_bytes += encoded_bytes(entries[end]);
      ++end;
    }
    AcceptMsg msg{ballot_, {}, commit_, read_round_};
    msg.entries.assign(std::make_move_iterator(entries.begin() + begin),
                       std::make_move_iterator(entries.begin() + end));
    broadcast(msg);
    begin = end;
  }
}

size_t Replica::inflight_bytes() const {
  size_t bytes = 0;
  for (const auto& [slot, flight] : inflight_) bytes += flight.bytes;
  return bytes;
}

bool Replica::fits_message(size_t count, size_t used_bytes, size_t entry_bytes) const {
  if (count == 0) return true;
  return count < config_.max_entries_per_message &&
         kMessageOverheadBytes + used_bytes + entry_bytes <= config_.max_message_bytes;
}

void Replica::flush_queue() {
  if (role_ != Role::kLeader || !phase1_ready_) return;
  if (transfer_target_.valid()) return;  // handing over: no new slots (transfer_leadership)
  // Nothing goes above a configuration change until it is chosen (the planted bug goes on).
  if (pending_config_slot_ != 0 && !config_.bugs.reconfig_without_overlap) return;
  std::vector<SlotValue> entries;
  // The window is bounded in slots and in bytes; with nothing in flight one slot always goes.
  size_t window_bytes = inflight_bytes();
  while (!queue_.empty() && inflight_.size() + entries.size() < config_.max_inflight_slots) {
    const bool idle = inflight_.empty() && entries.empty();
    if (!idle && window_bytes + 4 + encoded_bytes(queue_.front()) > config_.max_inflight_bytes)
      break;
    SlotValue entry{next_slot_++, {}};
    size_t bytes = 0;
    window_bytes += 4;  // the value's command count
    while (!queue_.empty() && entry.value.commands.size() < config_.max_batch_commands) {
      const size_t size = queue_.front().payload.size();
      const size_t cost = encoded_bytes(queue_.front());
      if (!entry.value.commands.empty() && (bytes + size > config_.max_batch_bytes ||
                                            window_bytes + cost > config_.max_inflight_bytes))
        break;
      bytes += size;
      window_bytes += cost;
      queued_bytes_ -= size;
      pending_[queue_.front().id] = entry.slot;
      entry.value.commands.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    entries.push_back(std::move(entry));
  }
  propose_slots(std::move(entries));
}

void Replica::on_accepted(NodeId from, const AcceptedMsg& msg) {
  notice_ballot(msg.ballot);
  if (role_ != Role::kLeader || msg.ballot != ballot_) return;
  heard_from_.insert(from);
  Slot& peer_commit = peer_commit_[from];
  peer_commit = std::max(peer_commit, msg.commit);
  uint64_t& acked = read_round_acked_[from];
  acked = std::max(acked, msg.read_round);
  if (from == transfer_target_) note_transfer_progress(msg.commit, msg.slots);
  for (Slot slot : msg.slots) {
    auto it = inflight_.find(slot);
    if (it == inflight_.end()) continue;  // already chosen, or a duplicate
    it->second.voters.insert(from);
    if (it->second.quorum->is_phase2_quorum(it->second.voters)) {
      const Value value = std::move(it->second.value);
      inflight_.erase(it);
      learn(slot, value);
    }
  }
  advance_commit();
  if (from == transfer_target_) maybe_hand_over();
}

void Replica::on_reject(const RejectMsg& msg) {
  notice_ballot(msg.promised);
  if (role_ == Role::kFollower || msg.ballot != ballot_ || msg.promised <= ballot_) return;
  step_down(StepDownReason::kRejected, msg.promised);
}

void Replica::leader_tick() {
  ++leader_ticks_;
  for (auto& [slot, flight] : inflight_) ++flight.ticks_since_sent;
  if (++quorum_check_elapsed_ >= config_.election_timeout_min_ticks) {
    // A leader that no phase-2 quorum answers cannot get anything chosen: step down so that its
    // clients hear about their proposals and try elsewhere.
    NodeSet alive = heard_from_;
    alive.insert(config_.self);
    heard_from_.clear();
    quorum_check_elapsed_ = 0;
    // (The planted bug read_without_quorum also keeps a leader that nobody answers leading.)
    if (!quorum_->is_phase2_quorum(alive) && !config_.bugs.read_without_quorum) {
      step_down(StepDownReason::kNoQuorum);
      return;
    }
  }
  if (transfer_target_.valid() && ++transfer_elapsed_ >= config_.election_timeout_min_ticks) {
    // The handover did not happen (the target is slow, cut off or down, or the TimeoutNow was
    // lost): lead on, and cut the commands that waited meanwhile into slots.
    end_transfer();
    flush_queue();
  }
  if (++heartbeat_elapsed_ < config_.heartbeat_interval_ticks) return;
  heartbeat_elapsed_ = 0;
  // With lease reads, every heartbeat whose previous round was answered carries a new one, whose
  // answers renew the lease (a heartbeat goes to every peer anyway).
  if (config_.read_lease_ms > 0 && confirmed_read_round() >= read_round_) {
    ++read_round_;
    note_round_sent();
  }
  if (!phase1_ready_) ask_missing_promises();
  // A TimeoutNow goes again with every heartbeat until the target takes over (it may be lost).
  if (transfer_sent_) send(transfer_target_, TimeoutNowMsg{ballot_});
  bind_incarnations();
  // The heartbeat carries the chosen prefix, and again every Accept a peer has not answered.
  for (NodeId peer : peers_) {
    if (peer == config_.self) continue;
    AcceptMsg msg{ballot_, {}, commit_, read_round_};
    size_t used_bytes = 0;
    for (auto& [slot, flight] : inflight_) {
      if (flight.voters.contains(peer)) continue;
      if (flight.ticks_since_sent < config_.retransmit_interval_ticks) continue;
      // The lowest unanswered slots first, as many as fit into one message.
      if (!fits_message(msg.entries.size(), used_bytes, 8 + flight.bytes)) break;
      used_bytes += 8 + flight.bytes;
      msg.entries.push_back(SlotValue{slot, flight.value});
    }
    send(peer, std::move(msg));
  }
  for (auto& [slot, flight] : inflight_) {
    if (flight.ticks_since_sent >= config_.retransmit_interval_ticks) flight.ticks_since_sent = 0;
  }
}

void Replica::step_down(StepDownReason why, const Ballot& seen) {
  if (role_ != Role::kFollower) {
    Event& event = note(Event::Kind::kSteppedDown, commit_);
    event.from = role_ == Role::kLeader ? Event::kLeader : Event::kCandidate;
    event.reason = why;
    event.seen = seen;
  }
  NodeId hint = leader_ == config_.self ? kNoNode : leader_;
  // Deposed by the target of our own transfer: the clients should try it.
  if (transfer_target_.valid() && seen.node == transfer_target_) hint = transfer_target_;
  end_transfer();
  for (auto it = pending_.begin(); it != pending_.end();) {
    const auto [id, slot] = *it;
    if (slot != 0 && chosen_.count(slot) != 0) {
      ++it;  // chosen already; reported as kChosen once its slot is committed
      continue;
    }
    // Queued commands never reached an acceptor; the rest may yet be chosen by a later leader.
    const Outcome outcome = slot == 0 ? Outcome::kFailed : Outcome::kUnknown;
    ready_.outcomes.push_back(ProposalOutcome{id, outcome, slot, hint});
    it = pending_.erase(it);
  }
  for (const PendingRead& read : reads_) {
    ready_.reads.push_back(ReadResult{read.id, false, 0, hint});
  }
  reads_.clear();
  read_round_acked_.clear();
  round_sent_ms_.clear();
  lease_until_ms_ = 0;
  queue_.clear();
  inflight_.clear();
  recovered_.clear();
  pending_config_slot_ = 0;
  recovery_fence_ = false;
  phase1_ready_ = false;
  if (leader_ == config_.self) leader_ = kNoNode;
  if (role_ == Role::kLeader) forget_leader();  // it heard no other leader while it led
  if (role_ != Role::kFollower) reset_election_timer();
  role_ = Role::kFollower;
}

// ---------------------------------------------------------------------------------------------
// Reads.

// Reads asked since the last round share one new round: a heartbeat that carries it, sent now,
// after all of them arrived. (Every later Accept carries it too, so a lost one is made up for.)
// One round is in flight at a time: reads that arrive meanwhile wait for the next, which starts
// as soon as this one is answered — so under load a round costs one heartbeat per peer for many
// reads, not one per handful, and a read waits at most two round trips.
void Replica::start_read_round() {
  if (role_ != Role::kLeader || reads_.empty() || reads_.back().round <= read_round_) return;
  if (confirmed_read_round() < read_round_) return;
  ++read_round_;
  note_round_sent();
  // Only as many peers are asked as complete a phase-2 quorum with this replica's own acceptor,
  // those that answered the latest rounds first (a heartbeat costs each peer a wakeup). If one
  // of them does not answer, the next heartbeat carries the round to every peer.
  std::vector<std::pair<uint64_t, NodeId>> peers;  // (highest round answered, peer)
  for (NodeId peer : membership_->voters()) {
    if (peer == config_.self) continue;
    auto it = read_round_acked_.find(peer);
    peers.emplace_back(it == read_round_acked_.end() ? 0 : it->second, peer);
  }
  std::stable_sort(peers.begin(), peers.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  NodeSet asked;
  if (promised_ == ballot_) asked.insert(config_.self);
  for (const auto& [round, peer] : peers) {
    if (quorum_->is_phase2_quorum(asked)) break;
    asked.insert(peer);
    send(peer, AcceptMsg{ballot_, {}, commit_, read_round_});
  }
}

// A leader stopped at a configuration change that phase 1 reported (or that it learned was
// chosen) does not know yet what may have been chosen above it — by the new configuration's
// quorums, which its promisers need not include — so no read index it could give yet covers every
// acknowledged write. Nor does one still waiting for a phase-1 quorum of the current voters.
bool Replica::recovering() const {
  return !phase1_ready_ || recovery_fence_;
}

// Nor while a change this leader proposed is in flight: once it is chosen, the slot after it is
// governed by the new configuration, whose phase-2 quorums need not include this leader's
// promisers, and a value an earlier leader's Accepts left with such a quorum is chosen there the
// moment the change is (sim --protocol --reconfig seed 17055: a read asked just after served at the
// change's slot, below a value chosen before it was asked). The leader learns of it only from the
// new voters' promises (on_new_membership), so a read asked meanwhile waits for them too.
bool Replica::reads_wait() const {
  return recovering() || (pending_config_slot_ != 0 && !config_.bugs.read_during_change);
}

// The highest round that a phase-2 quorum answered in this ballot (0: none yet). Our own
// acceptor answers every round at once while it still holds our ballot as its promise.
uint64_t Replica::confirmed_read_round() const {
  std::vector<std::pair<uint64_t, NodeId>> answers;  // (round, acceptor)
  if (promised_ == ballot_) answers.emplace_back(UINT64_MAX, config_.self);
  for (const auto& [peer, round] : read_round_acked_) {
    if (peer != config_.self) answers.emplace_back(round, peer);
  }
  std::sort(answers.begin(), answers.end(), std::greater<>());
  NodeSet voters;
  for (const auto& [round, acceptor] : answers) {
    voters.insert(acceptor);
    // Everyone so far answered this round or a later one, so this round is confirmed.
    if (quorum_->is_phase2_quorum(voters)) return round;
  }
  return 0;
}

void Replica::note_round_sent() {
  if (config_.read_lease_ms > 0) round_sent_ms_.emplace(read_round_, clock_ms_);
}

// The newest round a phase-2 quorum answered proves that each of them accepted this leader's
// Accept after the round was sent, and so answers no other candidate's Prepare for an election
// timeout of its own ticks after that: the lease runs read_lease_ms (shorter, by the clock-rate
// bound) from when the round was sent, on this leader's clock (docs/core.md, "Lease reads").
void Replica::refresh_lease() {
  if (config_.read_lease_ms == 0 || role_ != Role::kLeader || round_sent_ms_.empty()) return;
  auto it = round_sent_ms_.upper_bound(confirmed_read_round());
  if (it == round_sent_ms_.begin()) return;
  --it;
  // (The planted bug lease_from_confirmation starts it when the answers were seen instead.)
  const uint64_t from = config_.bugs.lease_from_confirmation ? clock_ms_ : it->second;
  lease_until_ms_ = std::max(lease_until_ms_, from + config_.read_lease_ms);
  round_sent_ms_.erase(round_sent_ms_.begin(), std::next(it));
}

// Not while the leader recovers or a change is in flight (the read index waits then, see
// reads_wait), nor once a TimeoutNow went out in this ballot, nor while a handover is under way.
bool Replica::lease_holds() const {
  return config_.read_lease_ms > 0 && role_ == Role::kLeader && promised_ == ballot_ &&
         !lease_forfeited_ && !transfer_target_.valid() && !reads_wait() &&
         clock_ms_ < lease_until_ms_;
}

// Reports, oldest first, the reads that are confirmed and covered by the chosen prefix, and the
// ones whose confirmation did not come within an election timeout.
void Replica::serve_reads() {
  if (reads_.empty()) return;
  // The planted bug read_without_quorum reports every read ok at once, at its index, without
  // asking anyone whether this replica still leads.
  const bool bug = config_.bugs.read_without_quorum;
  if (!reads_wait()) {
    for (PendingRead& read : reads_) {
      if (read.index == kIndexPending) read.index = std::max(commit_, next_slot_ - 1);
    }
  }
  const uint64_t confirmed = bug || lease_holds() ? UINT64_MAX : confirmed_read_round();
  while (!reads_.empty()) {
    const PendingRead& read = reads_.front();
    if (read.round <= confirmed && (read.index != kIndexPending || bug)) {
      if (commit_ < read.index && !bug) break;  // confirmed; waits for the chosen prefix
      ready_.reads.push_back(ReadResult{read.id, true, read.index, leader_});
    } else if (leader_ticks_ - read.asked_tick >= config_.election_timeout_min_ticks) {
      ready_.reads.push_back(ReadResult{read.id, false, 0, kNoNode});
    } else {
      break;  // later reads are younger, and none is confirmed before this one
    }
    reads_.pop_front();
  }
}

// ---------------------------------------------------------------------------------------------
// Learner.

void Replica::learn(Slot slot, const Value& value) {
  if (slot <= commit_ || chosen_.count(slot) != 0) return;
  chosen_.emplace(slot, value);
  held_bytes_ += encoded_bytes(value);
  ready_.persist.chosen.push_back(SlotValue{slot, value});
}

void Replica::learn_from_leader(const Ballot& ballot, Slot leader_commit) {
  known_commit_ = std::max(known_commit_, leader_commit);
  // The leader of `ballot` proposes one value per slot in it, so a slot we accepted in that very
  // ballot holds the chosen value once the leader says the slot is chosen.
  for (auto it = accepted_.upper_bound(commit_); it != accepted_.end(); ++it) {
    if (it->first > leader_commit) break;
    if (it->second.ballot == ballot) learn(it->first, it->second.value);
  }
  advance_commit();
  if (commit_ < known_commit_ && may_catch_up()) request_catchup(/*retry=*/false);
}

// A leader learns only from its own phase-2 quorums. Everything up to its election's commit point
// it knew; every slot above it, phase 1 told it about. A chosen value it learned any other way
// (a catch-up reply, a snapshot) may have been chosen in a higher ballot at a slot where it
// proposed something else in its own: announcing that slot as chosen in its ballot would make a
// follower that accepted its value there learn the wrong one (docs/core.md, "Learning").
bool Replica::may_catch_up() const {
  return role_ != Role::kLeader || config_.bugs.leader_learns_from_catchup;
}

void Replica::advance_commit() {
  while (chosen_.count(commit_ + 1) != 0) ++commit_;
  if (commit_ >= known_commit_) catchup_outstanding_ = false;
  bool changed = false;
  for (auto it = chosen_.upper_bound(handed_out_); it != chosen_.end(); ++it) {
    if (it->first > commit_) break;
    if (it->second.membership) {
      adopt_membership(it->second.membership, it->first + 1);
      changed = true;
    }
    ready_.committed.push_back(SlotValue{it->first, it->second});
    for (const Command& command : it->second.commands) {
      auto p = pending_.find(command.id);
      if (p == pending_.end()) continue;
      ready_.outcomes.push_back(ProposalOutcome{command.id, Outcome::kChosen, it->first, leader_});
      pending_.erase(p);
    }
  }
  handed_out_ = commit_;
  if (changed) on_new_membership();
}

// ---------------------------------------------------------------------------------------------
// Membership.

void Replica::adopt_membership(MembershipRef membership, Slot first_slot) {
  membership_ = std::move(membership);
  lease_until_ms_ = 0;  // a lease counts answers of one configuration's quorum
  prevote_.reset();     // its grants were counted against the voters of another configuration
  quorum_ = std::make_shared<const QuorumSystem>(membership_->quorum(config_.bugs));
  proposal_quorum_ = quorum_;
  configs_[first_slot] = membership_;
  ready_.membership = membership_;
  // Members of changes accepted or learned above this one are still heard from.
  also_known_.clear();
  peers_.clear();
  note_members(*membership_);
  for (auto it = accepted_.lower_bound(first_slot); it != accepted_.end(); ++it) {
    if (it->second.value.membership) note_members(*it->second.value.membership);
  }
  for (auto it = chosen_.lower_bound(first_slot); it != chosen_.end(); ++it) {
    if (it->second.membership) note_members(*it->second.membership);
  }
}

// also_known_ and peers_ hold every member of the current configuration and of the changes
// above it known here; peers_ is what broadcasts and heartbeats walk, so it is kept, not rebuilt.
void Replica::note_members(const Membership& m) {
  for (const Member& member : m.members) {
    if (also_known_.contains(member.id)) continue;
    also_known_.insert(member.id);
    peers_.insert(std::lower_bound(peers_.begin(), peers_.end(), member.id), member.id);
  }
}

// A configuration change was committed here. A leader that is no longer a voter steps down; one
// that still leads continues past the change once a phase-1 quorum of the new voters promised its
// ballot (asking those that have not), and its reads are served again from then on.
void Replica::on_new_membership() {
  if (role_ != Role::kFollower && !membership_->is_voter(config_.self)) {
    // Tell everyone the change is chosen before going: the new voters learn they are voters.
    if (role_ == Role::kLeader) broadcast(AcceptMsg{ballot_, {}, commit_, read_round_});
    step_down(StepDownReason::kRemoved);
    return;
  }
  if (role_ != Role::kLeader) return;
  if (transfer_target_.valid() && !membership_->is_voter(transfer_target_)) end_transfer();
  if (pending_config_slot_ != 0 && commit_ >= pending_config_slot_) {
    pending_config_slot_ = 0;
    recovery_fence_ = false;
  }
  phase1_ready_ = quorum_->is_phase1_quorum(promised_by_);
  if (!phase1_ready_) {
    ask_missing_promises();
    return;
  }
  propose_held();
}

// A leader binds every member whose incarnation it has seen and the configuration does not record
// yet, in one change of its own (no client asked for it, so it carries no command).
bool Replica::bind_seen(Membership& next) const {
  bool changed = false;
  for (Member& m : next.members) {
    if (m.incarnation != 0) continue;
    const uint64_t seen = m.id == config_.self ? config_.incarnation : [&]() -> uint64_t {
      auto it = seen_incarnation_.find(m.id);
      return it == seen_incarnation_.end() ? 0 : it->second;
    }();
    if (seen == 0) continue;
    m.incarnation = seen;
    changed = true;
  }
  return changed;
}

void Replica::bind_incarnations() {
  if (role_ != Role::kLeader || pending_config_slot_ != 0 || recovering() ||
      transfer_target_.valid())
    return;
  Membership next = *membership_;
  if (!bind_seen(next)) return;
  ++next.epoch;
  Value value;
  value.membership = std::make_shared<const Membership>(std::move(next));
  propose_change(std::move(value));
}

// A voter campaigns; so does a replica that accepted or learned a change above its commit point
// that makes it a voter: if that change is chosen it may be the only one who can lead (the last
// voter of the old configuration, which proposed it, stepped down as soon as it was chosen).
// Campaigning is always safe — any replica may propose — and it runs phase 1 with the
// configuration of its first unchosen slot, whoever's voters those are.
bool Replica::may_campaign() const {
  if (membership_ == nullptr || !votes()) return false;
  if (membership_->is_voter(config_.self)) return true;
  for (auto it = accepted_.upper_bound(commit_); it != accepted_.end(); ++it) {
    if (it->second.value.membership && it->second.value.membership->is_voter(config_.self))
      return true;
  }
  for (auto it = chosen_.upper_bound(commit_); it != chosen_.end(); ++it) {
    if (it->second.membership && it->second.membership->is_voter(config_.self)) return true;
  }
  return false;
}

// Whether this replica's acceptor may promise and accept (docs/core.md, "Incarnations"). Not when
// a configuration it knows binds its id to another incarnation: its directory was wiped or
// replaced since, and it has forgotten what that incarnation promised and accepted. And a replica
// on a directory made for joining not before a configuration it knows binds its own incarnation:
// until then it cannot tell a new member from a wiped one back under its old id (the simulator's
// and `--join`'s), and a proposer that knows no binding (a founding voter down since the start)
// would count its empty promise in the bootstrap configuration and choose over what the others
// chose (sim --protocol --reconfig, seeds 15159 and 17810). Until it votes it learns like a
// learner that is down: it answers nothing that counts, and catches up.
bool Replica::votes() const {
  // (wiped-replica-votes turns off every defence against a wiped replica, this one too.)
  if (config_.incarnation == 0 || config_.bugs.unbound_replica_votes ||
      config_.bugs.wiped_replica_votes)
    return true;
  const Member* me = membership_ ? membership_->find(config_.self) : nullptr;
  if (me != nullptr && me->incarnation != 0) return me->incarnation == config_.incarnation;
  return !config_.join;
}

// The slots this replica's acceptor cannot vouch for although it votes: on a directory made for
// joining, every slot below the first configuration binding its own incarnation. Its id may have
// voted there as an incarnation whose directory was wiped before any configuration bound it
// (votes() cannot tell then), and this one never saw those votes. It learned those slots as
// chosen, so a promise reports them the way a snapshot does (PromiseMsg::snapshot): a candidate
// preparing below catches up from it instead of counting an empty promise there; and it answers
// an Accept there only for the value chosen (on_accept).
Slot Replica::vote_floor() const {
  if (!config_.join || config_.incarnation == 0 || config_.bugs.promise_below_binding) return 0;
  for (const auto& [first, membership] : configs_) {
    const Member* me = membership->find(config_.self);
    if (me != nullptr && me->incarnation == config_.incarnation) return first - 1;
  }
  return 0;  // not bound yet, so it does not vote
}

bool Replica::knows(NodeId peer) const {
  return membership_ == nullptr || also_known_.contains(peer);
}

uint32_t Replica::catchup_interval() const {
  return config_.retransmit_interval_ticks << std::min(catchup_misses_, kMaxCatchupBackoff);
}

void Replica::request_catchup(bool retry, NodeId asker) {
  if (incoming_ && incoming_->slot <= commit_) incoming_.reset();  // overtaken by the log
  if (catchup_outstanding_ && !retry) return;
  // A peer that asked us for something and knows more (ask_back), else the leader, while it is
  // heard from: one silent for an election timeout may be down, or wiped and refused (sim
  // --protocol --reconfig seed 13100: a voter behind the binding that would let it vote asked a
  // wiped leader for the rest of its snapshot, forever).
  const bool leader_heard = leader_silence_ticks_ < config_.election_timeout_min_ticks ||
                            config_.bugs.catchup_asks_silent_leader;
  NodeId source = asker;
  if (!source.valid() && leader_heard) source = leader_;
  if (!source.valid() || source == config_.self) {
    // No leader to ask: ask another peer at random (the one after this replica, if it drew
    // itself).
    if (peers_.empty() || (peers_.size() == 1 && peers_[0] == config_.self)) return;
    const size_t pick = rng_.below(peers_.size());
    source = peers_[pick] != config_.self ? peers_[pick] : peers_[(pick + 1) % peers_.size()];
  }
  catchup_outstanding_ = true;
  catchup_elapsed_ = 0;
  if (incoming_ && retry) {
    // Resume the snapshot transfer where it stopped (from any peer: if it moved on to a newer
    // snapshot, it answers from offset 0 of that one).
    incoming_->source = source;
    send(source, SnapshotRequestMsg{incoming_->slot, incoming_->data.size()});
    return;
  }
  send(source, CatchupRequestMsg{commit_ + 1});
}

void Replica::on_catchup_request(NodeId from, const CatchupRequestMsg& msg) {
  if (msg.first_slot <= snapshot_.slot) return send_snapshot_chunk(from, 0);
  CatchupReplyMsg reply{{}, commit_, msg.first_slot, {}};
  if (msg.first_slot <= commit_ + 1) reply.membership = membership_at(msg.first_slot - 1);
  size_t used_bytes = 0;
  const auto add = [&](Slot slot, Value value) {
    const size_t bytes = 8 + encoded_bytes(value);
    if (!fits_message(reply.chosen.size(), used_bytes, bytes)) return false;
    used_bytes += bytes;
    reply.chosen.push_back(SlotValue{slot, std::move(value)});
    return true;
  };
  // Values let go of are read back from the log; one that cannot be read now ends the reply (the
  // asker asks again from there).
  bool full = false;
  for (Slot slot = msg.first_slot; slot <= released_ && !full; ++slot) {
    std::optional<Value> value = chosen_log_.read(slot);
    full = !value || !add(slot, std::move(*value));
  }
  for (auto it = chosen_.lower_bound(msg.first_slot); it != chosen_.end() && !full; ++it)
    full = !add(it->first, it->second);
  send(from, std::move(reply));
  // The asker has learned every slot below the one it asks from: if that is more than we know,
  // ask it back. A spare that had just been made the only voter, restarted knowing no
  // configuration (so no peer to ask) and heard only the others asking it for what follows
  // their chosen prefix; it answered and waited, and nobody ever led (sim --protocol --reconfig
  // seed 5471).
  if (msg.first_slot > 0) ask_back(from, msg.first_slot - 1);
}

// A replica that does not vote yet (votes()) learns only by catch-up, and may know no peer to ask
// (a joiner that knows no configuration): one that asks it for a vote and has chosen more than it
// is one. A voter made of a joiner behind the binding that lets it vote waited for a leader that
// its own vote would have elected (sim --protocol --reconfig seed 10361).
// (An overdue request counts as lost: a joiner that knows no configuration has no peer to ask it
// again of, and the leader it asked may be gone.)
void Replica::ask_back(NodeId from, Slot their_commit) {
  if (their_commit <= commit_ || !may_catch_up() || config_.bugs.deaf_to_askers) return;
  if (catchup_outstanding_ && catchup_elapsed_ < catchup_interval()) return;
  // (Not taken as known_commit_: an asker's claim is unchecked, and a hostile one of slot 2^64
  // would make this replica ask for catch-up after every heartbeat from then on. The answer
  // tells what is chosen.)
  // (Resuming a snapshot in progress, if there is one: sim --protocol --reconfig seed 8377.)
  request_catchup(/*retry=*/true, from);
}

void Replica::on_catchup_reply(const CatchupReplyMsg& msg) {
  if (!may_catch_up()) return;  // asked before this replica led: it needs nothing from it
  // A replica that joined starts from the configuration that governs the slots it asked for (if
  // the sender knows it; else from the first change among them).
  if (membership_ == nullptr && msg.membership && msg.first_slot == commit_ + 1)
    adopt_membership(msg.membership, msg.first_slot);
  known_commit_ = std::max(known_commit_, msg.commit);
  for (const SlotValue& entry : msg.chosen) learn(entry.slot, entry.value);
  const Slot before = commit_;
  advance_commit();
  if (commit_ == before && msg.first_slot <= commit_) return;  // a late copy of an older answer
  if (commit_ > before) catchup_misses_ = 0;
  catchup_outstanding_ = false;
  // Keep pulling while the reply moved us forward and we are still behind.
  if (commit_ < known_commit_ && commit_ > before) request_catchup(/*retry=*/false);
}

// ---------------------------------------------------------------------------------------------
// Snapshots and compaction.

void Replica::compact(Slot upto, std::shared_ptr<const std::string> data) {
  SYNOD_ASSERT(data != nullptr, "a snapshot without data");
  const uint64_t digest = snapshot_digest(*data);
  compact(upto, in_memory(std::move(data), digest));
}

void Replica::compact(Slot upto, SnapshotBytes bytes) {
  SYNOD_ASSERT(upto <= handed_out_, "a snapshot beyond what the state machine was handed");
  SYNOD_ASSERT(bytes.read != nullptr, "a snapshot without a reader of its bytes");
  if (upto <= snapshot_.slot) return;
  snapshot_ = SnapshotRef{upto, nullptr, membership_at(upto)};
  snapshot_bytes_ = std::move(bytes);
  forget_through(upto);
}

void Replica::serve_snapshot_from(SnapshotReader read) {
  SYNOD_ASSERT(snapshot_.slot > 0 && read != nullptr, "no snapshot to serve from a file");
  snapshot_bytes_.read = std::move(read);
}

namespace {

// Moves the entries of `m` at or below `upto` into `below` (empty), without copying or freeing
// any: the few above it are moved node by node into a map of their own.
template <typename V>
void split_through(std::map<Slot, V>& m, Slot upto, std::map<Slot, V>& below) {
  std::map<Slot, V> above;
  for (auto it = m.upper_bound(upto); it != m.end();) {
    auto next = std::next(it);
    above.insert(above.end(), m.extract(it));
    it = next;
  }
  below.swap(m);
  m.swap(above);
}

}  // namespace

void Replica::forget_through(Slot upto) {
  auto forgotten = std::make_unique<Forgotten>();
  split_through(accepted_, upto, forgotten->accepted);
  split_through(chosen_, upto, forgotten->chosen);
  if (dispose_) dispose_(std::move(forgotten));
  count_held_bytes();
  // Only the configuration that governs upto + 1 and those above it can matter from here on.
  auto governing = configs_.upper_bound(upto + 1);
  if (governing != configs_.begin()) configs_.erase(configs_.begin(), std::prev(governing));
}

std::optional<Value> Replica::chosen_value(Slot slot) const {
  if (auto c = chosen_.find(slot); c != chosen_.end()) return c->second;
  if (slot > snapshot_.slot && slot <= released_) return chosen_log_.read(slot);
  return std::nullopt;
}

void Replica::count_held_bytes() {
  held_bytes_ = 0;
  for (const auto& [slot, value] : chosen_) held_bytes_ += encoded_bytes(value);
}

// Lets go of the oldest chosen values while more than Config::log_memory_bytes are held: those
// the state machine has been handed and the driver's log holds. Catch-up reads them back from the
// log; promises report them as compacted, and Accepts there are answered as for compacted slots.
// Every slot up to commit_ is in chosen_ unless compacted or let go of, so what is let go of is a
// prefix.
void Replica::release_chosen() {
  if (!chosen_log_.holds || held_bytes_ <= config_.log_memory_bytes) return;
  Slot upto = released_;
  size_t bytes = 0;
  for (auto it = chosen_.begin(); it != chosen_.end(); ++it) {
    if (held_bytes_ - bytes <= config_.log_memory_bytes) break;
    if (it->first > handed_out_ || !chosen_log_.holds(it->first)) break;
    bytes += encoded_bytes(it->second);
    upto = it->first;
  }
  if (upto == released_) return;
  held_bytes_ -= bytes;
  released_ = upto;
  // Under load a few slots go at a time. Megabytes at once (a replica that restarted with a long
  // log, once its first sync makes it durable) take the loop milliseconds to free: those go to
  // the driver's disposer, as compaction's do.
  constexpr size_t kDisposeBytes = 1 << 20;
  if (dispose_ && bytes >= kDisposeBytes) {
    auto forgotten = std::make_unique<Forgotten>();
    split_through(accepted_, upto, forgotten->accepted);
    split_through(chosen_, upto, forgotten->chosen);
    dispose_(std::move(forgotten));
    return;
  }
  chosen_.erase(chosen_.begin(), chosen_.upper_bound(upto));
  accepted_.erase(accepted_.begin(), accepted_.upper_bound(upto));
}

MembershipRef Replica::membership_at(Slot slot) const {
  SYNOD_ASSERT(slot <= commit_, "the configuration after a slot not committed here");
  auto it = configs_.upper_bound(slot + 1);
  if (it == configs_.begin()) return nullptr;  // joined, and learned no configuration yet
  return std::prev(it)->second;
}

void Replica::send_snapshot_chunk(NodeId to, uint64_t offset) {
  if (snapshot_.slot == 0) {
    // No snapshot here: our log starts at slot 1. Say so (an empty chunk of slot 0, which is
    // below any asker's commit point), and the asker turns to catch-up from us. Silence would
    // have it ask again forever: a laggard that had begun another peer's snapshot asked the
    // next leader, which had none, for the rest of it (sim --core seed 405 of 5 replicas with
    // disk faults, once replicas stopped snapshotting at the same slots).
    if (!config_.bugs.silent_without_snapshot) send(to, SnapshotChunkMsg{0, 0, 0, 0, {}, nullptr});
    return;
  }
  const uint64_t size = snapshot_bytes_.size;
  offset = std::min<uint64_t>(offset, size);
  const size_t n =
      static_cast<size_t>(std::min<uint64_t>(config_.snapshot_chunk_bytes, size - offset));
  auto chunk = snapshot_bytes_.read(offset, n);
  if (!chunk || chunk->size() != n) return;  // unreadable now: the peer asks again
  send(to, SnapshotChunkMsg{snapshot_.slot, size, snapshot_bytes_.digest, offset, std::move(*chunk),
                            snapshot_.membership});
}

void Replica::on_snapshot_request(NodeId from, const SnapshotRequestMsg& msg) {
  // Our newest snapshot: from the asked offset if it is the one being transferred, else anew.
  send_snapshot_chunk(from, msg.slot == snapshot_.slot ? msg.offset : 0);
}

void Replica::on_snapshot_chunk(NodeId from, const SnapshotChunkMsg& msg) {
  if (!may_catch_up()) return;  // as for catch-up replies: a leader learns from its quorums only
  if (msg.slot <= commit_) {
    if (incoming_ && incoming_->slot <= commit_) incoming_.reset();
    if (incoming_ && from == incoming_->source) {
      // We asked this peer to resume another peer's newer snapshot, and its own newest is one we
      // are already past: it will never send that one. But its log starts at or below our
      // commit point, so it can send the slots we miss: ask it for them instead of asking again
      // for a snapshot it does not have (which, until it takes a newer one, would be forever).
      incoming_.reset();
      catchup_outstanding_ = true;
      catchup_elapsed_ = 0;
      send(from, CatchupRequestMsg{commit_ + 1});
    }
    return;  // we already have all of it
  }
  if (!incoming_ || incoming_->slot != msg.slot) {
    // Another snapshot than the one in progress (the peer we now ask has a different one): any
    // snapshot above our commit point helps, so switch to it, from its beginning.
    if (msg.offset != 0) return;
    incoming_ = Incoming{msg.slot, msg.total, msg.digest, {}, from};
  }
  Incoming& in = *incoming_;
  if (msg.total != in.total || msg.digest != in.digest) {
    incoming_.reset();  // the sender's snapshot at this slot changed: not ours to trust
    return;
  }
  if (msg.offset != in.data.size() || in.data.size() + msg.data.size() > in.total ||
      (msg.data.empty() && in.data.size() < in.total)) {
    return;  // a duplicate or out of order: the retry timer asks again if needed
  }
  in.data += msg.data;
  in.source = from;
  catchup_outstanding_ = true;
  catchup_elapsed_ = 0;
  catchup_misses_ = 0;
  if (in.data.size() < in.total) {
    send(from, SnapshotRequestMsg{in.slot, in.data.size()});
    return;
  }
  if (snapshot_digest(in.data) != in.digest) {
    incoming_.reset();  // corrupted in transit: ask again
    catchup_outstanding_ = false;
    request_catchup(/*retry=*/false);
    return;
  }
  const uint64_t digest = in.digest;
  SnapshotRef snapshot{in.slot, std::make_shared<const std::string>(std::move(in.data)),
                       msg.membership};
  incoming_.reset();
  install_snapshot(std::move(snapshot), digest);
}

void Replica::install_snapshot(SnapshotRef snapshot, uint64_t digest) {
  const Slot slot = snapshot.slot;
  // Proposals of ours in slots the snapshot covers are never handed out one by one: report them
  // now (review finding: the client got UNKNOWN for a command that was applied). A deposed leader
  // keeps only proposals whose slot it learned chosen from its own quorum, so with its value; the
  // state machine answers them from its exactly-once memory.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second == 0 || it->second > slot) {
      ++it;
      continue;
    }
    const bool chosen = chosen_.count(it->second) != 0;
    ready_.outcomes.push_back(ProposalOutcome{
        it->first, chosen ? Outcome::kChosen : Outcome::kUnknown, it->second, leader_});
    it = pending_.erase(it);
  }
  snapshot_ = snapshot;
  snapshot_bytes_ = in_memory(snapshot_.data, digest);
  std::erase_if(accepted_, [&](const auto& kv) { return kv.first <= slot; });
  std::erase_if(chosen_, [&](const auto& kv) { return kv.first <= slot; });
  count_held_bytes();
  if (snapshot_.membership) {
    configs_.clear();
    adopt_membership(snapshot_.membership, slot + 1);
  } else if (membership_ != nullptr) {
    snapshot_.membership = membership_;  // a snapshot from an older peer: the configuration stays
  }
  // Entries this Ready would hand out below the snapshot are subsumed by it.
  std::erase_if(ready_.committed, [&](const SlotValue& e) { return e.slot <= slot; });
  ready_.persist.snapshot = snapshot_;
  ready_.install = snapshot_;
  snapshot_.data = nullptr;  // (snapshot_bytes_ holds them until the driver serves its file)
  SYNOD_ASSERT(slot > commit_, "installing a snapshot we do not need");
  commit_ = handed_out_ = slot;
  known_commit_ = std::max(known_commit_, slot);
  catchup_outstanding_ = false;
  advance_commit();
  if (commit_ < known_commit_) request_catchup(/*retry=*/false);
}

// ---------------------------------------------------------------------------------------------
// Plumbing.

void Replica::send(NodeId to, Message message) {
  if (auto* accept = std::get_if<AcceptMsg>(&message)) accept->time_ms = time_ms_;
  if (const auto* accept = std::get_if<AcceptMsg>(&message);
      accept != nullptr && to != config_.self)
    commit_sent_[to] = std::max(commit_sent_[to], accept->commit);
  if (to == config_.self) {
    // Our own acceptor answers at once; its answer comes back to us through the driver, after
    // the persist it depends on.
    if (auto* prepare = std::get_if<PrepareMsg>(&message)) return on_prepare(to, *prepare);
    if (auto* accept = std::get_if<AcceptMsg>(&message)) return on_accept(to, *accept);
  }
  ready_.messages.push_back(Envelope{config_.self, to, std::move(message), config_.incarnation});
}

void Replica::broadcast(const Message& message) {
  for (NodeId member : peers_) send(member, message);
}

void Replica::notice_ballot(const Ballot& ballot) {
  // A round our acceptor would refuse must not lift our own next ballot out of what the other
  // acceptors accept either (base/types.h, plausible_round).
  if (!config_.bugs.absurd_rounds_taken &&
      !plausible_round(std::max(highest_round_seen_, promised_.round), ballot))
    return;
  highest_round_seen_ = std::max(highest_round_seen_, ballot.round);
}

void Replica::reset_election_timer() {
  election_elapsed_ = 0;
  election_timeout_ = static_cast<uint32_t>(
      rng_.between(config_.election_timeout_min_ticks, config_.election_timeout_max_ticks));
}

// ---------------------------------------------------------------------------------------------
// Model checking.

bool Replica::timer_armed(Timer timer) const {
  switch (timer) {
    case Timer::kElection:
      return role_ != Role::kLeader;
    case Timer::kHeartbeat:
    case Timer::kQuorumCheck:
      return role_ == Role::kLeader;
    case Timer::kRetransmit:
      return role_ == Role::kLeader && !inflight_.empty();
    case Timer::kCatchup:
      return catchup_outstanding_ && may_catch_up();
  }
  return false;
}

void Replica::fire_timer(Timer timer) {
  election_elapsed_ = catchup_elapsed_ = heartbeat_elapsed_ = quorum_check_elapsed_ = 0;
  transfer_elapsed_ = 0;
  if (hears_leader()) leader_silence_ticks_ = 0;  // (stickiness ends only by forget_leader())
  for (auto& [slot, flight] : inflight_) flight.ticks_since_sent = 0;
  switch (timer) {
    case Timer::kElection:
      election_elapsed_ = election_timeout_ - 1;
      break;
    case Timer::kHeartbeat:
      heartbeat_elapsed_ = config_.heartbeat_interval_ticks - 1;
      break;
    case Timer::kRetransmit:
      heartbeat_elapsed_ = config_.heartbeat_interval_ticks - 1;
      for (auto& [slot, flight] : inflight_) {
        flight.ticks_since_sent = config_.retransmit_interval_ticks - 1;
      }
      break;
    case Timer::kQuorumCheck:
      quorum_check_elapsed_ = config_.election_timeout_min_ticks - 1;
      if (transfer_target_.valid()) transfer_elapsed_ = config_.election_timeout_min_ticks - 1;
      break;
    case Timer::kCatchup:
      catchup_elapsed_ = catchup_interval() - 1;
      break;
  }
  tick();
  // Reads do not age: a read that times out only fails, which no safety property can notice.
  for (PendingRead& read : reads_) read.asked_tick = leader_ticks_;
}

namespace {

void encode_proposals(std::string& out, const std::map<Slot, Proposal>& proposals) {
  put_u32(out, static_cast<uint32_t>(proposals.size()));
  for (const auto& [slot, proposal] : proposals) {
    put_u64(out, slot);
    encode_ballot(out, proposal.ballot);
    encode_value(out, proposal.value);
  }
}

}  // namespace

void Replica::encode_state(std::string& out) const {
  put_u8(out, static_cast<uint8_t>(role_));
  encode_ballot(out, promised_);
  put_u32(out, static_cast<uint32_t>(commit_sent_.size()));
  for (const auto& [peer, slot] : commit_sent_) {
    put_u32(out, peer.value);
    put_u64(out, slot);
  }
  put_u8(out, membership_ != nullptr);
  if (membership_ != nullptr) encode_membership(out, *membership_);
  encode_node_set(out, also_known_);
  encode_proposals(out, accepted_);
  encode_ballot(out, time_ballot_);
  put_u64(out, time_seen_ms_);
  encode_ballot(out, time_horizon_.ballot);
  put_u64(out, time_horizon_.ms);
  encode_ballot(out, recovered_horizon_.ballot);
  put_u64(out, recovered_horizon_.ms);
  put_u32(out, static_cast<uint32_t>(chosen_.size()));
  for (const auto& [slot, value] : chosen_) {
    put_u64(out, slot);
    encode_value(out, value);
  }
  put_u64(out, commit_);
  put_u64(out, handed_out_);
  put_u64(out, known_commit_);
  put_u64(out, snapshot_.slot);
  put_u64(out, released_);
  put_u64(out, snapshot_bytes_.digest);
  put_u8(out, incoming_.has_value());
  if (incoming_) {
    put_u64(out, incoming_->slot);
    put_u64(out, incoming_->total);
    put_u64(out, incoming_->digest);
    put_bytes(out, incoming_->data);
    put_u32(out, incoming_->source.value);
  }
  encode_ballot(out, ballot_);
  put_u64(out, highest_round_seen_);
  put_u32(out, leader_.value);
  encode_ballot(out, leader_ballot_);
  put_u64(out, time_ms_);
  put_u8(out, catchup_outstanding_);
  put_u64(out, read_round_);  // only grows, across leaderships
  put_u8(out, hears_leader());
  put_u8(out, prevote_.has_value());
  if (prevote_) {
    encode_ballot(out, prevote_->ballot);
    encode_node_set(out, prevote_->granted);
  }
  if (role_ == Role::kCandidate) {
    // Phase-1 tallies: start_election() resets them, and nothing outside candidacy reads them.
    put_u64(out, prepare_from_);
    encode_node_set(out, promised_by_);
    encode_proposals(out, recovered_);
    encode_ballot(out, promise_parts_ballot_);
    put_u32(out, static_cast<uint32_t>(promise_parts_.size()));
    for (const auto& [node, slot] : promise_parts_) {
      put_u32(out, node.value);
      put_u64(out, slot);
    }
    encode_ballot(out, time_floor_.ballot);
    put_u64(out, time_floor_.seen_ms);
    encode_ballot(out, time_floor_.horizon.ballot);
    put_u64(out, time_floor_.horizon.ms);
  }
  if (role_ == Role::kLeader) {
    // Leader state: become_leader() resets it, and step_down() empties it.
    put_u64(out, next_slot_);
    put_u32(out, static_cast<uint32_t>(inflight_.size()));
    for (const auto& [slot, flight] : inflight_) {
      put_u64(out, slot);
      encode_value(out, flight.value);
      encode_node_set(out, flight.voters);
    }
    encode_node_set(out, heard_from_);
    put_u32(out, transfer_target_.value);
    put_u8(out, transfer_sent_);
    put_u64(out, transfer_covered_);
    put_u32(out, static_cast<uint32_t>(transfer_acked_.size()));
    for (Slot slot : transfer_acked_) put_u64(out, slot);
    put_u32(out, static_cast<uint32_t>(read_round_acked_.size()));
    for (const auto& [node, round] : read_round_acked_) {
      put_u32(out, node.value);
      put_u64(out, round);
    }
  }
  // Proposals and reads in progress; queue_ and reads_ are empty outside leadership.
  put_u32(out, static_cast<uint32_t>(queue_.size()));
  for (const Command& command : queue_) {
    put_u64(out, command.id.client);
    put_u64(out, command.id.seq);
    put_bytes(out, command.payload);
  }
  put_u32(out, static_cast<uint32_t>(pending_.size()));
  for (const auto& [id, slot] : pending_) {
    put_u64(out, id.client);
    put_u64(out, id.seq);
    put_u64(out, slot);
  }
  put_u32(out, static_cast<uint32_t>(reads_.size()));
  for (const PendingRead& read : reads_) {
    put_u64(out, read.id);
    put_u64(out, read.index);
    put_u64(out, read.round);
  }
  // The lease (only with lease reads on, so that the state space without them is unchanged).
  if (config_.read_lease_ms > 0) {
    put_u64(out, clock_ms_);
    put_u64(out, lease_until_ms_);
    put_u8(out, lease_forfeited_ ? 1 : 0);
    put_u32(out, boot_ticks_);
    put_u32(out, static_cast<uint32_t>(round_sent_ms_.size()));
    for (const auto& [round, ms] : round_sent_ms_) {
      put_u64(out, round);
      put_u64(out, ms);
    }
  }
}

}  // namespace synod::paxos
