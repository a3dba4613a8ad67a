// An in-memory file system with the crash semantics of file_system.h, for the simulator and for
// fault-injection tests. It keeps, per file, the bytes as of the last sync and the writes since;
// per namespace, the metadata operations (create, rename, remove) since the last directory sync.
//
// crash() models a power cut: each file goes back to its synced bytes, and — when tearing is on —
// keeps a random prefix of the writes since, the last of them cut at a random byte, with random
// bits flipped in the kept unsynced bytes when flipping is on; metadata operations after the last
// directory sync are kept up to a random point (a journaling file system keeps them in order).
//
// fail_after(n) makes every mutating operation after the next n fail with an I/O error, so a test
// can stop a writer at any write or sync point and then crash().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/rng.h"
#include "storage/file_system.h"

namespace synod::storage {

struct CrashFaults {
  bool tear = false;       // keep a random prefix of unsynced writes, the last one torn
  double flip_rate = 0.0;  // chance per kept unsynced write of flipping one of its bits
};

class MemFileSystem final : public FileSystem {
 public:
  MemFileSystem() = default;

  Status create_dir(const std::string& dir) override;
  Result<std::vector<std::string>> list(const std::string& dir) override;
  Result<bool> exists(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path) override;
  Result<std::string> read_file(const std::string& path) override;
  Result<std::string> read_range(const std::string& path, uint64_t offset, size_t n) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status sync_dir(const std::string& dir) override;

  // A power cut. Open files become unusable (their operations fail).
  void crash(Rng& rng, const CrashFaults& faults);
  // Every mutating operation after the next `n` fails; -1 turns this off.
  void fail_after(int64_t n) { fail_after_ = n; }
  uint64_t mutating_ops() const { return mutating_ops_; }
  uint64_t syncs() const { return syncs_; }
  // Flips one bit of a file's content, synced or not (bit rot), for corruption tests.
  void flip_bit(const std::string& path, uint64_t byte, int bit);
  // Current size of a file's content.
  uint64_t file_size(const std::string& path) const;

 private:
  friend class MemWritableFile;
  struct Op {
    enum Kind { kWrite, kTruncate } kind;
    uint64_t offset = 0;  // for kWrite; the size for kTruncate
    std::string data;
  };
  struct Inode {
    std::string synced;
    std::string current;
    std::vector<Op> unsynced;
  };
  struct MetaOp {
    enum Kind { kLink, kUnlink, kRename } kind;
    std::string path;
    std::string to;  // for kRename
    uint64_t inode = 0;
  };

  Status check_fail();
  bool is_dir(const std::string& path) const;
  void link(const std::string& path, uint64_t inode);
  void unlink(const std::string& path);

  std::map<uint64_t, Inode> inodes_;
  std::map<std::string, uint64_t> names_;         // the current namespace
  std::map<std::string, uint64_t> synced_names_;  // as of the last directory sync
  std::vector<MetaOp> journal_;                   // since the last directory sync
  std::vector<std::string> dirs_;
  uint64_t next_inode_ = 1;
  uint64_t generation_ = 0;  // bumped by crash(); stale handles fail
  int64_t fail_after_ = -1;
  uint64_t mutating_ops_ = 0;
  uint64_t syncs_ = 0;
};

}  // namespace synod::storage
