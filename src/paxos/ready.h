// What the core hands its driver, and what the driver hands back after a crash.
//
// The contract (etcd's Ready, Paxos's durability rule): for each Ready, the driver
//   1. makes `persist` durable (in order, after every earlier Ready's persist),
//   2. only then sends `messages` — an acceptor's answer never leaves before the state it vouches
//      for is on disk. Messages addressed to this replica itself are its own acceptor's answers:
//      deliver them back through step(), also only after step 1;
//   3. applies `committed` to the state machine, in slot order, and delivers `outcomes`.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "paxos/messages.h"

namespace synod::paxos {

struct PersistBatch {
  std::optional<Ballot> promised;       // the acceptor's newest promise
  std::vector<AcceptedEntry> accepted;  // newly accepted proposals; later ones replace earlier
  std::vector<SlotValue> chosen;        // newly learned chosen values

  bool empty() const { return !promised && accepted.empty() && chosen.empty(); }
};

// Exactly what a replica's persisted batches made durable; a restart begins from this.
struct DurableState {
  Ballot promised;
  std::map<Slot, Proposal> accepted;
  std::map<Slot, Value> chosen;

  void apply(const PersistBatch& batch);
  bool operator==(const DurableState&) const = default;
};

enum class Outcome {
  kChosen,   // chosen, in `slot`; applied with this Ready's committed entries
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

struct Ready {
  PersistBatch persist;
  std::vector<Envelope> messages;
  std::vector<SlotValue> committed;  // contiguous, in slot order, each handed out once
  std::vector<ProposalOutcome> outcomes;

  bool empty() const {
    return persist.empty() && messages.empty() && committed.empty() && outcomes.empty();
  }
};

}  // namespace synod::paxos
