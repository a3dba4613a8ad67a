#include "sim/cluster.h"

#include <algorithm>
#include <ostream>

#include "base/coding.h"
#include "paxos/codec.h"
#include "sim/hostile.h"
#include "storage/mem_file_system.h"
#include "storage/paxos_log.h"
#include "storage/replica_storage.h"

namespace synod::sim {

using paxos::Command;
using paxos::CommandId;
using paxos::Envelope;
using paxos::Outcome;
using paxos::Ready;

namespace {
constexpr size_t kRecentEvents = 80;
constexpr int kProbesPerClient = 3;
constexpr uint64_t kRetryBackoffMaxUs = 20'000;
// From a refusing peer back to the replica it refused: one hop (no draw, so that runs without a
// refusal keep their schedules).
constexpr uint64_t kRefusalDelayUs = 500;
}  // namespace

enum class EventKind {
  kTick,
  kDeliver,
  kDiskDone,
  kClientArrive,
  kClientReply,
  kClientReadStart,
  kClientReadArrive,
  kClientReadReply,
  kClientReadTimeout,
  kClientTimeout,
  kClientRetry,
  kClientStart,
  kNemesis,
  kRestart,
  kHeal,
  kLivenessStart,
  kLivenessDeadline,
  kProbeHeal,  // the disruption probe lets its isolated follower back
  kProbeEnd,
  kTransferProbeEnd,  // the transfer probe's deadline: the target must lead by now
  kRefused,           // a peer's refusal of the node's identity reaches it
};

struct Simulation::Event {
  EventKind kind;
  int node = -1;
  int client = -1;
  uint64_t tag = 0;  // incarnation, client attempt or partition epoch: stale events are ignored
  Envelope envelope{};
  Command command{};
  Outcome outcome = Outcome::kFailed;
  NodeId hint{};
  Slot slot = 0;    // a chosen outcome's slot
  bool ok = false;  // a read's result
};

struct Simulation::PendingReady {
  uint64_t done_us = 0;
  Ready ready;
};

struct Simulation::Node {
  NodeId id;
  int index = 0;
  bool up = true;
  uint64_t incarnation = 0;
  // The incarnation of its data directory (paxos::Config::incarnation), new when it is wiped.
  uint64_t identity = 0;
  bool wiped = false;
  // A peer that pinned its old incarnation refused it: the server stops for good on that
  // (Server::identity_refused; restarting cannot help), and so does this replica. It is never
  // restarted; the operator removes it (reconfigure).
  bool refused = false;
  // The first incarnation it heard from each peer, kept across crashes and lost with a wipe: the
  // server's durable peer pins (storage/identity.h), which refuse a peer that comes back as
  // another incarnation. Without them here, a replica restarted with a configuration from before
  // a member's incarnation was bound (a removed member, say) took a wiped replica's promise under
  // its old id, and the two chose a second value for a slot (sim --protocol --reconfig seed 949,
  // once the schedule moved); a server that had heard that member before refuses it.
  std::map<NodeId, uint64_t> pins;
  // Its catch-up and snapshot requests once calm since its chosen prefix last moved (times).
  std::deque<uint64_t> catchup_requests;
  Slot catchup_watch_commit = 0;
  uint64_t catchup_retries_seen = 0;  // of this incarnation's replica
  std::unique_ptr<paxos::Replica> replica;
  storage::MemFileSystem fs;  // the node's disk
  Rng salts{0};  // its log's segment salts: seeded, so that a seed replays the same bytes
  std::unique_ptr<storage::ReplicaStorage> wal;  // the real log and snapshots on it
  paxos::DurableState disk;                      // what the node was told is durable: a lower bound
  std::deque<PendingReady> disk_queue;
  uint64_t disk_free_us = 0;
  std::map<CommandId, std::vector<std::pair<int, uint64_t>>> waiting;  // client, attempt
  std::map<uint64_t, std::pair<int, uint64_t>> reads;                  // read id -> client, attempt
  // The state machine: commands take effect once; `chain` digests every value applied so far.
  std::set<CommandId> applied;
  Slot applied_slot = 0;
  uint64_t chain = 0;
  Slot last_snapshot = 0;
  paxos::Role last_role = paxos::Role::kFollower;
  // Its clock's rate error, in parts per million (with --lease; 0 otherwise): the machine's, kept
  // across crashes and wipes.
  int64_t drift_ppm = 0;
};

struct Simulation::Client {
  int index = 0;
  uint64_t id = 0;
  uint64_t next_seq = 1;
  std::optional<Command> current;
  uint64_t attempt = 0;
  int target = 0;
  int probes_left = -1;  // fresh commands still owed in the liveness phase; -1: fault phase
  // Reads, beside the commands: one at a time, each attempt tagged so stale events are ignored.
  uint64_t read_attempt = 0;
  int read_target = 0;
};

Simulation::Simulation(const Options& options, std::ostream* trace)
    : events_(trace, kRecentEvents),
      rng_(options.seed),
      options_(options.swarmed(rng_)),
      quorum_([&] {
        // The truth, whatever the bugs: what the replicas are configured with.
        auto quorum = paxos::make_quorum_system(options_.replicas, options_.quorum);
        SYNOD_ASSERT(quorum.is_ok(), "a malformed quorum configuration");
        SYNOD_ASSERT(options_.allow_unsafe_quorum || paxos::verify_quorum_system(*quorum).is_ok(),
                     "an unsafe quorum system (see verify_quorum_system)");
        return std::move(*quorum);
      }()),
      checker_(quorum_) {
  SYNOD_ASSERT(options_.replicas >= 1 && options_.replicas <= 63, "replica count out of range");
  result_.seed = options_.seed;
  const int spares = options_.reconfig > 0 ? options_.spare_replicas : 0;
  for (int i = 0; i < options_.replicas + spares; ++i) {
    auto node = std::make_unique<Node>();
    node->id = NodeId{uint32_t(i + 1)};
    node->index = i;
    node->salts = Rng(options_.seed * 31 + uint64_t(i) + 1);
    node->identity = rng_.next() | 1;
    auto wal = storage::ReplicaStorage::open(node->fs, log_options(*node), nullptr);
    SYNOD_ASSERT(wal.is_ok(), "opening an empty simulated log");
    node->wal = std::move(*wal);
    nodes_.push_back(std::move(node));
    Node& n = *nodes_.back();
    n.replica = std::make_unique<paxos::Replica>(replica_config(n.id), n.disk, rng_.next());
    n.replica->set_chosen_log(n.wal->log().chosen_log());
    if (options_.lease) {
      // Most often at the bound, fast or slow, where a lease would first go wrong.
      const auto bound = int64_t(paxos::kClockDriftBound * 1e6);
      const uint64_t pick = rng_.below(4);
      n.drift_ppm = pick == 0   ? bound
                    : pick == 1 ? -bound
                                : int64_t(rng_.below(2 * uint64_t(bound) + 1)) - bound;
    }
    schedule(rng_.below(tick_us(n)) + 1, Event{EventKind::kTick, i});
  }
  for (int c = 0; c < options_.clients; ++c) {
    auto client = std::make_unique<Client>();
    client->index = c;
    client->id = uint64_t(c + 1);
    client->target = int(rng_.below(nodes_.size()));
    clients_.push_back(std::move(client));
    Event start{EventKind::kClientStart};
    start.client = c;
    schedule(rng_.below(options_.client_think_max_us + 1), start);
    if (options_.read_interval_max_us > 0) {
      clients_.back()->read_target = clients_.back()->target;
      Event read{EventKind::kClientReadStart};
      read.client = c;
      schedule(rng_.below(options_.read_interval_max_us + 1), read);
    }
  }
  if (options_.crashes || options_.partitions) {
    schedule(rng_.between(options_.nemesis_interval_min_us, options_.nemesis_interval_max_us),
             Event{EventKind::kNemesis});
  }
  schedule(options_.fault_phase_us, Event{EventKind::kLivenessStart});
}

Simulation::~Simulation() = default;

storage::LogOptions Simulation::log_options(Node& node) const {
  storage::LogOptions o;
  o.dir = "data";
  o.cluster_id = 1;
  o.node_id = node.id.value;
  o.salt_source = [salts = &node.salts] { return salts->next(); };
  o.segment_bytes = options_.segment_bytes;
  o.bug_skip_fdatasync = options_.bugs.skip_fdatasync;
  return o;
}

paxos::Config Simulation::replica_config(NodeId id) const {
  paxos::Config config;
  config.self = id;
  // A spare, added at run time if ever; or a wiped replica, which comes back as a machine for a
  // new member would (`--initial-cluster-state existing --join`): with no configuration of its
  // own, so it never campaigns. (Restarted as a founding member, several wiped replicas would
  // make a second cluster of their own out of the bootstrap configuration: the identity checks of
  // `existing` refuse that start.)
  config.join = id.value > uint32_t(options_.replicas) || nodes_[id.value - 1]->wiped;
  config.incarnation = nodes_[id.value - 1]->identity;
  config.quorum = options_.bugs.minority_quorum
                      ? paxos::QuorumSystem::majority(quorum_.members(), options_.bugs)
                      : quorum_;
  options_.configure(config);
  config.bugs = options_.bugs;
  if (options_.lease)
    config.read_lease_ms =
        config.max_read_lease_ms(options_.tick_us / 1000, paxos::kClockDriftBound);
  // The server's byte bounds (paxos::Config::set_size_limits), scaled down with the value limit:
  // promises, catch-up replies and pipelines of large values then come in several messages.
  config.max_batch_bytes = options_.value_limit_bytes;
  config.set_size_limits(options_.value_limit_bytes, 0);
  config.snapshot_chunk_bytes = options_.snapshot_chunk_bytes;
  config.log_memory_bytes = options_.log_memory_bytes_for(options_.seed);
  return config;
}

// ---------------------------------------------------------------------------------------------
// The event loop.

RunResult Simulation::run() {
  while (!queue_.empty() && !result_.violation) {
    auto handle = queue_.extract(queue_.begin());
    now_us_ = handle.key().first;
    ++result_.events;
    dispatch(handle.mapped());
    if (!checker_.ok()) result_.violation = checker_.violation();
    if (liveness_phase_ && !result_.violation) {
      if (probe_.stage() == DisruptionProbe::Stage::kDone) {
        // Then, with transfers on, the transfer probe.
        if (options_.transfer <= 0 || transfer_probe_ == TransferProbe::kDone) break;
        if (transfer_probe_ == TransferProbe::kNone && !start_transfer_probe()) break;
        continue;
      }
      if (probe_.stage() == DisruptionProbe::Stage::kNone && converged() &&
          !start_disruption_probe())
        break;
    }
  }
  if (result_.violation) result_.last_events = events_.recent();
  result_.slots_chosen = checker_.chosen().size();
  std::set<CommandId> chosen_commands;
  for (const auto& [slot, value] : checker_.chosen()) {
    if (value.membership) ++result_.reconfigurations;
    for (const Command& command : value.commands) chosen_commands.insert(command.id);
  }
  result_.commands_chosen = chosen_commands.size();
  result_.commands_acknowledged = acknowledged_.size();
  if (!result_.violation) {
    for (const CommandId& id : acknowledged_) {
      if (chosen_commands.count(id) == 0) {
        result_.violation = "durability: acknowledged command c" + std::to_string(id.client) + "." +
                            std::to_string(id.seq) + " is not in the chosen log";
        break;
      }
    }
  }
  result_.leaders = leader_ballots_.size();
  result_.digest = events_.digest();
  return result_;
}

void Simulation::schedule(uint64_t at_us, Event event) {
  queue_.emplace(std::make_pair(at_us, next_seq_++), std::move(event));
}

void Simulation::log(const std::string& line) {
  events_.add(now_us_, line);
}

void Simulation::dispatch(Event& event) {
  switch (event.kind) {
    case EventKind::kTick: {
      Node& node = *nodes_[event.node];
      schedule(now_us_ + tick_us(node), Event{EventKind::kTick, event.node});
      if (!node.up) return;
      node.replica->tick();
      process_ready(node);
      return;
    }
    case EventKind::kDeliver: {
      Node& node = *nodes_[event.envelope.to.value - 1];
      const bool local = event.envelope.from == event.envelope.to;
      if (!node.up || (local && event.tag != node.incarnation)) return;
      if (!local && cut_.stops(rng_, int(event.envelope.from.value - 1), node.index)) {
        log((cut_.clogged ? "hold (clog) " : "drop (partition) ") + to_string(event.envelope));
        if (cut_.clogged) held_.push_back(std::move(event.envelope));
        return;
      }
      if (!local && event.envelope.incarnation != 0) {
        const auto [pin, first] =
            node.pins.try_emplace(event.envelope.from, event.envelope.incarnation);
        if (!first && pin->second != event.envelope.incarnation &&
            !options_.bugs.wiped_replica_votes) {
          log("refuse (pinned incarnation) " + to_string(event.envelope));
          // The server refuses at the connection's handshake and tells the sender, which stops.
          Event refused{EventKind::kRefused, int(event.envelope.from.value - 1)};
          refused.tag = event.envelope.incarnation;
          refused.hint = node.id;
          schedule(now_us_ + kRefusalDelayUs, refused);
          return;
        }
      }
      log("deliver " + to_string(event.envelope));
      const bool leading = node.replica->role() == paxos::Role::kLeader;
      const Slot commit_before = node.replica->commit();
      node.replica->step(event.envelope);
      if (leading && node.replica->role() == paxos::Role::kLeader &&
          node.replica->commit() > commit_before &&
          !std::holds_alternative<paxos::AcceptedMsg>(event.envelope.message)) {
        const std::string message = paxos::to_string(event.envelope.message);
        checker_.on_leader_learn(node.id, commit_before, node.replica->commit(),
                                 message.substr(0, message.find(' ')));
      }
      process_ready(node);
      return;
    }
    case EventKind::kDiskDone:
      return on_disk_done(*nodes_[event.node], event.tag);
    case EventKind::kClientArrive: {
      Node& node = *nodes_[event.node];
      if (!node.up) return;
      const paxos::ProposeStatus status = node.replica->propose(event.command);
      log("client " + std::to_string(event.client + 1) + " proposes " +
          paxos::to_string(paxos::Value{{event.command}}) + " at " + to_string(node.id) +
          (status == paxos::ProposeStatus::kQueued ? "" : " (refused)"));
      if (status == paxos::ProposeStatus::kQueued) {
        node.waiting[event.command.id].emplace_back(event.client, event.tag);
      } else {
        client_reply(event.client, event.tag, Outcome::kFailed, node.replica->leader(), 0);
      }
      process_ready(node);
      return;
    }
    case EventKind::kClientReply:
      return client_reply_arrives(event.client, event.tag, event.outcome, event.hint, event.slot);
    case EventKind::kClientReadStart:
      return client_start_read(*clients_[event.client]);
    case EventKind::kClientReadArrive:
      return client_read_arrives(event.node, event.client, event.tag);
    case EventKind::kClientReadReply:
    case EventKind::kClientReadTimeout: {
      Client& client = *clients_[event.client];
      if (event.tag != client.read_attempt) return;  // a stale answer or timer
      return client_read_done(client, event.ok, event.hint);
    }
    case EventKind::kClientTimeout:
      return client_timeout(event.client, event.tag);
    case EventKind::kClientRetry:
      if (clients_[event.client]->attempt == event.tag) client_send(*clients_[event.client]);
      return;
    case EventKind::kClientStart:
      return client_start_command(*clients_[event.client]);
    case EventKind::kNemesis:
      return nemesis();
    case EventKind::kRefused: {
      Node& node = *nodes_[event.node];
      if (node.up && node.identity == event.tag) stop_refused(node, event.hint);
      return;
    }
    case EventKind::kRestart:
      // A replica the liveness phase already restarted is not restarted again, nor one that
      // stopped on a refusal.
      if (!nodes_[event.node]->up && !nodes_[event.node]->refused &&
          event.tag == nodes_[event.node]->incarnation) {
        restart(*nodes_[event.node]);
      }
      return;
    case EventKind::kHeal:
      // (Not the disruption probe's cut: a fault-phase heal still pending must leave it.)
      if (event.tag == result_.partitions && probe_.stage() == DisruptionProbe::Stage::kNone)
        heal();
      return;
    case EventKind::kLivenessStart:
      return start_liveness_phase();
    case EventKind::kProbeHeal:
      cut_ = {};
      log(probe_.rejoin(node_names(nodes_)));
      return;
    case EventKind::kProbeEnd:
      return end_disruption_probe();
    case EventKind::kTransferProbeEnd:
      return end_transfer_probe();
    case EventKind::kLivenessDeadline:
      if (probe_.stage() != DisruptionProbe::Stage::kNone) return;  // it converged in time
      result_.violation = "liveness: no convergence within " +
                          std::to_string(options_.liveness_bound_us / 1000) +
                          " ms of calm: " + describe_stall();
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Replicas and their disks.

uint64_t Simulation::tick_us(const Node& node) const {
  // A fast clock's ticks come more often: each is tick_us of its own time.
  return uint64_t(double(options_.tick_us) * 1e6 / double(1'000'000 + node.drift_ppm));
}

uint64_t Simulation::clock_ms(const Node& node) const {
  return uint64_t(double(now_us_) * double(1'000'000 + node.drift_ppm) / 1e6) / 1000;
}

void Simulation::process_ready(Node& node) {
  // Read now, after every input this Ready answers (the driver's part: Replica::set_clock_ms).
  if (options_.lease) node.replica->set_clock_ms(clock_ms(node));
  Ready ready = node.replica->take_ready();
  const paxos::Role role = node.replica->role();
  if (role != node.last_role) {
    node.last_role = role;
    log(to_string(node.id) + " is now " + paxos::to_string(role) + " at ballot " +
        to_string(node.replica->ballot()));
    if (role == paxos::Role::kLeader) {
      leader_ballots_.insert(node.replica->ballot());
      // A transfer completes when its target leads next (in a higher ballot than the one it
      // was asked in); any other new leader ends every transfer in progress.
      if (auto it = transfers_.find(node.id);
          it != transfers_.end() && node.replica->ballot() > it->second)
        ++result_.transfers_completed;
      transfers_.clear();
    }
    if (transfer_probe_ == TransferProbe::kRunning &&
        (role == paxos::Role::kLeader || node.index == transfer_probe_leader_)) {
      const bool expected =
          (role == paxos::Role::kLeader && node.id == transfer_probe_target_) ||
          (node.index == transfer_probe_leader_ && role == paxos::Role::kFollower);
      if (role == paxos::Role::kLeader && node.id == transfer_probe_target_)
        result_.transfer_probe_us = now_us_ - transfer_probe_start_us_;
      if (!expected)
        transfer_probe_changes_.push_back(to_string(node.id) + " became " + paxos::to_string(role) +
                                          " at ballot " + to_string(node.replica->ballot()));
    }
    bool member = true;
    if (probe_.stage() != DisruptionProbe::Stage::kNone) {
      const paxos::MembershipRef& probed = nodes_[size_t(probe_.leader())]->replica->membership();
      member = !probed || probed->is_member(node.id);
    }
    probe_.note_role(node.index, role == paxos::Role::kLeader,
                     to_string(node.id) + " became " + paxos::to_string(role) + " at ballot " +
                         to_string(node.replica->ballot()),
                     member, node.replica->ballot());
  }
  for (const paxos::SlotValue& entry : ready.persist.chosen) {
    checker_.on_learn(node.id, entry.slot, entry.value);
  }
  // Judged when the core reports them, whether or not the driver lives to pass them on.
  for (const paxos::ReadResult& read : ready.reads) {
    checker_.on_read_result(node.id, read);
    result_.reads_served += read.ok ? 1 : 0;
    result_.reads_in_lease += read.ok && node.replica->lease_holds() ? 1 : 0;
  }
  if (ready.empty()) return;
  if (!ready.persist.empty()) {
    // Written now, durable only when the sync completes: a crash in between may lose or tear it.
    // A snapshot from a peer is written atomically at once (being durable early is harmless).
    if (ready.persist.snapshot) {
      SYNOD_ASSERT(node.wal
                       ->save_snapshot({ready.persist.snapshot->slot, *ready.persist.snapshot->data,
                                        ready.persist.snapshot->membership})
                       .is_ok(),
                   "simulated snapshot write failed");
      ++result_.snapshots_installed;
    }
    node.wal->append(ready.persist);
    SYNOD_ASSERT(node.wal->flush().is_ok(), "simulated write failed");
    if (options_.bugs.ack_before_sync) {
      // Planted bug: everything leaves now; only the persist waits for the disk.
      Ready early = std::move(ready);
      ready = Ready{};
      ready.persist = std::move(early.persist);
      early.persist = {};
      release(node, early);
      if (!node.up) return;
    }
  }
  if (ready.persist.empty() && node.disk_queue.empty()) return release(node, ready);
  uint64_t done = std::max(now_us_, node.disk_free_us);
  if (!ready.persist.empty()) done += rng_.between(options_.sync_min_us, options_.sync_max_us);
  node.disk_free_us = done;
  node.disk_queue.push_back(PendingReady{done, std::move(ready)});
  Event event{EventKind::kDiskDone, node.index};
  event.tag = node.incarnation;
  schedule(done, std::move(event));
}

void Simulation::on_disk_done(Node& node, uint64_t incarnation) {
  if (!node.up || incarnation != node.incarnation) return;  // lost in a crash
  SYNOD_ASSERT(!node.disk_queue.empty() && node.disk_queue.front().done_us == now_us_,
               "disk completions out of order");
  PendingReady pending = std::move(node.disk_queue.front());
  node.disk_queue.pop_front();
  const paxos::PersistBatch& persist = pending.ready.persist;
  if (!persist.empty()) {
    SYNOD_ASSERT(node.wal->sync().is_ok(), "simulated sync failed");
    ++result_.syncs;
  }
  node.disk.apply(persist);
  // A wiped replica is a new acceptor under an old id: the member of that id, whose promises and
  // votes it forgot, is gone. What it accepts counts only where a configuration binds its new
  // incarnation (Checker::on_durable_accept); the nemesis removes it, unless a leader binds it
  // first (options.early_wipes).
  for (const paxos::AcceptedEntry& entry : persist.accepted)
    checker_.on_durable_accept(node.id, entry.slot, entry.proposal, node.wiped ? node.identity : 0);
  if (!persist.empty()) {
    log(to_string(node.id) + " synced" +
        (persist.promised ? " promise " + to_string(*persist.promised) : std::string()) + " " +
        std::to_string(persist.accepted.size()) + " accepted " +
        std::to_string(persist.chosen.size()) + " chosen");
  }
  release(node, pending.ready);
}

void Simulation::release(Node& node, Ready& ready) {
  bool promised = false;
  for (const Envelope& envelope : ready.messages) {
    promised |=
        envelope.to != node.id && std::holds_alternative<paxos::PromiseMsg>(envelope.message);
  }
  for (Envelope& envelope : ready.messages) {
    if (envelope.to == node.id) {
      Event event{EventKind::kDeliver};
      event.tag = node.incarnation;
      event.envelope = std::move(envelope);
      schedule(now_us_, std::move(event));
    } else {
      send(envelope);
    }
  }
  if (ready.install) {
    restore_state_machine(node, *ready.install);
    if (!node.up) return;
  }
  for (const paxos::SlotValue& entry : ready.committed) {
    checker_.on_apply(node.id, entry.slot, entry.value);
    for (const Command& command : entry.value.commands) node.applied.insert(command.id);
    node.chain = chain_digest(node.chain, entry.slot, entry.value);
    node.applied_slot = entry.slot;
    log(to_string(node.id) + " applies " + std::to_string(entry.slot) + "=" +
        paxos::to_string(entry.value));
  }
  if (options_.snapshot_every > 0 &&
      node.applied_slot >= node.last_snapshot + options_.snapshot_every)
    take_snapshot(node);
  for (const paxos::ProposalOutcome& outcome : ready.outcomes) {
    auto it = node.waiting.find(outcome.id);
    if (it == node.waiting.end()) continue;
    for (const auto& [client, attempt] : it->second) {
      client_reply(client, attempt, outcome.outcome, outcome.leader_hint, outcome.slot);
    }
    node.waiting.erase(it);
  }
  for (const paxos::ReadResult& read : ready.reads) {
    auto it = node.reads.find(read.read_id);
    if (it == node.reads.end()) continue;
    log(to_string(node.id) + (read.ok ? " serves read r" : " fails read r") +
        std::to_string(read.read_id) + (read.ok ? " at slot " + std::to_string(read.slot) : ""));
    client_read_reply(it->second.first, it->second.second, read.ok, read.leader_hint);
    node.reads.erase(it);
  }
  // Crash points: right after a sync, and right after promising, having sent what was allowed.
  if (faults_on_ && options_.crashes &&
      ((!ready.persist.empty() && rng_.chance(options_.crash_after_sync)) ||
       (promised && rng_.chance(options_.crash_after_promise)))) {
    crash_and_schedule_restart(node);
  }
}

uint64_t Simulation::network_delay() {
  if (faults_on_ && rng_.chance(options_.long_delay)) {
    return rng_.between(options_.delay_max_us, options_.long_delay_max_us);
  }
  return rng_.between(options_.delay_min_us, options_.delay_max_us);
}

void Simulation::send(const Envelope& envelope) {
  ++result_.messages;
  if (!faults_on_ && (std::holds_alternative<paxos::CatchupRequestMsg>(envelope.message) ||
                      std::holds_alternative<paxos::SnapshotRequestMsg>(envelope.message))) {
    watch_catchup_requests(*nodes_[envelope.from.value - 1]);
  }
  const int from = int(envelope.from.value - 1);
  const int to = int(envelope.to.value - 1);
  if (cut_.stops(rng_, from, to)) {
    if (cut_.clogged) held_.push_back(envelope);
    return;
  }
  if (faults_on_ && rng_.chance(options_.loss)) return;
  const int copies = faults_on_ && rng_.chance(options_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    const std::optional<uint64_t> departure = link_departure(from, to, envelope);
    if (!departure) return;
    Event event{EventKind::kDeliver};
    event.envelope = envelope;
    schedule(*departure + network_delay(), std::move(event));
  }
}

// Once calm nothing is lost, so a request the retry timer sent again was answered late, not lost:
// asking again and again without learning anything is a storm that keeps a peer building the same
// large replies (planted bug catchup-retry-storm). A replica that backs off asks at most about
// log2(1 s / its retransmit interval) times a second, plus once an election timeout when it hears
// no leader.
void Simulation::watch_catchup_requests(Node& node) {
  static constexpr size_t kMaxRequestsPerSecond = 16;
  auto& watch = node.catchup_requests;
  if (node.replica->commit() != node.catchup_watch_commit) {
    node.catchup_watch_commit = node.replica->commit();
    watch.clear();
  }
  // Only requests sent again by the retry timer: a snapshot transfer asks for each next chunk as
  // the last one arrives, which is progress, not a storm.
  const uint64_t retries = node.replica->catchup_retries();
  if (retries == node.catchup_retries_seen) return;
  node.catchup_retries_seen = retries;
  watch.push_back(now_us_);
  while (watch.front() + 1'000'000 < now_us_) watch.pop_front();
  if (watch.size() > kMaxRequestsPerSecond && !result_.violation) {
    result_.violation = "catch-up storm: " + to_string(node.id) + " asked for chosen slots " +
                        std::to_string(watch.size()) + " times within 1 s once calm, learning " +
                        "nothing (commit " + std::to_string(node.catchup_watch_commit) + ")";
  }
}

// With a link bandwidth, a message leaves once the link has carried every message sent on it
// before, taking its encoded size's worth of time: a large message holds up everything behind it
// (a heartbeat behind a redundant 128 KiB catch-up reply is late), as on a real connection. Like
// the server's peer queue (4 of the largest frames), a link holds at most four of the largest
// messages waiting; beyond that a message is dropped.
std::optional<uint64_t> Simulation::link_departure(int from, int to, const Envelope& envelope) {
  if (options_.link_bytes_per_ms == 0) return now_us_;
  std::string bytes;
  paxos::encode_message(bytes, envelope.message);
  uint64_t& free_at = link_free_us_[{from, to}];
  free_at = std::max(free_at, now_us_);
  const uint64_t waiting_bytes = (free_at - now_us_) * options_.link_bytes_per_ms / 1000;
  if (link_queue_bytes_ == 0)
    link_queue_bytes_ = 4 * replica_config(envelope.from).max_message_bytes;
  if (waiting_bytes + bytes.size() > link_queue_bytes_) {
    ++result_.link_drops;
    return std::nullopt;
  }
  free_at += bytes.size() * 1000 / options_.link_bytes_per_ms;
  return free_at;
}

void Simulation::crash(Node& node) {
  ++result_.crashes;
  log("crash " + to_string(node.id) + " (" + std::to_string(node.disk_queue.size()) +
      " unsynced batches lost)");
  node.up = false;
  ++node.incarnation;
  node.replica.reset();
  node.wal.reset();
  node.fs.crash(
      rng_, storage::CrashFaults{.tear = options_.disk_faults,
                                 .flip_rate = options_.disk_faults ? options_.disk_flip_rate : 0});
  node.disk_queue.clear();
  node.disk_free_us = 0;
  node.waiting.clear();
  node.reads.clear();
  node.applied.clear();
  node.applied_slot = 0;
  node.chain = 0;
  node.last_snapshot = 0;
  node.last_role = paxos::Role::kFollower;
}

// The simulated state machine's snapshot: applied slot, chain digest, applied command ids.
void Simulation::take_snapshot(Node& node) {
  std::string data;
  put_u64(data, node.applied_slot);
  put_u64(data, node.chain);
  put_u64(data, node.applied.size());
  for (const CommandId& id : node.applied) {
    put_u64(data, id.client);
    put_u64(data, id.seq);
  }
  // Durable first, then the core and the log may forget what it covers.
  paxos::MembershipRef membership = node.replica->membership_at(node.applied_slot);
  SYNOD_ASSERT(node.wal->save_snapshot({node.applied_slot, data, membership}).is_ok(),
               "simulated snapshot write failed");
  auto shared = std::make_shared<const std::string>(std::move(data));
  node.replica->compact(node.applied_slot, shared);
  node.disk.compact(paxos::SnapshotRef{node.applied_slot, shared, membership});
  node.last_snapshot = node.applied_slot;
  ++result_.snapshots_taken;
  log(to_string(node.id) + " snapshots through slot " + std::to_string(node.applied_slot));
}

void Simulation::restore_state_machine(Node& node, const paxos::SnapshotRef& snapshot) {
  Reader in(*snapshot.data);
  uint64_t slot = 0, chain = 0, count = 0;
  std::set<CommandId> applied;
  bool ok = in.u64(slot) && in.u64(chain) && in.u64(count) && slot == snapshot.slot;
  for (uint64_t i = 0; ok && i < count; ++i) {
    CommandId id;
    ok = in.u64(id.client) && in.u64(id.seq);
    applied.insert(id);
  }
  if (!ok || !in.done()) {
    result_.violation = "snapshot: " + to_string(node.id) + " got an undecodable snapshot";
    return;
  }
  node.applied = std::move(applied);
  node.applied_slot = slot;
  node.chain = chain;
  node.last_snapshot = std::max(node.last_snapshot, slot);
  checker_.on_install(node.id, slot, chain);
  log(to_string(node.id) + " installs a snapshot through slot " + std::to_string(slot));
}

// What `synced` holds that `recovered` lost, if anything: recovery must never lose a synced
// promise, accepted entry or chosen mark (it may keep more, from unsynced writes that survived).
static std::optional<std::string> storage_lost(const paxos::DurableState& synced,
                                               const paxos::DurableState& recovered) {
  const Slot covered = recovered.snapshot.slot;  // a snapshot stands for what it covers
  if (recovered.snapshot.slot < synced.snapshot.slot)
    return "snapshot through slot " + std::to_string(synced.snapshot.slot);
  if (recovered.promised < synced.promised)
    return "promise " + to_string(synced.promised) + " came back as " +
           to_string(recovered.promised);
  for (const auto& [slot, proposal] : synced.accepted) {
    if (slot <= covered) continue;
    auto it = recovered.accepted.find(slot);
    if (it == recovered.accepted.end() || it->second.ballot < proposal.ballot ||
        (it->second.ballot == proposal.ballot && !(it->second.value == proposal.value)))
      return "accepted entry for slot " + std::to_string(slot) + " in ballot " +
             to_string(proposal.ballot);
  }
  for (const auto& [slot, value] : synced.chosen) {
    if (slot <= covered) continue;
    auto it = recovered.chosen.find(slot);
    if (it == recovered.chosen.end() || !(it->second == value))
      return "chosen mark for slot " + std::to_string(slot);
  }
  return std::nullopt;
}

void Simulation::restart(Node& node) {
  SYNOD_ASSERT(!node.up && node.disk_queue.empty(), "restart of a running replica");
  // Recover from the disk alone, then hold the log to what the node was told was durable.
  storage::Recovered from_disk;
  auto wal = storage::ReplicaStorage::open(node.fs, log_options(node), &from_disk);
  if (!wal.is_ok()) {
    result_.violation =
        "storage: " + to_string(node.id) + " cannot recover: " + wal.status().to_string();
    return;
  }
  node.wal = std::move(*wal);
  if (node.wal->log().log().torn_bytes_at_open() > 0) ++result_.torn_tails;
  paxos::DurableState recovered = std::move(from_disk.state);
  if (from_disk.snapshot) {
    recovered.snapshot =
        paxos::SnapshotRef{from_disk.snapshot->slot,
                           std::make_shared<const std::string>(std::move(from_disk.snapshot->data)),
                           from_disk.snapshot->membership};
  }
  if (auto lost = storage_lost(node.disk, recovered)) {
    result_.violation = "storage: " + to_string(node.id) + " lost synced state: " + *lost;
    return;
  }
  for (const auto& [slot, proposal] : recovered.accepted) {
    // Unsynced records that happened to survive are durable now: they count as votes.
    auto it = node.disk.accepted.find(slot);
    if (it == node.disk.accepted.end() || !(it->second == proposal))
      checker_.on_durable_accept(node.id, slot, proposal, node.wiped ? node.identity : 0);
  }
  node.disk = recovered;
  node.up = true;
  node.replica = std::make_unique<paxos::Replica>(replica_config(node.id), node.disk, rng_.next());
  node.replica->set_chosen_log(node.wal->log().chosen_log());
  node.catchup_retries_seen = 0;
  node.catchup_requests.clear();
  log("restart " + to_string(node.id) + " from durable state: promise " +
      to_string(node.disk.promised) + ", " + std::to_string(node.disk.accepted.size()) +
      " accepted, " + std::to_string(node.disk.chosen.size()) + " chosen");
  checker_.on_restart(node.id);
  process_ready(node);
}

// ---------------------------------------------------------------------------------------------
// Clients: one command at a time, retried with the same id until it is known chosen.

void Simulation::client_start_command(Client& client) {
  if (client.probes_left == 0) return;  // done
  if (client.probes_left > 0) --client.probes_left;
  Command command;
  command.id = CommandId{client.id, client.next_seq++};
  command.payload = "v" + std::to_string(rng_.next() % 1000000);
  if (rng_.chance(options_.large_values)) {
    const size_t limit = options_.value_limit_bytes;
    const size_t size = rng_.chance(0.5) ? limit : command.payload.size() + rng_.below(limit);
    if (size > command.payload.size()) command.payload.resize(std::min(size, limit), '.');
  }
  checker_.on_propose(command);
  client.current = std::move(command);
  client_send(client);
}

void Simulation::client_send(Client& client) {
  const uint64_t attempt = ++client.attempt;
  Event arrive{EventKind::kClientArrive, client.target, client.index, attempt};
  arrive.command = *client.current;
  if (!faults_on_ || !rng_.chance(options_.loss)) schedule(now_us_ + network_delay(), arrive);
  Event timeout{EventKind::kClientTimeout, -1, client.index, attempt};
  schedule(now_us_ + options_.client_timeout_us, timeout);
}

void Simulation::client_reply(int client_index, uint64_t attempt, Outcome outcome, NodeId hint,
                              Slot slot) {
  if (faults_on_ && rng_.chance(options_.loss)) return;
  Event event{EventKind::kClientReply, -1, client_index, attempt};
  event.outcome = outcome;
  event.hint = hint;
  event.slot = slot;
  schedule(now_us_ + network_delay(), std::move(event));
}

void Simulation::client_reply_arrives(int client_index, uint64_t attempt, Outcome outcome,
                                      NodeId hint, Slot slot) {
  Client& client = *clients_[client_index];
  if (attempt != client.attempt || !client.current) return;  // a stale answer
  const CommandId id = client.current->id;
  log("client " + std::to_string(client.id) + " hears c" + std::to_string(id.client) + "." +
      std::to_string(id.seq) + " " + paxos::to_string(outcome));
  if (outcome == Outcome::kChosen) {
    acknowledged_.insert(id);
    checker_.on_acknowledge(slot);
    client.current.reset();
    ++client.attempt;  // retire this command's timers
    Event start{EventKind::kClientStart, -1, client.index};
    schedule(now_us_ + rng_.below(options_.client_think_max_us + 1), start);
    return;
  }
  // Failed or unknown: retry the same command id, where the replica suggested if it knew.
  client.target = hint.valid() ? int(hint.value - 1) : int(rng_.below(nodes_.size()));
  const uint64_t next = ++client.attempt;
  schedule(now_us_ + rng_.between(1'000, kRetryBackoffMaxUs),
           Event{EventKind::kClientRetry, -1, client.index, next});
}

void Simulation::client_timeout(int client_index, uint64_t attempt) {
  Client& client = *clients_[client_index];
  if (attempt != client.attempt || !client.current) return;
  log("client " + std::to_string(client.id) + " times out at " +
      to_string(NodeId{uint32_t(client.target + 1)}));
  client.target = int(rng_.below(nodes_.size()));
  client_send(client);
}

// Reads, in the fault phase: from whoever the client thinks leads, not retried (a failed read had
// no effect; the client reads again later, maybe elsewhere).
void Simulation::client_start_read(Client& client) {
  if (!faults_on_) return;
  const uint64_t attempt = ++client.read_attempt;
  if (!rng_.chance(options_.loss)) {
    schedule(now_us_ + network_delay(),
             Event{EventKind::kClientReadArrive, client.read_target, client.index, attempt});
  }
  schedule(now_us_ + options_.read_timeout_us,
           Event{EventKind::kClientReadTimeout, -1, client.index, attempt});
}

void Simulation::client_read_arrives(int node_index, int client_index, uint64_t attempt) {
  Node& node = *nodes_[node_index];
  if (!node.up) return;
  const uint64_t read_id = ++next_read_id_;
  const paxos::ReadStatus status = node.replica->read_index(read_id);
  const bool queued = status == paxos::ReadStatus::kQueued;
  log("client " + std::to_string(client_index + 1) + " reads r" + std::to_string(read_id) + " at " +
      to_string(node.id) + (queued ? "" : " (refused)"));
  if (queued) {
    checker_.on_read_request(read_id);
    node.reads.emplace(read_id, std::make_pair(client_index, attempt));
  } else {
    client_read_reply(client_index, attempt, false, node.replica->leader());
  }
  process_ready(node);
}

void Simulation::client_read_reply(int client_index, uint64_t attempt, bool ok, NodeId hint) {
  if (faults_on_ && rng_.chance(options_.loss)) return;
  Event event{EventKind::kClientReadReply, -1, client_index, attempt};
  event.ok = ok;
  event.hint = hint;
  schedule(now_us_ + network_delay(), std::move(event));
}

// A read's answer (ok or not), or its timeout (not ok, no hint).
void Simulation::client_read_done(Client& client, bool ok, NodeId hint) {
  log("client " + std::to_string(client.id) + (ok ? " hears read served" : " hears read failed"));
  if (!ok) client.read_target = hint.valid() ? int(hint.value - 1) : int(rng_.below(nodes_.size()));
  ++client.read_attempt;  // retire this read's timer
  Event next{EventKind::kClientReadStart, -1, client.index};
  schedule(now_us_ + rng_.below(options_.read_interval_max_us + 1), next);
}

// ---------------------------------------------------------------------------------------------
// The nemesis.

Simulation::Node* Simulation::current_leader() {
  Node* best = nullptr;
  for (auto& node : nodes_) {
    if (!node->up || node->replica->role() != paxos::Role::kLeader) continue;
    if (!best || node->replica->ballot() > best->replica->ballot()) best = node.get();
  }
  return best;
}

void Simulation::nemesis() {
  if (!faults_on_) return;
  schedule(
      now_us_ + rng_.between(options_.nemesis_interval_min_us, options_.nemesis_interval_max_us),
      Event{EventKind::kNemesis});
  if (options_.hostile > 0 && rng_.chance(options_.hostile)) send_hostile();
  if (options_.transfer > 0 && rng_.chance(options_.transfer)) {
    if (Node* leader = current_leader()) transfer(*leader);
    return;
  }
  if (options_.reconfig > 0 && rng_.chance(options_.reconfig)) {
    reconfigure();
    return;
  }
  const bool crash_now = options_.crashes && (!options_.partitions || rng_.chance(0.5));
  if (!crash_now) {
    if (cut_.empty()) {
      partition();
    } else {
      heal();
    }
    return;
  }
  std::vector<Node*> up;
  for (auto& node : nodes_) {
    if (node->up) up.push_back(node.get());
  }
  if (up.empty()) return;
  if (rng_.chance(0.3)) {
    // Several at once, up to all of them (a power cut): every promise must come back from disk.
    for (Node* node : up) {
      if (rng_.chance(0.7)) crash_and_schedule_restart(*node);
    }
    return;
  }
  // Favour the leader: its crash exercises recovery of in-flight slots.
  Node* victim = current_leader();
  if (!victim || rng_.chance(0.5)) victim = up[rng_.below(up.size())];
  crash_and_schedule_restart(*victim);
}

void Simulation::stop_refused(Node& node, NodeId by) {
  log(to_string(node.id) + " stops for good: " + to_string(by) + " refused its identity");
  node.refused = true;
  ++result_.refused_identities;
  crash(node);
}

void Simulation::crash_and_schedule_restart(Node& node) {
  crash(node);
  Event restart_event{EventKind::kRestart, node.index};
  restart_event.tag = node.incarnation;
  // Half come straight back, while messages sent before the crash are still in flight.
  const uint64_t down_us =
      rng_.chance(0.8) ? rng_.between(1'000, 30'000) : rng_.between(30'000, 800'000);
  schedule(now_us_ + down_us, restart_event);
}

void Simulation::send_hostile() {
  const auto n = uint64_t(nodes_.size());
  if (n < 2) return;
  const NodeId from = nodes_[rng_.below(n)]->id;
  NodeId to = nodes_[rng_.below(n - 1)]->id;
  if (to.value >= from.value) to = NodeId{to.value + 1};
  uint64_t known = 0;
  for (const auto& node : nodes_)
    if (node->up)
      known =
          std::max({known, node->replica->promised().round, node->replica->highest_round_seen()});
  const Node& sender = *nodes_[from.value - 1];
  const bool leads = sender.up && sender.replica->role() == paxos::Role::kLeader;
  paxos::Message message = hostile_message(rng_, from, known, leads);
  ++result_.hostile_messages;
  log("hostile " + to_string(from) + "->" + to_string(to) + " " + paxos::to_string(message));
  // Past authentication: it speaks as the node's current data directory.
  send(Envelope{from, to, std::move(message), nodes_[from.value - 1]->identity});
}

// A voter's data directory is lost: it crashes and comes back with an empty one (a new
// incarnation) and the same command line. It must never vote under its old identity; the operator
// (reconfigure) removes it. One at a time, among at least three voters, and only once its old
// incarnation is bound (docs/core.md, "Membership": the window before the first binding).
void Simulation::wipe(Node& node) {
  const bool was_up = node.up;  // a replica that is down has its restart scheduled already
  if (was_up) crash(node);
  auto names = node.fs.list("data");
  if (names.is_ok()) {
    for (const std::string& name : *names) (void)node.fs.remove("data/" + name);
  }
  node.disk = {};
  node.pins.clear();
  node.identity = rng_.next() | 1;
  node.wiped = true;
  ++result_.wipes;
  log("wipe " + to_string(node.id) + ": its data directory is empty now");
  if (!was_up) return;
  Event restart_event{EventKind::kRestart, node.index};
  restart_event.tag = node.incarnation;
  schedule(now_us_ + rng_.between(1'000, 100'000), restart_event);
}

// One configuration change, asked of the leader as an operator would: computed from the
// configuration it reports, checked there, and proposed through the log.
void Simulation::reconfigure() {
  Node* leader = current_leader();
  if (leader == nullptr || leader->replica->membership() == nullptr) return;
  const paxos::Membership& now = *leader->replica->membership();
  std::vector<NodeId> voters, learners;
  NodeId wiped_member;
  for (const paxos::Member& m : now.members) {
    (m.voter ? voters : learners).push_back(m.id);
    if (nodes_[m.id.value - 1]->wiped) wiped_member = m.id;
  }
  using Kind = paxos::MembershipChange::Kind;
  paxos::MembershipChange change;
  const uint32_t spare = now.next_id;
  const bool spare_left = spare <= nodes_.size();
  const uint64_t pick = rng_.below(7);
  if (wiped_member.valid()) {
    change.kind = Kind::kRemove;  // the safe procedure: remove it, add a new machine
    change.id = wiped_member;
  } else if (after_transfer_ && after_transfer_->id != leader->id &&
             after_transfer_->old_id != leader->id) {
    change = *std::exchange(after_transfer_, std::nullopt);  // the leader handed over: ask again
  } else if (pick == 6) {
    // Not while a change is in progress: it may shrink the voters to a pair that needs this one.
    if (voters.size() < 3 || leader->replica->membership_change_pending()) return;
    // Nor while any replica holds an accepted change that is not known chosen and would leave
    // fewer than three voters: the leader may not know of it, and a later leader re-proposes it
    // (phase 1). Chosen after the wipe, it governs with a wiped voter in a pair, a failure no
    // configuration of two survives (sim --protocol --reconfig seed 3592 ended so: the demotion
    // of n3 accepted by some, then n2 wiped, then the demotion chosen, and nothing since).
    for (const auto& other : nodes_) {
      if (!other->up) continue;
      const auto& accepted = other->replica->accepted();
      for (auto it = accepted.upper_bound(other->replica->commit()); it != accepted.end(); ++it) {
        const paxos::MembershipRef& pending = it->second.value.membership;
        if (pending && pending->voters().size() < 3) return;
      }
    }
    // Only once every member has committed the binding of the victim's incarnation: before, a
    // member that has not would listen to the wiped replica (the server's durable pins close that
    // window in production; docs/core.md, "Membership").
    // (early_wipes opens that window: members that never heard the old incarnation listen.)
    const NodeId victim = voters[rng_.below(voters.size())];
    const auto bound_everywhere = [&] {
      for (const paxos::Member& m : now.members) {
        const Node& n = *nodes_[m.id.value - 1];
        if (!n.up || n.replica->membership() == nullptr) return false;
        const paxos::Member* record = n.replica->membership()->find(victim);
        if (record == nullptr || record->incarnation == 0) return false;
      }
      return true;
    };
    if (!options_.early_wipes && !bound_everywhere()) return;
    wipe(*nodes_[victim.value - 1]);
    return;
  } else if ((pick == 0 || learners.empty()) && spare_left && learners.size() < 3) {
    change.kind = Kind::kAddLearner;
    change.id = NodeId{spare};
    change.address = "sim:" + std::to_string(spare);
  } else if (pick <= 2 && !learners.empty()) {
    change.id = learners[rng_.below(learners.size())];
    change.kind = voters.size() >= 7 || rng_.chance(0.5) ? Kind::kReplace : Kind::kPromote;
    change.old_id = voters[rng_.below(voters.size())];  // the leader, sometimes
  } else if (pick == 3 && !learners.empty()) {
    change.kind = Kind::kRemove;
    change.id = learners[rng_.below(learners.size())];
  } else if (voters.size() > 1) {
    change.kind = rng_.chance(0.3) ? Kind::kDemote : Kind::kRemove;
    change.id = voters[rng_.below(voters.size())];
  } else {
    return;
  }
  // With transfers on, a change that takes the leader out of the voters is asked of the next
  // leader, after this one handed over to another voter (as an operator's `member remove` does).
  if (options_.transfer > 0) {
    const bool takes_leader = ((change.kind == Kind::kRemove || change.kind == Kind::kDemote) &&
                               change.id == leader->id) ||
                              (change.kind == Kind::kReplace && change.old_id == leader->id);
    if (takes_leader) {
      if (transfer(*leader)) after_transfer_ = change;
      return;
    }
  }
  auto next = paxos::apply_change(now, change);
  if (!next.is_ok()) {
    log("reconfigure: " + std::string(to_string(change.kind)) + " " + to_string(change.id) +
        " refused: " + next.status().to_string());
    return;
  }
  // The request is a command of a client of its own, so that validity covers it too.
  Command request{CommandId{~uint64_t{0}, next_reconfig_seq_++},
                  std::string(to_string(change.kind)) + " " + to_string(change.id)};
  checker_.on_propose(request);
  const std::string what = next->describe();
  const paxos::ProposeStatus status =
      leader->replica->propose_membership(std::move(request), std::move(*next));
  log("reconfigure at " + to_string(leader->id) + ": " + what +
      (status == paxos::ProposeStatus::kQueued ? "" : " (refused)"));
  process_ready(*leader);
}

bool Simulation::transfer(Node& leader, NodeId except) {
  const paxos::MembershipRef& membership = leader.replica->membership();
  if (membership == nullptr || leader.replica->role() != paxos::Role::kLeader) return false;
  std::vector<NodeId> targets;
  for (NodeId voter : membership->voters()) {
    if (voter != leader.id && voter != except) targets.push_back(voter);
  }
  if (targets.empty()) return false;
  const NodeId target = targets[rng_.below(targets.size())];
  const paxos::ProposeStatus status = leader.replica->transfer_leadership(target);
  const bool started = status == paxos::ProposeStatus::kQueued;
  log("transfer at " + to_string(leader.id) + " to " + to_string(target) +
      (started ? "" : " (refused)"));
  if (started) {
    ++result_.transfers_asked;
    transfers_[target] = leader.replica->ballot();
  }
  process_ready(leader);
  return started;
}

void Simulation::partition() {
  Node* leader = current_leader();
  NetworkCut cut =
      choose_cut(rng_, int(nodes_.size()), leader ? leader->index : -1, node_names(nodes_));
  if (cut.empty()) return;  // the random split put everyone on one side
  cut_ = std::move(cut);
  ++result_.partitions;
  log(cut_.description);
  Event heal_event{EventKind::kHeal};
  heal_event.tag = result_.partitions;
  schedule(now_us_ + rng_.between(50'000, 1'500'000), heal_event);
}

void Simulation::heal() {
  if (cut_.empty()) return;
  cut_ = {};
  log("heal");
  for (Envelope& envelope : held_) {
    Event event{EventKind::kDeliver};
    event.envelope = std::move(envelope);
    schedule(now_us_ + network_delay(), std::move(event));
  }
  held_.clear();
}

// ---------------------------------------------------------------------------------------------
// Liveness.

void Simulation::start_liveness_phase() {
  log("faults stop: liveness phase");
  faults_on_ = false;
  liveness_phase_ = true;
  liveness_start_us_ = now_us_;
  heal();
  for (auto& node : nodes_) {
    if (!node->up && !node->refused) restart(*node);
  }
  for (auto& client : clients_) {
    client->probes_left = kProbesPerClient;
    if (!client->current) client_start_command(*client);
  }
  schedule(now_us_ + options_.liveness_bound_us, Event{EventKind::kLivenessDeadline});
}

// Once calm, the disruption probe: a member of the leader's configuration whose absence leaves
// the leader a quorum of it (false if none does: one voter, or weights that make every follower
// necessary). The configuration is the leader's current one, not the bootstrap one: under
// --reconfig the voters may have shrunk to two, and cutting either would cost the leader its
// quorum, a leader change that is needed, not needless.
bool Simulation::start_disruption_probe() {
  Node* leader = current_leader();
  if (!leader || nodes_.size() < 3 || !leader->replica->membership()) return false;
  const paxos::Membership& config = *leader->replica->membership();
  const paxos::QuorumSystem quorum = config.quorum(options_.bugs);
  std::vector<int> followers;
  // A wiped member waiting to be removed answers nothing that counts, so it is no part of the
  // quorum the leader keeps (nor worth cutting off).
  auto counts = [&](const Node& node) { return config.is_member(node.id) && !node.wiped; };
  for (const auto& node : nodes_) {
    if (node.get() == leader || !counts(*node)) continue;
    paxos::NodeSet rest;
    for (const auto& other : nodes_)
      if (other.get() != node.get() && counts(*other)) rest.insert(other->id);
    if (quorum.is_phase2_quorum(rest) && quorum.is_phase1_quorum(rest))
      followers.push_back(node->index);
  }
  if (followers.empty()) return false;
  result_.disruption_probed = true;
  cut_ = probe_.start(node_names(nodes_), leader->index, leader->replica->ballot(),
                      followers[rng_.below(followers.size())]);
  log(cut_.description);
  const uint64_t span_us = DisruptionProbe::span_us(options_);
  schedule(now_us_ + span_us, Event{EventKind::kProbeHeal});
  schedule(now_us_ + 2 * span_us, Event{EventKind::kProbeEnd});
  return true;
}

void Simulation::end_disruption_probe() {
  const paxos::Replica& leader = *nodes_[size_t(probe_.leader())]->replica;
  const bool still_leads =
      leader.role() == paxos::Role::kLeader && leader.ballot() == probe_.ballot();
  if (auto violation = probe_.finish(node_names(nodes_), still_leads))
    result_.violation = violation;
  result_.needless_leader_changes = probe_.changes();
}

// Once calm, after the disruption probe: the leader hands over to a voter that is up, caught up
// and connected. Within the minimum election timeout the target must lead, and nobody else may
// have led meanwhile (the old leader only steps down). A transfer that falls back on an election
// would take longer; one that disrupts would show another leader.
bool Simulation::start_transfer_probe() {
  transfer_probe_ = TransferProbe::kDone;
  Node* leader = current_leader();
  if (!leader || !leader->replica->membership()) return false;
  std::vector<NodeId> targets;
  for (NodeId voter : leader->replica->membership()->voters()) {
    const Node& node = *nodes_[voter.value - 1];
    if (voter != leader->id && node.up && !node.wiped) targets.push_back(voter);
  }
  if (targets.empty()) return false;
  const NodeId target = targets[rng_.below(targets.size())];
  transfer_probe_ = TransferProbe::kRunning;
  transfer_probe_leader_ = leader->index;
  transfer_probe_ballot_ = leader->replica->ballot();
  transfer_probe_target_ = target;
  transfer_probe_start_us_ = now_us_;
  result_.transfer_probed = true;
  const paxos::ProposeStatus status = leader->replica->transfer_leadership(target);
  log("transfer probe: " + to_string(leader->id) + " (leader at " +
      to_string(transfer_probe_ballot_) + ") hands over to " + to_string(target));
  if (status != paxos::ProposeStatus::kQueued) {
    result_.violation = "transfer: " + to_string(leader->id) + " refused to hand over to " +
                        to_string(target) + " once calm";
    return false;
  }
  ++result_.transfers_asked;
  transfers_[target] = transfer_probe_ballot_;
  process_ready(*leader);
  schedule(now_us_ + uint64_t(options_.election_timeout_min_ticks) * options_.tick_us,
           Event{EventKind::kTransferProbeEnd});
  return true;
}

void Simulation::end_transfer_probe() {
  transfer_probe_ = TransferProbe::kDone;
  const Node& target = *nodes_[transfer_probe_target_.value - 1];
  const bool leads = target.replica->role() == paxos::Role::kLeader &&
                     target.replica->ballot() > transfer_probe_ballot_;
  if (!leads)
    transfer_probe_changes_.push_back(to_string(transfer_probe_target_) + " does not lead");
  if (transfer_probe_changes_.empty()) return;
  std::string what;
  for (const std::string& change : transfer_probe_changes_)
    what += (what.empty() ? "" : "; ") + change;
  result_.violation =
      "transfer: " + to_string(nodes_[size_t(transfer_probe_leader_)]->id) + " (leader at " +
      to_string(transfer_probe_ballot_) + ") handing over to " + to_string(transfer_probe_target_) +
      ", calm and connected, did not within " +
      std::to_string(options_.election_timeout_min_ticks * options_.tick_us / 1000) +
      " ms (the minimum election timeout) without other leader changes: " + what;
}

bool Simulation::converged() const {
  for (const auto& client : clients_) {
    if (client->current || client->probes_left != 0) return false;
  }
  const Node* leader = nullptr;
  for (const auto& node : nodes_) {
    if (node->up && node->replica->role() == paxos::Role::kLeader &&
        (!leader || node->replica->ballot() > leader->replica->ballot()))
      leader = node.get();
  }
  if (!leader) return false;
  const Slot chosen_top = checker_.chosen().empty() ? 0 : checker_.chosen().rbegin()->first;
  if (leader->replica->commit() < chosen_top) return false;
  // Every member of the leader's configuration (removed replicas and unused spares aside).
  const paxos::Membership& members = *leader->replica->membership();
  for (const auto& node : nodes_) {
    // (A replica stopped by a refusal is a wiped one.)
    if (!members.is_member(node->id) || node->wiped) continue;
    if (node->replica->promised() != leader->replica->ballot()) return false;
    if (node->replica->commit() != leader->replica->commit()) return false;
    if (!node->disk_queue.empty()) return false;
  }
  const_cast<Simulation*>(this)->result_.liveness_us = now_us_ - liveness_start_us_;
  return true;
}

std::string Simulation::describe_stall() const {
  std::string out;
  for (const auto& node : nodes_) {
    if (!node->up) {
      out += to_string(node->id) + (node->refused ? "=stopped (refused) " : "=down ");
      continue;
    }
    const paxos::Replica& r = *node->replica;
    out += to_string(node->id) + "=" + paxos::to_string(r.role()) + "/promised " +
           to_string(r.promised()) + "/commit " + std::to_string(r.commit()) + " ";
  }
  int waiting = 0;
  for (const auto& client : clients_) waiting += client->current ? 1 : 0;
  return out + "; clients waiting: " + std::to_string(waiting);
}

RunResult run_seed(Options options, uint64_t seed, std::ostream* trace) {
  options.seed = seed;
  Simulation simulation(options, trace);
  return simulation.run();
}

}  // namespace synod::sim
