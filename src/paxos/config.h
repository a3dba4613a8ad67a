// A replica's configuration. All durations are counted in ticks of logical time; the driver
// decides how long a tick is. Every queue and batch has a bound.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/types.h"
#include "paxos/bugs.h"
#include "paxos/quorum.h"

namespace synod::paxos {

struct Config {
  NodeId self;
  QuorumSystem quorum = QuorumSystem::majority({NodeId{1}});

  // A follower that hears nothing from a leader for a random number of ticks in
  // [min, max] starts phase 1; randomness breaks ties between duelling proposers.
  uint32_t election_timeout_min_ticks = 10;
  uint32_t election_timeout_max_ticks = 20;
  // A leader sends a heartbeat (an empty Accept carrying its chosen prefix) this often.
  uint32_t heartbeat_interval_ticks = 2;
  // Unanswered Accepts and catch-up requests are sent again after this long.
  uint32_t retransmit_interval_ticks = 4;

  size_t max_inflight_slots = 64;         // phase-2 pipeline window
  size_t max_batch_commands = 256;        // commands per slot
  size_t max_batch_bytes = 1 << 20;       // payload bytes per slot (one command may exceed it)
  size_t max_queued_commands = 8192;      // proposals waiting for a slot; beyond: kBusy
  size_t max_entries_per_message = 128;   // slots per Accept or catch-up reply
  size_t snapshot_chunk_bytes = 1 << 20;  // snapshot bytes per message to a lagging replica
  size_t max_pending_reads = 4096;        // reads waiting for a read index; beyond: kBusy

  Bugs bugs;  // planted bugs: all off outside tests
};

}  // namespace synod::paxos
