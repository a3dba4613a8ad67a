#include "sim/checker.h"

#include <algorithm>

#include "base/hash.h"
#include "paxos/membership.h"

namespace synod::sim {

using paxos::Value;

void Checker::fail(std::string what) {
  if (!violation_) violation_ = std::move(what);
}

void Checker::on_propose(const paxos::Command& command) {
  auto [it, inserted] = proposed_.emplace(command.id, command.payload);
  if (!inserted && it->second != command.payload) {
    fail("harness: command id reused with another payload");
  }
}

void Checker::check_valid(Slot slot, const Value& value) {
  for (const paxos::Command& command : value.commands) {
    auto it = proposed_.find(command.id);
    if (it == proposed_.end() || it->second != command.payload) {
      fail("validity: slot " + std::to_string(slot) + " holds " + to_string(value) +
           ", which no client proposed");
      return;
    }
  }
}

void Checker::on_durable_accept(NodeId acceptor, Slot slot, const paxos::Proposal& proposal,
                                uint64_t wiped_as) {
  auto [it, inserted] = votes_.try_emplace({slot, proposal.ballot}, Votes{{}, proposal.value, {}});
  Votes& votes = it->second;
  if (votes.value != proposal.value) {
    fail("agreement: ballot " + to_string(proposal.ballot) + " carries two values for slot " +
         std::to_string(slot) + ": " + to_string(votes.value) + " and " +
         to_string(proposal.value));
    return;
  }
  if (wiped_as != 0) {
    votes.wiped.emplace_back(acceptor, wiped_as);
  } else {
    votes.acceptors.insert(acceptor);
  }
  if (!is_quorum(slot, votes)) return;
  choose(slot, votes.value, proposal.ballot);
}

bool Checker::is_quorum(Slot slot, const Votes& votes) const {
  const Governing& g = governing(slot);
  if (votes.wiped.empty() || g.membership == nullptr)
    return g.quorum.is_phase2_quorum(votes.acceptors);
  paxos::NodeSet counted = votes.acceptors;
  for (const auto& [id, incarnation] : votes.wiped) {
    const paxos::Member* m = g.membership->find(id);
    if (m != nullptr && m->incarnation == incarnation) counted.insert(id);
  }
  return g.quorum.is_phase2_quorum(counted);
}

const Checker::Governing& Checker::governing(Slot slot) const {
  return std::prev(governing_.upper_bound(slot))->second;
}

void Checker::choose(Slot slot, const Value& value, const Ballot& ballot) {
  auto [chosen, fresh] = truth_.try_emplace(slot, value);
  if (!fresh) {
    if (chosen->second != value) {
      fail("agreement: two values chosen for slot " + std::to_string(slot) + ": " +
           to_string(chosen->second) + " and " + to_string(value) + " (ballot " +
           to_string(ballot) + ")");
    }
    return;
  }
  check_valid(slot, value);
  if (!value.membership) return;
  if (Status s = paxos::verify_membership(*value.membership); !s.is_ok()) {
    fail("configurations: slot " + std::to_string(slot) + " chose " + value.membership->describe() +
         ", which fails verification: " + s.to_string());
    return;
  }
  // Every slot above this one (up to the next change chosen) is governed by it: votes cast there
  // are judged again with its quorums.
  governing_.insert_or_assign(slot + 1, Governing{value.membership->quorum(), value.membership});
  const Slot next_change = [&] {
    auto it = governing_.upper_bound(slot + 1);
    return it == governing_.end() ? ~Slot{0} : it->first;
  }();
  for (auto it = votes_.upper_bound({slot, Ballot{~uint64_t{0}, NodeId{~uint32_t{0}}}});
       it != votes_.end() && it->first.first < next_change; ++it) {
    if (is_quorum(it->first.first, it->second))
      choose(it->first.first, it->second.value, it->first.second);
  }
}

void Checker::on_learn(NodeId node, Slot slot, const Value& value) {
  auto truth = truth_.find(slot);
  if (truth == truth_.end()) {
    fail("truth: " + to_string(node) + " learned " + to_string(value) + " for slot " +
         std::to_string(slot) + ", which no quorum accepted");
    return;
  }
  if (truth->second != value) {
    fail("agreement: " + to_string(node) + " learned " + to_string(value) + " for slot " +
         std::to_string(slot) + " but " + to_string(truth->second) + " is chosen");
    return;
  }
  auto [first, fresh] = learned_.try_emplace(slot, value);
  if (!fresh && first->second != value) {
    fail("agreement: replicas learned different values for slot " + std::to_string(slot));
  }
}

uint64_t chain_digest(uint64_t chain, Slot slot, const Value& value) {
  Digest d;
  d.add(std::to_string(chain) + "/" + std::to_string(slot) + "=" + to_string(value));
  return d.value();
}

void Checker::on_leader_learn(NodeId leader, Slot before, Slot after, std::string_view via) {
  fail("leader learning: leader " + to_string(leader) + " moved its chosen prefix from " +
       std::to_string(before) + " to " + std::to_string(after) + " on a " + std::string(via) +
       ", not on its own quorum's answers");
}

void Checker::on_install(NodeId node, Slot slot, uint64_t chain) {
  uint64_t truth_chain = 0;
  for (Slot s = 1; s <= slot; ++s) {
    auto it = truth_.find(s);
    if (it == truth_.end()) {
      fail("snapshot: " + to_string(node) + " installed a snapshot through slot " +
           std::to_string(slot) + " but slot " + std::to_string(s) + " is not chosen");
      return;
    }
    truth_chain = chain_digest(truth_chain, s, it->second);
  }
  if (truth_chain != chain) {
    fail("snapshot: " + to_string(node) + " installed a snapshot through slot " +
         std::to_string(slot) + " that differs from the chosen log");
    return;
  }
  next_apply_[node] = slot + 1;
}

void Checker::on_acknowledge(Slot slot) {
  acknowledged_top_ = std::max(acknowledged_top_, slot);
}

void Checker::on_read_request(uint64_t read_id) {
  const Slot chosen_top = truth_.empty() ? 0 : truth_.rbegin()->first;
  read_floor_[read_id] = std::max(acknowledged_top_, chosen_top);
}

void Checker::on_read_result(NodeId node, const paxos::ReadResult& result) {
  auto it = read_floor_.find(result.read_id);
  if (it == read_floor_.end()) {
    fail("reads: " + to_string(node) + " answered read r" + std::to_string(result.read_id) +
         ", which it was never asked");
    return;
  }
  const Slot floor = it->second;
  read_floor_.erase(it);
  if (result.ok && result.slot < floor) {
    fail("reads: " + to_string(node) + " served read r" + std::to_string(result.read_id) +
         " at slot " + std::to_string(result.slot) + ", below slot " + std::to_string(floor) +
         ", which was chosen before the read was asked (a stale read)");
  }
}

void Checker::on_restart(NodeId node) {
  next_apply_[node] = 1;
}

void Checker::on_apply(NodeId node, Slot slot, const Value& value) {
  Slot& next = next_apply_.try_emplace(node, 1).first->second;
  if (slot != next) {
    fail("prefix: " + to_string(node) + " applied slot " + std::to_string(slot) + " when slot " +
         std::to_string(next) + " was next");
    return;
  }
  ++next;
  auto truth = truth_.find(slot);
  if (truth == truth_.end() || truth->second != value) {
    fail("prefix: " + to_string(node) + " applied " + to_string(value) + " at slot " +
         std::to_string(slot) + ", which is not the chosen value" +
         (truth == truth_.end() ? std::string(" (none is chosen)")
                                : " (" + to_string(truth->second) + " is)"));
  }
}

}  // namespace synod::sim
