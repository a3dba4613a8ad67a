// The checks of the chaos run's clock-dependent workloads (docs/chaos.md, "Locks and TTL keys"),
// over what the clients saw, on the recorder's steady clock (the clock the servers' monotonic
// clocks are read from, before their injected drift):
//
// Locks: each acquisition (`SET lock token NX PX ttl` answered OK) gives its holder a validity
// window, taken conservatively: it starts when the OK arrives (before it the holder does not know
// it holds the lock, and another holder's window may legitimately end while the SET waits for a
// leader) and ends at the earliest of
//   - the release: the invocation of its `DELIFEQ lock token` (the holder stops working then);
//   - the earliest possible expiry: the SET's *invocation* + ttl·(1 − ρ) − kClockGrainMs, where ρ
//     is the drift bound. The key expires ttl ms of cluster time after the leader stamped the
//     SET, which it did after the invocation; cluster time runs at most (1 + ρ) times as fast as
//     real time (docs/core.md, "Time"), so that is at least ttl / (1 + ρ) ≥ ttl·(1 − ρ) of real
//     time later. (The reply time would be too late: the SET may have waited there for seconds
//     after it was stamped.) kClockGrainMs allows for the servers' clocks counting whole ms.
// Two windows of different tokens on one lock that overlap are two holders at once: a violation.
//
// TTL keys (`SET t v PX ttl` and GET only, every value unique):
//   - reappeared: a read R2 returns v although a read R1 that ended before R2 began, and began
//     after v's write W was acknowledged, did not see v (v expired or was replaced) — nothing can
//     bring v back without writing it again;
//   - expired early: a read R that began after W was acknowledged and ended before
//     W's invocation + ttl·(1 − ρ) − kClockGrainMs (v's earliest possible expiry, as for locks)
//     did not see v, and no other write explains it. A write W' explains it if it may have taken
//     effect after W (it was invoked before R ended, and acknowledged after W's invocation or
//     never answered) and, when R found the key missing, could itself have expired by then
//     (W'.invocation + ttl'·(1 − ρ) − kClockGrainMs ≤ R's end); when R saw a value u, only u's
//     own write can explain it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace synod::chaos {

inline constexpr int64_t kClockGrainMs = 2;

struct LockAttempt {
  int64_t client = 0;
  std::string lock;
  std::string token;
  int64_t ttl_ms = 0;
  int64_t call_ns = 0;
  std::optional<int64_t> reply_ns;         // nullopt: no reply, or no reply that proves the outcome
  bool acquired = false;                   // OK (nil or an error: not acquired)
  std::optional<int64_t> release_call_ns;  // the DELIFEQ's invocation, if one was sent
  std::optional<int64_t> released;         // its reply: 1 deleted, 0 not held any more
};

// An acquisition's validity window [start_ns, end_ns); empty (start >= end) if the OK came too
// late to use, or nothing was acquired.
struct Window {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
};
Window validity(const LockAttempt& a, double drift_bound);

struct LockReport {
  size_t attempts = 0;
  size_t acquired = 0;                   // OK replies
  size_t held = 0;                       // of those, a non-empty window
  size_t released = 0;                   // DELIFEQ answered 1
  size_t lost_before_release = 0;        // DELIFEQ answered 0: the key had expired (or was taken)
  std::vector<std::string> two_holders;  // one line per overlapping pair (at most 20)
  size_t two_holders_total = 0;
};
LockReport check_locks(std::vector<LockAttempt> attempts, double drift_bound);

struct TtlOp {
  int64_t client = 0;
  std::string key;
  bool write = false;  // SET key value PX ttl_ms; else GET key
  std::string value;   // write: the value written
  int64_t ttl_ms = 0;
  int64_t call_ns = 0;
  std::optional<int64_t> return_ns;   // nullopt: unknown outcome
  bool failed = false;                // a definite failure (TRYAGAIN, ERR): no effect
  std::optional<std::string> output;  // read: the value seen (nullopt: missing)
};

struct TtlReport {
  size_t reads = 0;
  size_t writes = 0;
  size_t reads_missing = 0;             // reads that found the key gone
  std::vector<std::string> reappeared;  // one line each (at most 20)
  std::vector<std::string> expired_early;
  size_t reappeared_total = 0;
  size_t expired_early_total = 0;
};
TtlReport check_ttl(std::vector<TtlOp> ops, double drift_bound);

}  // namespace synod::chaos
