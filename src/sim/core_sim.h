// The whole-replica simulator: N replicas, each a node::ServerCore — the protocol core, the real
// log and snapshots on a simulated disk, the key-value state machine, and the order of effects
// the server depends on (requests sent before the sync, answers held until it, fdatasync run off
// the loop or at once) — and the server's request router (node::Router: forwarding to the
// leader, follower reads by read index, internal retries, deadlines, the TRYAGAIN/UNKNOWN
// decision, exactly-once sessions), under one seeded, single-threaded schedule of simulated
// time, network (delay, loss, duplication, reordering, partitions; the routers' forwards and
// read-index messages travel on it too) and crashes (which lose, and with disk faults tear,
// whatever was not synced). The routers' ticks and deadlines run on their replica's own drifting
// clock. Clients send real commands to any replica, each over a session of its own, as a
// connection would: GET, SET (plain, NX, XX, IFEQ, PX), DEL, INCR, MSET, PEXPIRE, and lock
// acquire (SET NX PX) and release (DELIFEQ).
//
// The paxos simulator (sim/cluster.h) drives paxos::Replica with its own strict driver; this one
// drives the code the server runs, so what the server adds — early sends, held answers, syncs
// in flight while the log rolls segments and snapshots compact it — is explored too.
//
// It checks:
//   vouching      — what leaves a replica vouches for its disk (its answers to its own proposer
//                   included): after any crash, the replica recovers a promise at least as high
//                   as every ballot it sent (Prepare, Accept, Promise, Accepted, Reject's
//                   promise), and for every slot it said Accepted in a ballot, an accepted entry
//                   at least that high (or a snapshot covering it);
//   agreement     — every apply of a slot, on any replica, applies the same value, and once
//                   calm all replicas hold the same state (the order of applies is
//                   paxos::Replica's, which the protocol simulator checks);
//   durability    — once calm, every acknowledged SET is in the log every replica applied;
//   reads         — a GET is served (by whichever router serves it: the one the client asked,
//                   by a read index, or the leader's, for a forwarded read) from a state that
//                   includes every slot any replica had applied when the GET reached a router;
//   linearizable  — the clients' history on the register keys (GET, SET, SET NX and SET IFEQ
//                   as compare-and-set, DEL, each with its reply; one whose outcome the client
//                   never learned — UNKNOWN, or no answer — open) passes lincheck, with a final
//                   GET of every key at the converged state;
//   counters      — INCR is applied exactly once: no INCR returns more than the INCRs sent to
//                   its key so far, and the converged value lies between the INCRs
//                   acknowledged and those acknowledged or left open;
//   liveness      — once calm, within a bound, every client completes fresh operations and the
//                   replicas converge;
//   disruption    — then a follower cut off from the leader, which keeps its quorum, and let
//                   back changes no leadership (sim/disruption_probe.h);
//   ttl           — each replica has its own clocks: a wall clock off by seconds to hours (either
//                   sign) that the nemesis steps (an NTP jump), and a monotonic clock whose rate
//                   is off by up to node::kClockDriftBound. Clients also SET fresh keys with PX
//                   and GET them: a key whose SET was acknowledged is never read as absent before
//                   PX / (1 + bound) of simulated time since the SET was sent, and once a GET
//                   asked after that acknowledgment saw it absent, no GET asked later sees it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/bugs.h"
#include "sim/options.h"

namespace synod::sim {

struct CoreOptions : ReplicaClock {
  uint64_t seed = 1;
  int replicas = 3;  // 3 or 5
  int clients = 5;
  int keys = 4;

  uint64_t fault_phase_us = 3'000'000;
  uint64_t liveness_bound_us = 10'000'000;

  // Network, while faults are on.
  uint64_t delay_min_us = 50;
  uint64_t delay_max_us = 2'000;
  double loss = 0.03;
  double duplicate = 0.02;
  double long_delay = 0.02;  // held back, so later messages overtake it
  uint64_t long_delay_max_us = 100'000;

  // The nemesis.
  uint64_t nemesis_interval_min_us = 100'000;
  uint64_t nemesis_interval_max_us = 600'000;
  bool crashes = true;
  bool partitions = true;
  // Besides the nemesis: the chance that a replica crashes right after it sent something while
  // its own sync is still in flight — where an answer that left too early would hurt.
  double crash_in_sync = 0.001;
  // ... and right after its state machine's snapshot compacted the log while a sync was in
  // flight — where a record that only the unsynced tail holds would be lost.
  double crash_after_snapshot = 0.05;
  // ... and right after it began a snapshot (the server's forked child writes it while the
  // replica goes on) — where a log compacted before the snapshot file is durable would hurt.
  double crash_in_snapshot = 0.1;
  // ... and right after it began a campaign (raised its promise to its own new ballot) while the
  // sync of that promise was in flight — where a Prepare that left too early would hurt.
  double crash_after_campaign = 0.1;

  // Disk. A sync takes sync_min..max; with chance inline_sync it runs at once on the caller
  // (as a follower's does in the server), otherwise it completes later while the core goes on.
  // Lease reads (`synod server --lease-reads`): every replica's lease is production's for its
  // tick (paxos::Config::max_read_lease_ms), on its own drifting monotonic clock.
  bool lease = false;
  bool disk_faults = false;  // a crash may keep a torn prefix of unsynced writes, bits flipped
  uint64_t sync_min_us = 50;
  uint64_t sync_max_us = 1'500;
  double inline_sync = 0.3;
  double no_sync_runner = 0.15;  // an incarnation syncs every batch inline (--sync-on-loop)
  uint64_t segment_bytes = 2 << 10;
  uint64_t snapshot_every = 6;
  // Snapshots, as the server's forked child takes them: the image is taken at once, and the
  // snapshot is done snapshot_min..max later (the replica applies on, may install a peer's
  // snapshot, may crash meanwhile); with chance snapshot_fails it fails (the child died). An
  // incarnation snapshots inline with chance no_snapshot_runner.
  uint64_t snapshot_min_us = 200;
  uint64_t snapshot_max_us = 60'000;
  double snapshot_fails = 0.05;
  double no_snapshot_runner = 0.15;
  // With disk faults, the chance that a SET's value embeds a synced and a seal marker of the
  // log's format (with a guessed salt, segment and offset), as a client that wants a torn tail to
  // look synced — and its replica to refuse to start — would write.
  double forged_markers = 0.2;

  // Values: most are a few bytes; with chance large_values one is of a random size up to the
  // limit, and half of those exactly at it. The replicas' max_command_bytes is value_limit_bytes
  // (the server's limit scaled down, so that runs stay fast) and every other byte bound derives
  // from it as the server derives them (paxos::Config::set_size_limits), so that promises,
  // catch-up replies and pipelines of large values come in several messages.
  double large_values = 0.03;
  size_t value_limit_bytes = 64 << 10;
  // The chance that a nemesis strike also sends a hostile peer's message (sim/hostile.h):
  // well-formed but absurd, in a member's name. Safety must hold throughout, liveness once they
  // stop.
  double hostile = 0.3;

  // The routers: a command is answered by request_timeout_ms (definitely, or UNKNOWN), a forward
  // unanswered for forward_timeout_ms is sent again. The server's 5000 and 1000, scaled down so
  // that a command outlives an election (150-300 ms, as the server's) but not every partition. An
  // incarnation forwards its reads to the leader instead of serving them by read index with chance
  // no_follower_reads.
  uint32_t request_timeout_ms = 400;
  uint32_t forward_timeout_ms = 80;
  double no_follower_reads = 0.2;

  // Clients: one operation at a time each, a GET with chance read_share, otherwise a write
  // (mostly SETs of the register keys; see client_start). A client that gets no answer in
  // client_timeout_us (its replica crashed) leaves the operation open and goes on as a new one.
  uint64_t client_timeout_us = 600'000;
  uint64_t client_think_max_us = 5'000;
  double read_share = 0.3;
  double wander = 0.1;  // an operation goes to a random replica, not the one the client used
  uint64_t retry_backoff_max_us = 30'000;  // the pause after a refusal
  int probes = 3;                          // operations each client must complete once calm
  // false: only GETs and SETs (of register and TTL keys), for showing that the history and
  // durability checks catch on their own what a mistyped reply would give away at once.
  bool mixed_commands = true;

  // Clocks (see "ttl" above). Keys with PX live ttl_min..max ms; a client operation is a TTL
  // one with chance ttl_share (a SET of a fresh key, or a GET of a recent one).
  uint64_t wall_skew_max_ms = 3 * 3'600'000;
  double wall_step = 0.2;  // the chance that a nemesis event also steps a replica's wall clock
  double ttl_share = 0.25;
  uint64_t ttl_min_ms = 20;
  uint64_t ttl_max_ms = 600;

  // Swarm testing: each seed scales the fault knobs by its own factor (0 to 4x).
  bool swarm = true;

  // The agreement check at every apply. Off only to show, in a test, that the history
  // (lincheck) and the end-state comparison catch on their own what it would.
  bool check_applies = true;

  paxos::Bugs bugs;
  // Planted bugs in what the server adds to the core (see core_bug_names()).
  std::vector<std::string> replica_bugs;  // by name (node::ServerCore::plant_bug)
  // A planted bug in the router (node::Router::PlantedBug, the server's --planted-bug), by name.
  std::string router_bug;
};

// The planted bugs only this simulator reaches, by name, in a stable order; enable_core_bug()
// sets one (false if there is no such bug).
const std::vector<std::string>& core_bug_names();
bool enable_core_bug(std::string_view name, CoreOptions& options);

struct CoreResult {
  uint64_t seed = 0;
  std::optional<std::string> violation;
  std::vector<std::string> last_events;  // leading up to a violation
  uint64_t ops = 0;                      // client operations recorded
  uint64_t writes_acknowledged = 0;
  uint64_t reads_ok = 0;
  uint64_t incrs_acknowledged = 0;
  uint64_t forwarded = 0;       // by the routers: commands forwarded to the leader
  uint64_t follower_reads = 0;  // ... reads served by a read index
  uint64_t router_retries = 0;  // ... attempts made again inside the cluster
  uint64_t unknown = 0;         // operations whose outcome the client never learned
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t syncs_deferred = 0;
  uint64_t syncs_inline = 0;
  uint64_t snapshots_deferred = 0;    // snapshots done later, off the replica's loop
  uint64_t snapshots_superseded = 0;  // ... of them, made stale by a peer's snapshot meanwhile
  uint64_t snapshots_failed = 0;      // ... of them, failed
  uint64_t crashes_in_snapshot = 0;   // crashes while a snapshot was in flight
  uint64_t leaders = 0;               // distinct leader ballots
  uint64_t hostile_messages = 0;      // absurd messages sent in a member's name
  uint64_t large_values = 0;          // values written of more than 1 KiB
  uint64_t refused_too_large = 0;     // commands over the size limit, refused whole
  uint64_t ttl_expired_reads = 0;  // TTL GETs (asked after their SET's OK) that found the key gone
  uint64_t messages = 0;
  uint64_t events = 0;
  uint64_t liveness_us = 0;
  bool disruption_probed = false;        // the disruption probe ran once calm (see cluster.h)
  uint64_t needless_leader_changes = 0;  // ... and saw this many leadership changes
  uint64_t digest = 0;                   // of the trace: the same seed gives the same digest
};

// Runs one seed (replacing options.seed).
CoreResult run_core_seed(CoreOptions options, uint64_t seed, std::ostream* trace = nullptr);

}  // namespace synod::sim
