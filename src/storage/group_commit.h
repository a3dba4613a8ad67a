// Group commit for a live replica: one thread owns the log; callers hand it work and learn when
// that work is durable. Whatever is queued while a sync is running goes into the next sync, so
// under load one fdatasync covers many proposals. The queue is bounded: submit() blocks while it
// is full (backpressure instead of unbounded memory).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "base/status.h"

namespace synod::storage {

class GroupCommitter {
 public:
  // `sync` makes durable everything the append functions added; it runs on the committer thread.
  GroupCommitter(std::function<Status()> sync, size_t max_queued = 65536);
  ~GroupCommitter();  // drains the queue, then stops

  // `append` runs on the committer thread (it adds records to the log); `done` runs there too,
  // after the sync that covers them, with its status.
  void submit(std::function<void()> append, std::function<void(const Status&)> done);

  uint64_t syncs() const;
  uint64_t items() const;

 private:
  struct Item {
    std::function<void()> append;
    std::function<void(const Status&)> done;
  };
  void run();

  std::function<Status()> sync_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  uint64_t syncs_ = 0;
  uint64_t items_ = 0;
  std::thread thread_;
};

}  // namespace synod::storage
