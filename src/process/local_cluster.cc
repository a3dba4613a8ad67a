#include "process/local_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "client/resp_client.h"

namespace synod::process {

std::string self_executable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "synod";
  return std::string(buf, static_cast<size_t>(n));
}

namespace {

// Every replica that a LocalCluster of this process started and has not reaped yet (0: a free
// slot), for stop_replicas_and_die. 256 at once at most (the tools run up to a dozen); one beyond
// is not noted, and outlives an interrupted parent as every replica did before.
std::atomic<pid_t> g_replicas[256];
static_assert(std::atomic<pid_t>::is_always_lock_free, "read in a signal handler");

void note_replica(pid_t pid) {
  for (auto& slot : g_replicas) {
    pid_t free = 0;
    if (slot.compare_exchange_strong(free, pid)) return;
  }
}

void forget_replica(pid_t pid) {
  for (auto& slot : g_replicas) {
    pid_t held = pid;
    if (slot.compare_exchange_strong(held, 0)) return;
  }
}

// The replicas run in process groups of their own, so a Ctrl-C at the terminal reaches only
// their parent (synod chaos, synod demo, a benchmark, a test). Without this they outlived it,
// holding their ports and a core. On SIGINT, SIGTERM or SIGHUP it tells each to stop, as
// stop_all() does, and dies of the signal as it would have.
void stop_replicas_and_die(int sig) {
  for (auto& slot : g_replicas) {
    const pid_t pid = slot.load();
    if (pid <= 0) continue;
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGTERM);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Only where the signal's action is the default: a program that handles it (synod local stops
// its replicas itself) or ignores it keeps its own.
void stop_replicas_on_signals() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
      struct sigaction action {};
      action.sa_handler = stop_replicas_and_die;
      sigemptyset(&action.sa_mask);
      ::sigaction(sig, &action, nullptr);
    }
  });
}

// True if `port` on 127.0.0.1 can be bound now.
bool port_free(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

Status LocalCluster::pick_free_ports(int replicas, uint16_t& client_port, uint16_t& peer_port) {
  // Below the kernel's ephemeral range (32768 and up), so an outgoing connection can never take
  // a port a stopped replica will want back; from a pseudo-random base so concurrent test runs
  // rarely collide.
  constexpr int kLow = 10000, kHigh = 32000;
  int base = kLow + static_cast<int>(::getpid() * 37 % (kHigh - kLow));
  int found = 0;
  uint16_t runs[2] = {0, 0};
  for (int attempt = 0; attempt < 2000 && found < 2; ++attempt, base += replicas) {
    if (base + replicas > kHigh) base = kLow;
    bool all = true;
    for (int i = 0; i < replicas && all; ++i) all = port_free(static_cast<uint16_t>(base + i));
    if (all) runs[found++] = static_cast<uint16_t>(base);
  }
  if (found < 2) return Status::io_error("no free loopback ports found");
  client_port = runs[0];
  peer_port = runs[1];
  return Status::ok();
}

void LocalCluster::grow_to(int replicas) {
  if (replicas <= max_id()) return;
  options_.founders = founders();
  options_.replicas = replicas;
  pids_.resize(static_cast<size_t>(replicas) + 1, -1);
  started_.resize(static_cast<size_t>(replicas) + 1, false);
  exit_codes_.resize(static_cast<size_t>(replicas) + 1, -1);
}

LocalCluster::~LocalCluster() {
  stop_all();
}

std::string LocalCluster::peers() const {
  std::vector<int> ids;
  for (int i = 1; i <= founders(); ++i) ids.push_back(i);
  return peers_of(ids);
}

std::string LocalCluster::peers_of(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids)
    out += (out.empty() ? "" : ",") + std::to_string(id) +
           "=127.0.0.1:" + std::to_string(peer_port(id));
  return out;
}

std::string LocalCluster::peers_for(int id) const {
  if (auto it = machine_ports_.find(id); it != machine_ports_.end()) return it->second.peers;
  if (id <= founders()) return peers();
  std::vector<int> ids;
  for (int i = 1; i <= options_.replicas; ++i)
    if (i <= founders() || i == id || started_[static_cast<size_t>(i)]) ids.push_back(i);
  return peers_of(ids);
}

std::string LocalCluster::log_path(int id) const {
  return options_.dir + "/n" + std::to_string(id) + ".log";
}

std::string LocalCluster::data_dir(int id) const {
  return options_.dir + "/n" + std::to_string(id);
}

Result<uint16_t> LocalCluster::fresh_port() {
  constexpr uint32_t kLow = 10000, kHigh = 32000;  // as pick_free_ports, below the ephemeral range
  if (next_port_ == 0)
    next_port_ = std::max<uint32_t>(options_.client_port, options_.peer_port) +
                 static_cast<uint32_t>(options_.replicas);
  auto ours = [&](uint32_t port) {
    for (int id = 1; id <= max_id(); ++id)
      if (client_port(id) == port || peer_port(id) == port) return true;
    return false;
  };
  for (uint32_t tries = 0; tries < kHigh - kLow; ++tries) {
    if (next_port_ >= kHigh || next_port_ < kLow) next_port_ = kLow;
    const uint32_t port = next_port_++;
    if (!ours(port) && port_free(static_cast<uint16_t>(port))) return static_cast<uint16_t>(port);
  }
  return Status::io_error("no free loopback port found for a new machine");
}

Result<int> LocalCluster::add_machine(const std::vector<int>& contacts) {
  auto client = fresh_port();
  if (!client.is_ok()) return client.status();
  auto peer = fresh_port();
  if (!peer.is_ok()) return peer.status();
  const int id = max_id() + 1;
  machine_ports_[id] = MachinePorts{*client, *peer, ""};
  std::vector<int> ids = contacts;
  ids.push_back(id);
  machine_ports_[id].peers = peers_of(ids);
  pids_.push_back(-1);
  started_.push_back(false);
  exit_codes_.push_back(-1);
  return id;
}

void LocalCluster::replace_member(int old_id, int new_id) {
  std::replace(members_.begin(), members_.end(), old_id, new_id);
}

Status LocalCluster::start_all() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return Status::io_error("cannot create " + options_.dir + ": " + ec.message());
  for (int i = 1; i <= founders(); ++i) SYNOD_RETURN_IF_ERROR(start(i));
  return Status::ok();
}

Status LocalCluster::wait_until_serving(uint32_t timeout_ms) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<bool> serving(static_cast<size_t>(max_id()) + 1, false);
  for (;;) {
    int waiting = 0;
    for (int i = 1; i <= max_id(); ++i) {
      if (serving[static_cast<size_t>(i)] || !started_[static_cast<size_t>(i)]) continue;
      if (exited(i)) {
        const std::string why = last_line(log_path(i));
        return Status::io_error("n" + std::to_string(i) + " exited at start" +
                                (why.empty() ? "" : ": " + why) + " (log: " + log_path(i) + ")");
      }
      if (!info(i, "server").empty())
        serving[static_cast<size_t>(i)] = true;
      else
        ++waiting;
    }
    if (waiting == 0) return Status::ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      for (int i = 1; i <= max_id(); ++i)
        if (!serving[static_cast<size_t>(i)] && started_[static_cast<size_t>(i)])
          return Status::io_error("n" + std::to_string(i) +
                                  " did not answer on 127.0.0.1:" + std::to_string(client_port(i)) +
                                  " within " + std::to_string(timeout_ms / 1000) +
                                  " s (log: " + log_path(i) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool LocalCluster::exited(int id) const {
  const pid_t pid = pids_[static_cast<size_t>(id)];
  if (pid <= 0) return true;
  // WNOWAIT: only a look; reap() still collects the exit and reports it to the owner.
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

std::string last_line(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

Status LocalCluster::start(int id, const std::vector<std::string>& extra_args) {
  if (running(id)) return Status::ok();
  std::vector<std::string> extra = options_.extra_args;
  extra.insert(extra.end(), extra_args.begin(), extra_args.end());
  const bool peers_given = std::find(extra.begin(), extra.end(), "--peers") != extra.end();
  std::vector<std::string> args = {options_.binary,
                                   "server",
                                   "--id",
                                   std::to_string(id),
                                   "--peers",
                                   peers_for(id),
                                   "--listen",
                                   options_.client_port == 0
                                       ? std::string("none")
                                       : "127.0.0.1:" + std::to_string(client_port(id)),
                                   "--data",
                                   data_dir(id)};
  if (peers_given) args.erase(args.begin() + 4, args.begin() + 6);
  const bool stated = std::any_of(extra.begin(), extra.end(), [](const std::string& a) {
    return a.starts_with("--initial-cluster-state") || a == "--join";
  });
  if (!stated) {
    args.push_back("--initial-cluster-state");
    // A machine added at run time founds nothing: its first start here finds its data from an
    // earlier run (or refuses to start without it; a new machine starts with --join).
    args.push_back(started_[static_cast<size_t>(id)] || id > founders() ? "existing" : "new");
  }
  if (options_.tls_client_port != 0) {
    args.push_back("--tls-listen");
    args.push_back("127.0.0.1:" + std::to_string(tls_client_port(id)));
  }
  if (options_.metrics_port != 0) {
    args.push_back("--metrics-listen");
    args.push_back("127.0.0.1:" + std::to_string(metrics_port(id)));
  }
  // "{id}" in an argument becomes the replica's id: each replica's own TLS certificate.
  for (std::string a : extra) {
    for (size_t at; (at = a.find("{id}")) != std::string::npos;)
      a.replace(at, 4, std::to_string(id));
    args.push_back(std::move(a));
  }
  const std::string log = log_path(id);
  const pid_t pid = ::fork();
  if (pid < 0) return Status::io_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    // Our own process group, so a Ctrl-C at the terminal reaches only the parent, which then
    // stops the replicas in order.
    ::setpgid(0, 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pids_[static_cast<size_t>(id)] = pid;
  note_replica(pid);
  stop_replicas_on_signals();
  started_[static_cast<size_t>(id)] = true;
  return Status::ok();
}

void LocalCluster::kill(int id, int signal) {
  const pid_t pid = pids_[static_cast<size_t>(id)];
  if (pid <= 0) return;
  ::kill(pid, signal);
  if (signal == SIGKILL) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    forget_replica(pid);
    pids_[static_cast<size_t>(id)] = -1;
  }
}

namespace {

// Gives a replica sent SIGTERM 5 s to stop cleanly, then SIGKILL; reaps it.
void wait_or_kill(pid_t pid) {
  int status = 0;
  for (int t = 0; t < 500; ++t) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
}

}  // namespace

void LocalCluster::stop(int id) {
  const pid_t pid = pids_[static_cast<size_t>(id)];
  if (pid <= 0) return;
  ::kill(pid, SIGCONT);
  ::kill(pid, SIGTERM);
  wait_or_kill(pid);
  forget_replica(pid);
  pids_[static_cast<size_t>(id)] = -1;
}

void LocalCluster::stop_all() {
  // Every replica is told first, so that they stop together rather than one after another.
  for (int i = 1; i <= max_id(); ++i) {
    const pid_t pid = pids_[static_cast<size_t>(i)];
    if (pid > 0) {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGTERM);
    }
  }
  for (int i = 1; i <= max_id(); ++i) {
    const pid_t pid = pids_[static_cast<size_t>(i)];
    if (pid <= 0) continue;
    wait_or_kill(pid);
    forget_replica(pid);
    pids_[static_cast<size_t>(i)] = -1;
  }
}

std::map<std::string, std::string> LocalCluster::info(int id, const std::string& section) const {
  const pid_t pid = pids_[static_cast<size_t>(id)];
  if (pid <= 0) return {};
  const bool tls = options_.client_tls.enabled;
  client::ClientOptions options;
  options.timeout_ms = 1000;
  options.tls = options_.client_tls;
  auto c = client::RespClient::connect("127.0.0.1", tls ? tls_client_port(id) : client_port(id),
                                       options);
  if (!c.is_ok()) return {};
  c->set_timeout_ms(1000);
  // The server section names the process that answers; pipelined with the one asked for.
  std::vector<std::vector<std::string>> commands = {{"INFO", "server"}, {"INFO", section}};
  if (!options_.auth.empty()) commands.insert(commands.begin(), options_.auth);
  auto replies = c->pipeline(commands);
  if (!replies.is_ok()) return {};
  if (!options_.auth.empty()) {
    if (replies->front() != kv::Reply::ok()) return {};
    replies->erase(replies->begin());
  }
  std::map<std::string, std::string> fields;
  for (const kv::Reply& r : *replies) {
    if (r.kind != kv::Reply::Kind::kBulk) return {};
    fields.merge(client::parse_info(r.text));
  }
  if (fields["process_id"] != std::to_string(pid)) return {};
  return fields;
}

int LocalCluster::leader() const {
  for (int i = 1; i <= max_id(); ++i)
    if (running(i) && info(i)["role"] == "leader") return i;
  return 0;
}

std::vector<int> LocalCluster::reap() {
  std::vector<int> exited;
  for (int i = 1; i <= max_id(); ++i) {
    const pid_t pid = pids_[static_cast<size_t>(i)];
    int status = 0;
    if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
      forget_replica(pid);
      pids_[static_cast<size_t>(i)] = -1;
      exit_codes_[static_cast<size_t>(i)] =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      exited.push_back(i);
    }
  }
  return exited;
}

}  // namespace synod::process
