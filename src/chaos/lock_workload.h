// The chaos run's clock-dependent clients (docs/chaos.md, "Locks and TTL keys"), beside the
// register clients of workload.h, whose checks (lock_checker.h) do not go through the
// linearizability checker (it knows no expiry):
//
//   lock clients  loop: pick one of a few locks; `SET lock token NX PX ttl` (a fresh token each
//                 time, ttl drawn from [lock_ttl_ms / 2, lock_ttl_ms]); on OK hold it — "work" —
//                 for a random while, never past the validity they may assume (the SET's
//                 invocation + ttl·(1 − ρ)), then usually release it with `DELIFEQ lock token`,
//                 sometimes (1 in 4) walk away and let it expire; on nil wait a few ms and retry.
//   ttl clients   `SET t<i> value PX ttl` (ttl 100–1500 ms, every value unique) and `GET t<i>`
//                 over a few keys, at random replicas (so followers serve many of the reads).
//
// Each command goes to a random replica that has not failed this client lately, as in
// workload.h; a TRYAGAIN or ERR reply is a definite failure, anything else unanswered is unknown.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "chaos/history_recorder.h"
#include "chaos/lock_checker.h"
#include "chaos/replica_connections.h"

namespace synod::chaos {

struct LockWorkloadOptions {
  int lock_clients = 4;
  int locks = 2;  // lock0 .. lock<locks - 1>
  uint32_t lock_ttl_ms = 3000;
  int ttl_clients = 2;
  int ttl_keys = 3;  // t0 .. t<ttl_keys - 1>
  uint64_t seed = 1;
  double drift_bound = 1e-3;  // ρ: the holders stop working this much early
  uint32_t reply_timeout_ms = 3000;
  uint32_t connect_timeout_ms = 500;
  uint32_t suspect_ms = 1000;
};

class LockWorkload {
 public:
  // `ports`: every replica's client port (replica_connections.h); `recorder` gives the clock (and
  // is noted nothing) and must outlive run().
  LockWorkload(LockWorkloadOptions options, ClientPortsRef ports, const HistoryRecorder& recorder);

  // Runs every lock and ttl client until `stop` is set.
  void run(const std::atomic<bool>& stop);

  // What the clients saw (after run()).
  std::vector<LockAttempt> lock_attempts() const;
  std::vector<TtlOp> ttl_ops() const;
  // Writes both as JSON Lines (one object per line, "kind":"lock" or "ttl"), for a look.
  Status write(const std::string& path) const;

 private:
  class Connections;
  void lock_client(int id, uint64_t seed, const std::atomic<bool>& stop);
  void ttl_client(int id, uint64_t seed, const std::atomic<bool>& stop);

  const LockWorkloadOptions options_;
  const ClientPortsRef ports_;
  const HistoryRecorder& recorder_;
  mutable std::mutex mu_;
  std::vector<LockAttempt> attempts_;
  std::vector<TtlOp> ttl_ops_;
};

}  // namespace synod::chaos
