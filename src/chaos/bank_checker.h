// The check of the chaos run's bank workload (bank_workload.h, docs/chaos.md, "Bank"): money moves
// between accounts and is never created or destroyed, so every read of all the balances at one
// point of the history sums to the total the run started with, and no balance is ever negative
// (every transfer refuses to overdraw). That holds whether a transfer whose outcome is unknown
// applied or not, so the check needs no search: each read is judged on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace synod::chaos {

// One complete read of every account, as one atomic command (MGET, or MULTI/GET.../EXEC).
struct BankRead {
  int64_t client = 0;
  std::string how;  // "mget", "multi" (or "final": the read after the faults healed)
  int64_t call_ns = 0;
  int64_t return_ns = 0;
  // By account; nullopt: the account was missing, or held something that is not an integer.
  std::vector<std::optional<int64_t>> balances;
};

struct BankReport {
  size_t reads = 0;
  size_t bad_sums_total = 0;     // reads whose balances do not sum to the total
  size_t negative_total = 0;     // reads that saw a balance below zero
  std::vector<std::string> bad;  // one line per bad read (at most 20)
};

// `total`: the sum every read must see.
BankReport check_bank(const std::vector<BankRead>& reads, int64_t total);

}  // namespace synod::chaos
