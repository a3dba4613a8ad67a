#include "paxos/messages.h"

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

}  // namespace

std::string to_string(const Message& message) {
  return std::visit(
      [](const auto& m) -> std::string {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PrepareMsg>) {
          return "Prepare b=" + to_string(m.ballot) + " from=" + std::to_string(m.first_slot);
        } else if constexpr (std::is_same_v<T, PromiseMsg>) {
          std::string out = "Promise b=" + to_string(m.ballot) + " {";
          for (size_t i = 0; i < m.accepted.size(); ++i) {
            if (i > 0) out += ' ';
            const AcceptedEntry& e = m.accepted[i];
            out += std::to_string(e.slot) + '@' + to_string(e.proposal.ballot) + '=' +
                   to_string(e.proposal.value);
          }
          return out + "}";
        } else if constexpr (std::is_same_v<T, AcceptMsg>) {
          return "Accept b=" + to_string(m.ballot) + " " + entries_to_string(m.entries) +
                 " commit=" + std::to_string(m.commit);
        } else if constexpr (std::is_same_v<T, AcceptedMsg>) {
          return "Accepted b=" + to_string(m.ballot) + " " + slots_to_string(m.slots) +
                 " commit=" + std::to_string(m.commit);
        } else if constexpr (std::is_same_v<T, RejectMsg>) {
          return "Reject b=" + to_string(m.ballot) + " promised=" + to_string(m.promised);
        } else if constexpr (std::is_same_v<T, CatchupRequestMsg>) {
          return "CatchupRequest from=" + std::to_string(m.first_slot);
        } else {
          return "CatchupReply " + entries_to_string(m.chosen) +
                 " commit=" + std::to_string(m.commit);
        }
      },
      message);
}

std::string to_string(const Envelope& envelope) {
  return to_string(envelope.from) + "->" + to_string(envelope.to) + " " +
         to_string(envelope.message);
}

void DurableState::apply(const PersistBatch& batch) {
  if (batch.promised && *batch.promised > promised) promised = *batch.promised;
  for (const AcceptedEntry& entry : batch.accepted) accepted[entry.slot] = entry.proposal;
  for (const SlotValue& entry : batch.chosen) chosen.emplace(entry.slot, entry.value);
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
