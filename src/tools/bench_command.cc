// `synod bench wal`: what this machine's disk does for the write-ahead log. Prints, side by side
// in one run (these machines are noisy, so compare ratios within a run):
//   - raw fdatasync: write 256 bytes into a preallocated file and fdatasync, one at a time;
//   - one writer: one 256-byte record appended to the real log and synced, one at a time;
//   - K concurrent proposals through the group-commit thread: records/s and records per sync;
//   - one pipelined writer handing the log many records per sync.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/kv_command.h"
#include "storage/group_commit.h"
#include "storage/paxos_log.h"
#include "tools/bench_members_command.h"
#include "tools/storage_commands.h"

namespace synod::tools {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string dir = "synod-bench";
  int ops = 2000;
  double seconds = 3;
  std::vector<int> writers = {16, 64, 256, 1024};
  bool keep = false;
};

struct Latency {
  double mean_us = 0, p50_us = 0, p99_us = 0;
};

Latency summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  Latency l;
  for (double u : us) l.mean_us += u;
  l.mean_us /= static_cast<double>(us.size());
  l.p50_us = us[us.size() / 2];
  l.p99_us = us[us.size() * 99 / 100];
  return l;
}

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// An accepted-entry batch whose one record takes exactly 256 bytes in the log.
paxos::PersistBatch record_batch(Slot slot) {
  // record header 9 + slot 8 + ballot 12 + count 4 + client 8 + seq 8 + length 4 = 53
  paxos::PersistBatch b;
  b.accepted.push_back(
      {slot, paxos::Proposal{Ballot{1, NodeId{1}}, paxos::Value{{paxos::Command{
                                                       {1, slot}, std::string(256 - 53, 'v')}}}}});
  return b;
}

storage::LogOptions log_options(const std::string& dir) {
  storage::LogOptions o;
  o.dir = dir;
  o.cluster_id = 1;
  o.node_id = 1;
  return o;
}

Result<Latency> raw_fdatasync(const std::string& dir, int ops) {
  const std::string path = dir + "/raw.bin";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("open " + path);
  if (::posix_fallocate(fd, 0, 64 << 20) != 0 || ::fsync(fd) != 0) {
    ::close(fd);
    return Status::io_error("preallocate " + path);
  }
  std::string block(256, 'r');
  std::vector<double> us;
  for (int i = 0; i < ops; ++i) {
    auto t = Clock::now();
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(i) * 256) != 256 ||
        ::fdatasync(fd) != 0) {
      ::close(fd);
      return Status::io_error("write/fdatasync " + path);
    }
    us.push_back(micros(Clock::now() - t));
  }
  ::close(fd);
  return summarize(us);
}

int run_bench_wal(const BenchArgs& args) {
  std::error_code ec;
  std::filesystem::create_directories(args.dir, ec);
  auto fs = storage::make_posix_file_system();
  fmt::print("synod bench wal: directory {} ({} ops per latency test, {} s per throughput test)\n",
             args.dir, args.ops, args.seconds);

  auto raw = raw_fdatasync(args.dir, args.ops);
  if (!raw.is_ok()) {
    fmt::print(stderr, "bench: {}\n", raw.status().to_string());
    return 1;
  }
  fmt::print(
      "raw fdatasync (256 B write + fdatasync, preallocated file): mean {:.1f} us, p50 "
      "{:.1f} us, p99 {:.1f} us\n",
      raw->mean_us, raw->p50_us, raw->p99_us);

  // One writer, one record per sync.
  {
    const std::string dir = args.dir + "/wal-single";
    std::filesystem::remove_all(dir, ec);
    auto log = storage::PaxosLog::open(*fs, log_options(dir), nullptr);
    if (!log.is_ok()) {
      fmt::print(stderr, "bench: {}\n", log.status().to_string());
      return 1;
    }
    std::vector<double> us;
    for (int i = 0; i < args.ops; ++i) {
      auto t = Clock::now();
      (*log)->append(record_batch(static_cast<Slot>(i + 1)));
      if (!(*log)->sync().is_ok()) return 1;
      us.push_back(micros(Clock::now() - t));
    }
    Latency l = summarize(us);
    fmt::print(
        "one writer, 1 record per sync: mean {:.1f} us ({:.2f}x raw), p50 {:.1f} us "
        "({:.2f}x raw), p99 {:.1f} us; {:.0f} records/s\n",
        l.mean_us, l.mean_us / raw->mean_us, l.p50_us, l.p50_us / raw->p50_us, l.p99_us,
        1e6 / l.mean_us);
  }

  // Many concurrent proposals through the group-commit thread, as a server's event loop has them
  // in flight: each one, once durable, is replaced by a new one (a closed loop of K proposals).
  for (int inflight : args.writers) {
    const std::string dir = args.dir + "/wal-group";
    std::filesystem::remove_all(dir, ec);
    auto log = storage::PaxosLog::open(*fs, log_options(dir), nullptr);
    if (!log.is_ok()) return 1;
    storage::PaxosLog* plog = log->get();
    std::atomic<bool> stop{false};
    std::atomic<bool> failed{false};
    uint64_t done_records = 0;  // touched only on the committer thread, read after it stops
    double latency_sum_us = 0;
    Slot next_slot = 1;
    uint64_t syncs = 0;
    const auto started = Clock::now();
    {
      storage::GroupCommitter committer([plog] { return plog->sync(); });
      std::function<void()> propose;
      propose = [&] {
        const Slot slot = next_slot++;
        const auto t = Clock::now();
        committer.submit([plog, slot] { plog->append(record_batch(slot)); },
                         [&, t](const Status& st) {
                           if (!st.is_ok()) failed = true;
                           ++done_records;
                           latency_sum_us += micros(Clock::now() - t);
                           if (!stop.load(std::memory_order_relaxed)) propose();
                         });
      };
      for (int k = 0; k < inflight; ++k) propose();
      std::this_thread::sleep_for(std::chrono::duration<double>(args.seconds));
      stop = true;
      // The committer drains what is queued, then stops.
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    syncs = plog->log().syncs();
    if (failed) {
      fmt::print(stderr, "bench: a sync failed\n");
      return 1;
    }
    fmt::print(
        "{} proposals in flight, group commit: {:.0f} durable records/s, {:.1f} records "
        "per sync, mean latency {:.1f} us\n",
        inflight, static_cast<double>(done_records) / elapsed,
        static_cast<double>(done_records) / static_cast<double>(std::max<uint64_t>(1, syncs)),
        latency_sum_us / static_cast<double>(std::max<uint64_t>(1, done_records)));
  }

  // One pipelined writer: many records handed over per sync (the upper bound group commit
  // approaches).
  {
    const std::string dir = args.dir + "/wal-pipelined";
    std::filesystem::remove_all(dir, ec);
    auto log = storage::PaxosLog::open(*fs, log_options(dir), nullptr);
    if (!log.is_ok()) return 1;
    const int per_sync = 1000;
    uint64_t records = 0;
    Slot slot = 1;
    const auto started = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - started).count() < args.seconds) {
      for (int i = 0; i < per_sync; ++i) (*log)->append(record_batch(slot++));
      if (!(*log)->sync().is_ok()) return 1;
      records += per_sync;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    fmt::print(
        "one pipelined writer, {} records per sync: {:.0f} durable records/s ({:.0f} MB/s)\n",
        per_sync, static_cast<double>(records) / elapsed,
        static_cast<double>(records) * 256 / elapsed / 1e6);
  }
  if (!args.keep) std::filesystem::remove_all(args.dir, ec);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks that print numbers");
  bench->require_subcommand(1);
  auto args = std::make_shared<BenchArgs>();
  CLI::App* wal = bench->add_subcommand(
      "wal", "fdatasync latency, and durable 256-byte appends per second with group commit");
  wal->add_option("--dir", args->dir, "Where to write (on the disk to measure)");
  wal->add_option("--ops", args->ops, "Operations per latency measurement");
  wal->add_option("--seconds", args->seconds, "Duration of each throughput measurement");
  wal->add_option("--inflight", args->writers, "Counts of concurrent proposals to try");
  wal->add_flag("--keep", args->keep, "Keep the logs written (for wal-dump)");
  wal->callback([args, &exit_code] { exit_code = run_bench_wal(*args); });
  bench::add_bench_kv_command(*bench, exit_code);
  add_bench_members_command(*bench, exit_code);
}

}  // namespace synod::tools
