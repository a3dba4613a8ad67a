// A hand-driven cluster of Multi-Paxos replicas for unit and scenario tests: N real Replicas, each
// with a DurableState "disk", and a network queue whose delivery order, loss and partitions the
// test controls message by message. Header-only so that every *_test.cc can include it.
//
// After every input to a replica (tick, step, propose) the harness takes the replica's Ready and
// plays the driver's part of the contract in ready.h: it applies `persist` to the disk, then
// queues `messages` (self-addressed ones too: they come back through step() when delivered),
// then applies `committed` and records `outcomes`. On every Ready it also checks:
//   durability — a Promise or Accepted never leaves unless the disk, after this Ready's persist,
//                holds the promise and acceptances it vouches for;
//   prefix     — committed entries continue the replica's applied log slot by slot, and were
//                persisted as chosen first;
//   truth      — everything a replica learns or applies was really chosen: a true majority of
//                acceptors durably accepted it in one ballot (judged with the correct majority,
//                whatever quorum system or planted bug the replicas run with);
//   agreement  — no two values are ever chosen, or learned, for one slot;
//   size       — every message, encoded for the wire, fits Config::max_message_bytes.
// Violations are collected as text, not asserted, so that a test can show a check firing on a
// planted bug.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/types.h"
#include "paxos/bugs.h"
#include "paxos/codec.h"
#include "paxos/config.h"
#include "paxos/messages.h"
#include "paxos/quorum.h"
#include "paxos/ready.h"
#include "paxos/replica.h"
#include "paxos/value.h"

namespace synod::paxos::testing {

// The messages of type T in `ready`.
template <typename T>
std::vector<T> sent(const Ready& ready) {
  std::vector<T> out;
  for (const auto& e : ready.messages)
    if (auto* m = std::get_if<T>(&e.message)) out.push_back(*m);
  return out;
}

// Command `c<client>.<seq>`, whose payload is its own name.
inline Command command(uint64_t client, uint64_t seq) {
  return Command{CommandId{client, seq}, "c" + std::to_string(client) + "." + std::to_string(seq)};
}

inline Value value_of(std::vector<Command> commands) {
  return Value{std::move(commands)};
}

// The first word of a message's trace line: "Prepare", "Promise", "Accept", "Accepted", ...
inline std::string message_type(const Message& message) {
  const std::string line = to_string(message);
  return line.substr(0, line.find(' '));
}

// Which queued messages a delivery or drop applies to. kNoNode and an empty type match anything.
struct MessageFilter {
  NodeId from;
  NodeId to;
  std::string type;

  bool matches(const Envelope& envelope) const {
    return (!from.valid() || envelope.from == from) && (!to.valid() || envelope.to == to) &&
           (type.empty() || paxos::testing::message_type(envelope.message) == type);
  }
};

// Ticks a lone `replica` (no TestCluster around it) until its election timer fires, then grants
// its pre-vote in the name of `granter`, a peer that hears no leader: with a quorum of two it
// starts phase 1. Returns the ballot it asked about (zero if it never asked). Its Ready up to
// the grant, the PreVotes included, is discarded.
inline Ballot campaign_alone(Replica& replica, NodeId granter, int max_ticks = 1000) {
  for (int i = 0; i < max_ticks; ++i) {
    replica.tick();
    for (const Envelope& e : replica.take_ready().messages) {
      if (const auto* prevote = std::get_if<PreVoteMsg>(&e.message)) {
        replica.step(Envelope{granter, replica.id(), PreVoteReplyMsg{prevote->ballot, true, {}}});
        return prevote->ballot;
      }
    }
  }
  return Ballot{};
}

struct ClusterOptions {
  Bugs bugs;
  uint64_t seed = 1;
  // Applied to each replica's Config after the defaults (members 1..N, majority quorums).
  std::function<void(Config&)> configure;
  // Replicas n<N+1>..n<N+spares>, started with Config::join: members only once a configuration
  // change adds them.
  size_t spares = 0;
};

class TestCluster {
 public:
  // Replicas n1..n<size>, all up, with empty disks.
  explicit TestCluster(size_t size, ClusterOptions options = {}) : options_(std::move(options)) {
    SYNOD_ASSERT(size >= 1 && size <= kMaxMembers, "cluster size out of range");
    for (uint32_t i = 1; i <= size; ++i) members_.push_back(NodeId{i});
    all_ = members_;
    for (uint32_t i = 1; i <= options_.spares; ++i) all_.push_back(NodeId{uint32_t(size) + i});
    for (NodeId id : all_) {
      nodes_[id].incarnation = 0;
      start(id);
    }
  }

  const std::vector<NodeId>& members() const { return members_; }
  size_t size() const { return members_.size(); }
  bool is_up(NodeId id) const { return node(id).replica != nullptr; }

  Replica& replica(NodeId id) {
    SYNOD_ASSERT(is_up(id), "replica is down");
    return *node(id).replica;
  }
  const DurableState& disk(NodeId id) const { return node(id).disk; }
  // The committed entries this replica's state machine applied, in slot order, since it last
  // (re)started.
  const std::vector<SlotValue>& applied(NodeId id) const { return node(id).applied; }
  // Every outcome this replica reported, in order, across restarts.
  const std::vector<ProposalOutcome>& outcomes(NodeId id) const { return node(id).outcomes; }
  // Every Ready this replica produced since the test last cleared the list.
  std::vector<Ready>& readies(NodeId id) { return node(id).readies; }

  const std::deque<Envelope>& in_flight() const { return network_; }
  size_t count_in_flight(const MessageFilter& filter) const {
    return static_cast<size_t>(std::count_if(network_.begin(), network_.end(),
                                             [&](const Envelope& e) { return filter.matches(e); }));
  }
  const std::vector<std::string>& violations() const { return violations_; }
  void clear_violations() { violations_.clear(); }
  // One line per event (deliveries, drops, crashes, role changes), for failure messages.
  const std::vector<std::string>& trace() const { return trace_; }
  std::string recent_trace(size_t lines) const {
    std::string out;
    const size_t first = trace_.size() > lines ? trace_.size() - lines : 0;
    for (size_t i = first; i < trace_.size(); ++i) out += "  " + trace_[i] + "\n";
    return out;
  }
  // Slots chosen by the true-majority rule, and their values.
  const std::map<Slot, Value>& truth() const { return truth_; }

  // --- Inputs. Each one processes the replica's Ready before returning.

  void tick(NodeId id, int times = 1) {
    for (int i = 0; i < times && is_up(id); ++i) {
      replica(id).tick();
      process(id);
    }
  }

  // Ticks every up replica once per round, without delivering anything.
  void tick_all(int times = 1) {
    for (int i = 0; i < times; ++i) {
      for (NodeId id : all_) tick(id);
    }
  }

  // Ticks `id` until it starts phase 1 (or becomes leader on its own). Returns the ticks used.
  // Its pre-vote rounds (Replica::start_prevote) are played out at once: every PreVote it sends
  // and every answer is delivered before the next tick (or lost, across a partition). The other
  // replicas' leader first fell silent, long enough that they no longer hear it (a follower that
  // still does refuses: see prevote_refused_while_leader_heard in replica_test.cc).
  int campaign(NodeId id, int max_ticks = 1000) {
    for (NodeId other : members_) {
      if (other != id && is_up(other)) replica(other).forget_leader();
    }
    return campaign_as_is(id, max_ticks);
  }
  // The same, but the other replicas keep hearing their leader if they do.
  int campaign_as_is(NodeId id, int max_ticks = 1000) {
    const Ballot before = replica(id).ballot();
    for (int ticks = 1; ticks <= max_ticks; ++ticks) {
      tick(id);
      deliver_prevotes(id);
      const Replica& r = replica(id);
      if (r.role() != Role::kFollower && r.ballot() != before) return ticks;
    }
    violations_.push_back(to_string(id) + " did not start phase 1 within " +
                          std::to_string(max_ticks) + " ticks");
    return max_ticks;
  }

  ProposeStatus propose(NodeId id, Command cmd) {
    const ProposeStatus status = replica(id).propose(std::move(cmd));
    process(id);
    return status;
  }

  // Takes and plays out the replica's Ready. Tests that call the Replica directly call this.
  void process(NodeId id) {
    Node& n = node(id);
    SYNOD_ASSERT(n.replica != nullptr, "replica is down");
    Ready ready = n.replica->take_ready();
    const Role role = n.replica->role();
    if (role != n.last_role) {
      n.last_role = role;
      trace_.push_back(to_string(id) + " is now " + to_string(role) + " at ballot " +
                       synod::to_string(n.replica->ballot()));
    }
    if (ready.empty()) return;
    n.disk.apply(ready.persist);
    if (ready.install) {
      // The state machine restarts from the snapshot: the entries it stands for (see compact).
      auto it = snapshots_.find(*ready.install->data);
      SYNOD_ASSERT(it != snapshots_.end(), "installing a snapshot no replica took");
      n.applied = it->second;
    }
    record_durable_accepts(id, ready.persist);
    for (const SlotValue& entry : ready.persist.chosen) check_learned(id, entry);
    for (const Envelope& envelope : ready.messages) {
      check_covered(id, envelope);
      check_size(id, envelope);
      network_.push_back(envelope);
    }
    for (const SlotValue& entry : ready.committed) check_and_apply(id, entry);
    for (const ProposalOutcome& outcome : ready.outcomes) check_outcome(id, outcome);
    n.outcomes.insert(n.outcomes.end(), ready.outcomes.begin(), ready.outcomes.end());
    n.readies.push_back(std::move(ready));
  }

  // The driver snapshots `id`'s state machine through every slot it applied, makes the snapshot
  // durable and tells the core to compact. The snapshot's bytes name the entries it stands for.
  void compact(NodeId id) {
    Node& n = node(id);
    const Slot upto = n.applied.size();
    if (upto == 0) return;
    auto data = std::make_shared<const std::string>(
        "snapshot " + std::to_string(++snapshots_taken_) + " of " + to_string(id));
    snapshots_.emplace(*data, n.applied);
    const SnapshotRef snapshot{upto, data, replica(id).membership_at(upto)};
    n.disk.compact(snapshot);
    replica(id).compact(upto, data);
    trace_.push_back(to_string(id) + " compacts through slot " + std::to_string(upto));
    process(id);
  }

  // --- The network.

  // One round: delivers every queued message that matches `filter`, in queue order. Messages
  // the deliveries produce are queued behind the ones left waiting, for a later round. Messages
  // across a partition or to a down replica are lost. Returns the number delivered.
  size_t deliver(const MessageFilter& filter = {}) {
    return deliver_if([&](const Envelope& e) { return filter.matches(e); });
  }
  size_t deliver_if(const std::function<bool(const Envelope&)>& pick) {
    std::deque<Envelope> waiting = std::exchange(network_, {});
    std::deque<Envelope> kept;
    size_t delivered = 0;
    for (Envelope& envelope : waiting) {
      if (!pick(envelope)) {
        kept.push_back(std::move(envelope));
        continue;
      }
      delivered += deliver_now(envelope) ? 1 : 0;
    }
    for (Envelope& envelope : network_) kept.push_back(std::move(envelope));
    network_ = std::move(kept);
    return delivered;
  }

  // Delivers `id`'s PreVotes and the answers to them, until none is queued. Returns how many.
  size_t deliver_prevotes(NodeId id) {
    size_t delivered = 0;
    for (;;) {
      const size_t n = deliver_if([&](const Envelope& e) {
        return (e.from == id && std::holds_alternative<PreVoteMsg>(e.message)) ||
               (e.to == id && std::holds_alternative<PreVoteReplyMsg>(e.message));
      });
      if (n == 0) return delivered;
      delivered += n;
    }
  }

  // Delivers the queued message at `index` alone, out of order.
  void deliver_nth(size_t index) {
    SYNOD_ASSERT(index < network_.size(), "no such message");
    Envelope envelope = std::move(network_[index]);
    network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(index));
    deliver_now(envelope);
  }
  // Queues a second copy of the message at `index` (the network duplicated it).
  void duplicate_nth(size_t index) {
    SYNOD_ASSERT(index < network_.size(), "no such message");
    network_.push_back(network_[index]);
  }
  void drop_nth(size_t index) {
    SYNOD_ASSERT(index < network_.size(), "no such message");
    trace_.push_back("drop " + to_string(network_[index]));
    network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(index));
  }

  // Discards every queued message that matches `filter`. Returns how many.
  size_t drop(const MessageFilter& filter = {}) {
    return drop_if([&](const Envelope& e) { return filter.matches(e); });
  }
  size_t drop_if(const std::function<bool(const Envelope&)>& pick) {
    size_t dropped = 0;
    std::deque<Envelope> kept;
    for (Envelope& envelope : network_) {
      if (pick(envelope)) {
        trace_.push_back("drop " + to_string(envelope));
        ++dropped;
      } else {
        kept.push_back(std::move(envelope));
      }
    }
    network_ = std::move(kept);
    return dropped;
  }

  // Delivers rounds until nothing is in flight. False if that takes more than `max_rounds`.
  bool stabilize(int max_rounds = 1000) {
    for (int round = 0; round < max_rounds; ++round) {
      if (network_.empty()) return true;
      deliver();
    }
    violations_.push_back("no quiescence within " + std::to_string(max_rounds) + " rounds");
    return false;
  }

  // `ticks` times: tick every up replica once, then stabilize.
  void run(int ticks) {
    for (int i = 0; i < ticks; ++i) {
      tick_all();
      stabilize();
    }
  }

  // Cuts every link between replicas in different groups (both directions). Replicas in no
  // group keep their links.
  void partition(const std::vector<std::vector<NodeId>>& groups) {
    for (size_t a = 0; a < groups.size(); ++a) {
      for (size_t b = 0; b < groups.size(); ++b) {
        if (a == b) continue;
        for (NodeId from : groups[a]) {
          for (NodeId to : groups[b]) blocked_.insert({from, to});
        }
      }
    }
    trace_.push_back("partition");
  }
  void isolate(NodeId id) {
    std::vector<NodeId> rest;
    for (NodeId other : members_) {
      if (other != id) rest.push_back(other);
    }
    partition({{id}, rest});
  }
  // Cuts the link from `from` to `to` only (the other direction keeps working).
  void block(NodeId from, NodeId to) {
    blocked_.insert({from, to});
    trace_.push_back("block " + to_string(from) + "->" + to_string(to));
  }
  void heal() {
    blocked_.clear();
    trace_.push_back("heal");
  }
  bool is_blocked(NodeId from, NodeId to) const { return blocked_.count({from, to}) != 0; }

  // --- Crashes. A crash loses the replica's memory and the messages queued to it; its disk
  // keeps everything a processed Ready persisted (the harness persists synchronously).

  void crash(NodeId id) {
    Node& n = node(id);
    SYNOD_ASSERT(n.replica != nullptr, "crashing a replica that is down");
    n.replica.reset();
    n.applied.clear();
    std::erase_if(network_, [&](const Envelope& e) { return e.to == id; });
    trace_.push_back("crash " + to_string(id));
  }

  void restart(NodeId id) {
    SYNOD_ASSERT(!is_up(id), "restarting a replica that is up");
    ++node(id).incarnation;
    start(id);
    trace_.push_back("restart " + to_string(id));
    process(id);  // a restarted replica re-emits its committed entries
  }

  // --- Queries used by many tests.

  // The up replicas that are leaders.
  std::vector<NodeId> leaders() const {
    std::vector<NodeId> out;
    for (NodeId id : all_) {
      if (is_up(id) && node(id).replica->role() == Role::kLeader) out.push_back(id);
    }
    return out;
  }

  Config config_for(NodeId id) const {
    Config config;
    config.self = id;
    config.quorum = QuorumSystem::majority(members_, options_.bugs);
    config.join = std::find(members_.begin(), members_.end(), id) == members_.end();
    config.bugs = options_.bugs;
    if (options_.configure) options_.configure(config);
    return config;
  }

 private:
  struct Node {
    std::unique_ptr<Replica> replica;
    DurableState disk;
    uint64_t incarnation = 0;
    Role last_role = Role::kFollower;
    std::vector<SlotValue> applied;
    std::vector<ProposalOutcome> outcomes;
    std::vector<Ready> readies;
  };

  Node& node(NodeId id) {
    auto it = nodes_.find(id);
    SYNOD_ASSERT(it != nodes_.end(), "no such replica");
    return it->second;
  }
  const Node& node(NodeId id) const {
    auto it = nodes_.find(id);
    SYNOD_ASSERT(it != nodes_.end(), "no such replica");
    return it->second;
  }

  void start(NodeId id) {
    Node& n = node(id);
    const uint64_t seed = options_.seed * 1000003 + id.value * 101 + n.incarnation;
    n.replica = std::make_unique<Replica>(config_for(id), n.disk, seed);
    n.last_role = Role::kFollower;
    n.applied.clear();
  }

  // Delivers one message now; false if the network loses it (partition, replica down).
  bool deliver_now(const Envelope& envelope) {
    if (!is_up(envelope.to) || is_blocked(envelope.from, envelope.to)) {
      trace_.push_back("lost " + to_string(envelope));
      return false;
    }
    trace_.push_back("deliver " + to_string(envelope));
    replica(envelope.to).step(envelope);
    process(envelope.to);
    return true;
  }

  void violation(NodeId id, const std::string& what) {
    violations_.push_back(to_string(id) + ": " + what);
  }

  static Ballot effective_promise(const DurableState& disk) {
    Ballot promise = disk.promised;
    for (const auto& [slot, proposal] : disk.accepted) promise = std::max(promise, proposal.ballot);
    return promise;
  }

  // Durability: an acceptor's answer leaves only once the state it vouches for is on disk.
  void check_covered(NodeId id, const Envelope& envelope) {
    const DurableState& disk = node(id).disk;
    if (const auto* promise = std::get_if<PromiseMsg>(&envelope.message)) {
      if (effective_promise(disk) < promise->ballot) {
        violation(id, "sends " + to_string(envelope) + " but its disk promised only " +
                          synod::to_string(effective_promise(disk)));
      }
      for (const AcceptedEntry& entry : promise->accepted) {
        auto it = disk.accepted.find(entry.slot);
        if (it == disk.accepted.end() || it->second.ballot < entry.proposal.ballot) {
          violation(id, "reports slot " + std::to_string(entry.slot) +
                            " accepted before the acceptance is on disk");
        }
      }
    } else if (const auto* accepted = std::get_if<AcceptedMsg>(&envelope.message)) {
      if (effective_promise(disk) < accepted->ballot) {
        violation(id, "sends " + to_string(envelope) + " but its disk promised only " +
                          synod::to_string(effective_promise(disk)));
      }
      for (Slot slot : accepted->slots) {
        auto it = disk.accepted.find(slot);
        if (it == disk.accepted.end() || it->second.ballot < accepted->ballot) {
          violation(id, "sends " + to_string(envelope) + " before slot " + std::to_string(slot) +
                            " is accepted on disk");
        }
      }
    }
  }

  // Size: the peer transport refuses a frame above the limit, so a message that does not fit
  // is one that never arrives, however often it is sent again.
  void check_size(NodeId id, const Envelope& envelope) {
    std::string body;
    encode_message(body, envelope.message);
    const size_t bytes = 2 + 8 + body.size();  // version, type, from, to, fields
    const size_t limit = config_for(id).max_message_bytes;
    if (bytes > limit) {
      violation(id, "sends a " + paxos::testing::message_type(envelope.message) + " of " +
                        std::to_string(bytes) + " bytes, above the message limit of " +
                        std::to_string(limit));
    }
  }

  // Truth: a value is chosen once a true majority of the slot's configuration (the bootstrap
  // members, or those of the newest change chosen below the slot) durably accepted it in one
  // ballot.
  void record_durable_accepts(NodeId id, const PersistBatch& persist) {
    for (const AcceptedEntry& entry : persist.accepted) {
      Votes& votes = votes_[{entry.slot, entry.proposal.ballot}];
      if (votes.voters.empty()) votes.value = entry.proposal.value;
      if (votes.value != entry.proposal.value) {
        violation(id, "two values accepted in ballot " + synod::to_string(entry.proposal.ballot) +
                          " at slot " + std::to_string(entry.slot));
      }
      votes.voters.insert(id);
      judge(id, entry.slot, votes);
    }
  }

  void check_learned(NodeId id, const SlotValue& entry) {
    auto truth = truth_.find(entry.slot);
    if (truth == truth_.end() || truth->second != entry.value) {
      violation(id, "learns " + to_string(entry.value) + " at slot " + std::to_string(entry.slot) +
                        ", which was not chosen");
    }
    auto [it, inserted] = learned_.try_emplace(entry.slot, entry.value);
    if (!inserted && it->second != entry.value) {
      violation(id, "learns " + to_string(entry.value) + " at slot " + std::to_string(entry.slot) +
                        " where another replica learned " + to_string(it->second));
    }
  }

  void check_and_apply(NodeId id, const SlotValue& entry) {
    Node& n = node(id);
    if (entry.slot != n.applied.size() + 1) {
      violation(id, "applies slot " + std::to_string(entry.slot) + " after " +
                        std::to_string(n.applied.size()) + " slots");
    }
    auto on_disk = n.disk.chosen.find(entry.slot);
    if (on_disk == n.disk.chosen.end() || on_disk->second != entry.value) {
      violation(id, "applies slot " + std::to_string(entry.slot) + " before persisting it chosen");
    }
    auto truth = truth_.find(entry.slot);
    if (truth == truth_.end() || truth->second != entry.value) {
      violation(id, "applies " + to_string(entry.value) + " at slot " + std::to_string(entry.slot) +
                        ", which was not chosen");
    }
    n.applied.push_back(entry);
  }

  void check_outcome(NodeId id, const ProposalOutcome& outcome) {
    if (outcome.outcome != Outcome::kChosen) return;
    const Node& n = node(id);
    const bool applied = outcome.slot >= 1 && outcome.slot <= n.applied.size() &&
                         std::any_of(n.applied[outcome.slot - 1].value.commands.begin(),
                                     n.applied[outcome.slot - 1].value.commands.end(),
                                     [&](const Command& c) { return c.id == outcome.id; });
    if (!applied) {
      violation(id, "reports c" + std::to_string(outcome.id.client) + "." +
                        std::to_string(outcome.id.seq) + " chosen at slot " +
                        std::to_string(outcome.slot) + " but did not apply it there");
    }
  }

  struct Votes {
    NodeSet voters;
    Value value;
  };

  void judge(NodeId id, Slot slot, const Votes& votes) {
    std::vector<NodeId> voters = members_;
    for (auto it = truth_.begin(); it != truth_.end() && it->first < slot; ++it) {
      if (it->second.membership) voters = it->second.membership->voters();
    }
    if (!QuorumSystem::majority(voters).is_phase2_quorum(votes.voters)) return;
    auto [it, inserted] = truth_.try_emplace(slot, votes.value);
    if (!inserted && it->second != votes.value) {
      violation(id, "slot " + std::to_string(slot) + " chosen twice: " + to_string(it->second) +
                        " and " + to_string(votes.value));
    }
    if (!inserted || !votes.value.membership) return;
    // The slots above are governed by the new configuration: judge their votes again.
    for (const auto& [key, other] : votes_) {
      if (key.first > slot && truth_.count(key.first) == 0) judge(id, key.first, other);
    }
  }

  ClusterOptions options_;
  std::vector<NodeId> members_;  // the bootstrap configuration
  std::vector<NodeId> all_;      // ... and the spares
  std::map<NodeId, Node> nodes_;
  std::deque<Envelope> network_;
  std::set<std::pair<NodeId, NodeId>> blocked_;
  std::map<std::pair<Slot, Ballot>, Votes> votes_;
  std::map<Slot, Value> truth_;
  std::map<Slot, Value> learned_;
  std::vector<std::string> violations_;
  std::vector<std::string> trace_;
  std::map<std::string, std::vector<SlotValue>> snapshots_;  // by bytes: the entries they cover
  uint64_t snapshots_taken_ = 0;
};

}  // namespace synod::paxos::testing
