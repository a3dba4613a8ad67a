// The knobs of one simulated run. All times are in simulated microseconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/rng.h"
#include "paxos/bugs.h"
#include "paxos/config.h"
#include "paxos/quorum.h"

namespace synod::sim {

// The replicas' logical clock and batching, the same in both simulators (this one and
// core_sim.h).
// Production's settings (paxos::Config's defaults, and synod server's 10 ms tick), which swarm
// testing varies per seed around them (Options::swarmed).
struct ReplicaClock {
  uint64_t tick_us = 10'000;
  uint32_t election_timeout_min_ticks = paxos::Config{}.election_timeout_min_ticks;
  uint32_t election_timeout_max_ticks = paxos::Config{}.election_timeout_max_ticks;
  uint32_t heartbeat_interval_ticks = paxos::Config{}.heartbeat_interval_ticks;
  uint32_t retransmit_interval_ticks = paxos::Config{}.retransmit_interval_ticks;
  size_t max_inflight_slots = paxos::Config{}.max_inflight_slots;
  size_t max_batch_commands = paxos::Config{}.max_batch_commands;
  // The chosen values each replica keeps in memory (paxos::Config::log_memory_bytes). Unset: by
  // seed, not drawn, so that the other seeds' schedules stay as they were. Production's default
  // is more than a simulated run ever chooses, so two seeds in three let go of chosen values as
  // soon as they may (none kept, or 1 KiB) and read them back from the log on the simulated disk.
  std::optional<size_t> log_memory_bytes;
  size_t log_memory_bytes_for(uint64_t seed) const {
    if (log_memory_bytes) return *log_memory_bytes;
    if (seed % 3 == 0) return 0;
    if (seed % 3 == 1) return 1 << 10;
    return paxos::Config{}.log_memory_bytes;
  }

  // Sets these in `config`.
  void configure(paxos::Config& config) const {
    config.election_timeout_min_ticks = election_timeout_min_ticks;
    config.election_timeout_max_ticks = election_timeout_max_ticks;
    config.heartbeat_interval_ticks = heartbeat_interval_ticks;
    config.retransmit_interval_ticks = retransmit_interval_ticks;
    config.max_inflight_slots = max_inflight_slots;
    config.max_batch_commands = max_batch_commands;
  }
};

// Applies a named mix of faults (none, network, crash, partition, all) to either simulator's
// knobs: the network's loss, duplication and reordering stay only in a mix that names them,
// crashes and partitions only where named. False for an unknown name.
template <typename Knobs>
bool apply_fault_mix(std::string_view mix, Knobs& knobs) {
  const bool network = mix == "network" || mix == "all";
  if (!network && mix != "none" && mix != "crash" && mix != "partition") return false;
  if (!network) knobs.loss = knobs.duplicate = knobs.long_delay = 0;
  knobs.crashes = mix == "crash" || mix == "all";
  knobs.partitions = mix == "partition" || mix == "all";
  return true;
}

struct Options : ReplicaClock {
  uint64_t seed = 1;
  int replicas = 3;  // 3, 5 or 7
  int clients = 4;

  // The fault phase: faults happen, clients keep proposing.
  uint64_t fault_phase_us = 3'000'000;
  // The liveness phase: faults stop; within this bound a leader must be elected, every replica
  // must learn every chosen slot, and fresh commands must commit.
  uint64_t liveness_bound_us = 10'000'000;

  // Network, while faults are on.
  uint64_t delay_min_us = 200;
  uint64_t delay_max_us = 3'000;
  double loss = 0.05;        // a message vanishes
  double duplicate = 0.03;   // a message arrives twice
  double long_delay = 0.03;  // a message is held back, so later ones overtake it
  uint64_t long_delay_max_us = 150'000;
  // Each directed link carries this many bytes per simulated ms, one message after another
  // (0: unlimited, every message takes only the delay above). With large values, answers that
  // take longer to arrive than the retransmit interval.
  uint64_t link_bytes_per_ms = 0;

  // The nemesis: how often it strikes, and what it may do.
  uint64_t nemesis_interval_min_us = 50'000;
  uint64_t nemesis_interval_max_us = 400'000;
  bool crashes = true;
  // Besides the nemesis's crashes: the chance that a replica crashes right after a sync, having
  // sent what the sync allowed — the moment a forgotten promise or record would hurt most.
  double crash_after_sync = 0.004;
  // ... and right after it sent a promise to a peer.
  double crash_after_promise = 1.0;
  bool partitions = true;
  // The chance that a nemesis strike also sends a hostile message: well-formed but absurd, as a
  // peer that got past authentication (or a buggy one) would — a Prepare or a heartbeat of a
  // ballot no member owns, with rounds from just above the current one to far beyond any
  // plausible one, commits and read rounds far ahead, Rejects naming absurd promises, catch-up
  // and snapshot requests for slots and offsets far beyond the log. Never a value: a forged
  // Accept with entries, Promise or Accepted is a Byzantine peer, which Paxos does not survive
  // and authentication keeps out. Safety must hold throughout and liveness once they stop.
  double hostile = 0.3;

  // Values: most are a few bytes; with this chance one is of a random size up to the limit,
  // and half of those exactly at it (the replicas' max_command_bytes is value_limit_bytes: the
  // server's limit scaled down, so that runs stay fast; the bounds derive from it the same way).
  double large_values = 0.03;
  size_t value_limit_bytes = 64 << 10;

  // Disk: the real write-ahead log runs on a simulated disk. A crash loses what was not synced;
  // with disk_faults on it may also keep a torn prefix of the unsynced writes, with flipped bits.
  bool disk_faults = false;
  double disk_flip_rate = 0.3;
  uint64_t segment_bytes = 16 << 10;
  // Each replica snapshots its state machine every this many applied slots (0: never), which
  // compacts its log; peers that need compacted slots get the snapshot in chunks of this size.
  uint64_t snapshot_every = 16;
  size_t snapshot_chunk_bytes = 256;
  // Disk: how long making a batch durable takes.
  uint64_t sync_min_us = 100;
  uint64_t sync_max_us = 2'000;

  // Clients.
  uint64_t client_timeout_us = 400'000;
  uint64_t client_think_max_us = 20'000;
  // In the fault phase each client also reads (a read index from whoever it thinks leads), one
  // read at a time, waiting up to this long between them (0: no reads), and giving up on a read
  // unanswered after read_timeout_us.
  uint64_t read_interval_max_us = 20'000;
  uint64_t read_timeout_us = 100'000;

  // Swarm testing: each seed scales every fault knob above by its own random factor (0 to 4x),
  // so that across seeds some runs are calm, some brutal, and most lie in between.
  bool swarm = true;

  // The replicas' quorum system over n1..n`replicas`: majorities unless weights are given. A
  // Simulation refuses one that fails paxos::verify_quorum_system() unless allow_unsafe_quorum
  // plants it on purpose (to show that the checker catches it).
  paxos::QuorumConfig quorum;
  bool allow_unsafe_quorum = false;

  // Configuration changes (docs/core.md, "Membership"): with this chance a nemesis strike asks
  // the leader for one — add a learner (a spare replica, which starts knowing no configuration),
  // promote it, replace a voter with it (the leader too), demote or remove a member — so that
  // the cluster grows and shrinks between 1 and 7 voters under every other fault. Spare replicas
  // have ids above `replicas`; ids are never reused, so each is added at most once.
  double reconfig = 0;
  int spare_replicas = 8;
  // With reconfig: a voter may be wiped before every member has committed the binding of its
  // incarnation, as an operator may wipe one at any time. Members that heard the old incarnation
  // refuse the new one (their pins); one that never heard it listens, and the new incarnation,
  // once a leader binds it, votes (Replica::vote_floor keeps it off the slots below the binding).
  bool early_wipes = false;

  // Leader transfer (docs/core.md, "Leader transfer"): with this chance a nemesis strike asks the
  // leader to hand over to another voter, at random; with --reconfig, a change that removes,
  // demotes or replaces the leader is preceded by a transfer (and asked of the new leader). Once
  // calm, after the disruption probe, the transfer probe: a handover to a healthy, connected
  // voter must complete within the minimum election timeout with no other leader change.
  double transfer = 0;

  // Lease reads (docs/core.md, "Lease reads"): every replica runs with production's lease
  // (paxos::Config::max_read_lease_ms of its tick and the clock-rate bound), and each replica's
  // clock runs at its own rate, up to kClockDriftBound fast or slow: its ticks come at that rate,
  // and the clock it gives the core (set_clock_ms) reads its own time. Reads that clients send to
  // the leader are then served at once while its lease holds.
  bool lease = false;

  paxos::Bugs bugs;
  bool trace = false;  // print every event

  // Applies a named mix of faults: none, network, crash, partition, all.
  bool apply_fault_mix(std::string_view mix);

  // The knobs of one swarm run, drawn from `rng`.
  Options swarmed(Rng& rng) const;
};

// Parses "A-B" or "A" into an inclusive range.
std::optional<std::pair<uint64_t, uint64_t>> parse_seed_range(std::string_view text);

}  // namespace synod::sim
