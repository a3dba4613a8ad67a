// One seeded, single-threaded run of a whole cluster: the real Replica code under a simulated
// clock, network (delay, loss, duplication, reordering, partitions) and disk (a batch is durable
// only once its sync completes; a crash loses whatever was still waiting), with simulated clients
// that propose commands to any replica and retry, and ask for linearizable reads (read index)
// from whoever they think leads. The same seed gives the same run, event for
// event; the trace's digest lets two runs be compared.
//
// A run has two phases. In the fault phase the nemesis crashes and restarts replicas and cuts
// the network while clients propose. In the liveness phase faults stop; within a bound, a leader
// must hold every replica's promise, every replica must learn every chosen slot, and each client
// must get fresh commands chosen. The Checker's invariants are checked after every event.
//
// Then the disruption probe (sim/disruption_probe.h): a follower cut off from a leader that keeps
// its quorum, and let back, must not change the leadership.
#pragma once

#include <cstdint>
#include <deque>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/hash.h"
#include "base/rng.h"
#include "paxos/replica.h"
#include "sim/checker.h"
#include "sim/disruption_probe.h"
#include "sim/event_log.h"
#include "sim/network_cut.h"
#include "sim/options.h"
#include "storage/log.h"

namespace synod::sim {

struct RunResult {
  uint64_t seed = 0;
  std::optional<std::string> violation;
  std::vector<std::string> last_events;  // the events leading up to a violation
  uint64_t slots_chosen = 0;
  uint64_t commands_chosen = 0;  // distinct client commands in the chosen log
  uint64_t commands_acknowledged = 0;
  uint64_t reads_served = 0;    // reads reported ok (their index checked against acknowledgements)
  uint64_t reads_in_lease = 0;  // ... of them, reported while the leader's lease held (--lease)
  uint64_t leaders = 0;         // distinct ballots that won phase 1
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t reconfigurations = 0;    // configuration changes chosen
  uint64_t wipes = 0;               // replicas restarted with an empty data directory
  uint64_t refused_identities = 0;  // replicas stopped for good by a peer's refusal
  uint64_t hostile_messages = 0;    // absurd messages sent (Options::hostile)
  uint64_t link_drops = 0;          // messages dropped by a full link (Options::link_bytes_per_ms)
  uint64_t messages = 0;
  uint64_t syncs = 0;       // simulated fdatasyncs of the write-ahead logs
  uint64_t torn_tails = 0;  // recoveries that cut off a torn tail
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_installed = 0;  // received from a peer
  uint64_t events = 0;
  uint64_t liveness_us = 0;  // how long the calm phase took to converge
  // The disruption probe, once calm (Simulation::start_disruption_probe): whether it ran, and
  // the leadership changes it saw (each one needless: the leader kept a quorum throughout).
  bool disruption_probed = false;
  uint64_t needless_leader_changes = 0;
  // Leader transfers (Options::transfer): asked of a leader, and completed (the target led
  // next). The transfer probe, once calm: whether it ran, and how long the handover took.
  uint64_t transfers_asked = 0;
  uint64_t transfers_completed = 0;
  bool transfer_probed = false;
  uint64_t transfer_probe_us = 0;
  uint64_t digest = 0;
};

class Simulation {
 public:
  // With `trace` set, every event is written there as one line.
  explicit Simulation(const Options& options, std::ostream* trace = nullptr);
  ~Simulation();

  RunResult run();

 private:
  struct Event;
  struct Node;
  struct Client;
  struct PendingReady;

  // Scheduling and tracing.
  void schedule(uint64_t at_us, Event event);
  void dispatch(Event& event);
  void log(const std::string& line);

  // Replicas, disks and the network.
  void process_ready(Node& node);
  // The node's tick, in simulated time, and its clock's reading now (its own rate: drift_ppm).
  uint64_t tick_us(const Node& node) const;
  uint64_t clock_ms(const Node& node) const;
  void on_disk_done(Node& node, uint64_t incarnation);
  void release(Node& node, paxos::Ready& ready);
  void send(const paxos::Envelope& envelope);
  void watch_catchup_requests(Node& node);
  uint64_t network_delay();
  std::optional<uint64_t> link_departure(int from, int to, const paxos::Envelope& envelope);
  void deliver(const paxos::Envelope& envelope);
  void crash(Node& node);
  void crash_and_schedule_restart(Node& node);
  // A peer refused the node's identity: it stops for good, as the server does.
  void stop_refused(Node& node, NodeId by);
  void restart(Node& node);
  paxos::Config replica_config(NodeId id) const;
  storage::LogOptions log_options(Node& node) const;
  void take_snapshot(Node& node);
  void restore_state_machine(Node& node, const paxos::SnapshotRef& snapshot);

  // Clients.
  void client_start_command(Client& client);
  void client_send(Client& client);
  void client_request_arrives(int node_index, int client_index, uint64_t attempt);
  void client_reply(int client_index, uint64_t attempt, paxos::Outcome outcome, NodeId hint,
                    Slot slot);
  void client_reply_arrives(int client_index, uint64_t attempt, paxos::Outcome outcome, NodeId hint,
                            Slot slot);
  void client_timeout(int client_index, uint64_t attempt);
  void client_start_read(Client& client);
  void client_read_arrives(int node_index, int client_index, uint64_t attempt);
  void client_read_reply(int client_index, uint64_t attempt, bool ok, NodeId hint);
  void client_read_done(Client& client, bool ok, NodeId hint);

  // The nemesis and the phases.
  void nemesis();
  void partition();
  void send_hostile();
  void reconfigure();
  // Asks `leader` to hand over to a voter other than itself (and than `except`); false if it
  // did not start one.
  bool transfer(Node& leader, NodeId except = kNoNode);
  void wipe(Node& node);
  void heal();
  void start_liveness_phase();
  bool start_disruption_probe();
  void end_disruption_probe();
  bool start_transfer_probe();
  void end_transfer_probe();
  bool converged() const;
  std::string describe_stall() const;
  Node* current_leader();

  EventLog events_;
  Rng rng_;
  Options options_;  // after swarm scaling
  paxos::QuorumSystem quorum_;
  Checker checker_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::map<std::pair<uint64_t, uint64_t>, Event> queue_;
  uint64_t now_us_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t next_read_id_ = 0;
  bool faults_on_ = true;
  bool liveness_phase_ = false;
  uint64_t liveness_start_us_ = 0;
  DisruptionProbe probe_;              // once converged (sim/disruption_probe.h)
  NetworkCut cut_;                     // the links cut now (sim/network_cut.h)
  std::vector<paxos::Envelope> held_;  // what clogged links hold, delivered at the heal
  std::map<std::pair<int, int>, uint64_t> link_free_us_;  // (from, to): when it has sent all
  size_t link_queue_bytes_ = 0;  // what one link holds waiting, at most (set at the first send)
  std::set<paxos::CommandId> acknowledged_;
  std::set<Ballot> leader_ballots_;
  uint64_t next_reconfig_seq_ = 1;
  // Transfers asked for and not yet ended: per target, the old leader's ballot (a transfer
  // completes when its target leads next, in a higher ballot).
  std::map<NodeId, Ballot> transfers_;
  // A change that removes, demotes or replaces the leader, asked after it handed over.
  std::optional<paxos::MembershipChange> after_transfer_;
  // The transfer probe (start_transfer_probe): its stage, the old leader, its ballot, the target,
  // when it started, and the leadership changes seen meanwhile.
  enum class TransferProbe { kNone, kRunning, kDone } transfer_probe_ = TransferProbe::kNone;
  int transfer_probe_leader_ = -1;
  Ballot transfer_probe_ballot_;
  NodeId transfer_probe_target_;
  uint64_t transfer_probe_start_us_ = 0;
  std::vector<std::string> transfer_probe_changes_;
  RunResult result_;
};

// Runs one seed with `options` (whose seed field is replaced).
RunResult run_seed(Options options, uint64_t seed, std::ostream* trace = nullptr);

}  // namespace synod::sim
