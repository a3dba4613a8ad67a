// `synod bench wal`: what this machine's disk does for the write-ahead log. Prints, side by side
// in one run (these machines are noisy, so compare ratios within a run):
//   - raw fdatasync: write 256 bytes into a preallocated file and fdatasync, one at a time;
//   - one writer: one 256-byte record appended to the real log and synced, one at a time;
//   - K concurrent proposals through the group-commit thread: records/s and records per sync;
//   - one pipelined writer handing the log many records per sync.
// `synod bench floor`: the least one client's replicated write can take here, measured in place of
// assumed: one fdatasync of a small write on the disk of a given directory plus two loopback TCP
// round trips (client to leader to follower, and both answers back).
// `synod bench apply`: what the state machine costs every replica per write, alone: SETs of
// 256-byte values to 1,000 keys from C clients' sessions, applied to a kv::Store as the log hands
// them over (the command built beforehand, as decoding it is the log's part).
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
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

#include "base/rng.h"
#include "bench/kv_command.h"
#include "kv/store.h"
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

// A socket that closes itself.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

bool recv_all(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

// `ops` ping-pongs of `bytes` bytes each way over one 127.0.0.1 TCP connection (TCP_NODELAY) to an
// echoing thread: what one request and its answer cost on loopback, with blocking calls and no
// event loop (a floor: a server's loop adds its own wake-ups).
Result<Latency> loopback_round_trips(int ops, size_t bytes) {
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener.fd < 0 || ::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener.fd, 1) != 0 ||
      ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return Status::io_error("loopback listener");
  std::thread echo([&listener, ops, bytes] {
    Fd conn(::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.fd < 0) return;
    const int one = 1;
    ::setsockopt(conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string buf(bytes, '\0');
    for (int i = 0; i < ops; ++i)
      if (!recv_all(conn.fd, buf.data(), bytes) || !send_all(conn.fd, buf.data(), bytes)) return;
  });
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  bool ok = client.fd >= 0 &&
            ::connect(client.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            ::setsockopt(client.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
  std::string buf(bytes, 'p');
  std::vector<double> us;
  for (int i = 0; ok && i < ops; ++i) {
    const auto t = Clock::now();
    ok = send_all(client.fd, buf.data(), bytes) && recv_all(client.fd, buf.data(), bytes);
    us.push_back(micros(Clock::now() - t));
  }
  // The echo thread ends when its `ops` are done or the connection closes, and an accept that
  // never saw the client connect returns once the listener is shut down.
  if (client.fd >= 0) ::shutdown(client.fd, SHUT_RDWR);
  ::shutdown(listener.fd, SHUT_RDWR);
  echo.join();
  if (!ok) return Status::io_error("loopback ping-pong");
  return summarize(us);
}

struct FloorArgs {
  std::string dir = "synod-bench-floor";
  int ops = 1000;
  size_t bytes = 256;
  bool kv_line = false;
};

int run_bench_floor(const FloorArgs& args) {
  if (args.ops < 1 || args.bytes < 1) {
    fmt::print(stderr, "synod bench floor: need --ops >= 1 and --bytes >= 1\n");
    return 2;
  }
  // A directory of its own inside --dir, so that removing it never touches anything else.
  std::error_code ec;
  const bool made_dir = std::filesystem::create_directories(args.dir, ec);
  std::string scratch = args.dir + "/floor-XXXXXX";
  if (::mkdtemp(scratch.data()) == nullptr) {
    fmt::print(stderr, "synod bench floor: cannot create a directory in {}\n", args.dir);
    return 1;
  }
  auto sync = raw_fdatasync(scratch, args.ops);
  std::filesystem::remove_all(scratch, ec);
  if (made_dir) std::filesystem::remove(args.dir, ec);  // only if empty: it was ours
  auto rtt = loopback_round_trips(args.ops, args.bytes);
  if (!sync.is_ok() || !rtt.is_ok()) {
    fmt::print(stderr, "synod bench floor: {}\n",
               (sync.is_ok() ? rtt.status() : sync.status()).to_string());
    return 1;
  }
  const double floor_us = sync->p50_us + 2 * rtt->p50_us;
  if (args.kv_line) {
    fmt::print(
        "fdatasync_p50_us={:.1f} fdatasync_p99_us={:.1f} rtt_p50_us={:.1f} rtt_p99_us={:.1f} "
        "floor_us={:.1f} ops={}\n",
        sync->p50_us, sync->p99_us, rtt->p50_us, rtt->p99_us, floor_us, args.ops);
    return 0;
  }
  fmt::print("synod bench floor: {} of each, in {}\n", args.ops, args.dir);
  fmt::print("fdatasync ({} B write, preallocated file): p50 {:.1f} us, p99 {:.1f} us\n", 256,
             sync->p50_us, sync->p99_us);
  fmt::print("loopback TCP round trip ({} B each way): p50 {:.1f} us, p99 {:.1f} us\n", args.bytes,
             rtt->p50_us, rtt->p99_us);
  fmt::print("floor of one replicated write (1 fdatasync + 2 round trips): {:.1f} us\n", floor_us);
  return 0;
}

struct ApplyArgs {
  uint64_t ops = 2'000'000;
  std::vector<uint64_t> clients = {64, 10'000};
  size_t keys = 1'000;
  size_t value_bytes = 256;
};

int run_bench_apply(const ApplyArgs& args) {
  fmt::print("synod bench apply: {} SETs of {} B values to {} keys per run\n", args.ops,
             args.value_bytes, args.keys);
  for (const uint64_t clients : args.clients) {
    kv::Store store;
    std::vector<uint64_t> seq(clients + 1, 0);
    std::vector<kv::KvCommand> batch(1024);
    for (auto& c : batch) c.args = {"SET", "", std::string(args.value_bytes, 'v')};
    Rng rng(1);  // the same clients and keys in the same order every run
    uint64_t done = 0;
    std::chrono::nanoseconds spent{0};
    while (done < args.ops) {
      for (auto& c : batch) {
        c.client = 1 + rng.below(clients);
        c.seq = seq[c.client] = std::max(seq[c.client] + 1, store.first_seq());
        c.log_time_ms = done / 1000;
        c.args[1] = "key:" + std::to_string(rng.below(args.keys));
      }
      const auto start = Clock::now();
      for (const auto& c : batch) store.apply(c);
      spent += Clock::now() - start;
      done += batch.size();
    }
    fmt::print("{} client sessions: {:.3f} us per apply\n", clients,
               std::chrono::duration<double, std::micro>(spent).count() / double(done));
  }
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
  auto floor = std::make_shared<FloorArgs>();
  CLI::App* floor_cmd = bench->add_subcommand(
      "floor",
      "The floor of one client's write: p50 of one fdatasync in --dir plus two loopback round "
      "trips");
  floor_cmd->add_option("--dir", floor->dir,
                        "A directory on the disk to measure (a scratch directory is made in it "
                        "and removed)");
  floor_cmd->add_option("--ops", floor->ops, "fdatasyncs, and round trips, to time");
  floor_cmd->add_option("--bytes", floor->bytes, "Bytes each way per round trip");
  floor_cmd->add_flag("--kv", floor->kv_line, "Print one line of key=value pairs");
  floor_cmd->callback([floor, &exit_code] { exit_code = run_bench_floor(*floor); });
  auto apply = std::make_shared<ApplyArgs>();
  CLI::App* apply_cmd = bench->add_subcommand(
      "apply", "The state machine's cost per write on every replica: SETs applied to a store");
  apply_cmd->add_option("--ops", apply->ops, "SETs per run")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000'000}));
  // At most the default --max-sessions' tenfold: the store evicts beyond its bound anyway.
  apply_cmd->add_option("--clients", apply->clients, "Client session counts, one run each")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000}));
  apply_cmd->add_option("--keys", apply->keys, "Distinct keys")
      ->check(CLI::Range(size_t{1}, size_t{10'000'000}));
  apply_cmd->add_option("--value-bytes", apply->value_bytes, "Bytes per value")
      ->check(CLI::Range(size_t{0}, size_t{1} << 20));
  apply_cmd->callback([apply, &exit_code] { exit_code = run_bench_apply(*apply); });
  bench::add_bench_kv_command(*bench, exit_code);
  add_bench_members_command(*bench, exit_code);
}

}  // namespace synod::tools
