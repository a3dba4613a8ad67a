#include "storage/group_commit.h"

namespace synod::storage {

GroupCommitter::GroupCommitter(std::function<Status()> sync, size_t max_queued)
    : sync_(std::move(sync)), max_queued_(max_queued), thread_([this] { run(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  thread_.join();
}

void GroupCommitter::submit(std::function<void()> append, std::function<void(const Status&)> done) {
  {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return queue_.size() < max_queued_; });
    queue_.push_back({std::move(append), std::move(done)});
  }
  work_.notify_one();
}

void GroupCommitter::run() {
  std::deque<Item> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and drained
      batch.swap(queue_);
    }
    room_.notify_all();
    for (auto& item : batch) item.append();
    const Status status = sync_();
    for (auto& item : batch) item.done(status);
    {
      std::lock_guard lock(mu_);
      ++syncs_;
      items_ += batch.size();
    }
    batch.clear();
  }
}

uint64_t GroupCommitter::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

uint64_t GroupCommitter::items() const {
  std::lock_guard lock(mu_);
  return items_;
}

}  // namespace synod::storage
