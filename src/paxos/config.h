// A replica's configuration. All durations are counted in ticks of logical time; the driver
// decides how long a tick is. Every queue and batch has a bound.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "base/types.h"
#include "paxos/bugs.h"
#include "paxos/messages.h"
#include "paxos/quorum.h"

namespace synod::paxos {

// The bound on the rate error of every replica's monotonic clock that cluster time and lease
// reads assume (1000 ppm: quartz drifts ~100 ppm, and NTP slews steady_clock by at most 500 ppm).
inline constexpr double kClockDriftBound = 1e-3;

struct Config {
  NodeId self;
  // The bootstrap configuration: every member a voter. The configuration is replicated state
  // after that (paxos/membership.h): a replica that restarts takes it from its snapshot and log.
  QuorumSystem quorum = QuorumSystem::majority({NodeId{1}});
  // A replica added to a running cluster: it has no configuration of its own until it learns one
  // from a peer (a catch-up reply or a snapshot), and ignores `quorum`.
  bool join = false;
  // The incarnation of this replica's data directory, created with it (0: not known, as in tests
  // that do not model it). A configuration binds each member's incarnation once the leader has
  // seen it; from then on messages from that id with another incarnation are ignored: a replica
  // whose directory was wiped or replaced never votes under its old identity.
  uint64_t incarnation = 0;

  // These defaults are production's: `synod server` and both simulators start from them (one
  // source; the simulators vary some of them per seed around these values).
  // A follower that hears nothing from a leader for a random number of ticks in
  // [min, max] starts phase 1; randomness breaks ties between duelling proposers.
  uint32_t election_timeout_min_ticks = 15;
  uint32_t election_timeout_max_ticks = 30;
  // A leader sends a heartbeat (an empty Accept carrying its chosen prefix) this often.
  uint32_t heartbeat_interval_ticks = 3;
  // Unanswered Accepts and catch-up requests are sent again after this long.
  uint32_t retransmit_interval_ticks = 4;

  size_t max_inflight_slots = 64;         // phase-2 pipeline window, in slots ...
  size_t max_inflight_bytes = 32 << 20;   // ... and in encoded value bytes
  size_t max_batch_commands = 256;        // commands per slot
  size_t max_batch_bytes = 1 << 20;       // payload bytes per slot (one command may exceed it)
  size_t max_queued_commands = 8192;      // proposals waiting for a slot; beyond: kBusy ...
  size_t max_queued_bytes = 64 << 20;     // ... or beyond this many payload bytes
  size_t max_entries_per_message = 128;   // slots per Accept, Promise or catch-up reply
  size_t snapshot_chunk_bytes = 1 << 20;  // snapshot bytes per message to a lagging replica
  size_t max_pending_reads = 4096;        // reads waiting for a read index; beyond: kBusy
  // Chosen values kept in memory, newest first, beyond those not yet handed to the state machine:
  // older ones are let go once the driver's log holds them (ChosenLog), and read back from it to
  // answer catch-up. The log since the last snapshot would otherwise stay in memory whole, as
  // large as the snapshot itself at its largest.
  size_t log_memory_bytes = 4 << 20;

  // One command's payload (as the log stores it); propose() refuses a larger one (kTooLarge).
  size_t max_command_bytes = 8 << 20;
  // One encoded message body (docs/wire-format.md: from version and type to the last field), the
  // peer frame limit. Every message the replica sends is cut to fit: Accepts, Promises and
  // catch-up replies carry entries while they fit (a slot's value always fits, see
  // min_message_bytes), snapshot chunks are smaller. A message never has to be dropped for size.
  size_t max_message_bytes = 16 << 20;

  // The largest encoded value a slot can hold under these bounds: a batch of at most
  // max_batch_commands commands whose payloads add up to max_batch_bytes, or a single command of
  // up to max_command_bytes.
  size_t max_value_bytes() const;
  // The smallest max_message_bytes with which any one slot's value fits into any message with
  // room to spare (the Replica constructor checks it).
  size_t min_message_bytes() const;
  // Sets every byte bound from the largest command, as the server does from
  // --max-command-bytes (docs/wire-format.md): a message holds twice the largest command (any one
  // slot's value fits with room to spare, and so does a Forward of the largest command), the
  // pipeline two messages and the proposal queue four, none below the floor the server uses.
  // The simulators pass a floor of 0 with a small command limit, so that promises, catch-up
  // replies and pipelines of large values come in several messages.
  void set_size_limits(size_t command_bytes, size_t message_floor_bytes = 16 << 20);
  // The acceptor's durable time horizon runs this far (in cluster-time ms) ahead of the highest
  // time it has seen, and is renewed once that time comes within half of it: about two small
  // WAL records per second of cluster time. A new leader whose quorum includes an acceptor that
  // restarted waits at most this long before serving (see docs/core.md, "Time").
  uint64_t time_horizon_step_ms = 1000;
  // Lease reads (docs/core.md, "Lease reads"): 0, the default, is off. Otherwise a leader serves a
  // read with no confirmation round while, on the clock its driver gives it (set_clock_ms), less
  // than this long has passed since it sent a round that a phase-2 quorum then answered. Each
  // acceptor that answered refuses other candidates' Prepares for election_timeout_min_ticks of
  // its own ticks after it accepted, and after it restarts; max_read_lease_ms() is the longest
  // lease those ticks cover under a bound on clock-rate error.
  uint64_t read_lease_ms = 0;
  // The longest read_lease_ms that is safe when each tick lasts at least `tick_ms` on a
  // replica's monotonic clock and every clock's rate is within `drift_bound` of real time:
  // (election_timeout_min_ticks - 1) ticks (the first tick after an Accept may come at once),
  // shrunk by (1 - drift) / (1 + drift), less 1 ms for rounding. 0 if that leaves nothing.
  uint64_t max_read_lease_ms(uint64_t tick_ms, double drift_bound) const;

  Bugs bugs;  // planted bugs: all off outside tests
};

inline size_t Config::max_value_bytes() const {
  return 4 + max_batch_commands * kCommandOverheadBytes +
         std::max(max_batch_bytes, max_command_bytes);
}

inline size_t Config::min_message_bytes() const {
  return kMessageOverheadBytes + kEntryOverheadBytes + max_value_bytes();
}

inline void Config::set_size_limits(size_t command_bytes, size_t message_floor_bytes) {
  max_command_bytes = command_bytes;
  max_message_bytes = std::max({message_floor_bytes, 2 * command_bytes, min_message_bytes()});
  max_inflight_bytes = std::max(2 * message_floor_bytes, 2 * max_message_bytes);
  max_queued_bytes = std::max(4 * message_floor_bytes, 4 * max_message_bytes);
}

inline uint64_t Config::max_read_lease_ms(uint64_t tick_ms, double drift_bound) const {
  if (election_timeout_min_ticks < 2 || drift_bound < 0 || drift_bound >= 1) return 0;
  const double covered = double(election_timeout_min_ticks - 1) * double(tick_ms) *
                         (1 - drift_bound) / (1 + drift_bound);
  return covered < 2 ? 0 : uint64_t(covered) - 1;
}

}  // namespace synod::paxos
