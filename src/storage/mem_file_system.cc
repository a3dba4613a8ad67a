#include "storage/mem_file_system.h"

#include <algorithm>

namespace synod::storage {

namespace {
std::string parent_of(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? std::string() : path.substr(0, pos);
}
void apply_op(std::string& content, uint64_t offset, std::string_view data) {
  if (content.size() < offset + data.size()) content.resize(offset + data.size(), '\0');
  std::copy(data.begin(), data.end(), content.begin() + static_cast<ptrdiff_t>(offset));
}
}  // namespace

class MemWritableFile final : public WritableFile {
 public:
  MemWritableFile(MemFileSystem* fs, uint64_t inode, std::string path)
      : fs_(fs), inode_(inode), generation_(fs->generation_), path_(std::move(path)) {}

  Status write_at(uint64_t offset, std::string_view data) override {
    SYNOD_RETURN_IF_ERROR(check());
    auto& node = fs_->inodes_[inode_];
    apply_op(node.current, offset, data);
    node.unsynced.push_back({MemFileSystem::Op::kWrite, offset, std::string(data)});
    return Status::ok();
  }
  Status sync() override {
    SYNOD_RETURN_IF_ERROR(check());
    auto& node = fs_->inodes_[inode_];
    // Replay the writes since the last sync rather than copy the file: cost follows the bytes
    // written, not the (preallocated) file size.
    for (const auto& op : node.unsynced) {
      if (op.kind == MemFileSystem::Op::kTruncate)
        node.synced.resize(op.offset, '\0');
      else
        apply_op(node.synced, op.offset, op.data);
    }
    node.unsynced.clear();
    ++fs_->syncs_;
    return Status::ok();
  }
  Status preallocate(uint64_t size) override {
    SYNOD_RETURN_IF_ERROR(check());
    auto& node = fs_->inodes_[inode_];
    // Space reservation is metadata that reads as zeros; it changes no byte already written.
    if (node.current.size() < size) {
      node.unsynced.push_back({MemFileSystem::Op::kTruncate, size, {}});
      node.current.resize(size, '\0');
    }
    return Status::ok();
  }
  Status truncate(uint64_t size) override {
    SYNOD_RETURN_IF_ERROR(check());
    auto& node = fs_->inodes_[inode_];
    node.current.resize(size, '\0');
    node.unsynced.push_back({MemFileSystem::Op::kTruncate, size, {}});
    return Status::ok();
  }
  Status close() override {
    closed_ = true;
    return Status::ok();
  }

 private:
  Status check() {
    if (closed_) return Status::io_error("write to closed file " + path_);
    if (generation_ != fs_->generation_) return Status::io_error("file lost in a crash: " + path_);
    return fs_->check_fail();
  }
  MemFileSystem* fs_;
  uint64_t inode_;
  uint64_t generation_;
  std::string path_;
  bool closed_ = false;
};

Status MemFileSystem::check_fail() {
  if (fail_after_ == 0) return Status::io_error("injected failure");
  if (fail_after_ > 0) --fail_after_;
  ++mutating_ops_;
  return Status::ok();
}

bool MemFileSystem::is_dir(const std::string& path) const {
  return path.empty() || std::find(dirs_.begin(), dirs_.end(), path) != dirs_.end();
}

Status MemFileSystem::create_dir(const std::string& dir) {
  // Directories are created durably: only files' names and bytes are at risk in a crash.
  if (!is_dir(dir)) dirs_.push_back(dir);
  return Status::ok();
}

Result<std::vector<std::string>> MemFileSystem::list(const std::string& dir) {
  if (!is_dir(dir)) return Status::not_found("no directory " + dir);
  std::vector<std::string> out;
  for (const auto& [path, inode] : names_)
    if (parent_of(path) == dir) out.push_back(path.substr(dir.empty() ? 0 : dir.size() + 1));
  return out;  // map order: sorted
}

Result<bool> MemFileSystem::exists(const std::string& path) {
  return names_.count(path) > 0 || is_dir(path);
}

void MemFileSystem::link(const std::string& path, uint64_t inode) {
  names_[path] = inode;
  journal_.push_back({MetaOp::kLink, path, {}, inode});
}

void MemFileSystem::unlink(const std::string& path) {
  names_.erase(path);
  journal_.push_back({MetaOp::kUnlink, path, {}, 0});
}

Result<std::unique_ptr<WritableFile>> MemFileSystem::open_writable(const std::string& path) {
  if (!is_dir(parent_of(path))) return Status::not_found("no directory for " + path);
  auto it = names_.find(path);
  uint64_t inode;
  if (it != names_.end()) {
    inode = it->second;
  } else {
    SYNOD_RETURN_IF_ERROR(check_fail());
    inode = next_inode_++;
    inodes_[inode];
    link(path, inode);
  }
  return std::unique_ptr<WritableFile>(std::make_unique<MemWritableFile>(this, inode, path));
}

Result<std::string> MemFileSystem::read_file(const std::string& path) {
  auto it = names_.find(path);
  if (it == names_.end()) return Status::not_found("no file " + path);
  return inodes_[it->second].current;
}

Result<std::string> MemFileSystem::read_range(const std::string& path, uint64_t offset, size_t n) {
  auto it = names_.find(path);
  if (it == names_.end()) return Status::not_found("no file " + path);
  const std::string& content = inodes_[it->second].current;
  if (offset >= content.size()) return std::string();
  return content.substr(offset, n);
}

Status MemFileSystem::rename(const std::string& from, const std::string& to) {
  auto it = names_.find(from);
  if (it == names_.end()) return Status::not_found("rename: no file " + from);
  SYNOD_RETURN_IF_ERROR(check_fail());
  // A rename is atomic: a crash keeps it whole or not at all.
  const uint64_t inode = it->second;
  names_.erase(from);
  names_[to] = inode;
  journal_.push_back({MetaOp::kRename, from, to, inode});
  return Status::ok();
}

Status MemFileSystem::remove(const std::string& path) {
  if (names_.count(path) == 0) return Status::not_found("remove: no file " + path);
  SYNOD_RETURN_IF_ERROR(check_fail());
  unlink(path);
  return Status::ok();
}

Status MemFileSystem::sync_dir(const std::string& dir) {
  if (!is_dir(dir)) return Status::not_found("no directory " + dir);
  SYNOD_RETURN_IF_ERROR(check_fail());
  // Like a journaling file system, syncing a directory commits every earlier metadata change.
  synced_names_ = names_;
  journal_.clear();
  ++syncs_;
  return Status::ok();
}

void MemFileSystem::crash(Rng& rng, const CrashFaults& faults) {
  ++generation_;
  fail_after_ = -1;
  // Metadata: the synced namespace plus, with tearing, a prefix of the journal.
  size_t keep_meta = faults.tear ? rng.below(journal_.size() + 1) : 0;
  names_ = synced_names_;
  for (size_t i = 0; i < keep_meta; ++i) {
    const auto& op = journal_[i];
    if (op.kind == MetaOp::kLink) {
      names_[op.path] = op.inode;
    } else if (op.kind == MetaOp::kUnlink) {
      names_.erase(op.path);
    } else {
      names_.erase(op.path);
      names_[op.to] = op.inode;
    }
  }
  synced_names_ = names_;
  journal_.clear();
  // Data: synced bytes plus, with tearing, a prefix of the unsynced operations.
  for (auto& [id, node] : inodes_) {
    std::string content = node.synced;
    if (faults.tear && !node.unsynced.empty()) {
      size_t keep = rng.below(node.unsynced.size() + 1);
      for (size_t i = 0; i < keep; ++i) {
        const Op& op = node.unsynced[i];
        if (op.kind == Op::kTruncate) {
          content.resize(op.offset, '\0');
          continue;
        }
        std::string data = op.data;
        if (i + 1 == keep && !data.empty()) data.resize(rng.below(data.size() + 1));
        if (!data.empty() && rng.chance(faults.flip_rate)) {
          data[rng.below(data.size())] ^= static_cast<char>(1u << rng.below(8));
        }
        apply_op(content, op.offset, data);
      }
    }
    node.synced = content;
    node.current = std::move(content);
    node.unsynced.clear();
  }
  // Inodes no name refers to are gone.
  std::vector<uint64_t> live;
  for (const auto& [path, inode] : names_) live.push_back(inode);
  std::erase_if(inodes_, [&](const auto& kv) {
    return std::find(live.begin(), live.end(), kv.first) == live.end();
  });
}

void MemFileSystem::flip_bit(const std::string& path, uint64_t byte, int bit) {
  auto& node = inodes_.at(names_.at(path));
  node.current.at(byte) ^= static_cast<char>(1u << bit);
  if (byte < node.synced.size()) node.synced[byte] ^= static_cast<char>(1u << bit);
}

uint64_t MemFileSystem::file_size(const std::string& path) const {
  return inodes_.at(names_.at(path)).current.size();
}

}  // namespace synod::storage
