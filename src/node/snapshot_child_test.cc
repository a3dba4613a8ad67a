// The server's snapshot runner forks a real child: it works on the memory as of the fork, holds
// none of the parent's descriptors, reports its result or its failure, and dies with its owner.
#include "node/snapshot_child.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

namespace synod::node {
namespace {

using Made = Result<ServerCore::SnapshotMade>;

Made run(SnapshotChild& child, asio::io_context& io, ServerCore::SnapshotWork work,
         const std::function<void()>& after_start = {}) {
  std::optional<Made> got;
  child.start(std::move(work), [&](Made made) { got = std::move(made); });
  EXPECT_TRUE(child.running());
  if (after_start) after_start();
  io.run();
  io.restart();
  EXPECT_FALSE(child.running());
  return got.value_or(Status::io_error("done was never called"));
}

TEST(SnapshotChild, TheChildSeesTheMemoryAsOfTheForkAndReportsWhatItMade) {
  asio::io_context io;
  SnapshotChild child(io);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("synod-snapshot-child-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string state = "as of the fork";
  Made made = run(
      child, io,
      [&]() -> Made {
        // Written by the child: it must be there when the parent hears of it.
        FILE* f = std::fopen((dir / "made").c_str(), "w");
        if (f == nullptr) return Status::io_error("cannot create the file");
        std::fputs(state.c_str(), f);
        std::fclose(f);
        return ServerCore::SnapshotMade{42, state.size(), 0xfeedULL << 40, 3, 4};
      },
      [&] { state = "changed by the parent afterwards"; });
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  EXPECT_EQ(made->slot, 42u);
  EXPECT_EQ(made->bytes, std::string("as of the fork").size());
  EXPECT_EQ(made->digest, 0xfeedULL << 40);
  EXPECT_EQ(made->encode_ms, 3u);
  EXPECT_EQ(made->write_ms, 4u);
  FILE* f = std::fopen((dir / "made").c_str(), "r");
  ASSERT_NE(f, nullptr);
  char buf[64] = {};
  ASSERT_NE(std::fgets(buf, sizeof buf, f), nullptr);
  std::fclose(f);
  EXPECT_STREQ(buf, "as of the fork");
  std::filesystem::remove_all(dir);
}

TEST(SnapshotChild, TheChildHoldsNoneOfTheParentsDescriptors) {
  asio::io_context io;
  SnapshotChild child(io);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);  // inheritable, as a socket the parent holds would be
  Made made = run(child, io, [&]() -> Made {
    const bool held = ::fcntl(fds[0], F_GETFD) != -1 || ::fcntl(fds[1], F_GETFD) != -1;
    return ServerCore::SnapshotMade{held ? 1u : 2u, 0, 0, 0, 0};
  });
  ::close(fds[0]);
  ::close(fds[1]);
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  EXPECT_EQ(made->slot, 2u) << "the child still held the parent's descriptors";
}

TEST(SnapshotChild, AFailureOrADeathIsReportedAsAnError) {
  asio::io_context io;
  SnapshotChild child(io);
  Made failed =
      run(child, io, []() -> Made { return Status::io_error("disk full while writing"); });
  ASSERT_FALSE(failed.is_ok());
  EXPECT_NE(failed.status().message().find("disk full while writing"), std::string::npos)
      << failed.status().to_string();
  Made killed = run(child, io, []() -> Made {
    ::raise(SIGKILL);
    return ServerCore::SnapshotMade{};
  });
  ASSERT_FALSE(killed.is_ok());
  EXPECT_NE(killed.status().message().find("killed by signal 9"), std::string::npos)
      << killed.status().to_string();
  // It goes on working after both.
  Made again = run(child, io, []() -> Made { return ServerCore::SnapshotMade{7, 0, 0, 0, 0}; });
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->slot, 7u);
}

// A child that never finishes (a disk that never answers) is killed at its deadline, so that
// later snapshots can run.
TEST(SnapshotChild, AChildPastItsDeadlineIsKilledAndItsSnapshotFails) {
  asio::io_context io;
  SnapshotChild child(io, /*deadline_ms=*/200);
  Made late = run(child, io, []() -> Made {
    ::pause();  // until killed
    return ServerCore::SnapshotMade{};
  });
  ASSERT_FALSE(late.is_ok());
  EXPECT_NE(late.status().message().find("past its deadline"), std::string::npos)
      << late.status().to_string();
  Made next = run(child, io, []() -> Made { return ServerCore::SnapshotMade{9, 0, 0, 0, 0}; });
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(next->slot, 9u);
}

TEST(SnapshotChild, DestroyingItKillsAChildStillRunningAndNeverCallsDone) {
  asio::io_context io;
  bool called = false;
  pid_t pid = -1;
  {
    SnapshotChild child(io);
    child.start(
        []() -> Made {
          ::pause();  // until killed
          return ServerCore::SnapshotMade{};
        },
        [&](Made) { called = true; });
    pid = child.pid();
    ASSERT_GT(pid, 0);
    EXPECT_EQ(::kill(pid, 0), 0);
  }
  io.run();
  EXPECT_FALSE(called);
  EXPECT_EQ(::kill(pid, 0), -1) << "the child outlived its owner, or was not reaped";
}

}  // namespace
}  // namespace synod::node
