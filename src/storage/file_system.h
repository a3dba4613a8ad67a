// The narrow file-system interface through which all storage code does its I/O (LevelDB's Env,
// narrowed). Two implementations: PosixFileSystem for production and MemFileSystem, whose crash
// loses what was not synced, for the simulator and fault-injection tests.
//
// Durability model every implementation follows, and the storage code relies on:
//  - data written to a file is durable only after sync() on it returns ok;
//  - a file's creation, rename or removal is durable only after sync_dir() on its directory;
//  - a crash keeps each file's synced bytes, and may keep any prefix of the bytes written since
//    (a torn write), possibly with bits flipped in that unsynced part.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace synod::storage {

// A file opened for writing at any offset (the log writes into preallocated segments).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status write_at(uint64_t offset, std::string_view data) = 0;
  // Makes every byte written so far durable (fdatasync).
  virtual Status sync() = 0;
  // Reserves `size` bytes (reading as zeros) so later writes need no metadata update to be
  // durable.
  virtual Status preallocate(uint64_t size) = 0;
  virtual Status truncate(uint64_t size) = 0;
  virtual Status close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Status create_dir(const std::string& dir) = 0;                      // ok if it exists
  virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;  // names, sorted
  virtual Result<bool> exists(const std::string& path) = 0;
  // Opens for writing; creates the file if missing, keeps its contents otherwise.
  virtual Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path) = 0;
  virtual Result<std::string> read_file(const std::string& path) = 0;
  // Up to `n` bytes from `offset` (fewer at the end of the file; none past it).
  virtual Result<std::string> read_range(const std::string& path, uint64_t offset, size_t n) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  virtual Status remove(const std::string& path) = 0;
  virtual Status sync_dir(const std::string& dir) = 0;
};

std::unique_ptr<FileSystem> make_posix_file_system();

inline std::string join_path(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// Parses "<prefix><20 decimal digits><suffix>" (segment and snapshot file names) into `number`.
bool parse_numbered_name(std::string_view name, std::string_view prefix, std::string_view suffix,
                         uint64_t& number);

// Removes files nothing needs any more (log segments a snapshot made unnecessary, older
// snapshots), in order, then syncs their directory. Unlinking a large file can take tens of ms,
// so the server hands this to a thread of its own; the simulator does it later, or never (a
// crash first). Either way is safe: recovery ignores segments and snapshots below the newest
// snapshot, and segments go lowest first, so those left stay contiguous.
using FileRemover = std::function<void(std::vector<std::string> paths, std::string dir)>;
// Through `remover` if set, else at once on this thread (remove_in_order).
Status remove_files(FileSystem& fs, const FileRemover& remover, std::vector<std::string> paths,
                    const std::string& dir);
// What every FileRemover does with a batch: removes `paths` in order, then syncs `dir`. A file
// already gone counts as removed (two listings may both name an older snapshot). Once one cannot
// be removed, none after it is, in this batch or later ones (`stuck` remembers): the next may be
// a log segment above a kept one, and recovery refuses a directory whose segments have a gap.
// What is kept is only disk space, which a restart's compaction frees in order. Returns the
// failure, or that the batch was skipped.
Status remove_in_order(FileSystem& fs, const std::vector<std::string>& paths,
                       const std::string& dir, bool& stuck);

// Writes `data` to `dir/name` atomically: a temporary file, sync, rename, sync the directory.
// After a crash either the old file (or none) or the whole new one is there.
Status write_file_atomically(FileSystem& fs, const std::string& dir, const std::string& name,
                             std::string_view data);

}  // namespace synod::storage
