// The chaos run's bank clients (docs/chaos.md, "Bank"): a few accounts `acct:0 .. acct:<K-1>`
// that start with the same balance, transfer clients that move money between them atomically in
// two ways, and readers of every balance at once, checked by bank_checker.h (the total never
// changes, no balance goes negative). These exercise what a single-key register cannot:
// WATCH/MULTI/EXEC and Lua scripts, each of which must be one log entry.
//
//   transfer clients  loop: pick two accounts and an amount (1-30), then, half the time each,
//       - WATCH a b, GET a, GET b on one connection; if a holds less, UNWATCH and give up; else
//         MULTI, SET a <a - amount>, SET b <b + amount>, EXEC. EXEC's nil (a watched account
//         changed) is an abort: the client tries again from WATCH (at most 20 times);
//       - a script that reads both and moves the amount only if a holds enough, run by EVALSHA
//         (loaded once per client by SCRIPT LOAD, EVAL again after a NOSCRIPT) or by EVAL.
//   readers  loop: MGET every account, or MULTI, GET every account, EXEC (half the time each).
//
// Each transaction or command goes to a random replica that has not failed this client lately.
// A transfer whose EXEC or script got no answer, an UNKNOWN, or an answer of the wrong shape is
// unknown (it may or may not have applied; either way no money is made or lost); a TRYAGAIN or
// ERR is a definite failure. A failure before EXEC (WATCH, GET, MULTI, a SET queued) closes the
// connection, which drops the transaction, and the client moves on.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "chaos/bank_checker.h"
#include "chaos/history_recorder.h"
#include "chaos/replica_connections.h"

namespace synod::chaos {

struct BankWorkloadOptions {
  int transfer_clients = 4;
  int readers = 2;
  int accounts = 8;               // acct:0 .. acct:<accounts - 1>
  int64_t initial_balance = 100;  // each account's, at the start
  int max_aborts = 20;            // EXEC aborts one transfer retries before it gives up
  uint64_t seed = 1;
  uint32_t reply_timeout_ms = 3000;
  uint32_t connect_timeout_ms = 500;
  uint32_t suspect_ms = 1000;
};

// What the transfer clients did, for the summary line.
struct BankCounts {
  size_t transfers = 0;     // applied for certain (EXEC answered OK OK, or the script 1)
  size_t by_script = 0;     // ... of them by a script
  size_t aborted = 0;       // EXEC answered nil and the transfer was tried again
  size_t unknown = 0;       // EXEC or script with an unknown outcome
  size_t failed = 0;        // a definite failure (TRYAGAIN, ERR), or too many aborts
  size_t insufficient = 0;  // the source held less than the amount: nothing to do
};

class BankWorkload {
 public:
  // `ports`: every replica's client port (replica_connections.h); `recorder` gives the clock and
  // must outlive run().
  BankWorkload(BankWorkloadOptions options, ClientPortsRef ports, const HistoryRecorder& recorder);

  // Sets every account to the initial balance (one MSET, retried through any replica until it is
  // acknowledged, for at most `timeout_ms`). Before run(), on a healthy cluster.
  Status open_accounts(uint32_t timeout_ms);
  // Runs every transfer client and reader until `stop` is set.
  void run(const std::atomic<bool>& stop);
  // One more MGET of every account, through a fresh connection to `first_port` first and then any
  // replica, for at most `timeout_ms`; recorded as a read ("final"). False if none succeeded.
  bool final_read(uint16_t first_port, uint32_t timeout_ms);

  int64_t total() const { return options_.initial_balance * options_.accounts; }
  std::vector<BankRead> reads() const;
  BankCounts counts() const;

 private:
  class Client;
  void transfer_client(uint64_t seed, const std::atomic<bool>& stop);
  // One WATCH transfer (retried after aborts); false if `stop` came first.
  bool watch_transfer(Client& client, const std::string& a, const std::string& b, int64_t amount,
                      const std::atomic<bool>& stop);
  void reader(int id, uint64_t seed, const std::atomic<bool>& stop);
  std::vector<std::string> account_keys() const;

  const BankWorkloadOptions options_;
  const ClientPortsRef ports_;
  const HistoryRecorder& recorder_;
  mutable std::mutex mu_;
  std::vector<BankRead> reads_;
  BankCounts counts_;
};

// "acct:<i>"
std::string account_key(int i);

}  // namespace synod::chaos
