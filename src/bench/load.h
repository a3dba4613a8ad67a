// The closed-loop load of `synod bench kv`, independent of the protocol that carries it: what
// to send (Workload), and what came back (Recorder -> Report). Each driver (resp_driver.h,
// etcd_driver.h) keeps `pipeline` requests in flight on each of `connections` connections, takes
// every request from one Workload and hands every outcome to one Recorder, all on one thread.
//
// An operation is one SET or GET, or with `transaction` one transaction of several commands,
// counted, timed and validated as one operation (a write).
//
// Timeline of a run: prefill (every key written once, when the load reads), warm-up (load runs,
// nothing recorded), measurement window (latencies, counts and CPU recorded), end.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/rng.h"
#include "base/status.h"
#include "bench/histogram.h"

namespace synod::bench {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

// "host:port,host:port,..." or "port,port,..." (127.0.0.1).
Result<std::vector<Endpoint>> parse_endpoints(std::string_view text);

// What each operation of the load proper sends.
enum class Transaction : uint8_t {
  kNone,     // SET key value or GET key, reads at `read_share`
  kMulti,    // MULTI; SET k1 v; SET k2 v; INCR counter; GET k3; EXEC (etcd: one Txn)
  kEvalsha,  // EVALSHA of a script doing SET k1 v and INCR counter (RESP only)
};

// "none", "multi", "evalsha" (the --transaction flag's values).
Result<Transaction> parse_transaction(std::string_view text);

struct LoadOptions {
  std::vector<Endpoint> endpoints;
  Transaction transaction = Transaction::kNone;
  int connections = 16;
  int pipeline = 1;  // requests in flight per connection
  size_t value_bytes = 256;
  uint64_t keys = 1000;
  double read_share = 0.5;  // 0..1
  double warmup_seconds = 1;
  double duration_seconds = 5;
  bool prefill = true;  // write every key once before the warm-up (only when the load reads)
  uint32_t request_timeout_ms = 10000;  // a request unanswered this long counts as an error
  uint32_t reconnect_delay_ms = 20;     // pause after a failure before the connection goes on
  uint64_t seed = 1;
  std::vector<pid_t> server_pids;  // whose CPU time to charge to the window
};

// kSetup: a request of the driver's own before a connection's load (SCRIPT LOAD), not recorded
// unless the connection fails.
enum class OpKind : uint8_t { kRead, kWrite, kPrefill, kMulti, kEvalsha, kSetup };

struct Op {
  OpKind kind = OpKind::kRead;
  uint64_t key = 0;
  // A transaction's other keys, drawn as `key` is: the second SET (kMulti; never equal to
  // `key` when there are two keys or more), the GET (kMulti) and the INCR's counter, whose
  // name (counter_name) is apart from the values' keys.
  uint64_t key2 = 0, key3 = 0, counter = 0;
};

// The stream of requests: first every key once (prefill), then keys drawn uniformly with reads
// at `read_share`, or transactions (`transaction`) on keys drawn uniformly. A prefill write that
// failed is handed back with retry() and sent again first: the window needs every key present.
class Workload {
 public:
  explicit Workload(const LoadOptions& options);
  Op next();
  void retry(Op op) { retry_.push_back(op); }
  // Every prefill request has been answered (or there was none).
  bool prefilled() const { return prefill_answered_ >= prefill_total_; }
  void prefill_answered() { ++prefill_answered_; }
  static std::string key_name(uint64_t key);
  static std::string counter_name(uint64_t counter);
  const std::string& value() const { return value_; }

 private:
  Rng rng_;
  Transaction transaction_;
  uint64_t keys_;
  double read_share_;
  uint64_t prefill_total_ = 0;
  uint64_t prefill_sent_ = 0;
  uint64_t prefill_answered_ = 0;
  std::string value_;
  std::deque<Op> retry_;
};

struct Report {
  uint64_t ops = 0, reads = 0, writes = 0, errors = 0;
  double seconds = 0;
  double ops_per_second = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
  double client_cpu_us_per_op = 0;
  std::optional<double> server_cpu_us_per_op;  // when server pids were given
  double gap_max_ms = 0;      // longest time without a successful reply inside the window
  double gap_at_seconds = 0;  // where in the window that gap ended
  std::string first_error;
  bool finished = false;  // the window was reached and closed
};

// Collects outcomes. Call tick(now) often (every completion and from a timer): it opens the
// window after the warm-up and closes it at the end, taking CPU snapshots at both edges.
class Recorder {
 public:
  explicit Recorder(const LoadOptions& options) : options_(options) {}
  // The load proper begins (after prefill).
  void begin(Clock::time_point now);
  void tick(Clock::time_point now);
  bool done() const { return state_ == State::kDone; }
  void success(Op op, Clock::time_point start, Clock::time_point end);
  void failure(Op op, Clock::time_point end, std::string_view why);
  Report report() const;

 private:
  enum class State { kIdle, kWarmup, kMeasuring, kDone };
  struct CpuSnapshot {
    double client_us = 0;
    double server_us = 0;
  };
  CpuSnapshot cpu() const;

  const LoadOptions& options_;
  State state_ = State::kIdle;
  Clock::time_point warmup_end_, end_, window_start_, window_end_, last_success_;
  CpuSnapshot cpu_start_, cpu_end_;
  Histogram latency_;
  uint64_t reads_ = 0, writes_ = 0, errors_ = 0;
  double gap_max_ms_ = 0, gap_at_seconds_ = 0;
  std::string first_error_;
  bool server_cpu_ok_ = true;
};

// CPU time (user + system) of a process, all threads, in microseconds; error if it is gone.
Result<double> process_cpu_us(pid_t pid);
// CPU time of this process, all threads, in microseconds.
double self_cpu_us();

// Human-readable lines, and one line of key=value pairs for scripts.
std::string format_human(const Report& report, const std::string& title);
std::string format_kv(const Report& report);

}  // namespace synod::bench
