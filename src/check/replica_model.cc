#include "check/replica_model.h"

#include <algorithm>

#include "base/assert.h"
#include "base/coding.h"
#include "base/rng.h"
#include "paxos/codec.h"

namespace synod::check {

using paxos::Envelope;
using paxos::Replica;
using Timer = paxos::Replica::Timer;

namespace {

constexpr NodeId node_of(int index) {
  return NodeId{uint32_t(index + 1)};
}

constexpr Timer kTimers[] = {Timer::kElection, Timer::kHeartbeat, Timer::kRetransmit,
                             Timer::kQuorumCheck, Timer::kCatchup};

const char* timer_name(Timer timer) {
  switch (timer) {
    case Timer::kElection:
      return "election timeout";
    case Timer::kHeartbeat:
      return "heartbeat";
    case Timer::kRetransmit:
      return "heartbeat with retransmission";
    case Timer::kQuorumCheck:
      return "quorum check";
    case Timer::kCatchup:
      return "catch-up retry";
  }
  return "?";
}

// The seed whose Rng's first below(n) is `pick`: how a step explores each outcome of a choice.
uint64_t seed_picking(uint64_t n, uint64_t pick) {
  for (uint64_t seed = 1;; ++seed) {
    Rng rng(seed);
    if (rng.below(n) == pick) return seed;
  }
}

// The seed every step starts from when it makes no choice the checker enumerates: the random
// generator is not part of the state.
constexpr uint64_t kStepSeed = 1;

// WorldAction::arg of a kDeliver: the receiver's stickiness runs out first (no Accept from its
// leader for the minimum election timeout, Replica::forget_leader), then the message arrives.
constexpr uint8_t kAfterLeaderSilence = 1;

// Whether `encoded` is a PreVote or a Prepare to a follower that still hears its leader (or, with
// leases, started less than an election timeout ago): it may arrive before its stickiness runs
// out, or after. (Only these two messages read it.) With leases, after only once time has passed
// since the follower last heard its leader or started.
bool reaches_sticky_follower(const World& world, const std::string& encoded, bool leases) {
  const uint8_t to = uint8_t(encoded[9]);  // after the incarnation and the sender
  const uint8_t type = uint8_t(encoded[10]);
  const bool asks = type == paxos::message_type(paxos::Message{paxos::PreVoteMsg{}}) ||
                    type == paxos::message_type(paxos::Message{paxos::PrepareMsg{}});
  const ReplicaBox& box = world.boxes[size_t(to) - 1];
  return asks && box.replica->keeps_candidates_out() && (!leases || world.time > box.heard_at);
}

// With leases: the length of a lease, in ms of the replicas' clocks, which read the lease periods
// passed times this.
constexpr uint64_t kLeasePeriodMs = 1000;

std::string encode_envelope(const Envelope& envelope) {
  std::string out;
  put_u64(out, envelope.incarnation);
  put_u8(out, uint8_t(envelope.from.value));
  put_u8(out, uint8_t(envelope.to.value));
  put_u8(out, paxos::message_type(envelope.message));
  paxos::encode_message(out, envelope.message);
  return out;
}

Envelope decode_envelope(const std::string& encoded) {
  Reader in(encoded);
  uint8_t from = 0, to = 0, type = 0;
  Envelope envelope;
  const bool ok = in.u64(envelope.incarnation) && in.u8(from) && in.u8(to) && in.u8(type) &&
                  paxos::decode_message(type, in, envelope.message) && in.done();
  SYNOD_ASSERT(ok, "an envelope the model encoded does not decode");
  envelope.from = NodeId{from};
  envelope.to = NodeId{to};
  return envelope;
}

void encode_batch(std::string& out, const paxos::PersistBatch& batch) {
  put_u8(out, batch.promised.has_value());
  if (batch.promised) paxos::encode_ballot(out, *batch.promised);
  put_u32(out, uint32_t(batch.accepted.size()));
  for (const paxos::AcceptedEntry& entry : batch.accepted) {
    put_u64(out, entry.slot);
    paxos::encode_ballot(out, entry.proposal.ballot);
    paxos::encode_value(out, entry.proposal.value);
  }
  put_u32(out, uint32_t(batch.chosen.size()));
  for (const paxos::SlotValue& entry : batch.chosen) {
    put_u64(out, entry.slot);
    paxos::encode_value(out, entry.value);
  }
  put_u64(out, batch.snapshot ? batch.snapshot->slot : 0);
  put_u8(out, batch.time_horizon.has_value());
  if (batch.time_horizon) {
    paxos::encode_ballot(out, batch.time_horizon->ballot);
    put_u64(out, batch.time_horizon->ms);
  }
}

void encode_durable(std::string& out, const paxos::DurableState& d) {
  paxos::encode_ballot(out, d.promised);
  put_u32(out, uint32_t(d.accepted.size()));
  for (const auto& [slot, proposal] : d.accepted) {
    put_u64(out, slot);
    paxos::encode_ballot(out, proposal.ballot);
    paxos::encode_value(out, proposal.value);
  }
  put_u32(out, uint32_t(d.chosen.size()));
  for (const auto& [slot, value] : d.chosen) {
    put_u64(out, slot);
    paxos::encode_value(out, value);
  }
  put_u64(out, d.snapshot.slot);
  paxos::encode_ballot(out, d.time_horizon.ballot);
  put_u64(out, d.time_horizon.ms);
}

// A snapshot's bytes: the values of slots 1..n, which is what the state machine would hold.
std::string snapshot_of(const std::map<Slot, paxos::Value>& learned, Slot upto) {
  std::string out;
  put_u64(out, upto);
  for (Slot slot = 1; slot <= upto; ++slot) paxos::encode_value(out, learned.at(slot));
  return out;
}

std::vector<paxos::SlotValue> snapshot_values(const std::string& data) {
  Reader in(data);
  uint64_t upto = 0;
  std::vector<paxos::SlotValue> out;
  SYNOD_ASSERT(in.u64(upto), "a model snapshot without its length");
  for (Slot slot = 1; slot <= upto; ++slot) {
    paxos::SlotValue entry{slot, {}};
    SYNOD_ASSERT(paxos::decode_value(in, entry.value), "a model snapshot that does not decode");
    out.push_back(std::move(entry));
  }
  return out;
}

std::string ballot_name(const Ballot& b) {
  return std::to_string(b.round) + "." + std::to_string(b.node.value);
}

// The client id of configuration-change requests (client values use 1..8): its sequence numbers
// count the changes asked for, the warm start's adding of the learner as 0.
constexpr uint64_t kChangeClient = 1000;

}  // namespace

const char* to_string(Reconfig reconfig) {
  switch (reconfig) {
    case Reconfig::kNone:
      return "none";
    case Reconfig::kPromote:
      return "promote";
    case Reconfig::kReplace:
      return "replace";
  }
  return "?";
}

std::optional<std::string> replica_bug_not_applicable(std::string_view name) {
  if (name == "skip-fdatasync") {
    return "it is a bug in the write-ahead log's sync (src/storage), which the model checker "
           "abstracts as an atomic durable state; run it with synod sim --disk-faults";
  }
  if (name == "time-of-any-ballot" || name == "time-carried-into-new-ballot") {
    return "it breaks the cluster clock (lease expiry), and the model abstracts time away: no "
           "replica is ever told a time, so no time can be carried or lifted; run it with "
           "synod sim --core";
  }
  if (name == "removed-member-disrupts") {
    return "it deposes healthy leaders (no PreVote, no stickiness) but breaks no safety property, "
           "and the model abstracts time away; run it with synod sim (the disruption check)";
  }
  if (name == "silent-learner" || name == "catchup-from-members-only") {
    return "it stalls a cluster after configuration changes (liveness, not safety), which the "
           "model, exploring one change and no time, does not check; run it with "
           "synod sim --protocol --reconfig";
  }
  if (name == "transfer-unmarked") {
    return "it makes leader transfers fail (the followers still hearing the old leader ignore "
           "the target's Prepares: liveness, not safety), and the model abstracts time away; "
           "run it with synod sim --protocol --transfer";
  }
  if (name == "catchup-retry-storm") {
    return "it costs peers CPU and bandwidth when answers arrive late (liveness), and the model "
           "abstracts time and bandwidth away; run it with synod sim --protocol "
           "--link-bytes-per-ms 1000 --large-values 0.2";
  }
  if (name == "known-compaction-steps-down") {
    return "it costs a needless election (liveness, not safety), which the model does not judge; "
           "run it with synod sim --protocol --reconfig --replicas 5";
  }
  if (name == "catchup-asks-silent-leader" || name == "deaf-to-askers") {
    return "it stalls a replica that must catch up before anyone can lead (liveness, not safety), "
           "and the model abstracts time away; run it with synod sim --protocol --reconfig";
  }
  if (name == "silent-without-snapshot") {
    return "it stalls a laggard (liveness, not safety) that asks a peer without a snapshot for "
           "one, and the model abstracts time away; run it with synod sim --core";
  }
  if (name == "absurd-rounds-taken") {
    return "it breaks liveness (a forged Prepare ends all elections), not safety, and the model "
           "has no hostile peer; run it with synod sim";
  }
  return std::nullopt;
}

ReplicaModel::ReplicaModel(ReplicaModelConfig config) : config_(std::move(config)) {
  const ReplicaBounds& b = config_.bounds;
  SYNOD_ASSERT(b.replicas >= 1 && b.replicas <= 7, "replica count out of range");
  SYNOD_ASSERT(b.values >= 0 && b.values <= 8, "value count out of range");
  SYNOD_ASSERT(config_.quorum.members().size() == size_t(b.replicas), "quorum over replicas");
  SYNOD_ASSERT(b.reconfig == Reconfig::kNone || b.replicas >= 2, "a change needs two voters");
  peer_seeds_.resize(size_t(replica_count()) + 1);
  for (int k = 1; k <= replica_count(); ++k) {
    for (int p = 0; p < k; ++p) peer_seeds_[size_t(k)].push_back(seed_picking(uint64_t(k), p));
  }
  bootstrap_ = std::make_shared<const paxos::Membership>(paxos::membership_of(config_.quorum));
}

int ReplicaModel::replica_count() const {
  return config_.bounds.replicas + (config_.bounds.reconfig == Reconfig::kNone ? 0 : 1);
}

paxos::Config ReplicaModel::config_for(int replica, const ReplicaBox& box) const {
  paxos::Config config;  // production defaults
  config.self = node_of(replica);
  config.quorum = config_.quorum;
  config.bugs = config_.bugs;
  // The learner-to-be starts as a replica added to a running cluster: it learns its
  // configuration from a peer.
  config.join = replica >= config_.bounds.replicas || box.wiped;
  config.incarnation = box.incarnation;
  if (config_.bounds.lease_periods > 0) config.read_lease_ms = kLeasePeriodMs;
  if (config_.bounds.release) config.log_memory_bytes = 0;
  return config;
}

ReplicaBox& ReplicaModel::box_to_change(World& world, int replica) const {
  bool copied = false;
  ReplicaBox& box = world.boxes.mutable_at(size_t(replica), &copied);
  if (copied) bind_log(box);
  return box;
}

void ReplicaModel::bind_log(ReplicaBox& box) const {
  if (!config_.bounds.release) return;
  const paxos::DurableState* disk = &box.durable;
  box.replica->set_chosen_log(
      paxos::ChosenLog{[disk](Slot slot) { return disk->chosen.contains(slot); },
                       [disk](Slot slot) -> std::optional<paxos::Value> {
                         auto it = disk->chosen.find(slot);
                         if (it == disk->chosen.end()) return std::nullopt;
                         return it->second;
                       }});
}

paxos::MembershipRef ReplicaModel::governing(const World& world, Slot slot) const {
  for (auto it = world.learned.lower_bound(slot); it != world.learned.begin();) {
    --it;
    if (it->second.membership) return it->second.membership;
  }
  return bootstrap_;
}

const paxos::QuorumSystem& ReplicaModel::true_quorum_at(const World& world, Slot slot) const {
  return true_quorum_of(governing(world, slot));
}

const paxos::QuorumSystem& ReplicaModel::true_quorum_of(const paxos::MembershipRef& m) const {
  if (m == bootstrap_) return config_.true_quorum;
  for (const auto& [membership, quorum] : true_quorums_) {
    if (membership == *m) return quorum;
  }
  true_quorums_.emplace_back(*m, m->quorum());
  return true_quorums_.back().second;
}

Slot ReplicaModel::chosen_prefix(const World& world) const {
  paxos::MembershipRef config = bootstrap_;
  for (Slot slot = 1;; ++slot) {
    const paxos::QuorumSystem& quorum = true_quorum_of(config);
    const paxos::Value* chosen = nullptr;
    for (auto it = world.votes.lower_bound({slot, Ballot{}});
         it != world.votes.end() && it->first.first == slot && chosen == nullptr; ++it) {
      if (quorum.is_phase2_quorum(it->second.second)) chosen = &it->second.first;
    }
    if (chosen == nullptr) return slot - 1;
    if (chosen->membership) config = chosen->membership;
  }
}

// The change ReplicaBounds::reconfig asks for, from the configuration `now` (the learner added by
// the warm start is the highest id), or nothing once it is made (or if `now` refuses it).
std::optional<paxos::Membership> ReplicaModel::next_membership(const paxos::Membership& now) const {
  const NodeId learner = node_of(config_.bounds.replicas);
  const paxos::Member* m = now.find(learner);
  if (m == nullptr || m->voter) return std::nullopt;
  paxos::MembershipChange change;
  change.id = learner;
  if (config_.bounds.reconfig == Reconfig::kPromote) {
    change.kind = paxos::MembershipChange::Kind::kPromote;
  } else {
    change.kind = paxos::MembershipChange::Kind::kReplace;
    change.old_id = node_of(config_.bounds.replicas - 1);
  }
  auto next = paxos::apply_change(now, change);
  if (!next.is_ok()) return std::nullopt;
  return std::move(*next);
}

void ReplicaModel::propose_change(World& world, int r, const paxos::Membership& next,
                                  uint64_t seq) const {
  paxos::Command request{{kChangeClient, seq}, next.describe()};
  const paxos::ProposeStatus status =
      box_to_change(world, r).replica->propose_membership(std::move(request), next);
  // (A leader that has not heard from the new voter refuses, as a server would answer TRYAGAIN.)
  SYNOD_ASSERT(status == paxos::ProposeStatus::kQueued || status == paxos::ProposeStatus::kUnheard,
               "a leader refused a configuration change");
}

// Every replica that knows its configuration computes the one the learned values say governs its
// first unchosen slot: each slot has one configuration, whoever learned it.
void ReplicaModel::check_membership(World& world, int r) const {
  const Replica& replica = *world.boxes[size_t(r)].replica;
  if (config_.bounds.reconfig == Reconfig::kNone || replica.membership() == nullptr) return;
  const paxos::MembershipRef expected = governing(world, replica.commit() + 1);
  if (*replica.membership() != *expected) {
    fail(world, "configuration: n" + std::to_string(r + 1) + " counts slot " +
                    std::to_string(replica.commit() + 1) + " in " +
                    replica.membership()->describe() + ", but the values chosen below it say " +
                    expected->describe());
  }
}

paxos::Value ReplicaModel::value_of(int value) const {
  return paxos::Value{
      {paxos::Command{{uint64_t(value + 1), 1}, std::string(1, char('A' + value))}}};
}

World ReplicaModel::initial() const {
  World world;
  for (int r = 0; r < replica_count(); ++r) {
    ReplicaBox box;
    if (config_.bounds.wipes > 0) box.incarnation = uint64_t(r + 1);
    box.replica.emplace(config_for(r, box), paxos::DurableState{}, kStepSeed);
    world.boxes.push_back(std::move(box));
  }
  for (int r = 0; r < replica_count(); ++r) {
    // The cluster is older than an election timeout: no replica keeps candidates out for having
    // just started (only with leases does that happen at all).
    box_to_change(world, r).replica->forget_leader();
    settle(world, r);
  }
  initial_steps_.clear();
  starting_ = true;
  if (config_.bounds.warm_start && config_.bounds.elections > 0 && config_.bounds.replicas > 1) {
    using K = WorldAction::Kind;
    auto take = [&](const WorldAction& action) {
      initial_steps_.push_back(describe(world, action));
      step(world, action);
    };
    take({K::kTimer, 0, uint8_t(Timer::kElection), -1, 0});
    for (int i = 0; i < 64 && !world.network.empty(); ++i) take({K::kDeliver, 0, 0, -1, 0});
    SYNOD_ASSERT(world.boxes[0].replica->role() == paxos::Role::kLeader && world.network.empty(),
                 "the warm start did not elect n1");
    if (config_.bounds.reconfig != Reconfig::kNone) {
      // n1 adds the new replica as a learner, and every message is delivered (none lost to the
      // in-flight bound) until the learner knows the configuration that made it one.
      const int learner = config_.bounds.replicas;
      paxos::MembershipChange change;
      change.kind = paxos::MembershipChange::Kind::kAddLearner;
      change.id = node_of(learner);
      change.address = "n" + std::to_string(learner + 1);
      auto next = paxos::apply_change(*world.boxes[0].replica->membership(), change);
      SYNOD_ASSERT(next.is_ok(), "the warm start cannot add a learner");
      initial_steps_.push_back("n1 proposes " + next->describe());
      warming_ = true;
      propose_change(world, 0, *next, 0);
      settle(world, 0);
      for (int i = 0; i < 256 && !world.network.empty(); ++i) take({K::kDeliver, 0, 0, -1, 0});
      if (world.boxes[size_t(learner)].replica->commit() == 0) {
        take({K::kTimer, 0, uint8_t(Timer::kHeartbeat), -1, 0});
        for (int i = 0; i < 256 && !world.network.empty(); ++i) take({K::kDeliver, 0, 0, -1, 0});
      }
      warming_ = false;
      world.timers = 0;
      const Replica& joined = *world.boxes[size_t(learner)].replica;
      SYNOD_ASSERT(world.network.empty() && joined.membership() != nullptr &&
                       joined.membership()->is_member(node_of(learner)),
                   "the warm start did not add the learner");
    }
    if (config_.bounds.wipes > 0) {
      // n1 binds every member's incarnation in the configuration (at a heartbeat, as it would),
      // and two more heartbeats tell everyone the binding is chosen.
      warming_ = true;
      for (int beat = 0; beat < 3; ++beat) {
        take({K::kTimer, 0, uint8_t(Timer::kHeartbeat), -1, 0});
        for (int i = 0; i < 256 && !world.network.empty(); ++i) take({K::kDeliver, 0, 0, -1, 0});
      }
      warming_ = false;
      world.timers = 0;
      for (int r = 0; r < replica_count(); ++r) {
        if (r == absent_replica()) continue;
        const paxos::MembershipRef& m = world.boxes[size_t(r)].replica->membership();
        SYNOD_ASSERT(m != nullptr, "the warm start left a replica without a configuration");
        for (const paxos::Member& member : m->members) {
          SYNOD_ASSERT(member.incarnation != 0 || member.id == node_of(absent_replica()),
                       "the warm start did not bind every incarnation");
        }
      }
    }
  }
  starting_ = false;
  return world;
}

std::vector<WorldAction> ReplicaModel::actions(const World& world) const {
  using K = WorldAction::Kind;
  const ReplicaBounds& b = config_.bounds;
  std::vector<WorldAction> out;
  uint16_t index = 0;
  // Loss is a message never delivered; dropping one explicitly matters only to make room under
  // the in-flight bound, so it is offered only when the network is full. A duplicate is a
  // delivery that keeps its message (one action, not a copy and a delivery).
  const bool full = world.network.size() >= size_t(b.max_in_flight);
  for (auto it = world.network.begin(); it != world.network.end(); ++it, ++index) {
    out.push_back({K::kDeliver, 0, 0, -1, index});
    if (reaches_sticky_follower(world, it->first, b.lease_periods > 0)) {
      out.push_back({K::kDeliver, 0, kAfterLeaderSilence, -1, index});
    }
    if (full) out.push_back({K::kDrop, 0, 0, -1, index});
    if (world.duplicates < b.duplicates) out.push_back({K::kDuplicate, 0, 0, -1, index});
  }
  for (int r = 0; r < replica_count(); ++r) {
    const ReplicaBox& box = world.boxes[size_t(r)];
    const Replica& replica = *box.replica;
    const uint8_t u = uint8_t(r);
    for (Timer timer : kTimers) {
      if (!replica.timer_armed(timer)) continue;
      if (timer == Timer::kElection && world.elections >= b.elections) continue;
      // A follower's election timer runs at least an election timeout of ticks after it last
      // heard its leader (or started): with leases, time has passed since then.
      if (timer == Timer::kElection && b.lease_periods > 0 &&
          replica.role() == paxos::Role::kFollower && world.time <= box.heard_at)
        continue;
      if (timer != Timer::kElection && world.timers >= b.timers) continue;
      const bool random_peer = !replica.leader().valid() || replica.leader() == replica.id();
      if (timer == Timer::kCatchup && random_peer) {
        // The retry asks a peer picked at random: every pick is a behaviour.
        const std::vector<NodeId>& peers = replica.peers();
        for (size_t peer = 0; peer < peers.size(); ++peer) {
          if (peers[peer] != replica.id()) {
            out.push_back({K::kTimer, u, uint8_t(timer), int8_t(peer), 0});
          }
        }
        continue;
      }
      out.push_back({K::kTimer, u, uint8_t(timer), -1, 0});
    }
    if (replica.role() == paxos::Role::kLeader) {
      for (int v = 0; v < b.values; ++v) {
        if ((world.proposed & (1u << v)) == 0) out.push_back({K::kPropose, u, uint8_t(v), -1, 0});
      }
      if (world.reads < b.reads) out.push_back({K::kRead, u, 0, -1, 0});
      if (b.reconfig != Reconfig::kNone && world.changes < b.changes &&
          !replica.membership_change_pending() && next_membership(*replica.membership())) {
        out.push_back({K::kChange, u, 0, -1, 0});
      }
      if (world.transfers < b.transfers && !replica.transfer_target().valid()) {
        for (int t = 0; t < replica_count(); ++t) {
          if (t != r && replica.membership()->is_voter(node_of(t)))
            out.push_back({K::kTransfer, u, uint8_t(t), -1, 0});
        }
      }
    }
    // A crash that restarts the replica exactly as it was changes only the budget, but the
    // in-memory state always differs in some way worth exploring (role, unsynced batches).
    if (world.crashes < b.crashes) out.push_back({K::kCrash, u, 0, -1, 0});
    if (world.wipes < b.wipes && r < b.replicas && !box.wiped)
      out.push_back({K::kWipe, u, 0, -1, 0});
    if (!box.unsynced.empty()) out.push_back({K::kSync, u, 0, -1, 0});
    if (r == 0 && world.time < b.lease_periods) out.push_back({K::kTime, 0, 0, -1, 0});
    if (world.compactions < b.compactions && replica.commit() > replica.snapshot_slot()) {
      out.push_back({K::kCompact, u, 0, -1, 0});
    }
  }
  return out;
}

void ReplicaModel::fail(World& world, std::string what) const {
  if (!world.violation) world.violation = std::move(what);
}

void ReplicaModel::make_durable(World& world, int replica, const paxos::PersistBatch& batch) const {
  box_to_change(world, replica).durable.apply(batch);
  for (const paxos::AcceptedEntry& entry : batch.accepted) {
    auto [it, fresh] = world.votes.try_emplace({entry.slot, entry.proposal.ballot},
                                               entry.proposal.value, paxos::NodeSet{});
    if (it->second.first != entry.proposal.value) {
      fail(world, "two values accepted in ballot " + ballot_name(entry.proposal.ballot) +
                      " at slot " + std::to_string(entry.slot));
    }
    it->second.second.insert(node_of(replica));
  }
}

void ReplicaModel::check_vouched(World& world, int replica, const Envelope& envelope) const {
  if (!config_.bounds.vouching) return;
  const paxos::DurableState& d = world.boxes[size_t(replica)].durable;
  Ballot durable_promise = d.promised;
  for (const auto& [slot, proposal] : d.accepted) {
    durable_promise = std::max(durable_promise, proposal.ballot);
  }
  const std::string who = "n" + std::to_string(replica + 1);
  if (const auto* promise = std::get_if<paxos::PromiseMsg>(&envelope.message)) {
    if (durable_promise < promise->ballot) {
      fail(world, "vouching: " + who + " promised " + ballot_name(promise->ballot) + " with only " +
                      ballot_name(durable_promise) + " durable");
    }
  } else if (const auto* accepted = std::get_if<paxos::AcceptedMsg>(&envelope.message)) {
    const Slot released = world.boxes[size_t(replica)].replica->released();
    for (Slot slot : accepted->slots) {
      if (slot <= d.snapshot.slot) continue;
      // A slot whose chosen value it let go of: it knows it chosen, durably.
      if (slot <= released && d.chosen.contains(slot)) continue;
      auto it = d.accepted.find(slot);
      if (it == d.accepted.end() || it->second.ballot != accepted->ballot) {
        fail(world, "vouching: " + who + " answered Accepted " + ballot_name(accepted->ballot) +
                        " for slot " + std::to_string(slot) + " that is not durable");
      }
    }
  }
}

void ReplicaModel::check_learned(World& world, int replica, Slot slot,
                                 const paxos::Value& value) const {
  const std::string where = "n" + std::to_string(replica + 1) + " slot " + std::to_string(slot) +
                            " = " + to_string(value);
  for (const paxos::Command& command : value.commands) {
    if (command.id.client == kChangeClient) {
      if (!value.membership || command.id.seq > uint64_t(world.changes)) {
        fail(world, "validity: " + where + " holds a change no operator asked for");
      }
      continue;
    }
    const uint64_t v = command.id.client - 1;
    if (v >= 32 || (world.proposed & (1u << v)) == 0 ||
        !(command == value_of(int(v)).commands[0])) {
      fail(world, "validity: " + where + " holds a command no client proposed");
    }
  }
  // Chosen by a quorum of the configuration that governs the slot (the values learned below it:
  // every learner learns the slots below first).
  const paxos::QuorumSystem& quorum = true_quorum_at(world, slot);
  bool chosen = false;
  for (auto it = world.votes.lower_bound({slot, Ballot{}});
       it != world.votes.end() && it->first.first == slot; ++it) {
    if (it->second.first == value && quorum.is_phase2_quorum(it->second.second)) chosen = true;
  }
  if (!chosen) {
    // Under a reconfiguration, say whose quorums were meant (a slot below that is not learned yet
    // may still be a change: learning above it is then already against the rule).
    std::string whose;
    if (config_.bounds.reconfig != Reconfig::kNone) {
      whose = " of " + governing(world, slot)->describe();
      const auto below =
          size_t(std::distance(world.learned.begin(), world.learned.lower_bound(slot)));
      if (below + 1 < slot)
        whose += ", the newest configuration learned below it, some slot below unlearned";
    }
    fail(world, "truth: " + where + " was learned, but no quorum" + whose + " accepted it durably");
  }
  auto [it, fresh] = world.learned.try_emplace(slot, value);
  if (!fresh && it->second != value) {
    fail(world, "agreement: " + where + ", but " + to_string(it->second) + " was learned there");
  }
}

// The rule agreement rests on (docs/core.md, "Learning"): a leader's chosen prefix moves only on
// its own ballot's Accepted answers. A prefix it learned any other way (a catch-up reply, a
// snapshot chunk) may hold a slot a higher ballot chose while it still leads, which it would then
// announce as chosen in its own ballot. Breaking the rule breaks agreement only with five
// replicas and three leaderships (replica_test.cc), beyond the bounds; the rule itself is
// broken within them.
void ReplicaModel::check_leader_learning(World& world, int r, bool was_leading, Slot commit_before,
                                         const Envelope& envelope) const {
  const Replica& replica = *world.boxes[size_t(r)].replica;
  if (!was_leading || replica.role() != paxos::Role::kLeader) return;
  if (replica.commit() <= commit_before) return;
  if (std::holds_alternative<paxos::AcceptedMsg>(envelope.message)) return;
  const std::string message = paxos::to_string(envelope.message);
  fail(world, "leader learning: n" + std::to_string(r + 1) + " moved its chosen prefix from " +
                  std::to_string(commit_before) + " to " + std::to_string(replica.commit()) +
                  " on a " + message.substr(0, message.find(' ')) +
                  ", not on its own ballot's Accepted answers");
}

void ReplicaModel::send(World& world, const Envelope& envelope) const {
  if (starting_ && absent_replica() >= 0 &&
      (envelope.to == node_of(absent_replica()) || envelope.from == node_of(absent_replica())))
    return;  // it is down
  std::string encoded = encode_envelope(envelope);
  auto it = world.network.find(encoded);
  if (it != world.network.end()) {
    it->second = uint8_t(std::min(2, it->second + 1));
  } else if (warming_ || world.network.size() < size_t(config_.bounds.max_in_flight)) {
    world.network.emplace(std::move(encoded), 1);
  }  // else: lost, as any message may be
}

// Runs the driver loop of ready.h until the replica has nothing more to say: persist, send,
// deliver its own acceptor's answers back to it, and check everything it hands out.
void ReplicaModel::settle(World& world, int r) const {
  ReplicaBox& box = box_to_change(world, r);
  bind_log(box);  // (a crash or a wipe gave it a new replica)
  Replica& replica = *box.replica;
  const bool unsynced_answers = config_.bugs.ack_before_sync;
  for (int round = 0; round < 64; ++round) {
    if (config_.bounds.lease_periods > 0)
      replica.set_clock_ms(uint64_t(world.time) * kLeasePeriodMs);
    paxos::Ready ready = replica.take_ready();
    if (ready.empty()) break;
    if (!ready.persist.empty()) {
      if (unsynced_answers) {
        box.unsynced.push_back(ready.persist);
      } else {
        make_durable(world, r, ready.persist);
      }
    }
    std::vector<Envelope> own;
    for (Envelope& envelope : ready.messages) {
      check_vouched(world, r, envelope);
      if (envelope.to == replica.id()) {
        own.push_back(std::move(envelope));
      } else {
        send(world, envelope);
      }
    }
    if (ready.install) {
      for (const paxos::SlotValue& entry : snapshot_values(*ready.install->data)) {
        check_learned(world, r, entry.slot, entry.value);
      }
    }
    for (const paxos::SlotValue& entry : ready.committed) {
      check_learned(world, r, entry.slot, entry.value);
    }
    for (const paxos::ProposalOutcome& outcome : ready.outcomes) {
      if (outcome.outcome == paxos::Outcome::kChosen) {
        world.acknowledged = std::max(world.acknowledged, outcome.slot);
      }
    }
    for (const paxos::ReadResult& read : ready.reads) {
      auto floor = world.read_floors.find(read.read_id);
      SYNOD_ASSERT(floor != world.read_floors.end(), "an answer to a read never asked");
      if (read.ok && read.slot < floor->second) {
        fail(world, "linearizable reads: n" + std::to_string(r + 1) + " served a read at slot " +
                        std::to_string(read.slot) + ", below slot " +
                        std::to_string(floor->second) +
                        ", chosen or acknowledged before the read was asked");
      }
      world.read_floors.erase(floor);
    }
    for (const Envelope& envelope : own) replica.step(envelope);
  }
  for (const auto& [slot, value] : replica.chosen()) check_learned(world, r, slot, value);
  check_membership(world, r);
}

void ReplicaModel::step(World& world, const WorldAction& action) const {
  using K = WorldAction::Kind;
  if (action.kind == K::kDeliver || action.kind == K::kDrop || action.kind == K::kDuplicate) {
    auto it = std::next(world.network.begin(), action.index);
    const std::string encoded = it->first;
    if (action.kind == K::kDuplicate) {
      ++world.duplicates;
    } else if (--it->second == 0) {
      world.network.erase(it);
    }
    if (action.kind == K::kDrop) return;
    const Envelope envelope = decode_envelope(encoded);
    const int r = int(envelope.to.value) - 1;
    Replica& replica = *box_to_change(world, r).replica;
    if (action.arg == kAfterLeaderSilence) replica.forget_leader();
    const bool leading = replica.role() == paxos::Role::kLeader;
    const Slot commit_before = replica.commit();
    replica.reseed(kStepSeed);
    replica.step(envelope);
    if (const auto* accept = std::get_if<paxos::AcceptMsg>(&envelope.message);
        accept != nullptr && envelope.from != envelope.to && replica.promised() == accept->ballot &&
        replica.role() == paxos::Role::kFollower)
      box_to_change(world, r).heard_at = world.time;  // it accepted: sticky from now on
    check_leader_learning(world, r, leading, commit_before, envelope);
    settle(world, r);
    return;
  }
  const int r = action.replica;
  ReplicaBox& box = box_to_change(world, r);
  box.replica->reseed(kStepSeed);
  switch (action.kind) {
    case K::kTimer: {
      const auto timer = Timer(action.arg);
      if (timer == Timer::kElection)
        ++world.elections;
      else
        ++world.timers;
      if (action.peer >= 0) {
        const size_t k = box.replica->peers().size();
        box.replica->reseed(peer_seeds_[k][size_t(action.peer)]);
      }
      box.replica->fire_timer(timer);
      break;
    }
    case K::kPropose: {
      world.proposed |= 1u << action.arg;
      const paxos::ProposeStatus status = box.replica->propose(value_of(action.arg).commands[0]);
      SYNOD_ASSERT(status == paxos::ProposeStatus::kQueued, "a leader refused a proposal");
      break;
    }
    case K::kChange: {
      const uint64_t seq = uint64_t(++world.changes);
      propose_change(world, r, *next_membership(*box.replica->membership()), seq);
      break;
    }
    case K::kTransfer:
      ++world.transfers;
      // Refused (kStale) while the leader recovers or a change is pending, as MEMBER TRANSFER
      // is: the budget is spent all the same, and nothing else happens.
      (void)box.replica->transfer_leadership(node_of(action.arg));
      break;
    case K::kRead: {
      const uint64_t id = uint64_t(world.reads++);
      // Every value chosen before the read was asked (an acknowledged write among them) must be
      // below its index: the simulator's read check, and stricter than linearizability needs
      // only for values acknowledged to no one yet (docs/core.md, "Linearizable reads").
      world.read_floors[id] = std::max(world.acknowledged, chosen_prefix(world));
      SYNOD_ASSERT(box.replica->read_index(id) == paxos::ReadStatus::kQueued, "read refused");
      break;
    }
    case K::kCrash:
      ++world.crashes;
      box.heard_at = world.time;
      box.unsynced.clear();
      box.replica.emplace(config_for(r, box), box.durable, kStepSeed);
      break;
    case K::kWipe:
      ++world.wipes;
      box.unsynced.clear();
      box.durable = paxos::DurableState{};
      box.incarnation = uint64_t(100 + r);
      box.wiped = true;
      box.heard_at = world.time;
      box.replica.emplace(config_for(r, box), box.durable, kStepSeed);
      break;
    case K::kSync:
      for (const paxos::PersistBatch& batch : box.unsynced) make_durable(world, r, batch);
      box.unsynced.clear();
      return;
    case K::kTime:
      ++world.time;  // every replica's clock moves on (settled below, and before it next acts)
      for (int other = 0; other < replica_count(); ++other) {
        if (other != r) settle(world, other);
      }
      break;
    case K::kCompact: {
      ++world.compactions;
      const Slot upto = box.replica->commit();
      auto data = std::make_shared<const std::string>(snapshot_of(world.learned, upto));
      paxos::MembershipRef membership = box.replica->membership_at(upto);
      box.replica->compact(upto, data);
      // The driver makes its snapshot durable before telling the core (Replica::compact).
      box.durable.snapshot = paxos::SnapshotRef{upto, data, std::move(membership)};
      box.durable.compact(box.durable.snapshot);
      break;
    }
    default:
      break;
  }
  settle(world, r);
}

std::string ReplicaModel::encode(const World& world) const {
  std::string out;
  for (const ReplicaBox& box : world.boxes) {
    // A box no step changed since it was last encoded (most of them: a step changes one or two
    // replicas) keeps its bytes.
    if (box.encoded.empty()) {
      box.replica->encode_state(box.encoded);
      encode_durable(box.encoded, box.durable);
      put_u32(box.encoded, uint32_t(box.unsynced.size()));
      for (const paxos::PersistBatch& batch : box.unsynced) encode_batch(box.encoded, batch);
      put_u64(box.encoded, box.incarnation);
      put_u8(box.encoded, box.wiped);
    }
    out.append(box.encoded);
    // With leases, only whether time has passed since it last heard its leader matters.
    if (config_.bounds.lease_periods > 0) put_u8(out, world.time > box.heard_at ? 1 : 0);
  }
  put_u32(out, uint32_t(world.network.size()));
  for (const auto& [encoded, copies] : world.network) {
    put_bytes(out, encoded);
    put_u8(out, copies);
  }
  put_u8(out, uint8_t(world.elections));
  put_u8(out, uint8_t(world.timers));
  put_u8(out, uint8_t(world.duplicates));
  put_u8(out, uint8_t(world.crashes));
  put_u8(out, uint8_t(world.compactions));
  put_u8(out, uint8_t(world.reads));
  put_u8(out, uint8_t(world.changes));
  put_u8(out, uint8_t(world.wipes));
  put_u8(out, uint8_t(world.transfers));
  put_u8(out, uint8_t(world.time));
  put_u32(out, world.proposed);
  put_u32(out, uint32_t(world.votes.size()));
  for (const auto& [key, vote] : world.votes) {
    put_u64(out, key.first);
    paxos::encode_ballot(out, key.second);
    paxos::encode_value(out, vote.first);
    paxos::encode_node_set(out, vote.second);
  }
  put_u32(out, uint32_t(world.learned.size()));
  for (const auto& [slot, value] : world.learned) {
    put_u64(out, slot);
    paxos::encode_value(out, value);
  }
  put_u64(out, world.acknowledged);
  for (const auto& [id, floor] : world.read_floors) {
    put_u64(out, id);
    put_u64(out, floor);
  }
  return out;
}

std::vector<std::string> ReplicaModel::describe(const World& world) const {
  std::vector<std::string> lines;
  for (size_t r = 0; r < world.boxes.size(); ++r) {
    const ReplicaBox& box = world.boxes[r];
    const Replica& rep = *box.replica;
    std::string line = "n" + std::to_string(r + 1) + " " + paxos::to_string(rep.role());
    if (rep.role() != paxos::Role::kFollower) line += " " + ballot_name(rep.ballot());
    line += " promised " + ballot_name(rep.promised()) + " commit " + std::to_string(rep.commit());
    line += " accepted {";
    for (const auto& [slot, p] : rep.accepted()) {
      line += " " + std::to_string(slot) + ":" + ballot_name(p.ballot) + "=" + to_string(p.value);
    }
    line += " } chosen {";
    for (const auto& [slot, v] : rep.chosen())
      line += " " + std::to_string(slot) + "=" + to_string(v);
    line += " }";
    if (rep.snapshot_slot() > 0) line += " snapshot " + std::to_string(rep.snapshot_slot());
    if (config_.bounds.reconfig != Reconfig::kNone) {
      line += rep.membership() ? " config " + std::to_string(rep.membership()->epoch)
                               : " no config yet";
    }
    if (rep.catchup_outstanding()) line += " catching-up";
    if (!box.unsynced.empty()) line += " unsynced " + std::to_string(box.unsynced.size());
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string ReplicaModel::describe_envelope(const std::string& encoded) {
  return paxos::to_string(decode_envelope(encoded));
}

std::string ReplicaModel::describe(const World& world, const WorldAction& action) const {
  using K = WorldAction::Kind;
  const std::string who = "n" + std::to_string(action.replica + 1);
  switch (action.kind) {
    case K::kDeliver:
    case K::kDrop:
    case K::kDuplicate: {
      const char* verb = action.kind == K::kDeliver ? "deliver"
                         : action.kind == K::kDrop  ? "drop"
                                                    : "deliver and keep";
      auto it = std::next(world.network.begin(), action.index);
      const char* when =
          action.arg == kAfterLeaderSilence ? " (its leader silent for an election timeout)" : "";
      return std::string(verb) + " " + describe_envelope(it->first) + when;
    }
    case K::kTimer: {
      std::string out = who + ": " + timer_name(Timer(action.arg));
      if (action.peer >= 0) {
        const NodeId peer = world.boxes[action.replica].replica->peers()[size_t(action.peer)];
        out += " (asks n" + std::to_string(peer.value) + ")";
      }
      return out;
    }
    case K::kPropose:
      return "client proposes " + std::string(1, char('A' + action.arg)) + " to " + who;
    case K::kCrash:
      return who + " crashes and restarts from its durable state";
    case K::kWipe:
      return who + " loses its directory and restarts empty, as a new incarnation";
    case K::kSync:
      return who + " syncs what it already answered for";
    case K::kCompact:
      return who + " snapshots through slot " +
             std::to_string(world.boxes[action.replica].replica->commit());
    case K::kRead:
      return "client reads at " + who;
    case K::kChange:
      return "operator asks " + who + " for " +
             next_membership(*world.boxes[action.replica].replica->membership())->describe();
    case K::kTransfer:
      return "operator asks " + who + " to hand leadership to n" + std::to_string(action.arg + 1);
    case K::kTime:
      return "a lease period passes (time " + std::to_string(world.time + 1) + ")";
  }
  return "?";
}

}  // namespace synod::check
