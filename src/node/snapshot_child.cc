#include "node/snapshot_child.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "base/coding.h"

namespace synod::node {
namespace {

constexpr size_t kRecordBytes = 1 + 5 * 8;
constexpr size_t kMaxErrorBytes = 4096;

void write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the parent is gone: nobody to tell
    done += static_cast<size_t>(n);
  }
}

// In the child: never returns.
[[noreturn]] void run_child(pid_t parent, int report_fd, const ServerCore::SnapshotWork& work) {
  // Die with the parent: an orphan would go on writing into a directory a restarted server owns.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  // The parent's signal handlers (asio's, for SIGTERM and SIGINT) write to descriptors closed
  // below: the child takes the default actions, with nothing blocked.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) (void)::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Hold no socket, listener or log segment of the parent's open: a peer must see a connection
  // the parent closed end now, not when the child exits.
  const bool closed =
      (report_fd <= 3 || ::close_range(3, static_cast<unsigned>(report_fd - 1), 0) == 0) &&
      ::close_range(static_cast<unsigned>(report_fd + 1), ~0U, 0) == 0;
  if (!closed) {  // (a kernel before 5.9)
    const long most = ::sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (most > 0 ? most : 65536); ++fd) {
      if (fd != report_fd) (void)::close(fd);
    }
  }
  // Under memory pressure the kernel should kill the child (a snapshot that fails changes
  // nothing), not the replica, as Redis does for its BGSAVE child.
  if (const int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); fd >= 0) {
    (void)!::write(fd, "1000", 4);
    ::close(fd);
  }
  // The replica's loop comes first: on a machine with few cores, children running at the
  // replica's priority took the CPU that its heartbeats needed, and cost elections (three
  // replicas on two cores snapshotting at once). At nice 19 and SCHED_BATCH the child runs
  // when the loops do not; it still finishes on a busy machine, only later.
  (void)::setpriority(PRIO_PROCESS, 0, 19);
  const sched_param batch{};
  (void)::sched_setscheduler(0, SCHED_BATCH, &batch);
  std::string report;
  Result<ServerCore::SnapshotMade> made = work();
  if (made.is_ok()) {
    put_u8(report, 1);
    put_u64(report, made->slot);
    put_u64(report, made->bytes);
    put_u64(report, made->digest);
    put_u64(report, made->encode_ms);
    put_u64(report, made->write_ms);
  } else {
    put_u8(report, 0);
    report += made.status().to_string().substr(0, kMaxErrorBytes);
  }
  write_all(report_fd, report);
  // No destructors, no atexit handlers: they belong to the parent's objects.
  ::_exit(0);
}

}  // namespace

// The read in progress. Its handler holds it, so it outlives a SnapshotChild destroyed meanwhile
// (which clears `owner`).
struct SnapshotChild::Pending : std::enable_shared_from_this<Pending> {
  Pending(asio::io_context& io, int fd, SnapshotChild* parent) : pipe(io, fd), owner(parent) {}
  asio::posix::stream_descriptor pipe;
  SnapshotChild* owner;
  std::string report;
  char buffer[512];
  std::function<void(Result<ServerCore::SnapshotMade>)> done;

  // Reads the report until the child's end closes (it exits), then reaps it and calls `done`.
  void read() {
    pipe.async_read_some(asio::buffer(buffer),
                         [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                           if (self->owner == nullptr) return;
                           if (!ec) {
                             if (self->report.size() < kRecordBytes + kMaxErrorBytes)
                               self->report.append(self->buffer, n);
                             self->read();
                             return;
                           }
                           auto then = std::move(self->done);
                           SnapshotChild* child = self->owner;
                           child->pending_.reset();
                           then(child->finish(self->report));
                         });
  }
};

SnapshotChild::~SnapshotChild() {
  if (pending_) {
    pending_->owner = nullptr;
    pending_->done = nullptr;
    asio::error_code ignored;
    pending_->pipe.close(ignored);
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

uint64_t SnapshotChild::start(ServerCore::SnapshotWork work,
                              std::function<void(Result<ServerCore::SnapshotMade>)> done) {
  SYNOD_ASSERT(pid_ <= 0, "two snapshot children at once");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    const Status failed = Status::io_error(std::string("pipe: ") + std::strerror(errno));
    asio::post(io_, [done = std::move(done), failed] { done(failed); });
    return 0;
  }
  const pid_t parent = ::getpid();
  const auto before = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  const auto after = std::chrono::steady_clock::now();
  if (pid == 0) run_child(parent, fds[1], work);
  ::close(fds[1]);
  const uint64_t fork_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(after - before).count());
  if (pid < 0) {
    const Status failed = Status::io_error(
        std::string("fork: ") + std::strerror(errno) +
        (errno == ENOMEM ? " (the kernel refused to commit a copy of the server's memory; "
                           "vm.overcommit_memory=1 allows it, as for Redis)"
                         : ""));
    ::close(fds[0]);
    asio::post(io_, [done = std::move(done), failed] { done(failed); });
    return fork_us;
  }
  pid_ = pid;
  pending_ = std::make_shared<Pending>(io_, fds[0], this);
  pending_->done = std::move(done);
  pending_->read();
  // A child that blocks (a disk that never answers) would hold up every later snapshot, and the
  // log would grow without bound: past its deadline it is killed, which fails the snapshot.
  deadline_.expires_after(std::chrono::milliseconds(deadline_ms_));
  deadline_.async_wait([this, p = std::weak_ptr<Pending>(pending_)](const asio::error_code& ec) {
    auto pending = p.lock();
    if (ec || !pending || pending->owner == nullptr || pid_ <= 0) return;
    overdue_ = true;
    ::kill(pid_, SIGKILL);
  });
  return fork_us;
}

Result<ServerCore::SnapshotMade> SnapshotChild::finish(const std::string& report) {
  int status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid_, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  const pid_t pid = pid_;
  pid_ = -1;
  deadline_.cancel();
  const bool overdue = std::exchange(overdue_, false);
  if (!report.empty() && report[0] == 1 && report.size() == kRecordBytes) {
    ServerCore::SnapshotMade made;
    const char* p = report.data() + 1;
    made.slot = load_u64(p);
    made.bytes = load_u64(p + 8);
    made.digest = load_u64(p + 16);
    made.encode_ms = load_u64(p + 24);
    made.write_ms = load_u64(p + 32);
    return made;
  }
  if (!report.empty() && report[0] == 0)
    return Status::io_error("the snapshot's child process failed: " + report.substr(1));
  std::string how = "without a report";
  if (reaped == pid && WIFSIGNALED(status)) {
    how = std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
          ::strsignal(WTERMSIG(status)) + ")";
  } else if (reaped == pid && WIFEXITED(status)) {
    how = "with exit code " + std::to_string(WEXITSTATUS(status)) + " and no report";
  }
  if (overdue) how += ", past its deadline of " + std::to_string(deadline_ms_ / 1000) + " s";
  return Status::io_error("the snapshot's child process " + std::to_string(pid) + " ended " + how);
}

}  // namespace synod::node
