// The state space the model checker explores: a small configuration of the REAL single-decree
// roles (paxos::Acceptor, paxos::Proposer, paxos::Learner) wired together by a model network and
// model disks. One State is everything that can differ between two runs; Model enumerates the
// Actions enabled in a state and applies one, deterministically.
//
// Fault model (docs/model-checker.md):
//   - the network is the set of every message ever sent: any of them may be delivered at any time,
//     any number of times, in any order, or never (which is what loss is); with explicit drops a
//     message may also be removed from the set. A message whose delivery can never again change
//     anything (a promise for a ballot its proposer left) is removed, which merges states that
//     differ only in such messages;
//   - an acceptor may crash and restart from its durable state at any point between two steps,
//     at most `crashes` times in all; persisting and answering are one step, since a crash
//     between them is the same as losing the answer (except under ack-before-sync, where the
//     answer leaves first and the sync is a step of its own);
//   - each proposer starts at most `ballots_per_proposer` ballots, each above every round it saw.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/acceptor.h"
#include "paxos/bugs.h"
#include "paxos/learner.h"
#include "paxos/proposer.h"
#include "paxos/quorum.h"

namespace synod::check {

struct Bounds {
  int acceptors = 3;
  int proposers = 2;  // proposer p proposes its own value, named "A", "B", ... by p
  int learners = 1;
  int ballots_per_proposer = 1;
  int crashes = 1;              // acceptor crash-restarts, in all
  bool explicit_drops = false;  // also explore removing a message from the network
};

struct ModelConfig {
  Bounds bounds;
  paxos::QuorumSystem quorum;       // what the roles count with
  paxos::QuorumSystem true_quorum;  // what "chosen" means (differs only under minority-quorum)
  paxos::Bugs bugs;
};

// Why the planted bug `name` cannot be run by the single-decree model, or nothing if it can.
std::optional<std::string> bug_not_applicable(std::string_view name);

enum class MessageKind : uint8_t { kPrepare, kPromise, kAccept, kAccepted, kReject, kChosen };

// One message in flight. Roles are indices: proposer p is ballot node p+1, acceptor a is node
// a+1. Values are proposer indices (-1: none).
struct Message {
  MessageKind kind = MessageKind::kPrepare;
  uint8_t from = 0;
  uint8_t to = 0;
  Ballot ballot;      // Prepare, Promise, Accept, Accepted, Reject (the ballot refused)
  Ballot other;       // Promise: the accepted proposal's ballot; Reject: the ballot promised
  int8_t value = -1;  // Promise: the accepted proposal's value; Accept, Accepted, Chosen
  auto operator<=>(const Message&) const = default;
};

struct Action {
  enum class Kind : uint8_t { kBegin, kDeliver, kDrop, kCrash, kSync };
  Kind kind = Kind::kBegin;
  int role = 0;       // kBegin: the proposer; kCrash, kSync: the acceptor
  Message message{};  // kDeliver, kDrop
};

struct AcceptorBox {
  paxos::Acceptor role;
  paxos::Acceptor::State durable;
  std::optional<paxos::Acceptor::State> unsynced;  // ack-before-sync: sent on, not yet durable
};

struct State {
  std::vector<AcceptorBox> acceptors;
  std::vector<paxos::Proposer> proposers;
  std::vector<int> ballots_used;  // per proposer
  std::vector<paxos::Learner> learners;
  std::vector<int> first_learned;  // ghost, per learner: the first value it learned (-1: none)
  std::vector<Message> network;    // sorted, no duplicates
  // Ghost: per ballot, its value and the acceptors that made accepting it durable, ever.
  std::map<Ballot, std::pair<int, paxos::NodeSet>> votes;
  int crashes_used = 0;
};

class Model {
 public:
  explicit Model(ModelConfig config);

  const ModelConfig& config() const { return config_; }
  State initial() const;
  // Every action enabled in `state`, in a fixed order.
  std::vector<Action> actions(const State& state) const;
  // Applies `action`, then removes every message whose delivery can no longer change anything.
  void step(State& state, const Action& action) const;

  // A canonical encoding: two states get the same encoding exactly when every future of one is
  // a future of the other. It leaves out what the roles can no longer act on: a proposer's
  // phase-1 tallies outside phase 1, and a learner's tallies once it decided.
  std::string encode(const State& state) const;
  // The first safety property `state` breaks, in words.
  std::optional<std::string> violation(const State& state) const;

  // One line per role, for traces.
  std::vector<std::string> describe(const State& state) const;
  std::string describe(const Action& action) const;
  std::string describe(const Message& message) const;
  std::string value_name(int value) const;

 private:
  paxos::Value value_of(int value) const;
  int value_id(const paxos::Value& value) const;
  void apply(State& state, const Action& action) const;
  // True if delivering `message` is a no-op now and in every state reachable from here.
  bool is_dead(const State& state, const Message& message) const;
  void send(State& state, const Message& message) const;
  void broadcast_to_acceptors(State& state, Message message) const;
  void make_durable(State& state, int acceptor, const paxos::Acceptor::State& durable) const;
  void persist(State& state, int acceptor,
               const std::optional<paxos::Acceptor::State>& persist) const;
  void deliver(State& state, const Message& message) const;
  void deliver_to_acceptor(State& state, const Message& message) const;
  void deliver_to_proposer(State& state, const Message& message) const;
  void deliver_to_learner(State& state, const Message& message) const;
  std::vector<int> chosen_values(const State& state) const;

  ModelConfig config_;
};

}  // namespace synod::check
