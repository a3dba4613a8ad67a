// The chaos run's clients: K threads, each one operation at a time, doing get, put, cas (SET k new
// IFEQ old, or SET k new NX, with a value some client saw) and del over M keys, and transactions
// on a key and its partner (k0 and k1, k2 and k3, ...): MULTI/EXEC of two SETs, MULTI/EXEC of two
// GETs, and a compare-and-set script by EVALSHA that sets both keys if the first holds the value
// some client saw. Each operation is sent to a random replica that has not failed it lately. Every
// operation goes into the history as the client saw it: TRYAGAIN and ERR replies are definite
// failures, UNKNOWN replies, timeouts and lost connections are unknown outcomes.
//
// Each key takes at most `ops_per_key` operations, so the checker's search stays small. Clients
// work on a few keys at a time (the first `active_keys` with budget left, in order), so that
// operations on one key overlap and the faults of the moment hit them; once a key is used up
// they move on to the next. The supply of keys never runs out: after the first `keys`, fresh
// ones (k<keys>, k<keys+1>, ...) open as needed, so the clients run for as long as the run lasts
// rather than stopping when a budget chosen in advance is spent.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/rng.h"
#include "base/status.h"
#include "chaos/history_recorder.h"
#include "chaos/replica_connections.h"
#include "kv/script_cache.h"
#include "kv/store.h"
#include "lincheck/history.h"

namespace synod::chaos {

struct WorkloadOptions {
  int clients = 8;
  int keys = 8;
  int ops_per_key = 200;
  int active_keys = 4;
  uint64_t seed = 1;
  // Longer than the servers' --request-timeout-ms, so a server's own UNKNOWN or TRYAGAIN usually
  // arrives first; a paused server is found out by this timeout.
  uint32_t reply_timeout_ms = 3000;
  uint32_t connect_timeout_ms = 500;
  uint32_t suspect_ms = 1000;  // a replica that failed a client is avoided this long
  int txn_percent = 15;        // of the operations, transactions and scripts on two keys
};

// The pair script: KEYS[1] KEYS[2], ARGV: expect_absent ("1"/"0"), expected value, KEYS[1]'s new
// value, KEYS[2]'s new value. Sets both if KEYS[1] holds the expected value (or is missing):
// 1, else 0.
inline constexpr const char* kCasPairScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if (ARGV[1] == '1' and not v) or (ARGV[1] == '0' and v == ARGV[2]) then "
    "redis.call('SET', KEYS[1], ARGV[3]) redis.call('SET', KEYS[2], ARGV[4]) return 1 end "
    "return 0";

// The three transactions the clients make: parts {get a, get b}, {put a, put b} or
// {cas a, put b}.
enum class TxnShape { kReadPair, kWritePair, kCasPair };
TxnShape txn_shape(const lincheck::Operation& op);

// The key a transaction on key `index` pairs it with.
inline int partner_key(int index) {
  return index ^ 1;
}

// The key a numbered key index names: "k0", "k1", ...
std::string key_name(int index);

// Fills in `op`'s outcome from the reply (or from the failure to get one) received at
// `return_ns`. A reply that proves nothing about the outcome leaves it unknown.
void record_reply(lincheck::Operation& op, const Result<kv::Reply>& reply, int64_t return_ns);

// The command that performs `op` (a get, put, cas or del).
std::vector<std::string> command_for(const lincheck::Operation& op);
// The commands that perform `op`, sent as one pipeline whose last reply is the outcome: the
// command itself, or a txn's MULTI ... EXEC or EVALSHA.
std::vector<std::vector<std::string>> commands_for(const lincheck::Operation& op);

// Operations left per key. Thread-safe.
class KeyBudget {
 public:
  // `keys` keys to start with; min(`active`, `keys`) of them open at once.
  KeyBudget(int keys, int ops_per_key, int active);
  // Takes one operation from a random one of the first open keys; when that spends a key's
  // budget, a fresh key opens in its place if fewer than the first `keys` remain.
  int claim(Rng& rng);
  // Keys that have taken at least one operation or are open: k0 .. k<keys_used() - 1>.
  int keys_used();

 private:
  const int ops_per_key_;
  const size_t active_;
  std::mutex mu_;
  std::vector<int> left_;  // per key ever opened
  std::vector<int> open_;  // keys with budget left, in order
};

class Workload {
 public:
  // `ports`: every replica's client port (replica_connections.h). `recorder` must outlive run().
  Workload(WorkloadOptions options, ClientPortsRef ports, HistoryRecorder& recorder);

  // Runs every client until `stop` is set.
  void run(const std::atomic<bool>& stop);
  // Keys the clients have used: k0 .. k<keys_used() - 1> (an even number: with their partners).
  int keys_used() { return (budget_.keys_used() + 1) & ~1; }

 private:
  class Client;
  struct Seen {  // the newest value some client observed for a key
    bool known = false;
    bool present = false;
    std::string value;
  };
  Seen seen(int key);
  // Records what a finished operation showed of its keys (a txn: of each of its keys).
  void saw(const lincheck::Operation& op);
  void saw_one(const lincheck::Operation& op);

  const WorkloadOptions options_;
  const ClientPortsRef ports_;
  HistoryRecorder& recorder_;
  KeyBudget budget_;
  std::mutex seen_mu_;
  std::map<int, Seen> seen_;  // by key index; grows with the keys opened
};

}  // namespace synod::chaos
