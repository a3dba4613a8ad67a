// The server's snapshot runner (node::ServerCore::SnapshotRunner): it takes each snapshot in a
// forked child process, as Redis's BGSAVE does. The child's memory is a copy-on-write image of
// the server's as of the fork, so the child encodes the state machine as it was then and writes
// and syncs the snapshot's partial file while the server's event loop goes on applying, answering
// and sending heartbeats; the loop pays only for the fork (copying page tables) and, when the
// child is done, for adopting the file (a rename and a directory sync).
//
// The child runs only the work it is given (which touches nothing but the store it encodes and
// the file it writes), closes every descriptor it inherited but its end of a pipe, dies with its
// parent (PR_SET_PDEATHSIG), and reports through the pipe before it exits. Its report: a byte 1,
// then SnapshotMade's five u64 fields (little-endian, in declaration order); or a byte 0 and the
// error's text. The parent reads the pipe to its end on its io_context, reaps the child, and calls
// `done` there: with the report, or with an error if the child died without one (killed, out of
// memory) or could not be forked.
#pragma once

#include <sys/types.h>

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>

#include "node/server_core.h"

namespace synod::node {

class SnapshotChild {
 public:
  // A child still running `deadline_ms` after its fork is killed (its snapshot fails).
  explicit SnapshotChild(asio::io_context& io, uint64_t deadline_ms = 30 * 60 * 1000)
      : io_(io), deadline_ms_(deadline_ms), deadline_(io) {}
  // Kills and reaps a child still running; its `done` is never called.
  ~SnapshotChild();
  SnapshotChild(const SnapshotChild&) = delete;
  SnapshotChild& operator=(const SnapshotChild&) = delete;

  // Forks a child that runs `work`; `done` runs later on the io_context. One at a time (ServerCore
  // starts the next only after `done`). Returns how long fork() took, in µs.
  uint64_t start(ServerCore::SnapshotWork work,
                 std::function<void(Result<ServerCore::SnapshotMade>)> done);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }  // the child's, while running()

 private:
  struct Pending;
  // Reaps the child and decodes its report.
  Result<ServerCore::SnapshotMade> finish(const std::string& report);

  asio::io_context& io_;
  uint64_t deadline_ms_;
  asio::steady_timer deadline_;
  bool overdue_ = false;
  pid_t pid_ = -1;
  std::shared_ptr<Pending> pending_;
};

}  // namespace synod::node
