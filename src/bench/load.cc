#include "bench/load.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "base/assert.h"

namespace synod::bench {

namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

Result<uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
    return Status::invalid_argument("bad port '" + std::string(text) + "'");
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<std::vector<Endpoint>> parse_endpoints(std::string_view text) {
  std::vector<Endpoint> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t colon = item.rfind(':');
    Endpoint e;
    e.host = colon == std::string_view::npos ? "127.0.0.1" : std::string(item.substr(0, colon));
    auto port = parse_port(colon == std::string_view::npos ? item : item.substr(colon + 1));
    if (!port.is_ok()) return port.status();
    e.port = *port;
    out.push_back(std::move(e));
  }
  if (out.empty()) return Status::invalid_argument("no endpoints");
  return out;
}

Result<Transaction> parse_transaction(std::string_view text) {
  if (text == "none") return Transaction::kNone;
  if (text == "multi") return Transaction::kMulti;
  if (text == "evalsha") return Transaction::kEvalsha;
  return Status::invalid_argument("unknown transaction '" + std::string(text) +
                                  "' (none, multi, evalsha)");
}

Workload::Workload(const LoadOptions& options)
    : rng_(options.seed),
      transaction_(options.transaction),
      keys_(std::max<uint64_t>(options.keys, 1)),
      read_share_(options.read_share),
      value_(options.value_bytes, 'v') {
  if (options.prefill && options.read_share > 0) prefill_total_ = keys_;
}

std::string Workload::key_name(uint64_t key) {
  return fmt::format("key:{:010}", key);
}

std::string Workload::counter_name(uint64_t counter) {
  return fmt::format("counter:{:010}", counter);
}

Op Workload::next() {
  if (!retry_.empty()) {
    const Op op = retry_.front();
    retry_.pop_front();
    return op;
  }
  if (prefill_sent_ < prefill_total_) return {OpKind::kPrefill, prefill_sent_++};
  const uint64_t key = rng_.below(keys_);
  switch (transaction_) {
    case Transaction::kNone:
      return {rng_.chance(read_share_) ? OpKind::kRead : OpKind::kWrite, key};
    case Transaction::kMulti: {
      // etcd refuses a Txn that puts one key twice; keep the two SETs apart for every target.
      uint64_t key2 = rng_.below(keys_);
      if (keys_ > 1 && key2 == key) key2 = (key2 + 1) % keys_;
      return {OpKind::kMulti, key, key2, rng_.below(keys_), rng_.below(keys_)};
    }
    case Transaction::kEvalsha:
      return {OpKind::kEvalsha, key, 0, 0, rng_.below(keys_)};
  }
  SYNOD_ASSERT(false, "a Transaction without an Op");
  return {};
}

Result<double> process_cpu_us(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return Status::not_found("no process " + std::to_string(pid));
  // The command name (field 2) may hold spaces; fields 14 (utime) and 15 (stime) count from
  // the state field (3) after its closing parenthesis.
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return Status::corruption("bad /proc stat line");
  std::istringstream fields(line.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  static const double tick_us = 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return static_cast<double>(utime + stime) * tick_us;
}

double self_cpu_us() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + t.tv_usec; };
  return us(u.ru_utime) + us(u.ru_stime);
}

Recorder::CpuSnapshot Recorder::cpu() const {
  CpuSnapshot s;
  s.client_us = self_cpu_us();
  for (pid_t pid : options_.server_pids) {
    auto us = process_cpu_us(pid);
    if (us.is_ok()) s.server_us += *us;
  }
  return s;
}

void Recorder::begin(Clock::time_point now) {
  if (state_ != State::kIdle) return;
  state_ = State::kWarmup;
  warmup_end_ = now + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(options_.warmup_seconds));
  end_ = warmup_end_ + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(options_.duration_seconds));
  tick(now);
}

void Recorder::tick(Clock::time_point now) {
  if (state_ == State::kWarmup && now >= warmup_end_) {
    state_ = State::kMeasuring;
    window_start_ = now;
    last_success_ = now;
    cpu_start_ = cpu();
  }
  if (state_ == State::kMeasuring && now >= end_) {
    state_ = State::kDone;
    window_end_ = now;
    cpu_end_ = cpu();
    const double gap_ms = seconds_between(last_success_, now) * 1e3;
    if (gap_ms > gap_max_ms_) {
      gap_max_ms_ = gap_ms;
      gap_at_seconds_ = seconds_between(window_start_, now);
    }
  }
}

void Recorder::success(Op op, Clock::time_point start, Clock::time_point end) {
  tick(end);
  if (state_ != State::kMeasuring) return;
  latency_.record(static_cast<uint64_t>(std::chrono::nanoseconds(end - start).count()));
  (op.kind == OpKind::kRead ? reads_ : writes_)++;
  const double gap_ms = seconds_between(last_success_, end) * 1e3;
  if (gap_ms > gap_max_ms_) {
    gap_max_ms_ = gap_ms;
    gap_at_seconds_ = seconds_between(window_start_, end);
  }
  last_success_ = end;
}

void Recorder::failure(Op /*op*/, Clock::time_point end, std::string_view why) {
  tick(end);
  if (state_ != State::kMeasuring) return;
  ++errors_;
  if (first_error_.empty()) first_error_ = std::string(why.substr(0, 200));
}

Report Recorder::report() const {
  Report r;
  r.finished = state_ == State::kDone;
  if (!r.finished) return r;
  r.reads = reads_;
  r.writes = writes_;
  r.ops = reads_ + writes_;
  r.errors = errors_;
  r.seconds = seconds_between(window_start_, window_end_);
  r.ops_per_second = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
  r.p50_us = static_cast<double>(latency_.percentile(0.50)) / 1e3;
  r.p99_us = static_cast<double>(latency_.percentile(0.99)) / 1e3;
  r.p999_us = static_cast<double>(latency_.percentile(0.999)) / 1e3;
  r.max_us = static_cast<double>(latency_.max()) / 1e3;
  r.mean_us = latency_.mean() / 1e3;
  const double ops = static_cast<double>(std::max<uint64_t>(r.ops, 1));
  r.client_cpu_us_per_op = (cpu_end_.client_us - cpu_start_.client_us) / ops;
  if (!options_.server_pids.empty())
    r.server_cpu_us_per_op = (cpu_end_.server_us - cpu_start_.server_us) / ops;
  r.gap_max_ms = gap_max_ms_;
  r.gap_at_seconds = gap_at_seconds_;
  r.first_error = first_error_;
  return r;
}

std::string format_human(const Report& r, const std::string& title) {
  std::string out = title + "\n";
  out += fmt::format("  throughput  {:.0f} ops/s  ({} ops: {} reads, {} writes in {:.2f} s)\n",
                     r.ops_per_second, r.ops, r.reads, r.writes, r.seconds);
  out += fmt::format(
      "  latency     p50 {:.0f} us  p99 {:.0f} us  p99.9 {:.0f} us  max {:.0f} us"
      "  mean {:.0f} us\n",
      r.p50_us, r.p99_us, r.p999_us, r.max_us, r.mean_us);
  out += fmt::format("  errors      {}{}\n", r.errors,
                     r.first_error.empty() ? "" : "  (first: " + r.first_error + ")");
  out += fmt::format("  cpu         client {:.1f} us/op", r.client_cpu_us_per_op);
  if (r.server_cpu_us_per_op) out += fmt::format("  servers {:.1f} us/op", *r.server_cpu_us_per_op);
  out += fmt::format(
      "\n  longest gap between successful replies {:.0f} ms (ending {:.2f} s into "
      "the window)\n",
      r.gap_max_ms, r.gap_at_seconds);
  return out;
}

std::string format_kv(const Report& r) {
  std::string out = fmt::format(
      "ops={} reads={} writes={} errors={} seconds={:.3f} ops_per_s={:.0f} p50_us={:.0f} "
      "p99_us={:.0f} p999_us={:.0f} max_us={:.0f} mean_us={:.0f} client_cpu_us_per_op={:.2f}",
      r.ops, r.reads, r.writes, r.errors, r.seconds, r.ops_per_second, r.p50_us, r.p99_us,
      r.p999_us, r.max_us, r.mean_us, r.client_cpu_us_per_op);
  if (r.server_cpu_us_per_op)
    out += fmt::format(" server_cpu_us_per_op={:.2f}", *r.server_cpu_us_per_op);
  out += fmt::format(" gap_max_ms={:.1f} gap_at_s={:.2f}", r.gap_max_ms, r.gap_at_seconds);
  return out;
}

}  // namespace synod::bench
