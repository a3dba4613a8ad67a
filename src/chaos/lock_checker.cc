#include "chaos/lock_checker.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace synod::chaos {

namespace {

constexpr size_t kMaxReported = 20;

double seconds(int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

// The earliest real time at which a key written by a SET invoked at `call_ns` with PX `ttl_ms`
// can have expired (see the top of lock_checker.h).
int64_t earliest_expiry_ns(int64_t call_ns, int64_t ttl_ms, double drift_bound) {
  const double ms =
      static_cast<double>(ttl_ms) * (1.0 - drift_bound) - static_cast<double>(kClockGrainMs);
  return call_ns + static_cast<int64_t>(std::floor(ms * 1e6));
}

void report(std::vector<std::string>& lines, size_t& total, std::string line) {
  ++total;
  if (lines.size() < kMaxReported) lines.push_back(std::move(line));
}

}  // namespace

Window validity(const LockAttempt& a, double drift_bound) {
  if (!a.acquired || !a.reply_ns) return {0, 0};
  Window w{*a.reply_ns, earliest_expiry_ns(a.call_ns, a.ttl_ms, drift_bound)};
  if (a.release_call_ns) w.end_ns = std::min(w.end_ns, *a.release_call_ns);
  return w;
}

LockReport check_locks(std::vector<LockAttempt> attempts, double drift_bound) {
  LockReport r;
  r.attempts = attempts.size();
  std::map<std::string, std::vector<std::pair<Window, const LockAttempt*>>> by_lock;
  for (const auto& a : attempts) {
    if (!a.acquired) continue;
    ++r.acquired;
    if (a.released == 1) ++r.released;
    if (a.released == 0) ++r.lost_before_release;
    const Window w = validity(a, drift_bound);
    if (w.start_ns >= w.end_ns) continue;
    ++r.held;
    by_lock[a.lock].emplace_back(w, &a);
  }
  for (auto& [lock, windows] : by_lock) {
    std::sort(windows.begin(), windows.end(),
              [](const auto& x, const auto& y) { return x.first.start_ns < y.first.start_ns; });
    // Sweep by start: the window reaching furthest so far overlaps the next one if that one
    // starts before it ends.
    const std::pair<Window, const LockAttempt*>* furthest = nullptr;
    for (const auto& entry : windows) {
      if (furthest && entry.first.start_ns < furthest->first.end_ns &&
          entry.second->token != furthest->second->token) {
        const LockAttempt& a = *furthest->second;
        const LockAttempt& b = *entry.second;
        report(
            r.two_holders, r.two_holders_total,
            fmt::format("{}: token {} (client {}, SET at {:.3f}s PX {}, held [{:.3f}s, "
                        "{:.3f}s)) and token {} (client {}, SET at {:.3f}s PX {}, held from "
                        "{:.3f}s) both held it",
                        lock, a.token, a.client, seconds(a.call_ns), a.ttl_ms,
                        seconds(furthest->first.start_ns), seconds(furthest->first.end_ns), b.token,
                        b.client, seconds(b.call_ns), b.ttl_ms, seconds(entry.first.start_ns)));
      }
      if (!furthest || entry.first.end_ns > furthest->first.end_ns) furthest = &entry;
    }
  }
  return r;
}

namespace {

struct KeyOps {
  std::vector<const TtlOp*> writes;  // by call
  std::vector<const TtlOp*> reads;   // answered, by call
  std::map<std::string, const TtlOp*> write_of;
  int64_t max_ttl_ms = 0;
};

bool may_follow(const TtlOp& later, const TtlOp& w) {
  return !later.return_ns || *later.return_ns > w.call_ns;
}

std::string show(const std::optional<std::string>& v) {
  return v ? "'" + *v + "'" : std::string("nothing");
}

void check_reappeared(const std::string& key, const KeyOps& k, TtlReport& r) {
  for (const TtlOp* r2 : k.reads) {
    if (!r2->output) continue;
    auto it = k.write_of.find(*r2->output);
    if (it == k.write_of.end() || !it->second->return_ns) continue;
    const TtlOp& w = *it->second;
    // A read R1 inside (W's acknowledgement, R2's invocation) that did not see v.
    auto first = std::upper_bound(k.reads.begin(), k.reads.end(), *w.return_ns,
                                  [](int64_t t, const TtlOp* op) { return t < op->call_ns; });
    for (auto r1 = first; r1 != k.reads.end() && (*r1)->call_ns < r2->call_ns; ++r1) {
      if (*(*r1)->return_ns >= r2->call_ns || (*r1)->output == r2->output) continue;
      report(r.reappeared, r.reappeared_total,
             fmt::format("{}: '{}' (written by client {}, acknowledged at {:.3f}s) was gone for "
                         "a read [{:.3f}s, {:.3f}s] (saw {}) and back for a later read by client "
                         "{} at {:.3f}s",
                         key, w.value, w.client, seconds(*w.return_ns), seconds((*r1)->call_ns),
                         seconds(*(*r1)->return_ns), show((*r1)->output), r2->client,
                         seconds(r2->call_ns)));
      break;
    }
  }
}

bool explained(const TtlOp& read, const TtlOp& w, const KeyOps& k, double drift_bound) {
  if (read.output) {
    auto it = k.write_of.find(*read.output);
    return it != k.write_of.end() && it->second != &w && it->second->call_ns < *read.return_ns &&
           may_follow(*it->second, w);
  }
  for (const TtlOp* other : k.writes) {
    if (other->call_ns >= *read.return_ns) break;
    if (other != &w && may_follow(*other, w) &&
        earliest_expiry_ns(other->call_ns, other->ttl_ms, drift_bound) <= *read.return_ns)
      return true;
  }
  return false;
}

void check_expired_early(const std::string& key, const KeyOps& k, double drift_bound,
                         TtlReport& r) {
  for (const TtlOp* read : k.reads) {
    // Candidates: acknowledged writes that ended before the read began, invoked at most the
    // longest TTL before it ended.
    const int64_t from = *read->return_ns - k.max_ttl_ms * 1'000'000;
    auto first = std::lower_bound(k.writes.begin(), k.writes.end(), from,
                                  [](const TtlOp* op, int64_t t) { return op->call_ns < t; });
    for (auto it = first; it != k.writes.end() && (*it)->call_ns < read->call_ns; ++it) {
      const TtlOp& w = **it;
      if (!w.return_ns || *w.return_ns >= read->call_ns || read->output == w.value) continue;
      if (*read->return_ns >= earliest_expiry_ns(w.call_ns, w.ttl_ms, drift_bound)) continue;
      if (explained(*read, w, k, drift_bound)) continue;
      report(r.expired_early, r.expired_early_total,
             fmt::format("{}: '{}' (SET at {:.3f}s PX {}, acknowledged at {:.3f}s) was not seen "
                         "by a read [{:.3f}s, {:.3f}s] of client {} (saw {}), before it could "
                         "expire",
                         key, w.value, seconds(w.call_ns), w.ttl_ms, seconds(*w.return_ns),
                         seconds(read->call_ns), seconds(*read->return_ns), read->client,
                         show(read->output)));
      break;
    }
  }
}

}  // namespace

TtlReport check_ttl(std::vector<TtlOp> ops, double drift_bound) {
  TtlReport r;
  std::map<std::string, KeyOps> keys;
  std::sort(ops.begin(), ops.end(),
            [](const TtlOp& a, const TtlOp& b) { return a.call_ns < b.call_ns; });
  for (const auto& op : ops) {
    KeyOps& k = keys[op.key];
    if (op.write) {
      ++r.writes;
      if (op.failed) continue;
      k.writes.push_back(&op);
      k.write_of[op.value] = &op;
      k.max_ttl_ms = std::max(k.max_ttl_ms, op.ttl_ms);
    } else if (op.return_ns && !op.failed) {
      ++r.reads;
      if (!op.output) ++r.reads_missing;
      k.reads.push_back(&op);
    }
  }
  for (const auto& [key, k] : keys) {
    check_reappeared(key, k, r);
    check_expired_early(key, k, drift_bound, r);
  }
  return r;
}

}  // namespace synod::chaos
