// The acceptor of single-decree Paxos ("Paxos Made Simple", section 2.2), and the two rules that
// every acceptor in Synod — this one and the Multi-Paxos replica's — follows:
//   P1a: an acceptor may answer Prepare(b) with a promise unless it has promised a higher ballot;
//   P2:  an acceptor may accept (b, v) unless it has promised a higher ballot.
// Both also refuse a ballot whose round is implausible (base/types.h, plausible_round): beyond
// the ceiling, or so far above every round it knows that no honest proposer could have got there.
// An acceptor's answer must never leave before the state it vouches for is durable, so handlers
// return the state to persist and the reply separately; the caller persists, then sends.
#pragma once

#include <optional>
#include <variant>

#include "base/types.h"
#include "paxos/bugs.h"
#include "paxos/value.h"

namespace synod::paxos {

// A proposal that an acceptor accepted.
struct Proposal {
  Ballot ballot;
  Value value;
  bool operator==(const Proposal&) const = default;
};

// `known_round`: the highest round this replica has taken seriously, if above its promise (a
// replica that heard of a higher round from a Reject follows it there; base/types.h).
bool may_promise(const Ballot& promised, const Ballot& ballot, uint64_t known_round = 0);
bool may_accept(const Ballot& promised, const Ballot& ballot, const Bugs& bugs,
                uint64_t known_round = 0);

// Single-decree messages.
struct Prepare {
  Ballot ballot;
};
struct Promise {
  Ballot ballot;
  std::optional<Proposal> accepted;  // the highest-ballot proposal this acceptor accepted
};
struct Accept {
  Ballot ballot;
  Value value;
};
struct Accepted {
  Ballot ballot;
  Value value;
};
struct Reject {
  Ballot ballot;    // the ballot refused
  Ballot promised;  // the higher ballot the acceptor promised instead
};
struct Chosen {  // from a learner that decided, to the other learners
  Value value;
};

class Acceptor {
 public:
  // Everything the acceptor must not forget across a crash.
  struct State {
    Ballot promised;
    std::optional<Proposal> accepted;
    bool operator==(const State&) const = default;
  };
  using Reply = std::variant<Promise, Accepted, Reject>;
  struct Output {
    std::optional<State> persist;  // make this durable first (absent: nothing changed)
    Reply reply;                   // then send this
  };

  // Starts (or restarts) from what was durable. Accepting (b, v) implies a promise of b, so the
  // promise is at least the accepted ballot even if the promise record itself was lost.
  explicit Acceptor(State durable = {}, Bugs bugs = {});

  Output on_prepare(const Prepare& prepare);
  Output on_accept(const Accept& accept);

  const State& state() const { return state_; }

 private:
  State durable_view() const;

  State state_;
  Bugs bugs_;
};

}  // namespace synod::paxos
