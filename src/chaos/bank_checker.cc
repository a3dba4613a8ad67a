#include "chaos/bank_checker.h"

#include <fmt/core.h>
#include <fmt/format.h>

namespace synod::chaos {

namespace {

constexpr size_t kMaxReported = 20;

std::string show(const std::vector<std::optional<int64_t>>& balances) {
  std::vector<std::string> out;
  for (const auto& b : balances) out.push_back(b ? std::to_string(*b) : std::string("nil"));
  return fmt::format("[{}]", fmt::join(out, " "));
}

}  // namespace

BankReport check_bank(const std::vector<BankRead>& reads, int64_t total) {
  BankReport r;
  r.reads = reads.size();
  for (const BankRead& read : reads) {
    int64_t sum = 0;
    bool complete = true, negative = false;
    for (const auto& b : read.balances) {
      if (!b) {
        complete = false;  // a missing account holds no money: the sum is short
        continue;
      }
      sum += *b;
      negative = negative || *b < 0;
    }
    const bool bad_sum = !complete || sum != total;
    if (bad_sum) ++r.bad_sums_total;
    if (negative) ++r.negative_total;
    if ((bad_sum || negative) && r.bad.size() < kMaxReported)
      r.bad.push_back(fmt::format("{} read by client {} [{:.3f}s, {:.3f}s] saw {}: sum {} of {}",
                                  read.how, read.client, static_cast<double>(read.call_ns) / 1e9,
                                  static_cast<double>(read.return_ns) / 1e9, show(read.balances),
                                  sum, total));
  }
  return r;
}

}  // namespace synod::chaos
