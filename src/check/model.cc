#include "check/model.h"

#include <algorithm>

#include "base/assert.h"
#include "base/coding.h"
#include "paxos/codec.h"

namespace synod::check {

using paxos::Acceptor;
using paxos::Proposal;

namespace {

constexpr NodeId node_of(int index) {
  return NodeId{uint32_t(index + 1)};
}

std::string acceptor_name(int a) {
  return "n" + std::to_string(a + 1);
}
std::string proposer_name(int p) {
  return "p" + std::to_string(p + 1);
}
std::string learner_name(int l) {
  return "l" + std::to_string(l + 1);
}

void put_ballot(std::string& out, const Ballot& b) {
  SYNOD_ASSERT(b.round < 256 && b.node.value < 256, "model ballots are small");
  put_u8(out, uint8_t(b.round));
  put_u8(out, uint8_t(b.node.value));
}

const char* phase_name(paxos::Proposer::Phase phase) {
  switch (phase) {
    case paxos::Proposer::Phase::kIdle:
      return "idle";
    case paxos::Proposer::Phase::kPreparing:
      return "preparing";
    case paxos::Proposer::Phase::kAccepting:
      return "accepting";
    case paxos::Proposer::Phase::kAbandoned:
      return "abandoned";
  }
  return "?";
}

}  // namespace

std::optional<std::string> bug_not_applicable(std::string_view name) {
  static constexpr std::string_view kApplicable[] = {
      "minority-quorum",     "ignore-promised-value", "no-persist-promise",
      "accept-lower-ballot", "leader-skip-phase1",    "ack-before-sync",
  };
  for (std::string_view applicable : kApplicable) {
    if (name == applicable) return std::nullopt;
  }
  if (name == "skip-fdatasync") {
    return "it is a bug in the write-ahead log's sync, and the model checker abstracts storage as "
           "an atomic durable state; run it with synod sim --disk-faults";
  }
  if (name == "promise-hides-snapshot" || name == "promise-hides-released") {
    return "it concerns Multi-Paxos log compaction, which single-decree Paxos does not have; run "
           "it with synod sim";
  }
  if (name == "absurd-rounds-taken") {
    return "it needs a peer that sends absurd rounds, which the model's proposers do not; run it "
           "with synod sim, whose hostile peer does";
  }
  if (name == "time-of-any-ballot" || name == "time-carried-into-new-ballot") {
    return "it concerns the cluster clock, which single-decree Paxos does not carry; run it with "
           "synod sim --core";
  }
  return "it lives outside the single-decree roles (in the Multi-Paxos replica, the storage layer "
         "or the server); run it with synod sim";
}

Model::Model(ModelConfig config) : config_(std::move(config)) {
  const Bounds& b = config_.bounds;
  SYNOD_ASSERT(b.acceptors >= 1 && b.acceptors <= 15, "acceptor count out of range");
  SYNOD_ASSERT(b.proposers >= 1 && b.proposers <= 15, "proposer count out of range");
  SYNOD_ASSERT(b.learners >= 1 && b.learners <= 15, "learner count out of range");
  SYNOD_ASSERT(b.ballots_per_proposer >= 1 && b.proposers * b.ballots_per_proposer < 256,
               "ballot bound out of range");
  SYNOD_ASSERT(b.crashes >= 0, "crash bound out of range");
  SYNOD_ASSERT(config_.quorum.members().size() == size_t(b.acceptors), "quorum over acceptors");
}

paxos::Value Model::value_of(int value) const {
  SYNOD_ASSERT(value >= 0 && value < config_.bounds.proposers, "no such value");
  return paxos::Value{{paxos::Command{{uint64_t(value + 1), 1}, value_name(value)}}};
}

int Model::value_id(const paxos::Value& value) const {
  for (int v = 0; v < config_.bounds.proposers; ++v) {
    if (value_of(v) == value) return v;
  }
  SYNOD_ASSERT(false, "validity: a value no proposer proposed");
  return -1;
}

std::string Model::value_name(int value) const {
  if (value < 0) return "none";
  return std::string(1, char('A' + value));
}

State Model::initial() const {
  const Bounds& b = config_.bounds;
  State s;
  for (int a = 0; a < b.acceptors; ++a) s.acceptors.push_back({Acceptor({}, config_.bugs), {}, {}});
  for (int p = 0; p < b.proposers; ++p) {
    s.proposers.emplace_back(node_of(p), config_.quorum, value_of(p), config_.bugs);
  }
  s.ballots_used.assign(size_t(b.proposers), 0);
  for (int l = 0; l < b.learners; ++l) s.learners.emplace_back(config_.quorum);
  s.first_learned.assign(size_t(b.learners), -1);
  return s;
}

std::vector<Action> Model::actions(const State& state) const {
  const Bounds& b = config_.bounds;
  std::vector<Action> out;
  for (int p = 0; p < b.proposers; ++p) {
    if (state.ballots_used[size_t(p)] < b.ballots_per_proposer) {
      out.push_back({Action::Kind::kBegin, p, {}});
    }
  }
  for (const Message& m : state.network) out.push_back({Action::Kind::kDeliver, 0, m});
  if (b.explicit_drops) {
    for (const Message& m : state.network) out.push_back({Action::Kind::kDrop, 0, m});
  }
  for (int a = 0; a < b.acceptors; ++a) {
    const AcceptorBox& box = state.acceptors[size_t(a)];
    // A crash that would restart the acceptor exactly as it is changes nothing but the budget.
    const bool changes = box.unsynced || Acceptor(box.durable).state() != box.role.state();
    if (state.crashes_used < b.crashes && changes) out.push_back({Action::Kind::kCrash, a, {}});
    if (box.unsynced) out.push_back({Action::Kind::kSync, a, {}});
  }
  return out;
}

void Model::send(State& state, const Message& message) const {
  auto it = std::lower_bound(state.network.begin(), state.network.end(), message);
  if (it == state.network.end() || *it != message) state.network.insert(it, message);
}

void Model::broadcast_to_acceptors(State& state, Message message) const {
  for (int a = 0; a < config_.bounds.acceptors; ++a) {
    message.to = uint8_t(a);
    send(state, message);
  }
}

void Model::make_durable(State& state, int acceptor, const Acceptor::State& durable) const {
  state.acceptors[size_t(acceptor)].durable = durable;
  if (!durable.accepted) return;
  auto [it, fresh] = state.votes.try_emplace(durable.accepted->ballot,
                                             value_id(durable.accepted->value), paxos::NodeSet{});
  SYNOD_ASSERT(it->second.first == value_id(durable.accepted->value), "one value per ballot");
  it->second.second.insert(node_of(acceptor));
}

void Model::persist(State& state, int acceptor,
                    const std::optional<Acceptor::State>& persist) const {
  if (!persist) return;
  if (config_.bugs.ack_before_sync) {
    state.acceptors[size_t(acceptor)].unsynced = *persist;
  } else {
    make_durable(state, acceptor, *persist);
  }
}

void Model::deliver_to_acceptor(State& state, const Message& m) const {
  AcceptorBox& box = state.acceptors[m.to];
  Acceptor::Output out = m.kind == MessageKind::kPrepare
                             ? box.role.on_prepare(paxos::Prepare{m.ballot})
                             : box.role.on_accept(paxos::Accept{m.ballot, value_of(m.value)});
  persist(state, m.to, out.persist);
  const uint8_t proposer = uint8_t(m.ballot.node.value - 1);
  if (const auto* promise = std::get_if<paxos::Promise>(&out.reply)) {
    Message reply{MessageKind::kPromise, m.to, proposer, promise->ballot, {}, -1};
    if (promise->accepted) {
      reply.other = promise->accepted->ballot;
      reply.value = int8_t(value_id(promise->accepted->value));
    }
    send(state, reply);
  } else if (const auto* accepted = std::get_if<paxos::Accepted>(&out.reply)) {
    for (int l = 0; l < config_.bounds.learners; ++l) {
      send(state, Message{MessageKind::kAccepted,
                          m.to,
                          uint8_t(l),
                          accepted->ballot,
                          {},
                          int8_t(value_id(accepted->value))});
    }
  } else {
    const auto& reject = std::get<paxos::Reject>(out.reply);
    send(state, Message{MessageKind::kReject, m.to, proposer, reject.ballot, reject.promised, -1});
  }
}

void Model::deliver_to_proposer(State& state, const Message& m) const {
  paxos::Proposer& proposer = state.proposers[m.to];
  if (m.kind == MessageKind::kReject) {
    (void)proposer.on_reject(paxos::Reject{m.ballot, m.other});
    return;
  }
  paxos::Promise promise{m.ballot, std::nullopt};
  if (m.value >= 0) promise.accepted = Proposal{m.other, value_of(m.value)};
  std::optional<paxos::Accept> accept = proposer.on_promise(node_of(m.from), promise);
  if (accept) {
    broadcast_to_acceptors(
        state,
        Message{
            MessageKind::kAccept, m.to, 0, accept->ballot, {}, int8_t(value_id(accept->value))});
  }
}

void Model::deliver_to_learner(State& state, const Message& m) const {
  paxos::Learner& learner = state.learners[m.to];
  if (m.kind == MessageKind::kChosen) {
    (void)learner.on_chosen(paxos::Chosen{value_of(m.value)});
  } else if (learner.on_accepted(node_of(m.from), paxos::Accepted{m.ballot, value_of(m.value)})) {
    for (int l = 0; l < config_.bounds.learners; ++l) {
      if (l == m.to) continue;
      send(state, Message{MessageKind::kChosen, m.to, uint8_t(l), {}, {}, m.value});
    }
  }
  int& first = state.first_learned[m.to];
  if (first < 0 && learner.chosen()) first = value_id(*learner.chosen());
}

void Model::deliver(State& state, const Message& m) const {
  switch (m.kind) {
    case MessageKind::kPrepare:
    case MessageKind::kAccept:
      deliver_to_acceptor(state, m);
      return;
    case MessageKind::kPromise:
    case MessageKind::kReject:
      deliver_to_proposer(state, m);
      return;
    case MessageKind::kAccepted:
    case MessageKind::kChosen:
      deliver_to_learner(state, m);
      return;
  }
}

bool Model::is_dead(const State& state, const Message& m) const {
  switch (m.kind) {
    case MessageKind::kPrepare:
    case MessageKind::kAccept:
      return false;  // an acceptor's answer depends on its state, which keeps changing
    case MessageKind::kPromise: {
      // Counted only while its ballot is the proposer's and in phase 1; ballots only rise.
      const paxos::Proposer& p = state.proposers[m.to];
      return p.phase() != paxos::Proposer::Phase::kPreparing || p.ballot() != m.ballot ||
             p.promised_by().contains(node_of(m.from));
    }
    case MessageKind::kReject: {
      const paxos::Proposer& p = state.proposers[m.to];
      const bool abandons = p.ballot() == m.ballot && m.other > p.ballot() &&
                            (p.phase() == paxos::Proposer::Phase::kPreparing ||
                             p.phase() == paxos::Proposer::Phase::kAccepting);
      return m.other.round <= p.highest_round_seen() && !abandons;
    }
    case MessageKind::kAccepted: {
      // A learner that decided ignores acceptances (its tallies no longer matter; see encode).
      const paxos::Learner& l = state.learners[m.to];
      if (l.chosen()) return true;
      auto it = l.tallies().find(m.ballot);
      return it != l.tallies().end() && it->second.voters.contains(node_of(m.from));
    }
    case MessageKind::kChosen:
      return state.learners[m.to].chosen().has_value();
  }
  return false;
}

void Model::step(State& state, const Action& action) const {
  apply(state, action);
  std::erase_if(state.network, [&](const Message& m) { return is_dead(state, m); });
}

void Model::apply(State& state, const Action& action) const {
  switch (action.kind) {
    case Action::Kind::kBegin: {
      paxos::Proposer& proposer = state.proposers[size_t(action.role)];
      ++state.ballots_used[size_t(action.role)];
      const paxos::Prepare prepare = proposer.begin(proposer.highest_round_seen() + 1);
      Message m{MessageKind::kPrepare, uint8_t(action.role), 0, prepare.ballot, {}, -1};
      if (config_.bugs.leader_skip_phase1) {
        // The planted bug, as the Multi-Paxos leader has it: straight to phase 2 with its own
        // value, as if every acceptor had promised and none reported a proposal.
        m.kind = MessageKind::kAccept;
        m.value = int8_t(action.role);
      }
      broadcast_to_acceptors(state, m);
      return;
    }
    case Action::Kind::kDeliver:
      deliver(state, action.message);
      return;
    case Action::Kind::kDrop: {
      auto it = std::lower_bound(state.network.begin(), state.network.end(), action.message);
      SYNOD_ASSERT(it != state.network.end() && *it == action.message,
                   "drop of a message in flight");
      state.network.erase(it);
      return;
    }
    case Action::Kind::kCrash: {
      AcceptorBox& box = state.acceptors[size_t(action.role)];
      box.role = Acceptor(box.durable, config_.bugs);
      box.unsynced.reset();
      ++state.crashes_used;
      return;
    }
    case Action::Kind::kSync: {
      AcceptorBox& box = state.acceptors[size_t(action.role)];
      SYNOD_ASSERT(box.unsynced.has_value(), "sync with nothing to sync");
      make_durable(state, action.role, *box.unsynced);
      box.unsynced.reset();
      return;
    }
  }
}

std::string Model::encode(const State& state) const {
  std::string out;
  auto put_state = [&](const Acceptor::State& s) {
    put_ballot(out, s.promised);
    put_ballot(out, s.accepted ? s.accepted->ballot : Ballot{});
    put_u8(out, s.accepted ? uint8_t(value_id(s.accepted->value)) : 0xff);
  };
  for (const AcceptorBox& box : state.acceptors) {
    put_state(box.role.state());
    put_state(box.durable);
    put_u8(out, box.unsynced ? 1 : 0);
    if (box.unsynced) put_state(*box.unsynced);
  }
  for (size_t p = 0; p < state.proposers.size(); ++p) {
    const paxos::Proposer& proposer = state.proposers[p];
    put_u8(out, uint8_t(proposer.phase()));
    put_ballot(out, proposer.ballot());
    put_u8(out, uint8_t(proposer.highest_round_seen()));
    put_u8(out, uint8_t(state.ballots_used[p]));
    // Phase-1 bookkeeping matters only in phase 1: begin() resets it.
    if (proposer.phase() != paxos::Proposer::Phase::kPreparing) continue;
    paxos::encode_node_set(out, proposer.promised_by());
    const auto& reported = proposer.highest_reported();
    put_ballot(out, reported ? reported->ballot : Ballot{});
    put_u8(out, reported ? uint8_t(value_id(reported->value)) : 0xff);
  }
  for (size_t l = 0; l < state.learners.size(); ++l) {
    const paxos::Learner& learner = state.learners[l];
    put_u8(out, learner.chosen() ? uint8_t(value_id(*learner.chosen())) : 0xff);
    put_u8(out, uint8_t(state.first_learned[l]));
    if (learner.chosen()) continue;  // a learner that decided never changes again
    put_u8(out, uint8_t(learner.tallies().size()));
    for (const auto& [ballot, tally] : learner.tallies()) {
      put_ballot(out, ballot);
      put_u8(out, uint8_t(value_id(tally.value)));
      paxos::encode_node_set(out, tally.voters);
    }
  }
  put_u32(out, uint32_t(state.network.size()));
  for (const Message& m : state.network) {
    put_u8(out, uint8_t(m.kind));
    put_u8(out, m.from);
    put_u8(out, m.to);
    put_ballot(out, m.ballot);
    put_ballot(out, m.other);
    put_u8(out, uint8_t(m.value));
  }
  put_u8(out, uint8_t(state.votes.size()));
  for (const auto& [ballot, vote] : state.votes) {
    put_ballot(out, ballot);
    put_u8(out, uint8_t(vote.first));
    paxos::encode_node_set(out, vote.second);
  }
  put_u8(out, uint8_t(state.crashes_used));
  return out;
}

std::vector<int> Model::chosen_values(const State& state) const {
  std::vector<int> out;
  for (const auto& [ballot, vote] : state.votes) {
    if (!config_.true_quorum.is_phase2_quorum(vote.second)) continue;
    if (std::find(out.begin(), out.end(), vote.first) == out.end()) out.push_back(vote.first);
  }
  return out;
}

std::optional<std::string> Model::violation(const State& state) const {
  const std::vector<int> chosen = chosen_values(state);
  if (chosen.size() > 1) {
    std::string what = "agreement: two values chosen:";
    for (const auto& [ballot, vote] : state.votes) {
      if (!config_.true_quorum.is_phase2_quorum(vote.second)) continue;
      what += " " + value_name(vote.first) + " in ballot " + to_string(ballot) + " by " +
              to_string(vote.second) + ";";
    }
    what.pop_back();
    return what;
  }
  for (size_t l = 0; l < state.learners.size(); ++l) {
    const auto& learned = state.learners[l].chosen();
    if (!learned) continue;
    const int v = value_id(*learned);
    if (v != state.first_learned[l]) {
      return "agreement: learner " + learner_name(int(l)) + " learned " +
             value_name(state.first_learned[l]) + " and then " + value_name(v);
    }
    if (chosen.empty() || chosen.front() != v) {
      return "truth: learner " + learner_name(int(l)) + " learned " + value_name(v) +
             ", which no phase-2 quorum accepted in one ballot";
    }
  }
  return std::nullopt;
}

std::string Model::describe(const Message& m) const {
  const std::string b = to_string(m.ballot);
  switch (m.kind) {
    case MessageKind::kPrepare:
      return "Prepare(" + b + ") " + proposer_name(m.from) + " -> " + acceptor_name(m.to);
    case MessageKind::kPromise:
      return "Promise(" + b + ", accepted " +
             (m.value < 0 ? "none" : to_string(m.other) + "=" + value_name(m.value)) + ") " +
             acceptor_name(m.from) + " -> " + proposer_name(m.to);
    case MessageKind::kAccept:
      return "Accept(" + b + ", " + value_name(m.value) + ") " + proposer_name(m.from) + " -> " +
             acceptor_name(m.to);
    case MessageKind::kAccepted:
      return "Accepted(" + b + ", " + value_name(m.value) + ") " + acceptor_name(m.from) + " -> " +
             learner_name(m.to);
    case MessageKind::kReject:
      return "Reject(" + b + ", promised " + to_string(m.other) + ") " + acceptor_name(m.from) +
             " -> " + proposer_name(m.to);
    case MessageKind::kChosen:
      return "Chosen(" + value_name(m.value) + ") " + learner_name(m.from) + " -> " +
             learner_name(m.to);
  }
  return "?";
}

std::string Model::describe(const Action& action) const {
  switch (action.kind) {
    case Action::Kind::kBegin:
      return proposer_name(action.role) + " starts a new ballot" +
             (config_.bugs.leader_skip_phase1 ? " (skipping phase 1)" : "");
    case Action::Kind::kDeliver:
      return "deliver " + describe(action.message);
    case Action::Kind::kDrop:
      return "drop " + describe(action.message);
    case Action::Kind::kCrash:
      return acceptor_name(action.role) + " crashes and restarts from its durable state";
    case Action::Kind::kSync:
      return acceptor_name(action.role) + " syncs its state to disk";
  }
  return "?";
}

std::vector<std::string> Model::describe(const State& state) const {
  auto show = [&](const Acceptor::State& s) {
    return "promised " + to_string(s.promised) + ", accepted " +
           (s.accepted
                ? to_string(s.accepted->ballot) + "=" + value_name(value_id(s.accepted->value))
                : "none");
  };
  std::vector<std::string> out;
  for (size_t a = 0; a < state.acceptors.size(); ++a) {
    const AcceptorBox& box = state.acceptors[a];
    std::string line = acceptor_name(int(a)) + ": " + show(box.role.state());
    line += box.durable == box.role.state() ? " (durable)" : "; durable " + show(box.durable);
    if (box.unsynced) line += "; unsynced " + show(*box.unsynced);
    out.push_back(std::move(line));
  }
  for (size_t p = 0; p < state.proposers.size(); ++p) {
    const paxos::Proposer& proposer = state.proposers[p];
    const auto& reported = proposer.highest_reported();
    out.push_back(proposer_name(int(p)) + ": " + phase_name(proposer.phase()) + " ballot " +
                  to_string(proposer.ballot()) + ", promises from " +
                  to_string(proposer.promised_by()) + ", highest reported " +
                  (reported
                       ? to_string(reported->ballot) + "=" + value_name(value_id(reported->value))
                       : "none") +
                  ", ballots used " + std::to_string(state.ballots_used[p]));
  }
  for (size_t l = 0; l < state.learners.size(); ++l) {
    const paxos::Learner& learner = state.learners[l];
    std::string line = learner_name(int(l)) + ": learned " +
                       (learner.chosen() ? value_name(value_id(*learner.chosen())) : "nothing");
    for (const auto& [ballot, tally] : learner.tallies()) {
      line += ", " + to_string(ballot) + "=" + value_name(value_id(tally.value)) + " from " +
              to_string(tally.voters);
    }
    out.push_back(std::move(line));
  }
  std::string chosen = "chosen:";
  for (int v : chosen_values(state)) chosen += " " + value_name(v);
  out.push_back(chosen.size() > 7 ? chosen : "chosen: nothing");
  return out;
}

}  // namespace synod::check
