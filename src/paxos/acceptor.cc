#include "paxos/acceptor.h"

#include <algorithm>

namespace synod::paxos {

bool may_promise(const Ballot& promised, const Ballot& ballot, uint64_t known_round) {
  return ballot >= promised && plausible_round(std::max(promised.round, known_round), ballot);
}

bool may_accept(const Ballot& promised, const Ballot& ballot, const Bugs& bugs,
                uint64_t known_round) {
  if (!bugs.absurd_rounds_taken && !plausible_round(std::max(promised.round, known_round), ballot))
    return false;
  return ballot >= promised || bugs.accept_lower_ballot;
}

Acceptor::Acceptor(State durable, Bugs bugs) : state_(std::move(durable)), bugs_(bugs) {
  if (state_.accepted) state_.promised = std::max(state_.promised, state_.accepted->ballot);
}

Acceptor::State Acceptor::durable_view() const {
  State view = state_;
  if (bugs_.no_persist_promise) {
    // The planted bug: the promise stays in memory only; a restart falls back to the ballot of
    // the accepted proposal, if any.
    view.promised = state_.accepted ? state_.accepted->ballot : Ballot{};
  }
  return view;
}

Acceptor::Output Acceptor::on_prepare(const Prepare& prepare) {
  if (!may_promise(state_.promised, prepare.ballot)) {
    return {std::nullopt, Reject{prepare.ballot, state_.promised}};
  }
  std::optional<State> persist;
  if (prepare.ballot > state_.promised) {
    state_.promised = prepare.ballot;
    persist = durable_view();
  }
  return {std::move(persist), Promise{prepare.ballot, state_.accepted}};
}

Acceptor::Output Acceptor::on_accept(const Accept& accept) {
  if (!may_accept(state_.promised, accept.ballot, bugs_)) {
    return {std::nullopt, Reject{accept.ballot, state_.promised}};
  }
  state_.promised = std::max(state_.promised, accept.ballot);
  state_.accepted = Proposal{accept.ballot, accept.value};
  return {durable_view(), Accepted{accept.ballot, accept.value}};
}

}  // namespace synod::paxos
