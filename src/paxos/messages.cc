#include "paxos/messages.h"

#include <algorithm>

#include "base/hash.h"
#include "paxos/ready.h"

namespace synod::paxos {

namespace {

std::string slots_to_string(const std::vector<Slot>& slots) {
  std::string out = "[";
  for (size_t i = 0; i < slots.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(slots[i]);
  }
  return out + "]";
}

std::string entries_to_string(const std::vector<SlotValue>& entries) {
  std::string out = "{";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ' ';
    out += std::to_string(entries[i].slot) + '=' + to_string(entries[i].value);
  }
  return out + "}";
}

// Only rounds that carry reads show in traces.
std::string read_round_to_string(uint64_t round) {
  return round == 0 ? std::string() : " read_round=" + std::to_string(round);
}

// Only drivers that keep a cluster clock (node::ServerCore) set times; the others' traces stay.
std::string time_to_string(const char* name, uint64_t ms) {
  return ms == 0 ? std::string() : std::string(" ") + name + "=" + std::to_string(ms);
}

}  // namespace

std::string to_string(const Message& message) {
  return std::visit(
      [](const auto& m) -> std::string {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PrepareMsg>) {
          return "Prepare b=" + to_string(m.ballot) + " from=" + std::to_string(m.first_slot) +
                 (m.transfer ? " transfer=" + to_string(m.transfer_from) : "");
        } else if constexpr (std::is_same_v<T, PromiseMsg>) {
          std::string out = "Promise b=" + to_string(m.ballot) + " {";
          for (size_t i = 0; i < m.accepted.size(); ++i) {
            if (i > 0) out += ' ';
            const AcceptedEntry& e = m.accepted[i];
            out += std::to_string(e.slot) + '@' + to_string(e.proposal.ballot) + '=' +
                   to_string(e.proposal.value);
          }
          out += "}";
          if (m.snapshot != 0) out += " snapshot=" + std::to_string(m.snapshot);
          if (m.last_slot != kEverySlot) out += " through=" + std::to_string(m.last_slot);
          if (m.time_ms != 0) out += " time_b=" + to_string(m.time_ballot);
          return out + time_to_string("time", m.time_ms) +
                 time_to_string("horizon", m.time_horizon_ms) +
                 (m.time_horizon_ms != 0 ? " horizon_b=" + to_string(m.time_horizon_ballot) : "");
        } else if constexpr (std::is_same_v<T, AcceptMsg>) {
          return "Accept b=" + to_string(m.ballot) + " " + entries_to_string(m.entries) +
                 " commit=" + std::to_string(m.commit) + read_round_to_string(m.read_round) +
                 time_to_string("time", m.time_ms);
        } else if constexpr (std::is_same_v<T, AcceptedMsg>) {
          return "Accepted b=" + to_string(m.ballot) + " " + slots_to_string(m.slots) +
                 " commit=" + std::to_string(m.commit) + read_round_to_string(m.read_round);
        } else if constexpr (std::is_same_v<T, RejectMsg>) {
          return "Reject b=" + to_string(m.ballot) + " promised=" + to_string(m.promised);
        } else if constexpr (std::is_same_v<T, CatchupRequestMsg>) {
          return "CatchupRequest from=" + std::to_string(m.first_slot);
        } else if constexpr (std::is_same_v<T, CatchupReplyMsg>) {
          return "CatchupReply " + entries_to_string(m.chosen) +
                 " commit=" + std::to_string(m.commit);
        } else if constexpr (std::is_same_v<T, SnapshotChunkMsg>) {
          return "SnapshotChunk slot=" + std::to_string(m.slot) + " bytes " +
                 std::to_string(m.offset) + ".." + std::to_string(m.offset + m.data.size()) +
                 " of " + std::to_string(m.total);
        } else if constexpr (std::is_same_v<T, PreVoteMsg>) {
          return "PreVote b=" + to_string(m.ballot) + " commit=" + std::to_string(m.commit);
        } else if constexpr (std::is_same_v<T, PreVoteReplyMsg>) {
          return "PreVoteReply b=" + to_string(m.ballot) + (m.granted ? " granted" : " refused") +
                 " promised=" + to_string(m.promised) + " commit=" + std::to_string(m.commit);
        } else if constexpr (std::is_same_v<T, TimeoutNowMsg>) {
          return "TimeoutNow b=" + to_string(m.ballot);
        } else {
          static_assert(std::is_same_v<T, SnapshotRequestMsg>);
          return "SnapshotRequest slot=" + std::to_string(m.slot) +
                 " offset=" + std::to_string(m.offset);
        }
      },
      message);
}

std::string to_string(const Envelope& envelope) {
  std::string out = to_string(envelope.from);
  out += "->";
  out += to_string(envelope.to);
  out += ' ';
  out += to_string(envelope.message);
  return out;
}

void DurableState::apply(const PersistBatch& batch) {
  if (batch.promised && *batch.promised > promised) promised = *batch.promised;
  if (batch.snapshot) compact(*batch.snapshot);
  for (const AcceptedEntry& entry : batch.accepted) accepted[entry.slot] = entry.proposal;
  for (const SlotValue& entry : batch.chosen) chosen.emplace(entry.slot, entry.value);
  if (batch.time_horizon && batch.time_horizon->supersedes(time_horizon))
    time_horizon = *batch.time_horizon;
}

void DurableState::compact(const SnapshotRef& s) {
  if (s.slot <= snapshot.slot) return;
  snapshot = s;
  std::erase_if(accepted, [&](const auto& kv) { return kv.first <= s.slot; });
  std::erase_if(chosen, [&](const auto& kv) { return kv.first <= s.slot; });
}

uint64_t snapshot_digest(std::string_view data) {
  Digest d;
  d.add(data);
  return d.value();
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::kChosen:
      return "chosen";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

}  // namespace synod::paxos
