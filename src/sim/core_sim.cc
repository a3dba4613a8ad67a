#include "sim/core_sim.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <tuple>
#include <variant>

#include "base/planted_bugs.h"
#include "base/rng.h"
#include "lincheck/checker.h"
#include "node/router.h"
#include "node/server_core.h"
#include "sim/disruption_probe.h"
#include "sim/event_log.h"
#include "sim/hostile.h"
#include "sim/network_cut.h"
#include "storage/log.h"
#include "storage/mem_file_system.h"

namespace synod::sim {

namespace {

constexpr size_t kRecentEvents = 120;

class CoreSimulation {
 public:
  CoreSimulation(CoreOptions options, std::ostream* trace);
  CoreResult run();

 private:
  struct Node {
    NodeId id;
    int index = 0;
    bool up = true;
    uint64_t incarnation = 0;
    storage::MemFileSystem fs;
    Rng salts{0};  // its log's segment salts: seeded, so that a seed replays the same bytes
    std::unique_ptr<node::ServerCore> core;
    std::unique_ptr<node::Router> router;  // over `core`; goes before it
    std::unique_ptr<node::RouterPeers> peers;
    std::unique_ptr<node::RouterClock> clock;
    bool drive_pending = false;  // the router asked for a flush that has not run yet
    // The sync the core handed over and that has not completed yet (one at a time).
    std::function<Status()> fdatasync;
    std::function<void(Status)> sync_done;
    // The snapshot the core handed over: its work's result (run at once, on the image as of the
    // hand-over) and the completion to deliver later.
    std::optional<Result<node::ServerCore::SnapshotMade>> snapshot_made;
    std::function<void(Result<node::ServerCore::SnapshotMade>)> snapshot_done;
    bool snapshotting = false;     // as of the last drive
    uint64_t removals_due_us = 0;  // when the last removal handed over is done
    bool removals_stuck = false;   // (storage::remove_in_order)
    // What this replica's messages claimed about its disk, over all its incarnations.
    Ballot vouched_promise;
    std::map<Slot, Ballot> vouched_accepts;
    // Slots it said Accepted for once it had let go of their chosen values (Replica::released()):
    // it knows them chosen, durably, and a restart must find them so (or a snapshot covering them).
    std::set<Slot> vouched_chosen;
    bool sent_in_flush = false;
    Slot last_snapshot = 0;  // as of the last drive
    Ballot last_promise;
    std::unique_ptr<node::ServerCore::Observer> watch;
    // The machine's clocks, which outlive the replica's crashes: both run at `rate` times
    // simulated time; the wall clock is off by `wall_offset_ms` (stepped by the nemesis).
    double rate = 1.0;
    uint64_t monotonic_offset_ms = 0;
    int64_t wall_offset_ms = 0;
  };
  // A key SET with PX by the TTL clients.
  struct TtlKey {
    uint64_t ttl_ms = 0;
    size_t set_op = 0;                       // index into history_.ops
    std::optional<int64_t> absent_since_ns;  // the earliest return of a GET that found it gone
  };
  // What each core lets go and applies, as it happens.
  struct Watch : node::ServerCore::Observer {
    Watch(CoreSimulation* s, int i) : sim(s), index(i) {}
    void released(const paxos::Envelope& e) override {
      Node& node = *sim->nodes_[index];
      // Answers to this replica's own proposer count towards quorums: they vouch too.
      if (e.to == node.id && !std::holds_alternative<paxos::PrepareMsg>(e.message) &&
          !std::holds_alternative<paxos::AcceptMsg>(e.message))
        sim->vouch(node, e);
    }
    void applied(const paxos::SlotValue& entry) override { sim->on_applied(index, entry); }
    CoreSimulation* sim;
    int index;
  };
  struct Client {
    int index = 0;
    int64_t process = 0;  // the history's client: a new one after an operation left open
    int target = 0;
    // Its connection: a router's session (the state machine's client id and seqs) on the
    // replica `session_node` in incarnation `session_incarnation`.
    std::shared_ptr<node::Router::Session> session;
    int session_node = -1;
    uint64_t session_incarnation = 0;
    uint64_t attempt = 0;      // tags the events of the current operation
    std::optional<size_t> op;  // index into history_.ops while one is in flight
    Slot read_floor = 0;       // for a read: the highest slot applied anywhere when it arrived
    int probes_left = -1;      // once calm: operations still owed; -1 in the fault phase
    bool backoff = false;      // the last one was refused: wait a little before the next
    std::string lock_token;    // the lock it believes it holds (released next), if any
  };
  // What a client operation sends; history_.ops holds what lincheck sees of it.
  enum class Cmd {
    kGet,
    kSet,
    kSetNx,
    kSetIfeq,
    kDel,
    kTtlSet,
    kTtlGet,
    kIncr,
    kMset,
    kSetXx,
    kPexpire,
    kLock,
    kUnlock
  };
  struct Command {
    Cmd cmd = Cmd::kGet;
    std::vector<std::string> args;
  };
  // A router's message to another replica's router, on the simulated network.
  using Routed =
      std::variant<net::Forward, net::ForwardReply, net::ReadIndexRequest, net::ReadIndexReply>;
  class Peers;
  class Clock;

  void schedule(uint64_t at_us, std::function<void()> event);
  void log(const std::string& line);
  void fail(std::string what);
  uint64_t network_delay();

  node::ServerCore::Options core_options(NodeId id) const;
  void start(Node& node);
  void crash(Node& node);
  void crash_and_schedule_restart(Node& node);
  void drive(Node& node);
  void send(Node& from, const paxos::Envelope& envelope);
  void vouch(Node& node, const paxos::Envelope& envelope);
  void on_applied(int index, const paxos::SlotValue& entry);
  void deliver(const paxos::Envelope& envelope);
  void request_drive(Node& node);
  void send_routed(int from, NodeId to, Routed message);
  void deliver_routed(int from, int to, Routed& message);
  void on_read_served(int index, uint64_t session, Slot applied);
  void on_sync_done(Node& node, uint64_t incarnation);
  void on_snapshot_done(Node& node, uint64_t incarnation);
  void check_recovery(Node& node);
  void count_routed(const Node& node);

  uint64_t monotonic_ms(const Node& node) const;
  uint64_t wall_ms(const Node& node) const;
  void check_ttl_read(const lincheck::Operation& get);

  void client_start(Client& client);
  Command choose_command(Client& client, lincheck::Operation& op);
  void client_arrive(int client, uint64_t attempt, int node);
  void client_answer(int client, uint64_t attempt, const kv::Reply& reply);
  // Takes `reply` into the history; false (having failed the run) if no command answers so.
  bool record_reply(const Command& command, lincheck::Operation& op, const kv::Reply& reply);
  void client_timeout(int client, uint64_t attempt);
  void client_finish(Client& client);
  void client_abandon(Client& client);
  void close_session(Client& client);
  void check_counters();

  void nemesis();
  void send_hostile();
  void partition();
  void heal();
  void start_liveness_phase();
  bool converged();
  std::string describe_stall() const;
  Node* leader();
  bool start_disruption_probe();
  static const Ballot& r_ballot(const Node& node) { return node.core->replica().ballot(); }

  CoreOptions options_;
  EventLog events_;
  Rng rng_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::map<std::pair<uint64_t, uint64_t>, std::function<void()>> queue_;
  uint64_t next_event_ = 0;
  uint64_t now_us_ = 0;
  bool faults_on_ = true;
  bool liveness_phase_ = false;
  bool done_ = false;
  uint64_t liveness_start_us_ = 0;
  uint64_t partition_epoch_ = 0;
  NetworkCut cut_;                     // the links cut now (sim/network_cut.h)
  std::vector<paxos::Envelope> held_;  // what clogged links hold, delivered at the heal
  std::vector<std::tuple<int, int, Routed>> held_routed_;  // ... of the routers' messages
  int64_t next_process_ = 0;
  uint64_t next_value_ = 0;
  lincheck::History history_;      // TTL keys' operations too: they are left out of lincheck
  std::vector<Command> commands_;  // parallel to history_.ops
  std::map<uint64_t, int> session_owners_;             // a session's client id -> its client
  std::map<std::string, std::string> last_values_;     // a register's latest value written
  std::map<std::string, uint64_t> incrs_sent_;         // INCRs sent to each counter
  std::map<size_t, paxos::CommandId> put_ids_;         // by index into history_.ops
  std::map<Slot, paxos::Value> applied_values_;        // what any replica applied at each slot
  std::map<paxos::CommandId, Slot> applied_commands_;  // where each command was applied
  Slot max_applied_ = 0;                               // the highest slot any replica applied
  std::set<Ballot> leader_ballots_;
  DisruptionProbe probe_;  // once converged
  // What the clients' forged markers are made of. Not rng_, so that runs without disk faults
  // (where values stay plain) keep their schedules.
  Rng forgery_;
  Rng sizes_;     // which values are large: apart, so that the schedule does not shift with it
  Rng hostile_;   // the hostile peer's choices, apart for the same reason
  Rng removals_;  // when compacted files are removed, apart for the same reason
  std::map<std::string, TtlKey> ttl_keys_;
  std::vector<std::string> ttl_recent_;  // TTL keys in the order they were set
  CoreResult result_;
};

// A router's peers: its messages go on the simulated network.
class CoreSimulation::Peers : public node::RouterPeers {
 public:
  Peers(CoreSimulation* sim, int index) : sim_(sim), index_(index) {}
  void send_forward(NodeId to, const net::Forward& f) override { sim_->send_routed(index_, to, f); }
  void send_forward_reply(NodeId to, net::ForwardReply r) override {
    sim_->send_routed(index_, to, std::move(r));
  }
  void send_read_index_request(NodeId to, const net::ReadIndexRequest& r) override {
    sim_->send_routed(index_, to, r);
  }
  void send_read_index_reply(NodeId to, const net::ReadIndexReply& r) override {
    sim_->send_routed(index_, to, r);
  }

 private:
  CoreSimulation* sim_;
  int index_;
};

// A router's time: its machine's clocks, and timers on the simulated schedule that run at the
// machine's rate and die with the incarnation that set them.
class CoreSimulation::Clock : public node::RouterClock {
 public:
  Clock(CoreSimulation* sim, int index) : sim_(sim), index_(index) {}
  uint64_t now_ms() override { return sim_->monotonic_ms(*sim_->nodes_[index_]); }
  uint64_t wall_ms() override { return sim_->wall_ms(*sim_->nodes_[index_]); }
  void after(uint64_t delay_ms, std::function<void()> callback) override {
    const Node& node = *sim_->nodes_[index_];
    const auto delay_us = static_cast<uint64_t>(double(delay_ms) * 1000 / node.rate) + 1;
    sim_->schedule(sim_->now_us_ + delay_us,
                   [sim = sim_, index = index_, incarnation = node.incarnation,
                    callback = std::move(callback)] {
                     const Node& n = *sim->nodes_[index];
                     if (n.up && n.incarnation == incarnation && !sim->done_) callback();
                   });
  }

 private:
  CoreSimulation* sim_;
  int index_;
};

// A value as the trace shows it: forged marker bytes are not printable.
std::string shown(std::string_view value) {
  const auto end =
      std::find_if(value.begin(), value.end(), [](char c) { return c < ' ' || c > '~'; });
  std::string out(value.begin(), end);
  if (out.size() > 48) out = out.substr(0, 16) + "...(" + std::to_string(value.size()) + " bytes)";
  if (end != value.end()) out += "+markers";
  return out;
}

// Where the simulated wall clocks start: 2023-11-14, so that times look like Unix ms.
constexpr int64_t kWallEpochMs = 1'700'000'000'000;

// The keys lincheck judges: "k0", "k1", ... (GET, SET, SET NX, SET IFEQ, DEL only).
bool is_register_key(const std::string& key) {
  return !key.empty() && key[0] == 'k';
}

node::Router::PlantedBug router_bug(const CoreOptions& o) {
  return node::Router::parse_planted_bug(o.router_bug).value_or(node::Router::PlantedBug::kNone);
}

CoreOptions swarmed(CoreOptions o, Rng& rng) {
  if (!o.swarm) return o;
  auto scale = [&rng] { return static_cast<double>(rng.below(401)) / 100.0; };
  o.loss = std::min(0.5, o.loss * scale());
  o.duplicate = std::min(0.5, o.duplicate * scale());
  o.long_delay = std::min(0.5, o.long_delay * scale());
  o.crash_in_sync = std::min(0.5, o.crash_in_sync * scale());
  o.wander = std::min(1.0, o.wander * scale());
  o.crash_after_snapshot = std::min(1.0, o.crash_after_snapshot * scale());
  o.crash_after_campaign = std::min(1.0, o.crash_after_campaign * scale());
  o.inline_sync = rng.chance(0.2) ? 0.0 : o.inline_sync * scale() / 2;
  const double nemesis = scale() + 0.25;
  o.nemesis_interval_min_us = static_cast<uint64_t>(o.nemesis_interval_min_us / nemesis);
  o.nemesis_interval_max_us = static_cast<uint64_t>(o.nemesis_interval_max_us / nemesis);
  o.sync_max_us = o.sync_min_us + static_cast<uint64_t>((o.sync_max_us - o.sync_min_us) * scale());
  // Snapshots: often (compaction during syncs in flight), rarely, or never (every accepted entry
  // stays in the log for the vouching check).
  const uint64_t snapshots = rng.below(8);
  o.snapshot_every = snapshots < 6 ? o.snapshot_every : snapshots == 6 ? o.snapshot_every * 8 : 0;
  o.crash_in_snapshot = std::min(1.0, o.crash_in_snapshot * scale());
  o.snapshot_max_us =
      o.snapshot_min_us + static_cast<uint64_t>((o.snapshot_max_us - o.snapshot_min_us) * scale());
  return o;
}

CoreSimulation::CoreSimulation(CoreOptions options, std::ostream* trace)
    : options_(options),
      events_(trace, kRecentEvents),
      rng_(options.seed),
      forgery_(options.seed ^ 0x6d61726b657273ULL),
      sizes_(options.seed ^ 0x73697a6573ULL),
      hostile_(options.seed ^ 0x686f7374696c65ULL),
      removals_(options.seed ^ 0x72656d6f7665ULL) {
  options_ = swarmed(options, rng_);
  result_.seed = options_.seed;
  SYNOD_ASSERT(options_.replicas >= 1 && options_.replicas <= 9, "replica count out of range");
  for (int i = 0; i < options_.replicas; ++i) {
    auto node = std::make_unique<Node>();
    node->id = NodeId{uint32_t(i + 1)};
    node->index = i;
    node->salts = Rng(options_.seed * 31 + uint64_t(i) + 1);
    nodes_.push_back(std::move(node));
  }
  // Each machine's clocks, from their own generator (the schedule's stays as it was): a rate
  // within the drift bound (often at its edge), a wall clock seconds to hours off either way.
  Rng clocks(options_.seed ^ 0x636c6f636b73ULL);
  for (auto& node : nodes_) {
    const double drift = clocks.chance(0.5) ? 1.0 : static_cast<double>(clocks.below(1001)) / 1000;
    node->rate = 1.0 + (clocks.chance(0.5) ? drift : -drift) * node::kClockDriftBound;
    node->monotonic_offset_ms = clocks.below(uint64_t{1} << 40);
    const auto skew = static_cast<int64_t>(
        clocks.chance(0.2) ? clocks.below(1'000) : clocks.below(options_.wall_skew_max_ms + 1));
    node->wall_offset_ms = clocks.chance(0.5) ? skew : -skew;
  }
  for (auto& node : nodes_) {
    start(*node);
    if (done_) return;
  }
  for (int c = 0; c < options_.clients; ++c) {
    auto client = std::make_unique<Client>();
    client->index = c;
    client->process = next_process_++;
    client->target = int(rng_.below(nodes_.size()));
    clients_.push_back(std::move(client));
    schedule(rng_.below(options_.client_think_max_us + 1),
             [this, c] { client_start(*clients_[c]); });
  }
  if (options_.crashes || options_.partitions) {
    schedule(rng_.between(options_.nemesis_interval_min_us, options_.nemesis_interval_max_us),
             [this] { nemesis(); });
  }
  schedule(options_.fault_phase_us, [this] { start_liveness_phase(); });
}

void CoreSimulation::schedule(uint64_t at_us, std::function<void()> event) {
  queue_.emplace(std::make_pair(at_us, next_event_++), std::move(event));
}

void CoreSimulation::log(const std::string& line) {
  events_.add(now_us_, line);
}

void CoreSimulation::fail(std::string what) {
  if (!result_.violation) result_.violation = std::move(what);
  done_ = true;
}

uint64_t CoreSimulation::network_delay() {
  if (faults_on_ && rng_.chance(options_.long_delay)) {
    return rng_.between(options_.delay_max_us, options_.long_delay_max_us);
  }
  return rng_.between(options_.delay_min_us, options_.delay_max_us);
}

CoreResult CoreSimulation::run() {
  while (!queue_.empty() && !done_) {
    auto handle = queue_.extract(queue_.begin());
    now_us_ = handle.key().first;
    ++result_.events;
    handle.mapped()();
    if (liveness_phase_ && !done_) {
      if (probe_.stage() == DisruptionProbe::Stage::kDone) break;
      if (probe_.stage() == DisruptionProbe::Stage::kNone && converged() &&
          !start_disruption_probe())
        break;
    }
  }
  if (!result_.violation) {
    // Every replica applied the same prefix, so any one's state answers the final reads: a GET
    // of every key at this instant, after every acknowledged write returned.
    Node* l = leader();
    for (int k = 0; l && k < options_.keys; ++k) {
      lincheck::Operation op;
      op.client = ++next_process_;
      op.kind = lincheck::OpKind::kGet;
      op.key = "k" + std::to_string(k);
      op.call_ns = op.return_ns.emplace(int64_t(now_us_) * 1000 + 1);
      const kv::Reply r = l->core->store().read({"GET", op.key}, now_us_ / 1000);
      op.ok = true;
      op.found = r.kind == kv::Reply::Kind::kBulk;
      if (*op.found) op.output = r.text;
      history_.ops.push_back(std::move(op));
      commands_.push_back({Cmd::kGet, {"GET", op.key}});
    }
    if (l) check_counters();
    // A bound on states, not on time, so that a verdict does not depend on the machine's load.
    lincheck::Limits limits;
    limits.timeout_seconds = 0;
    limits.max_states_per_key = 2'000'000;
    // Only the register keys: keys with PX vanish by themselves, which lincheck's register model
    // does not know of (the ttl check judges them instead), and the counters, MSET/XX/PEXPIRE
    // keys and the lock are outside its model (the counters check and the end-state agreement
    // judge them).
    lincheck::History registers;
    for (const auto& op : history_.ops)
      if (is_register_key(op.key)) registers.ops.push_back(op);
    const lincheck::Verdict verdict = lincheck::check(registers, limits);
    if (verdict.outcome == lincheck::Outcome::kNotLinearizable) {
      fail("linearizable: " + lincheck::format_verdict(verdict));
    } else if (verdict.outcome == lincheck::Outcome::kUndecided) {
      fail("undecided: lincheck hit its limit: " + lincheck::format_verdict(verdict));
    }
  }
  if (result_.violation) result_.last_events = events_.recent();
  for (const auto& node : nodes_)
    if (node->up) count_routed(*node);
  result_.ops = history_.ops.size();
  for (size_t i = 0; i < history_.ops.size(); ++i) {
    const lincheck::Operation& op = history_.ops[i];
    if (op.outcome_unknown()) ++result_.unknown;
    if (op.outcome_unknown() || !op.ok) continue;
    if (op.kind == lincheck::OpKind::kGet) {
      ++result_.reads_ok;
    } else {
      ++result_.writes_acknowledged;
    }
    if (commands_[i].cmd == Cmd::kIncr) ++result_.incrs_acknowledged;
  }
  result_.leaders = leader_ballots_.size();
  result_.digest = events_.digest();
  return result_;
}

// ---------------------------------------------------------------------------------------------
// Replicas.

node::ServerCore::Options CoreSimulation::core_options(NodeId id) const {
  node::ServerCore::Options o;
  std::vector<NodeId> members;
  for (int i = 1; i <= options_.replicas; ++i) members.push_back(NodeId{uint32_t(i)});
  o.config.self = id;
  o.config.quorum = paxos::QuorumSystem::majority(members, options_.bugs);
  options_.configure(o.config);
  o.config.snapshot_chunk_bytes = 512;
  o.config.log_memory_bytes = options_.log_memory_bytes_for(options_.seed);
  o.config.max_batch_bytes = options_.value_limit_bytes;
  o.config.set_size_limits(options_.value_limit_bytes, 0);
  o.config.bugs = options_.bugs;
  if (options_.lease)
    o.config.read_lease_ms =
        o.config.max_read_lease_ms(options_.tick_us / 1000, node::kClockDriftBound);
  o.log.dir = "data";
  o.log.cluster_id = 1;
  o.log.node_id = id.value;
  o.log.segment_bytes = options_.segment_bytes;
  o.log.bug_skip_fdatasync = options_.bugs.skip_fdatasync;
  o.log.salt_source = [salts = &nodes_[id.value - 1]->salts] { return salts->next(); };
  for (const std::string& bug : options_.replica_bugs) {
    SYNOD_ASSERT(node::ServerCore::plant_bug(bug, o), "not a planted bug of the replica");
  }
  o.snapshot_every = options_.snapshot_every;
  // A quarter of the seeds also snapshot by bytes of log, at a size this simulator's values reach
  // (chosen by the seed, not drawn, so that the other seeds' schedules stay as they were).
  if (options_.seed % 4 == 3) o.snapshot_log_bytes = 8 << 10;
  // Replicas need not share their snapshot settings (each has its own flags): in a third of the
  // seeds the last replica never snapshots, so that a laggard may ask a peer for a snapshot it
  // does not have (planted bug silent-without-snapshot).
  if (options_.seed % 3 == 2 && int(id.value) == options_.replicas) {
    o.snapshot_every = 0;
    o.snapshot_log_bytes = 0;
  }
  const int index = int(id.value - 1);
  o.clock.monotonic_ms = [this, index] { return monotonic_ms(*nodes_[index]); };
  o.clock.wall_ms = [this, index] { return wall_ms(*nodes_[index]); };
  return o;
}

uint64_t CoreSimulation::monotonic_ms(const Node& node) const {
  return node.monotonic_offset_ms + static_cast<uint64_t>(double(now_us_) * node.rate / 1000);
}

uint64_t CoreSimulation::wall_ms(const Node& node) const {
  return static_cast<uint64_t>(kWallEpochMs + node.wall_offset_ms +
                               static_cast<int64_t>(double(now_us_) * node.rate / 1000));
}

void CoreSimulation::start(Node& node) {
  const int index = node.index;
  node::ServerCore::Options options = core_options(node.id);
  // Files compaction left behind are removed later, as the server's remover thread does (or
  // never: a crash first); delays from a stream of their own, so that the rest of a seed's
  // schedule stays as it was.
  options.log.remove_files = [this, index](std::vector<std::string> paths, std::string dir) {
    const uint64_t incarnation = nodes_[index]->incarnation;
    auto remove = [this, index, incarnation, paths = std::move(paths), dir = std::move(dir)] {
      Node& n = *nodes_[index];
      if (!n.up || n.incarnation != incarnation) return;
      (void)storage::remove_in_order(n.fs, paths, dir, n.removals_stuck);
    };
    // Half at once (the thread may be idle and quick), half up to a sync's time later; in order,
    // as the server's one thread takes them (segments must go lowest first).
    Node& n = *nodes_[index];
    if (n.removals_due_us <= now_us_ && removals_.chance(0.5)) return remove();
    n.removals_due_us =
        std::max(n.removals_due_us, now_us_ + removals_.between(1, options_.sync_max_us));
    // Later, on its own: a crash may come right after it removed segments while a sync is in
    // flight — where a promise only an unsynced segment start holds would be lost.
    schedule(n.removals_due_us, [this, index, incarnation, remove = std::move(remove)] {
      remove();
      Node& owner = *nodes_[index];
      if (owner.up && owner.incarnation == incarnation && faults_on_ && options_.crashes &&
          owner.core->sync_in_flight() && removals_.chance(options_.crash_after_snapshot))
        crash_and_schedule_restart(owner);
    });
  };
  auto core = node::ServerCore::open(node.fs, std::move(options), rng_.next());
  if (!core.is_ok()) {
    return fail("storage: " + to_string(node.id) + " cannot recover: " + core.status().to_string());
  }
  node.core = std::move(*core);
  node.up = true;
  const uint64_t incarnation = node.incarnation;
  node.core->set_early_send([this, index](const paxos::Envelope& e) { send(*nodes_[index], e); });
  node.watch = std::make_unique<Watch>(this, index);
  node.core->set_observer(node.watch.get());
  // Now and then an incarnation without a sync runner: every fdatasync inline, in flush(), as
  // the server's --sync-on-loop does.
  if (!rng_.chance(options_.no_sync_runner))
    node.core->set_sync_runner([this, index, incarnation](std::function<Status()> fdatasync,
                                                          std::function<void(Status)> done) {
      Node& n = *nodes_[index];
      if (rng_.chance(options_.inline_sync)) {  // at once, as a follower's in the server
        ++result_.syncs_inline;
        done(fdatasync());
        return;
      }
      SYNOD_ASSERT(!n.sync_done, "two syncs in flight");
      n.fdatasync = std::move(fdatasync);
      n.sync_done = std::move(done);
      schedule(now_us_ + rng_.between(options_.sync_min_us, options_.sync_max_us),
               [this, index, incarnation] { on_sync_done(*nodes_[index], incarnation); });
    });
  // As the server's remover thread would, only at once (what is freed changes no state).
  node.core->set_garbage_disposer([](std::shared_ptr<void> garbage) { garbage.reset(); });
  if (!rng_.chance(options_.no_snapshot_runner))
    node.core->set_snapshot_runner(
        [this, index, incarnation](
            node::ServerCore::SnapshotWork work,
            std::function<void(Result<node::ServerCore::SnapshotMade>)> done) {
          Node& n = *nodes_[index];
          SYNOD_ASSERT(!n.snapshot_done, "two snapshots in flight");
          // The image is the replica as it is now: the work runs at once, as the forked child
          // would on its copy; only its completion comes later.
          n.snapshot_made = work();
          n.snapshot_done = std::move(done);
          schedule(now_us_ + rng_.between(options_.snapshot_min_us, options_.snapshot_max_us),
                   [this, index, incarnation] { on_snapshot_done(*nodes_[index], incarnation); });
        });
  check_recovery(node);
  if (done_) return;
  node.snapshotting = false;
  node.removals_due_us = 0;
  node.removals_stuck = false;
  node.last_snapshot = node.core->replica().snapshot_slot();
  node.last_promise = node.core->replica().promised();
  node.peers = std::make_unique<Peers>(this, index);
  node.clock = std::make_unique<Clock>(this, index);
  node::Router::Options r;
  r.id = node.id;
  r.tick_ms = static_cast<uint32_t>(std::max<uint64_t>(1, options_.tick_us / 1000));
  r.request_timeout_ms = options_.request_timeout_ms;
  r.forward_timeout_ms = options_.forward_timeout_ms;
  r.max_frame_bytes = core_options(node.id).config.max_message_bytes;
  r.max_command_bytes = options_.value_limit_bytes;
  r.follower_reads = !rng_.chance(options_.no_follower_reads);
  r.bug = router_bug(options_);
  r.seed = rng_.next();
  r.wake = [this, index] { request_drive(*nodes_[index]); };
  r.log = [this, id = node.id](const std::string& line) { log(to_string(id) + " " + line); };
  r.read_served = [this, index](uint64_t session, Slot applied) {
    on_read_served(index, session, applied);
  };
  node.router = std::make_unique<node::Router>(*node.core, *node.peers, *node.clock, std::move(r));
  node.router->start();
  log("start " + to_string(node.id) + ": promise " + to_string(node.core->replica().promised()) +
      ", applied " + std::to_string(node.core->applied()));
  drive(node);
}

// Whatever its messages claimed before a crash must have come back from its disk.
void CoreSimulation::check_recovery(Node& node) {
  const paxos::Replica& r = node.core->replica();
  if (r.promised() < node.vouched_promise) {
    return fail("vouching: " + to_string(node.id) + " recovered promise " +
                to_string(r.promised()) + " below ballot " + to_string(node.vouched_promise) +
                " that its messages carried before the crash");
  }
  for (const auto& [slot, ballot] : node.vouched_accepts) {
    if (slot <= r.snapshot_slot()) continue;
    auto it = r.accepted().find(slot);
    if (it == r.accepted().end() || it->second.ballot < ballot) {
      return fail("vouching: " + to_string(node.id) + " said Accepted for slot " +
                  std::to_string(slot) + " in ballot " + to_string(ballot) + " but recovered " +
                  (it == r.accepted().end() ? std::string("no entry")
                                            : "ballot " + to_string(it->second.ballot)));
    }
  }
  for (Slot slot : node.vouched_chosen) {
    if (slot > r.snapshot_slot() && !r.chosen().contains(slot)) {
      return fail("vouching: " + to_string(node.id) + " said Accepted for slot " +
                  std::to_string(slot) + ", whose chosen value it had let go of, but recovered " +
                  "no chosen mark there");
    }
  }
}

// What an incarnation's router did, into the run's totals.
void CoreSimulation::count_routed(const Node& node) {
  if (!node.router) return;  // a replica that failed its recovery check never got one
  const node::Router::Counters& c = node.router->counters();
  result_.forwarded += c.forwarded;
  result_.follower_reads += c.follower_reads;
  result_.router_retries += c.retries;
}

void CoreSimulation::crash(Node& node) {
  ++result_.crashes;
  log("crash " + to_string(node.id) + (node.sync_done ? " (a sync in flight)" : ""));
  node.up = false;
  ++node.incarnation;
  // The crash may come after the fdatasync of a sync in flight finished but before the core
  // heard of it: the records are durable, and nothing that waited for them left.
  if (node.fdatasync && rng_.chance(0.5)) (void)node.fdatasync();
  node.fdatasync = nullptr;
  node.sync_done = nullptr;
  if (node.snapshot_done) ++result_.crashes_in_snapshot;
  node.snapshot_made.reset();
  node.snapshot_done = nullptr;
  node.drive_pending = false;
  count_routed(node);
  node.router.reset();  // its clients' callbacks are dropped: they time out
  node.core.reset();
  node.watch.reset();
  node.fs.crash(rng_, storage::CrashFaults{.tear = options_.disk_faults,
                                           .flip_rate = options_.disk_faults ? 0.3 : 0.0});
}

void CoreSimulation::crash_and_schedule_restart(Node& node) {
  crash(node);
  const int index = node.index;
  const uint64_t incarnation = node.incarnation;
  const uint64_t down_us =
      rng_.chance(0.8) ? rng_.between(1'000, 30'000) : rng_.between(30'000, 600'000);
  schedule(now_us_ + down_us, [this, index, incarnation] {
    Node& n = *nodes_[index];
    if (!n.up && n.incarnation == incarnation) start(n);
  });
}

void CoreSimulation::drive(Node& node) {
  if (done_ || !node.up) return;
  node.sent_in_flush = false;
  auto out = node.core->flush();
  if (!out.is_ok()) return fail("storage: " + to_string(node.id) + ": " + out.status().to_string());
  for (const auto& e : *out) send(node, e);
  node.router->after_flush();
  if (done_ || !node.up) return;
  const paxos::Role role = node.core->replica().role();
  if (role == paxos::Role::kLeader &&
      leader_ballots_.insert(node.core->replica().ballot()).second) {
    const std::string leads = to_string(node.id) + " leads at " + to_string(r_ballot(node));
    log(leads);
    bool member = true;
    if (probe_.stage() != DisruptionProbe::Stage::kNone) {
      const paxos::MembershipRef& probed =
          nodes_[size_t(probe_.leader())]->core->replica().membership();
      member = !probed || probed->is_member(node.id);
    }
    probe_.note_role(node.index, true, leads, member, node.core->replica().ballot());
  }
  // Since the last drive (a tick or a message may have raised the promise before this flush).
  const paxos::Replica& r = node.core->replica();
  const bool snapshotted = r.snapshot_slot() > node.last_snapshot;
  const bool campaigned = r.promised() > node.last_promise && r.promised().node == node.id;
  node.last_snapshot = r.snapshot_slot();
  node.last_promise = r.promised();
  const bool snapshot_began = node.core->snapshot_in_flight() && !node.snapshotting;
  node.snapshotting = node.core->snapshot_in_flight();
  if (!faults_on_ || !options_.crashes) return;
  if (snapshot_began && rng_.chance(options_.crash_in_snapshot)) {
    crash_and_schedule_restart(node);
    return;
  }
  if (!node.core->sync_in_flight()) return;
  if ((node.sent_in_flush && rng_.chance(options_.crash_in_sync)) ||
      (snapshotted && rng_.chance(options_.crash_after_snapshot)) ||
      (campaigned && rng_.chance(options_.crash_after_campaign))) {
    crash_and_schedule_restart(node);
  }
}

// Records what a message that left `node` claims about its disk.
void CoreSimulation::vouch(Node& node, const paxos::Envelope& e) {
  auto promise = [&node](const Ballot& b) {
    node.vouched_promise = std::max(node.vouched_promise, b);
  };
  std::visit(
      [&](const auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, paxos::PrepareMsg> || std::is_same_v<M, paxos::AcceptMsg> ||
                      std::is_same_v<M, paxos::PromiseMsg>) {
          promise(m.ballot);
        } else if constexpr (std::is_same_v<M, paxos::AcceptedMsg>) {
          promise(m.ballot);
          for (Slot s : m.slots) {
            if (s <= node.core->replica().released()) {
              node.vouched_chosen.insert(s);
              continue;
            }
            Ballot& b = node.vouched_accepts[s];
            b = std::max(b, m.ballot);
          }
        } else if constexpr (std::is_same_v<M, paxos::RejectMsg>) {
          promise(m.promised);
        }
      },
      e.message);
}

void CoreSimulation::on_applied(int index, const paxos::SlotValue& entry) {
  const Node& node = *nodes_[index];
  for (const paxos::Command& command : entry.value.commands)
    applied_commands_.emplace(command.id, entry.slot);
  max_applied_ = std::max(max_applied_, entry.slot);
  if (!options_.check_applies) return;
  auto [it, fresh] = applied_values_.emplace(entry.slot, entry.value);
  if (!fresh && !(it->second == entry.value)) {
    return fail("agreement: " + to_string(node.id) + " applied " + paxos::to_string(entry.value) +
                " at slot " + std::to_string(entry.slot) + " where another replica applied " +
                paxos::to_string(it->second));
  }
}

void CoreSimulation::send(Node& from, const paxos::Envelope& e) {
  // What the message vouches for counts whether or not the network delivers it.
  vouch(from, e);
  from.sent_in_flush = true;
  ++result_.messages;
  const int a = int(e.from.value - 1), b = int(e.to.value - 1);
  if (cut_.stops(rng_, a, b)) {
    if (cut_.clogged) held_.push_back(e);
    return;
  }
  if (faults_on_ && rng_.chance(options_.loss)) return;
  const int copies = faults_on_ && rng_.chance(options_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    schedule(now_us_ + network_delay(), [this, e] { deliver(e); });
  }
}

void CoreSimulation::deliver(const paxos::Envelope& e) {
  Node& node = *nodes_[e.to.value - 1];
  if (!node.up) return;
  if (cut_.stops(rng_, int(e.from.value - 1), node.index)) {
    if (cut_.clogged) held_.push_back(e);
    return;
  }
  log("deliver " + to_string(e));
  const paxos::Replica& replica = node.core->replica();
  const bool leading = replica.role() == paxos::Role::kLeader;
  const Slot commit_before = replica.commit();
  node.core->receive(e);
  // A leader's chosen prefix moves only on its own ballot's answers (docs/core.md, "Learning"),
  // as the protocol simulator's checker demands (sim/checker.h, "leader learning").
  if (leading && replica.role() == paxos::Role::kLeader && replica.commit() > commit_before &&
      !std::holds_alternative<paxos::AcceptedMsg>(e.message)) {
    const std::string message = paxos::to_string(e.message);
    return fail("leader learning: leader " + to_string(node.id) + " moved its chosen prefix from " +
                std::to_string(commit_before) + " to " + std::to_string(replica.commit()) +
                " on a " + message.substr(0, message.find(' ')) +
                ", not on its own quorum's answers");
  }
  drive(node);
}

// The router asked for a flush: it runs as the next event at this instant (one for any number of
// asks), as the server's request_flush posts one to its loop.
void CoreSimulation::request_drive(Node& node) {
  if (node.drive_pending || !node.up) return;
  node.drive_pending = true;
  const int index = node.index;
  const uint64_t incarnation = node.incarnation;
  schedule(now_us_, [this, index, incarnation] {
    Node& n = *nodes_[index];
    if (!n.up || n.incarnation != incarnation) return;
    n.drive_pending = false;
    drive(n);
  });
}

// The routers' messages share the network with the protocol's: the same partitions, loss,
// duplication and delays.
void CoreSimulation::send_routed(int from, NodeId to, Routed message) {
  ++result_.messages;
  const int b = int(to.value - 1);
  if (cut_.stops(rng_, from, b)) {
    if (cut_.clogged) held_routed_.emplace_back(from, b, std::move(message));
    return;
  }
  if (faults_on_ && rng_.chance(options_.loss)) return;
  const int copies = faults_on_ && rng_.chance(options_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    schedule(now_us_ + network_delay(),
             [this, from, b, message]() mutable { deliver_routed(from, b, message); });
  }
}

void CoreSimulation::deliver_routed(int from, int to, Routed& message) {
  Node& node = *nodes_[to];
  if (!node.up) return;
  if (cut_.stops(rng_, from, to)) {
    if (cut_.clogged) held_routed_.emplace_back(from, to, std::move(message));
    return;
  }
  const NodeId sender = nodes_[from]->id;
  std::visit(
      [&](auto& m) {
        using M = std::decay_t<decltype(m)>;
        std::string what = to_string(sender) + "->" + to_string(node.id) + " ";
        if constexpr (std::is_same_v<M, net::Forward>) {
          log(what + "forward #" + std::to_string(m.request_id) + " " + m.args[0] + " " +
              (m.args.size() > 1 ? m.args[1] : "") + " id " + std::to_string(m.client % 1000) +
              "/" + std::to_string(m.seq));
          node.router->on_forward(sender, m);
        } else if constexpr (std::is_same_v<M, net::ForwardReply>) {
          log(what + "forward reply #" + std::to_string(m.request_id));
          node.router->on_forward_reply(sender, m);
        } else if constexpr (std::is_same_v<M, net::ReadIndexRequest>) {
          log(what + "read index request #" + std::to_string(m.request_id));
          node.router->on_read_index_request(sender, m.request_id);
        } else {
          log(what + "read index reply #" + std::to_string(m.request_id) +
              (m.ok ? " slot " + std::to_string(m.slot) : " refused"));
          node.router->on_read_index_reply(sender, m);
        }
      },
      message);
  drive(node);
}

// A read served must reflect every slot any replica had applied (so was chosen) when it reached
// a router: the state it is served from is the serving replica's, at the time it is served.
void CoreSimulation::on_read_served(int index, uint64_t session, Slot applied) {
  auto owner = session_owners_.find(session);
  if (owner == session_owners_.end()) return;  // an abandoned operation's
  const Client& client = *clients_[owner->second];
  if (!client.op || applied >= client.read_floor) return;
  fail("reads: " + to_string(nodes_[index]->id) + " served a read from its state at slot " +
       std::to_string(applied) + ", but slot " + std::to_string(client.read_floor) +
       " had been applied when the read was asked");
}

void CoreSimulation::on_sync_done(Node& node, uint64_t incarnation) {
  if (!node.up || node.incarnation != incarnation || !node.sync_done) return;
  ++result_.syncs_deferred;
  auto fdatasync = std::move(node.fdatasync);
  auto done = std::move(node.sync_done);
  node.fdatasync = nullptr;
  node.sync_done = nullptr;
  done(fdatasync());
  log(to_string(node.id) + " synced");
  drive(node);
}

void CoreSimulation::on_snapshot_done(Node& node, uint64_t incarnation) {
  if (!node.up || node.incarnation != incarnation || !node.snapshot_done) return;
  ++result_.snapshots_deferred;
  auto done = std::move(node.snapshot_done);
  node.snapshot_done = nullptr;
  Result<node::ServerCore::SnapshotMade> made = std::move(*node.snapshot_made);
  node.snapshot_made.reset();
  if (rng_.chance(options_.snapshot_fails)) {
    ++result_.snapshots_failed;
    made = Status::io_error("the snapshot's child died");
  }
  const Slot slot = made.is_ok() ? made->slot : 0;
  done(std::move(made));
  const bool adopted = slot != 0 && node.core->replica().snapshot_slot() == slot;
  if (slot != 0 && !adopted) ++result_.snapshots_superseded;
  log(to_string(node.id) +
      (adopted ? " snapshotted through " + std::to_string(slot) : " dropped a snapshot"));
  // The adoption compacted the log, perhaps while a sync is in flight: where a record that only
  // the unsynced tail holds would be lost.
  if (adopted && faults_on_ && options_.crashes && node.core->sync_in_flight() &&
      rng_.chance(options_.crash_after_snapshot)) {
    crash_and_schedule_restart(node);
    return;
  }
  drive(node);
}

// ---------------------------------------------------------------------------------------------
// Clients.

void CoreSimulation::client_start(Client& client) {
  if (done_ || client.op || client.probes_left == 0) return;
  lincheck::Operation op;
  op.client = client.process;
  op.call_ns = int64_t(now_us_) * 1000;
  Command command = choose_command(client, op);
  client.op = history_.ops.size();
  history_.ops.push_back(std::move(op));
  commands_.push_back(std::move(command));
  // Now and then a client asks whoever it picks: every replica's router takes commands.
  if (rng_.chance(options_.wander)) client.target = int(rng_.below(nodes_.size()));
  const uint64_t attempt = ++client.attempt;
  const int c = client.index, target = client.target;
  const uint64_t delay_us = network_delay();
  schedule(now_us_ + delay_us, [this, c, attempt, target] { client_arrive(c, attempt, target); });
  schedule(now_us_ + delay_us + options_.client_timeout_us,
           [this, c, attempt] { client_timeout(c, attempt); });
}

// Picks the next command and fills in what lincheck sees of it. Register keys ("k...") get
// what lincheck models; the others load the routers and the state machine with the rest.
CoreSimulation::Command CoreSimulation::choose_command(Client& client, lincheck::Operation& op) {
  // With disk faults, a value may embed log markers (forged_markers); any value a client writes.
  auto value = [this] {
    std::string v = "v" + std::to_string(++next_value_);
    if (sizes_.chance(options_.large_values)) {
      const size_t limit = options_.value_limit_bytes - 256;  // room for the markers below
      const size_t size = sizes_.chance(0.5) ? limit : v.size() + sizes_.below(limit);
      if (size > v.size()) v.resize(std::min(size, limit), '.');
      if (v.size() > 1024) ++result_.large_values;
    }
    if (options_.disk_faults && forgery_.chance(options_.forged_markers)) {
      for (uint8_t type : {storage::kSyncedRecord, storage::kSealRecord}) {
        v += storage::encode_marker(type, forgery_.next(), forgery_.between(1, 4),
                                    forgery_.below(options_.segment_bytes));
      }
    }
    return v;
  };
  op.key = "k" + std::to_string(rng_.below(uint64_t(options_.keys)));
  op.kind = lincheck::OpKind::kPut;
  const bool ttl = rng_.chance(options_.ttl_share);
  if (ttl && !ttl_recent_.empty() && rng_.chance(0.6)) {
    // A GET of one of the newest TTL keys: around their expiry, and across failovers.
    op.kind = lincheck::OpKind::kGet;
    op.key =
        ttl_recent_[ttl_recent_.size() - 1 - rng_.below(std::min<size_t>(8, ttl_recent_.size()))];
    return {Cmd::kTtlGet, {"GET", op.key}};
  }
  if (ttl) {
    op.key = "t" + std::to_string(ttl_recent_.size());
    op.value = value();
    const uint64_t ttl_ms = rng_.between(options_.ttl_min_ms, options_.ttl_max_ms);
    ttl_keys_[op.key] = TtlKey{ttl_ms, history_.ops.size(), std::nullopt};
    ttl_recent_.push_back(op.key);
    return {Cmd::kTtlSet, {"SET", op.key, op.value, "PX", std::to_string(ttl_ms)}};
  }
  if (rng_.chance(options_.read_share)) {
    op.kind = lincheck::OpKind::kGet;
    return {Cmd::kGet, {"GET", op.key}};
  }
  if (!client.lock_token.empty()) {  // the lock it took: released now
    op.key = "lock";
    std::string token = std::move(client.lock_token);
    client.lock_token.clear();
    return {Cmd::kUnlock, {"DELIFEQ", "lock", token}};
  }
  const uint64_t pick = rng_.below(100);
  if (!options_.mixed_commands || pick < 55) {
    op.value = value();
    last_values_[op.key] = op.value;
    return {Cmd::kSet, {"SET", op.key, op.value}};
  }
  if (pick < 63) {  // SET NX: a compare-and-set against absence
    op.kind = lincheck::OpKind::kCas;
    op.expect_absent = true;
    op.new_value = value();
    return {Cmd::kSetNx, {"SET", op.key, op.new_value, "NX"}};
  }
  if (pick < 71) {  // SET IFEQ: against the latest value written
    op.kind = lincheck::OpKind::kCas;
    auto last = last_values_.find(op.key);
    op.expect = last == last_values_.end() ? "v0" : last->second;
    op.new_value = value();
    last_values_[op.key] = op.new_value;
    return {Cmd::kSetIfeq, {"SET", op.key, op.new_value, "IFEQ", op.expect}};
  }
  if (pick < 77) {
    op.kind = lincheck::OpKind::kDel;
    return {Cmd::kDel, {"DEL", op.key}};
  }
  if (pick < 87) {
    op.key = "c" + std::to_string(rng_.below(2));
    ++incrs_sent_[op.key];
    return {Cmd::kIncr, {"INCR", op.key}};
  }
  const std::string x = "x" + std::to_string(rng_.below(4));
  op.key = x;
  if (pick < 91)
    return {Cmd::kMset, {"MSET", x, value(), "x" + std::to_string(rng_.below(4)), value()}};
  if (pick < 94) return {Cmd::kSetXx, {"SET", x, value(), "XX"}};
  if (pick < 96) return {Cmd::kPexpire, {"PEXPIRE", x, std::to_string(rng_.between(1, 300))}};
  op.key = "lock";
  return {Cmd::kLock,
          {"SET", "lock", "tok" + std::to_string(++next_value_), "NX", "PX",
           std::to_string(rng_.between(50, 500))}};
}

void CoreSimulation::client_arrive(int c, uint64_t attempt, int target) {
  Client& client = *clients_[c];
  Node& node = *nodes_[target];
  if (!node.up || client.attempt != attempt || !client.op) return;  // it will time out
  // A connection to this replica: the session of the last one, if it is still open.
  if (!client.session || client.session_node != target ||
      client.session_incarnation != node.incarnation) {
    close_session(client);
    client.session = node.router->open_session();
    client.session_node = target;
    client.session_incarnation = node.incarnation;
    session_owners_[client.session->client()] = c;
  }
  const Command& command = commands_[*client.op];
  client.read_floor = max_applied_;
  std::string shown_args;
  for (const auto& arg : command.args) shown_args += " " + shown(arg);
  log("client " + std::to_string(c + 1) + shown_args + " at " + to_string(node.id));
  node.router->execute(client.session, command.args, [this, c, attempt](const kv::Reply& reply) {
    schedule(now_us_ + network_delay(),
             [this, c, attempt, reply] { client_answer(c, attempt, reply); });
  });
  drive(node);
}

void CoreSimulation::client_answer(int c, uint64_t attempt, const kv::Reply& reply) {
  Client& client = *clients_[c];
  if (client.attempt != attempt || !client.op) return;
  lincheck::Operation& op = history_.ops[*client.op];
  const Command& command = commands_[*client.op];
  // A command over the size limit (an MSET of large values) is refused at once, whole, and
  // nothing else is: the bound holds at the door, and a refusal is definite.
  const size_t bytes = kv::encoded_command_bytes(command.args);
  const bool too_large =
      reply.kind == kv::Reply::Kind::kError &&
      reply.text.rfind("ERR command of " + std::to_string(bytes) + " bytes", 0) == 0;
  if ((bytes > options_.value_limit_bytes) != too_large) {
    return fail("client: a " + command.args[0] + " of " + std::to_string(bytes) + " bytes (limit " +
                std::to_string(options_.value_limit_bytes) + ") answered '" +
                (reply.kind == kv::Reply::Kind::kError ? reply.text : "a success") + "'");
  }
  if (too_large) {
    ++result_.refused_too_large;
    op.error = reply.text;
  } else if (reply.kind == kv::Reply::Kind::kError) {
    if (reply.text.rfind("UNKNOWN", 0) == 0) {
      log("client " + std::to_string(c + 1) + " unknown: " + reply.text);
      return client_abandon(client);  // the router retried until its deadline: left open
    }
    if (reply.text.rfind("TRYAGAIN", 0) != 0)
      return fail("client: unexpected error reply '" + reply.text + "' to " + command.args[0]);
    op.error = reply.text;
    client.backoff = true;
    // A lock refused: never held. A release refused: the lock may still be held, and expires.
  } else if (!record_reply(command, op, reply)) {
    return;
  } else if (command.cmd == Cmd::kLock && op.ok) {
    client.lock_token = command.args[2];  // held: released by its next write
  }
  op.return_ns = int64_t(now_us_) * 1000;
  if (op.ok && !op.error && op.kind != lincheck::OpKind::kGet && client.session)
    put_ids_[*client.op] = {client.session->client(), client.session->last_seq()};
  log("client " + std::to_string(c + 1) + (op.error ? " refused: " + *op.error : " ok") +
      (op.found && *op.found ? " " + shown(op.output) : ""));
  if (command.cmd == Cmd::kTtlGet && op.ok) {
    check_ttl_read(op);
    if (done_) return;
  }
  if (!op.error && client.probes_left > 0) --client.probes_left;
  client_finish(client);
}

bool CoreSimulation::record_reply(const Command& command, lincheck::Operation& op,
                                  const kv::Reply& reply) {
  using Kind = kv::Reply::Kind;
  auto wrong = [&] {
    fail("client: " + command.args[0] + " " + command.args[1] + " answered '" + reply.text + "'");
    return false;
  };
  switch (command.cmd) {
    case Cmd::kGet:
    case Cmd::kTtlGet:
      if (reply.kind != Kind::kBulk && reply.kind != Kind::kNull) return wrong();
      op.ok = true;
      op.found = reply.kind == Kind::kBulk;
      if (*op.found) op.output = reply.text;
      return true;
    case Cmd::kSet:
    case Cmd::kTtlSet:
    case Cmd::kMset:
      if (!(reply == kv::Reply::ok())) return wrong();
      op.ok = true;
      return true;
    case Cmd::kSetNx:
    case Cmd::kSetIfeq:
    case Cmd::kSetXx:
    case Cmd::kLock:
      if (!(reply == kv::Reply::ok()) && reply.kind != Kind::kNull) return wrong();
      op.ok = reply == kv::Reply::ok();  // null: the condition did not hold, nothing written
      return true;
    case Cmd::kDel:
    case Cmd::kUnlock:
    case Cmd::kPexpire:
      if (reply.kind != Kind::kInteger || reply.integer < 0 || reply.integer > 1) return wrong();
      op.ok = true;
      op.found = reply.integer == 1;
      return true;
    case Cmd::kIncr: {
      if (reply.kind != Kind::kInteger) return wrong();
      op.ok = true;
      // Applied exactly once: the value counts INCRs, so none can exceed those sent so far.
      const auto sent = static_cast<int64_t>(incrs_sent_[op.key]);
      if (reply.integer < 1 || reply.integer > sent) {
        fail("counters: INCR " + op.key + " returned " + std::to_string(reply.integer) +
             " after only " + std::to_string(sent) + " INCRs were sent to it");
        return false;
      }
      return true;
    }
  }
  return wrong();
}

// Cluster time runs at most (1 + bound) times as fast as simulated time (every replica's
// monotonic clock does, and a failover never adds time), and the SET was stamped after it was
// sent: so the key cannot have expired before ttl / (1 + bound) of simulated time since then.
// (2 ms of slack: the clocks count whole milliseconds.) And a key, once expired, stays gone.
void CoreSimulation::check_ttl_read(const lincheck::Operation& get) {
  TtlKey& key = ttl_keys_[get.key];
  const lincheck::Operation& set = history_.ops[key.set_op];
  if (!set.ok || set.outcome_unknown() || get.call_ns <= *set.return_ns) return;
  const double elapsed_ms = double(*get.return_ns - set.call_ns) / 1e6;
  if (!*get.found) {
    ++result_.ttl_expired_reads;
    if (elapsed_ms * (1 + node::kClockDriftBound) + 2 < double(key.ttl_ms)) {
      return fail("ttl: " + get.key + " set with PX " + std::to_string(key.ttl_ms) +
                  " read as expired " + std::to_string(int64_t(elapsed_ms)) +
                  " ms after the SET was sent");
    }
    if (!key.absent_since_ns || *get.return_ns < *key.absent_since_ns)
      key.absent_since_ns = *get.return_ns;
  } else if (key.absent_since_ns && get.call_ns > *key.absent_since_ns) {
    return fail("ttl: " + get.key +
                " read as present after a GET that returned earlier had "
                "found it expired (time went backwards)");
  }
}

void CoreSimulation::client_timeout(int c, uint64_t attempt) {
  Client& client = *clients_[c];
  if (client.attempt != attempt || !client.op) return;
  log("client " + std::to_string(c + 1) + " times out");
  client.target = int(rng_.below(nodes_.size()));
  client_abandon(client);
}

// The outcome stays open in the history; the client goes on as a new one, on a new connection.
void CoreSimulation::client_abandon(Client& client) {
  client.process = ++next_process_;
  close_session(client);
  client_finish(client);
}

void CoreSimulation::close_session(Client& client) {
  if (!client.session) return;
  session_owners_.erase(client.session->client());
  client.session->close();
  client.session.reset();
  client.session_node = -1;
}

void CoreSimulation::client_finish(Client& client) {
  client.op.reset();
  ++client.attempt;
  const int c = client.index;
  // After a refusal, a pause of about an election's length at most, not a hot loop.
  const uint64_t pause = client.backoff ? rng_.between(1'000, options_.retry_backoff_max_us)
                                        : rng_.below(options_.client_think_max_us + 1);
  client.backoff = false;
  schedule(now_us_ + pause, [this, c] { client_start(*clients_[c]); });
}

// Once converged: each counter holds at least the INCRs acknowledged and at most those
// acknowledged or left open (each applied exactly once).
void CoreSimulation::check_counters() {
  Node* l = leader();
  std::map<std::string, std::pair<int64_t, int64_t>> bounds;  // key -> (acknowledged, possible)
  for (size_t i = 0; i < history_.ops.size(); ++i) {
    if (commands_[i].cmd != Cmd::kIncr) continue;
    const lincheck::Operation& op = history_.ops[i];
    auto& [low, high] = bounds[op.key];
    if (op.outcome_unknown() || op.ok) ++high;
    if (!op.outcome_unknown() && op.ok) ++low;
  }
  for (const auto& [key, range] : bounds) {
    const kv::Reply r = l->core->store().read({"GET", key}, now_us_ / 1000);
    const int64_t value = r.kind == kv::Reply::Kind::kBulk ? std::stoll(r.text) : 0;
    if (value < range.first || value > range.second) {
      return fail("counters: " + key + " holds " + std::to_string(value) + " after " +
                  std::to_string(range.first) + " INCRs acknowledged and " +
                  std::to_string(range.second - range.first) + " left open");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The nemesis and the calm.

CoreSimulation::Node* CoreSimulation::leader() {
  Node* best = nullptr;
  for (auto& node : nodes_) {
    if (!node->up || node->core->replica().role() != paxos::Role::kLeader) continue;
    if (!best || node->core->replica().ballot() > best->core->replica().ballot()) best = node.get();
  }
  return best;
}

void CoreSimulation::nemesis() {
  if (!faults_on_ || done_) return;
  schedule(
      now_us_ + rng_.between(options_.nemesis_interval_min_us, options_.nemesis_interval_max_us),
      [this] { nemesis(); });
  if (rng_.chance(options_.wall_step)) {  // an NTP step, either way, of a second to an hour
    Node& node = *nodes_[rng_.below(nodes_.size())];
    const auto step = static_cast<int64_t>(rng_.between(1'000, 3'600'000));
    node.wall_offset_ms += rng_.chance(0.5) ? step : -step;
    log("wall clock of " + to_string(node.id) + " steps to offset " +
        std::to_string(node.wall_offset_ms) + " ms");
  }
  if (hostile_.chance(options_.hostile)) send_hostile();
  const bool crash_now = options_.crashes && (!options_.partitions || rng_.chance(0.5));
  if (!crash_now) return cut_.empty() ? partition() : heal();
  std::vector<Node*> up;
  for (auto& node : nodes_)
    if (node->up) up.push_back(node.get());
  if (up.empty()) return;
  if (rng_.chance(0.2)) {  // a power cut
    for (Node* node : up)
      if (rng_.chance(0.7)) crash_and_schedule_restart(*node);
    return;
  }
  Node* victim = leader();
  if (!victim || rng_.chance(0.5)) victim = up[rng_.below(up.size())];
  crash_and_schedule_restart(*victim);
}

// A hostile peer's message (sim/hostile.h) in a member's name. It vouches for nothing (no replica
// sent it), and it crosses the network as any message does, cuts included.
void CoreSimulation::send_hostile() {
  const uint64_t n = nodes_.size();
  if (n < 2) return;
  const auto& sender = nodes_[hostile_.below(n)];
  const NodeId from = sender->id;
  NodeId to = nodes_[hostile_.below(n - 1)]->id;
  if (to.value >= from.value) to = NodeId{to.value + 1};
  uint64_t known = 0;
  for (const auto& node : nodes_)
    if (node->up)
      known = std::max({known, node->core->replica().promised().round,
                        node->core->replica().highest_round_seen()});
  const bool leads = sender->up && sender->core->replica().role() == paxos::Role::kLeader;
  paxos::Envelope e{from, to, hostile_message(hostile_, from, known, leads)};
  ++result_.hostile_messages;
  log("hostile " + to_string(e));
  schedule(now_us_ + hostile_.between(options_.delay_min_us, options_.delay_max_us),
           [this, e] { deliver(e); });
}

void CoreSimulation::partition() {
  Node* l = leader();
  NetworkCut cut = choose_cut(rng_, int(nodes_.size()), l ? l->index : -1, node_names(nodes_));
  if (cut.empty()) return;  // the random split put everyone on one side
  cut_ = std::move(cut);
  ++result_.partitions;
  const uint64_t epoch = ++partition_epoch_;
  log(cut_.description);
  schedule(now_us_ + rng_.between(50'000, 1'000'000), [this, epoch] {
    if (epoch == partition_epoch_) heal();
  });
}

void CoreSimulation::heal() {
  if (cut_.empty()) return;
  cut_ = {};
  ++partition_epoch_;
  log("heal");
  for (paxos::Envelope& e : held_) {
    schedule(now_us_ + network_delay(), [this, e] { deliver(e); });
  }
  held_.clear();
  for (auto& [from, to, message] : held_routed_) {
    schedule(now_us_ + network_delay(),
             [this, from = from, to = to, message = std::move(message)]() mutable {
               deliver_routed(from, to, message);
             });
  }
  held_routed_.clear();
}

void CoreSimulation::start_liveness_phase() {
  log("faults stop");
  faults_on_ = false;
  liveness_phase_ = true;
  liveness_start_us_ = now_us_;
  heal();
  for (auto& node : nodes_) {
    if (!node->up) start(*node);
    if (done_) return;
  }
  for (auto& client : clients_) {
    client->probes_left = options_.probes;
    if (!client->op) client_start(*client);
  }
  schedule(now_us_ + options_.liveness_bound_us, [this] {
    if (probe_.stage() != DisruptionProbe::Stage::kNone) return;  // it converged in time
    fail("liveness: no convergence within " + std::to_string(options_.liveness_bound_us / 1000) +
         " ms of calm: " + describe_stall());
  });
}

// Once calm, the disruption probe (sim/disruption_probe.h): any follower of a majority quorum
// leaves the leader one when cut off.
bool CoreSimulation::start_disruption_probe() {
  Node* l = leader();
  // (Under minority-quorum the cut-off follower is a quorum by itself: the probe's premise fails.)
  if (!l || nodes_.size() < 3 || options_.bugs.minority_quorum) return false;
  std::vector<int> followers;
  for (const auto& node : nodes_)
    if (node.get() != l) followers.push_back(node->index);
  result_.disruption_probed = true;
  cut_ = probe_.start(node_names(nodes_), l->index, r_ballot(*l),
                      followers[rng_.below(followers.size())]);
  log(cut_.description);
  const uint64_t span_us = DisruptionProbe::span_us(options_);
  schedule(now_us_ + span_us, [this] {
    cut_ = {};
    log(probe_.rejoin(node_names(nodes_)));
  });
  schedule(now_us_ + 2 * span_us, [this] {
    const Node& was = *nodes_[size_t(probe_.leader())];
    const bool still_leads = was.up && was.core->replica().role() == paxos::Role::kLeader &&
                             r_ballot(was) == probe_.ballot();
    if (auto violation = probe_.finish(node_names(nodes_), still_leads)) fail(*violation);
    result_.needless_leader_changes = probe_.changes();
  });
  return true;
}

bool CoreSimulation::converged() {
  for (const auto& client : clients_)
    if (client->op || client->probes_left != 0) return false;
  Node* l = leader();
  if (!l) return false;
  const Slot commit = l->core->replica().commit();
  for (const auto& node : nodes_) {
    if (!node->up || node->core->sync_in_flight()) return false;
    if (node->core->replica().promised() != l->core->replica().ballot()) return false;
    if (node->core->applied() != commit) return false;
  }
  // Durability: every acknowledged SET sits in the applied log, within the prefix all hold. (It
  // reads what the apply observer recorded, so it is one of the apply checks: without them,
  // lincheck and the end states must catch a lost write on their own.)
  if (options_.check_applies) {
    for (const auto& [index, id] : put_ids_) {
      const lincheck::Operation& op = history_.ops[index];
      if (!op.ok || op.outcome_unknown()) continue;
      auto it = applied_commands_.find(id);
      if (it == applied_commands_.end() || it->second > commit) {
        fail("durability: acknowledged SET " + op.key + "=" + shown(op.value) +
             " is not in the log " + "every replica applied");
        return false;
      }
    }
  }
  // Agreement: the same prefix gives the same state everywhere.
  for (const auto& node : nodes_) {
    if (node->core->store().digest() != l->core->store().digest()) {
      fail("agreement: " + to_string(node->id) + " and " + to_string(l->id) +
           " applied through slot " + std::to_string(commit) + " to different states");
      return false;
    }
  }
  result_.liveness_us = now_us_ - liveness_start_us_;
  return true;
}

std::string CoreSimulation::describe_stall() const {
  std::string out;
  for (const auto& node : nodes_) {
    if (!node->up) {
      out += to_string(node->id) + "=down ";
      continue;
    }
    const paxos::Replica& r = node->core->replica();
    out += to_string(node->id) + "=" + paxos::to_string(r.role()) + "/promised " +
           to_string(r.promised()) + "/commit " + std::to_string(r.commit()) + "/applied " +
           std::to_string(node->core->applied()) + " ";
  }
  int waiting = 0;
  for (const auto& client : clients_) waiting += client->op || client->probes_left != 0 ? 1 : 0;
  return out + "; clients not done: " + std::to_string(waiting);
}

}  // namespace

const std::vector<std::string>& core_bug_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out = planted_bug_names(BugLayer::kReplica);
    for (std::string& name : planted_bug_names(BugLayer::kServer)) out.push_back(std::move(name));
    return out;
  }();
  return names;
}

bool enable_core_bug(std::string_view name, CoreOptions& options) {
  const PlantedBugInfo* info = find_planted_bug(name);
  if (info == nullptr) return false;
  if (info->layer == BugLayer::kProtocol) return paxos::enable_bug(name, options.bugs);
  if (info->layer == BugLayer::kServer) {  // the router's, which every simulated replica runs
    const auto bug = node::Router::parse_planted_bug(name);
    if (!bug || *bug == node::Router::PlantedBug::kNone) return false;
    options.router_bug = std::string(name);
    return true;
  }
  node::ServerCore::Options probe;  // (refuses a name the replica has no switch for)
  if (!node::ServerCore::plant_bug(name, probe)) return false;
  options.replica_bugs.emplace_back(name);
  return true;
}

CoreResult run_core_seed(CoreOptions options, uint64_t seed, std::ostream* trace) {
  options.seed = seed;
  CoreSimulation simulation(options, trace);
  return simulation.run();
}

}  // namespace synod::sim
