// A segmented, checksummed write-ahead log of typed records, with group commit and crash
// recovery. Byte format: docs/wal-format.md.
//
// Records are appended to an in-memory buffer; sync() writes the buffer into the current segment
// and makes it durable with one fdatasync, so every record appended since the previous sync shares
// that one sync (group commit). Segments are preallocated, and the log writes zeros a MiB ahead of
// its records, so a sync flushes data, not metadata (no unwritten extent to convert).
//
// After every sync the log writes a tiny "synced" marker record (not itself synced). On recovery a
// valid marker vouches that every byte before it was durable. That is how a torn tail (the
// unsynced end of the last segment, possibly garbage) is told apart from corruption (a bad record
// that was once durable): a bad record that a later valid marker vouches for is corruption, and
// recovery refuses to proceed, naming the file and offset; a bad record that nothing vouches for
// is the torn tail, cut off and zeroed. Every segment but the last ends with a seal record; a
// segment that ends without one is corrupt.
//
// Recovery looks for markers among bytes that may hold anything — a torn tail is mostly client
// payload — so a marker must be one that payload cannot forge: it carries its segment's salt (64
// random bits drawn when the segment is created and kept only in its header, which no client
// reads), the segment's index and its own offset. A copy of a marker in a value, in another
// segment or at another offset vouches for nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "storage/file_system.h"
#include "storage/identity.h"

namespace synod::storage {

// Format 2 salts the markers; a log of format 1 is read and migrated (docs/wal-format.md).
inline constexpr uint32_t kLogFormatVersion = 2;
inline constexpr uint32_t kOldestLogFormatVersion = 1;
inline constexpr uint64_t kSegmentHeaderSize = 48;
inline constexpr uint64_t kRecordHeaderSize = 9;
// Record types below kFirstUserRecordType belong to the log itself.
inline constexpr uint8_t kSyncedRecord = 1;
inline constexpr uint8_t kSealRecord = 2;
inline constexpr uint8_t kFirstUserRecordType = 16;
// A synced or seal record's payload: salt u64, segment index u64, its own offset u64.
inline constexpr uint64_t kMarkerPayloadSize = 24;
inline constexpr uint64_t kMarkerRecordSize = kRecordHeaderSize + kMarkerPayloadSize;

struct LogOptions {
  std::string dir;
  uint64_t cluster_id = 0;
  uint32_t node_id = 0;
  uint64_t segment_bytes = 64 << 20;  // preallocated size of each segment
  bool bug_skip_fdatasync = false;    // planted bug: sync() returns without fdatasync
  // Planted bug: a new segment's checkpoint is left for the next sync instead of being synced
  // with the segment's header, so a snapshot during that sync can remove the only durable copy.
  bool bug_unsynced_checkpoint = false;
  // Planted bug: recovery takes any synced or seal record with a good checksum as a marker, as
  // format 1 did, so a value holding a marker's bytes, torn in a crash, makes the start refuse.
  bool bug_marker_in_payload = false;
  // Draws each new segment's salt. Unset: the operating system's random source. The simulator
  // sets a seeded one so that a seed replays the same bytes.
  std::function<uint64_t()> salt_source;
  // How files nothing needs any more are removed (file_system.h). Unset: at once.
  FileRemover remove_files;
  // The data directory's identity (storage/identity.h), which ReplicaStorage::open checks or
  // creates before anything else.
  IdentityOptions identity;
};

struct LogRecord {
  uint8_t type = 0;
  std::string payload;
  uint64_t segment = 0;  // index of the segment holding it
  uint64_t offset = 0;   // byte offset within that segment's file
};

std::string segment_file_name(uint64_t index);

// The bytes of a synced or seal marker record naming `salt`, `segment` and `offset` (what the log
// writes; the simulator's clients forge ones with a guessed salt).
std::string encode_marker(uint8_t type, uint64_t salt, uint64_t segment, uint64_t offset);

// What a read of the log directory found, without changing anything (used by recovery and by
// `synod wal-dump`).
struct LogScan {
  struct Segment {
    uint64_t index = 0;
    std::string name;
    uint64_t end = 0;  // offset just past its last good record
    bool sealed = false;
    uint64_t cluster_id = 0;
    uint32_t node_id = 0;
    uint32_t version = 0;  // its format version (1: written before markers were salted)
    uint64_t salt = 0;     // format 2 and later
  };
  std::vector<Segment> segments;
  std::vector<LogRecord> records;  // user records only, in log order
  uint64_t torn_bytes = 0;         // nonzero bytes after the last good record of the last segment
  Status status;                   // corruption, naming the file and offset, or an I/O error
};

// Reads and verifies every segment in `dir`. Records before a corruption are still returned.
// `expect_cluster_id`/`expect_node_id` of 0 accept any. `bug_marker_in_payload`: see LogOptions.
LogScan scan_log(FileSystem& fs, const std::string& dir, uint64_t expect_cluster_id = 0,
                 uint32_t expect_node_id = 0, bool bug_marker_in_payload = false);

class Log {
 public:
  // Records to write at the start of every new segment (e.g. the acceptor's current promise), so
  // that removing older segments never loses state.
  using CarryOver = std::function<std::vector<std::pair<uint8_t, std::string>>()>;

  // Opens (creating if empty) the log in options.dir and recovers it: fills `records` with every
  // user record, in order; cuts off a torn tail; refuses on corruption. A last segment of format
  // 1 is sealed (durably) so that everything written from now on goes into format-2 segments.
  static Result<std::unique_ptr<Log>> open(FileSystem& fs, LogOptions options,
                                           std::vector<LogRecord>* records);
  ~Log();

  void set_carry_over(CarryOver carry_over) { carry_over_ = std::move(carry_over); }

  // Buffers a record; it is durable once a later sync() returns ok.
  void append(uint8_t type, std::string_view payload);
  // Writes the buffer and fdatasyncs: one sync for everything appended since the last one. After
  // an error the log is unusable (the caller must stop: what was buffered may or may not be on
  // disk, as after a crash).
  Status sync();
  // Writes the buffer into the segment without syncing it (sync() does this first). The
  // simulator calls it when a batch is handed to the disk, so a crash before the sync can tear it.
  Status flush();

  // sync() in three steps, for a driver that runs the fdatasync on another thread so that its
  // event loop keeps going meanwhile. begin_sync() writes the buffer into the segment (as flush())
  // and says whether anything written is not yet durable; if so, sync_file() — the fdatasync, and
  // the only step that may run on another thread — must follow, and then end_sync() with its
  // status. Between begin_sync() and end_sync() only append() may be called (it only buffers;
  // what it adds is written by the next begin_sync()), so no write races the fdatasync and the
  // synced marker that end_sync() writes vouches for exactly the bytes that fdatasync covered.
  Result<bool> begin_sync();
  Status sync_file();
  Status end_sync(const Status& synced);
  bool sync_in_flight() const { return sync_in_flight_; }

  // Where records are: append() buffers a record at buffered_bytes() (as it was just before the
  // append); the next flush() writes the whole buffer into one segment, and last_written() then
  // gives that segment and the offset of the buffer's first byte.
  uint64_t buffered_bytes() const { return buffer_.size(); }
  struct Position {
    uint64_t segment = 0;
    uint64_t offset = 0;
  };
  Position last_written() const { return last_written_; }
  // Reads back the record of `size` bytes (header included) that a flush wrote at `offset` of
  // `segment`; corruption if no intact record of that size is there.
  Result<LogRecord> read_record(uint64_t segment, uint64_t offset, uint64_t size);

  uint64_t current_segment() const { return segment_; }
  // Deletes every segment with an index below `index` (never the current one).
  Status remove_segments_below(uint64_t index);
  uint64_t first_segment() const { return first_segment_; }
  // Bytes of torn tail that recovery cut off when this log was opened.
  uint64_t torn_bytes_at_open() const { return torn_bytes_at_open_; }

  // Counters for benchmarks and metrics.
  uint64_t syncs() const { return syncs_; }
  uint64_t records_synced() const { return records_synced_; }
  uint64_t bytes_synced() const { return bytes_synced_; }

 private:
  Log(FileSystem& fs, LogOptions options) : fs_(fs), options_(std::move(options)) {}
  Status open_segment(uint64_t index, uint64_t offset, uint64_t salt);
  // Creates segment `index` holding its header and then `carried` (records), all durable.
  Status create_segment(uint64_t index, const std::string& carried = {});
  Status roll(uint64_t need);
  // A synced or seal record for offset `at` of the current segment.
  std::string marker(uint8_t type, uint64_t at);

  FileSystem& fs_;
  LogOptions options_;
  CarryOver carry_over_;
  std::unique_ptr<WritableFile> file_;
  uint64_t segment_ = 0;
  uint64_t salt_ = 0;  // the current segment's
  uint64_t first_segment_ = 0;
  uint64_t offset_ = 0;  // where the next write goes in the current segment
  // Up to here the current segment has been written with zeros (or records) by us: a write
  // below it changes no extent, so its fdatasync flushes data only. Preallocation alone leaves
  // unwritten extents, and converting one costs a metadata write in the fdatasync that follows
  // (on ext4 here, about 170 µs per sync against 120).
  uint64_t zeroed_end_ = 0;
  std::string buffer_;  // appended, not yet written
  Position last_written_;
  uint64_t buffered_records_ = 0;
  uint64_t unsynced_records_ = 0;  // written, not yet synced
  uint64_t unsynced_bytes_ = 0;
  bool failed_ = false;
  bool sync_in_flight_ = false;
  uint64_t torn_bytes_at_open_ = 0;
  uint64_t syncs_ = 0;
  uint64_t records_synced_ = 0;
  uint64_t bytes_synced_ = 0;
};

}  // namespace synod::storage
