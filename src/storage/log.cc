#include "storage/log.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "base/coding.h"
#include "base/crc32c.h"

namespace synod::storage {
namespace {

constexpr char kMagic[8] = {'S', 'Y', 'N', 'O', 'D', 'W', 'A', 'L'};

std::string encode_header(uint64_t cluster_id, uint32_t node_id, uint64_t index, uint64_t salt) {
  std::string h(kMagic, sizeof kMagic);
  put_u32(h, kLogFormatVersion);
  put_u32(h, node_id);
  put_u64(h, cluster_id);
  put_u64(h, index);
  put_u64(h, salt);
  put_u32(h, 0);  // reserved
  put_u32(h, crc32c(h));
  return h;
}

// Format 1's header had no salt: 40 bytes, its CRC at 36.
uint64_t header_size(uint32_t version) {
  return version == 1 ? 40 : kSegmentHeaderSize;
}

uint64_t random_salt() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

bool parse_segment_name(const std::string& name, uint64_t& index) {
  return parse_numbered_name(name, "wal-", ".log", index);
}

// Appends a record of `type` holding `payload` to `out`.
void append_record(std::string& out, uint8_t type, std::string_view payload) {
  const size_t at = out.size();
  put_u32(out, 0);
  put_u32(out, static_cast<uint32_t>(payload.size()));
  put_u8(out, type);
  out.append(payload);
  store_u32(out.data() + at, crc32c(out.data() + at + 4, 5 + payload.size()));
}

// A record at `p` whose header and checksum are intact.
struct Parsed {
  bool ok = false;
  uint8_t type = 0;
  uint32_t length = 0;
};

Parsed parse_record(std::string_view content, uint64_t p) {
  Parsed r;
  if (p + kRecordHeaderSize > content.size()) return r;
  const char* h = content.data() + p;
  const uint32_t crc = load_u32(h);
  const uint32_t length = load_u32(h + 4);
  const auto type = static_cast<uint8_t>(h[8]);
  if (type == 0 || length > content.size() - p - kRecordHeaderSize) return r;
  if (crc32c(h + 4, 5 + static_cast<size_t>(length)) != crc) return r;
  r.ok = true;
  r.type = type;
  r.length = length;
  return r;
}

// Whether the intact record `r` at `p` is a synced or seal marker that `seg` wrote there. From
// format 2 on, a marker names the segment's salt, its index and its own offset, so no copy of one
// — in a value, from another segment or at another offset — passes. Format 1's markers were
// empty; they are trusted only in a format-1 segment (and by the planted bug, in any).
bool is_marker(std::string_view content, uint64_t p, const Parsed& r, const LogScan::Segment& seg,
               bool bug_marker_in_payload) {
  if (r.type != kSyncedRecord && r.type != kSealRecord) return false;
  if (seg.version == 1 || bug_marker_in_payload) return true;
  if (r.length != kMarkerPayloadSize) return false;
  const char* m = content.data() + p + kRecordHeaderSize;
  return load_u64(m) == seg.salt && load_u64(m + 8) == seg.index && load_u64(m + 16) == p;
}

// Offset of the first marker of `seg` after `from`, if any. A record's type byte (its ninth) is
// never zero, so candidates are the positions eight bytes before a nonzero byte.
std::optional<uint64_t> find_voucher(std::string_view content, uint64_t from,
                                     const LogScan::Segment& seg, bool bug_marker_in_payload) {
  for (uint64_t q = from + kRecordHeaderSize - 1; q < content.size(); ++q) {
    if (content[q] == '\0') continue;
    const uint64_t p = q - (kRecordHeaderSize - 1);
    if (p <= from) continue;
    Parsed r = parse_record(content, p);
    if (r.ok && is_marker(content, p, r, seg, bug_marker_in_payload)) return p;
  }
  return std::nullopt;
}

// Checks a segment's header and fills in what it says; returns the header's size.
Result<uint64_t> parse_header(std::string_view content, const std::string& path,
                              LogScan::Segment& seg) {
  auto bad = [&path] {
    return Status::corruption(fmt::format("{}: bad segment header at offset 0", path));
  };
  if (content.size() < 12 || std::memcmp(content.data(), kMagic, sizeof kMagic) != 0) return bad();
  seg.version = load_u32(content.data() + 8);
  if (seg.version < kOldestLogFormatVersion || seg.version > kLogFormatVersion) {
    return Status::corruption(
        fmt::format("{}: the segment header at offset 0 says format version {}, which this build "
                    "does not read (it reads {} to {})",
                    path, seg.version, kOldestLogFormatVersion, kLogFormatVersion));
  }
  const uint64_t size = header_size(seg.version);
  if (content.size() < size ||
      crc32c(content.data(), size - 4) != load_u32(content.data() + size - 4))
    return bad();
  seg.node_id = load_u32(content.data() + 12);
  seg.cluster_id = load_u64(content.data() + 16);
  if (seg.version >= 2) seg.salt = load_u64(content.data() + 32);
  const uint64_t header_index = load_u64(content.data() + 24);
  if (header_index != seg.index) {
    return Status::corruption(fmt::format("{}: header says segment {}, file name says {}", path,
                                          header_index, seg.index));
  }
  return size;
}

}  // namespace

std::string encode_marker(uint8_t type, uint64_t salt, uint64_t segment, uint64_t offset) {
  SYNOD_ASSERT(type == kSyncedRecord || type == kSealRecord, "not a marker type");
  std::string payload;
  put_u64(payload, salt);
  put_u64(payload, segment);
  put_u64(payload, offset);
  std::string out;
  append_record(out, type, payload);
  return out;
}

std::string segment_file_name(uint64_t index) {
  return fmt::format("wal-{:020}.log", index);
}

LogScan scan_log(FileSystem& fs, const std::string& dir, uint64_t expect_cluster_id,
                 uint32_t expect_node_id, bool bug_marker_in_payload) {
  LogScan scan;
  auto names = fs.list(dir);
  if (!names.is_ok()) {
    scan.status = names.status();
    return scan;
  }
  for (const auto& name : *names) {
    uint64_t index = 0;
    if (parse_segment_name(name, index)) scan.segments.push_back({index, name});
  }
  for (size_t i = 0; i < scan.segments.size(); ++i) {
    auto& seg = scan.segments[i];
    const bool last = i + 1 == scan.segments.size();
    const std::string path = join_path(dir, seg.name);
    if (i > 0 && seg.index != scan.segments[i - 1].index + 1) {
      scan.status = Status::corruption(
          fmt::format("{}: segment {} is missing",
                      join_path(dir, segment_file_name(scan.segments[i - 1].index + 1)),
                      scan.segments[i - 1].index + 1));
      return scan;
    }
    auto content_or = fs.read_file(path);
    if (!content_or.is_ok()) {
      scan.status = content_or.status();
      return scan;
    }
    const std::string& content = *content_or;
    auto header = parse_header(content, path, seg);
    if (!header.is_ok()) {
      scan.status = header.status();
      return scan;
    }
    // A migrated log has format-1 segments below format-2 ones, never the other way round.
    if (i > 0 && seg.version < scan.segments[i - 1].version) {
      scan.status =
          Status::corruption(fmt::format("{}: format version {} after a segment of version {}",
                                         path, seg.version, scan.segments[i - 1].version));
      return scan;
    }
    if ((expect_cluster_id != 0 && seg.cluster_id != expect_cluster_id) ||
        (expect_node_id != 0 && seg.node_id != expect_node_id)) {
      scan.status = Status::invalid_argument(
          fmt::format("{} belongs to cluster {} node {}, not cluster {} node {}", path,
                      seg.cluster_id, seg.node_id, expect_cluster_id, expect_node_id));
      return scan;
    }
    uint64_t p = *header;
    for (;;) {
      Parsed r = parse_record(content, p);
      if (!r.ok) break;
      if (r.type < kFirstUserRecordType && !is_marker(content, p, r, seg, bug_marker_in_payload)) {
        break;  // not a record this segment wrote here
      }
      if (r.type == kSealRecord) {
        seg.sealed = true;
        p += kRecordHeaderSize + r.length;
        break;
      }
      if (r.type >= kFirstUserRecordType) {
        scan.records.push_back(
            {r.type, content.substr(p + kRecordHeaderSize, r.length), seg.index, p});
      }
      p += kRecordHeaderSize + r.length;
    }
    seg.end = p;
    if (seg.sealed) continue;
    if (!last) {
      scan.status = Status::corruption(fmt::format(
          "{}: bad record at offset {} (the segment is not the last and has no seal)", path, p));
      return scan;
    }
    if (auto voucher = find_voucher(content, p, seg, bug_marker_in_payload)) {
      scan.status = Status::corruption(fmt::format(
          "{}: bad record at offset {} (a valid record at offset {} shows it had been synced)",
          path, p, *voucher));
      return scan;
    }
    auto nonzero = std::string_view(content).find_last_not_of('\0');
    if (nonzero != std::string_view::npos && nonzero >= p) scan.torn_bytes = nonzero + 1 - p;
  }
  return scan;
}

Result<std::unique_ptr<Log>> Log::open(FileSystem& fs, LogOptions options,
                                       std::vector<LogRecord>* records) {
  SYNOD_RETURN_IF_ERROR(fs.create_dir(options.dir));
  LogScan scan =
      scan_log(fs, options.dir, options.cluster_id, options.node_id, options.bug_marker_in_payload);
  SYNOD_RETURN_IF_ERROR(scan.status);
  std::unique_ptr<Log> log(new Log(fs, options));
  log->torn_bytes_at_open_ = scan.torn_bytes;
  // Leftovers of a segment or snapshot whose creation a crash interrupted.
  auto names = fs.list(options.dir);
  if (!names.is_ok()) return names.status();
  for (const auto& name : *names) {
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0)
      SYNOD_RETURN_IF_ERROR(fs.remove(join_path(options.dir, name)));
  }
  if (scan.segments.empty()) {
    SYNOD_RETURN_IF_ERROR(log->create_segment(1));
    log->first_segment_ = 1;
  } else {
    log->first_segment_ = scan.segments.front().index;
    const auto& last = scan.segments.back();
    SYNOD_RETURN_IF_ERROR(log->open_segment(last.index, last.end, last.salt));
    // Cut the torn tail and zero it, durably, so that no stale record past the new end can ever
    // be mistaken for one of ours.
    SYNOD_RETURN_IF_ERROR(log->file_->truncate(last.end));
    SYNOD_RETURN_IF_ERROR(
        log->file_->preallocate(std::max(options.segment_bytes, last.end + 2 * kMarkerRecordSize)));
    if (!last.sealed && last.version < kLogFormatVersion) {
      // Migration: a format-1 segment is sealed the way format 1 sealed (an empty seal record),
      // so it is never the last segment again and its forgeable markers are never searched for.
      std::string seal;
      append_record(seal, kSealRecord, {});
      SYNOD_RETURN_IF_ERROR(log->file_->write_at(last.end, seal));
      log->offset_ = UINT64_MAX;
    }
    SYNOD_RETURN_IF_ERROR(log->file_->sync());
    if (last.sealed) log->offset_ = UINT64_MAX;  // the next sync starts a new segment
  }
  if (records != nullptr) *records = std::move(scan.records);
  return log;
}

Log::~Log() {
  if (file_) (void)file_->close();
}

Status Log::open_segment(uint64_t index, uint64_t offset, uint64_t salt) {
  auto file = fs_.open_writable(join_path(options_.dir, segment_file_name(index)));
  if (!file.is_ok()) return file.status();
  file_ = std::move(*file);
  segment_ = index;
  salt_ = salt;
  offset_ = offset;
  zeroed_end_ = offset;
  return Status::ok();
}

Status Log::create_segment(uint64_t index, const std::string& carried) {
  // Created under a temporary name and renamed once its header and carried-over records are
  // durable, so a segment file that exists always has a valid header, and its checkpoint (the
  // promise) is on disk before anything could remove the older segments that also hold it —
  // even while the first sync of records written after it is still running.
  const std::string name = segment_file_name(index);
  const std::string tmp = join_path(options_.dir, name + ".tmp");
  auto file = fs_.open_writable(tmp);
  if (!file.is_ok()) return file.status();
  SYNOD_RETURN_IF_ERROR((*file)->truncate(0));
  SYNOD_RETURN_IF_ERROR((*file)->preallocate(options_.segment_bytes));
  // A fresh salt for every segment ever created, drawn before any record of it exists, so no
  // payload can be written knowing it (see is_marker in scan_log).
  const uint64_t salt = options_.salt_source ? options_.salt_source() : random_salt();
  SYNOD_RETURN_IF_ERROR((*file)->write_at(
      0, encode_header(options_.cluster_id, options_.node_id, index, salt) + carried));
  SYNOD_RETURN_IF_ERROR((*file)->sync());
  SYNOD_RETURN_IF_ERROR((*file)->close());
  SYNOD_RETURN_IF_ERROR(fs_.rename(tmp, join_path(options_.dir, name)));
  SYNOD_RETURN_IF_ERROR(fs_.sync_dir(options_.dir));
  return open_segment(index, kSegmentHeaderSize + carried.size(), salt);
}

std::string Log::marker(uint8_t type, uint64_t at) {
  return encode_marker(type, salt_, segment_, at);
}

void Log::append(uint8_t type, std::string_view payload) {
  SYNOD_ASSERT(type >= kFirstUserRecordType, "record type reserved for the log");
  append_record(buffer_, type, payload);
  ++buffered_records_;
}

Status Log::roll(uint64_t need) {
  if (file_ && offset_ != UINT64_MAX) {
    SYNOD_RETURN_IF_ERROR(file_->write_at(offset_, marker(kSealRecord, offset_)));
    SYNOD_RETURN_IF_ERROR(file_->sync());
    SYNOD_RETURN_IF_ERROR(file_->close());
    ++syncs_;
    records_synced_ += unsynced_records_;
    bytes_synced_ += unsynced_bytes_;
    unsynced_records_ = 0;
    unsynced_bytes_ = 0;
  }
  file_.reset();
  std::string carried;
  if (carry_over_) {
    for (const auto& [type, payload] : carry_over_()) append_record(carried, type, payload);
  }
  const uint64_t next = segment_ + 1;
  const uint64_t saved = options_.segment_bytes;
  options_.segment_bytes =
      std::max(saved, kSegmentHeaderSize + carried.size() + need + 2 * kMarkerRecordSize);
  // (The planted bug leaves the checkpoint in the buffer for the next sync, as before 604a2f3.)
  const bool planted = options_.bug_unsynced_checkpoint;
  Status s = create_segment(next, planted ? std::string() : carried);
  options_.segment_bytes = saved;
  SYNOD_RETURN_IF_ERROR(s);
  if (planted) buffer_.insert(0, carried);
  return Status::ok();
}

Status Log::flush() {
  SYNOD_ASSERT(!sync_in_flight_, "the log is written while a sync is in flight");
  if (failed_) return Status::io_error("the log failed earlier and must be reopened");
  if (buffer_.empty()) return Status::ok();
  Status s = [&]() -> Status {
    const uint64_t appended = buffer_.size();
    if (offset_ == UINT64_MAX ||
        (offset_ > kSegmentHeaderSize &&
         offset_ + buffer_.size() + 2 * kMarkerRecordSize > options_.segment_bytes)) {
      // Rolling syncs the old segment, so anything written there unsynced is durable now.
      SYNOD_RETURN_IF_ERROR(roll(buffer_.size()));
    }
    // (The planted bug unsynced_checkpoint puts the new segment's checkpoint in front.)
    last_written_ = Position{segment_, offset_ + (buffer_.size() - appended)};
    // Zeros ahead of the records, a MiB at a time (see zeroed_end_), within the segment.
    const uint64_t end = offset_ + buffer_.size() + 2 * kMarkerRecordSize;
    if (end > zeroed_end_ && zeroed_end_ < options_.segment_bytes) {
      constexpr uint64_t kZeroChunk = 1 << 20;
      const uint64_t to = std::min(std::max(end, zeroed_end_ + kZeroChunk), options_.segment_bytes);
      if (to > end) {
        SYNOD_RETURN_IF_ERROR(file_->write_at(end, std::string(to - end, '\0')));
        zeroed_end_ = to;
      }
    }
    SYNOD_RETURN_IF_ERROR(file_->write_at(offset_, buffer_));
    offset_ += buffer_.size();
    zeroed_end_ = std::max(zeroed_end_, offset_);
    unsynced_records_ += buffered_records_;
    unsynced_bytes_ += buffer_.size();
    buffer_.clear();
    buffered_records_ = 0;
    return Status::ok();
  }();
  if (!s.is_ok()) failed_ = true;
  return s;
}

Result<LogRecord> Log::read_record(uint64_t segment, uint64_t offset, uint64_t size) {
  const std::string path = join_path(options_.dir, segment_file_name(segment));
  auto bytes = fs_.read_range(path, offset, static_cast<size_t>(size));
  if (!bytes.is_ok()) return bytes.status();
  const Parsed r = parse_record(*bytes, 0);
  if (!r.ok || kRecordHeaderSize + r.length != bytes->size() || r.type < kFirstUserRecordType) {
    return Status::corruption(
        fmt::format("{}: no intact record of {} bytes at offset {}", path, size, offset));
  }
  return LogRecord{r.type, bytes->substr(kRecordHeaderSize), segment, offset};
}

Status Log::sync() {
  auto pending = begin_sync();
  if (!pending.is_ok()) return pending.status();
  if (!*pending) return Status::ok();
  return end_sync(sync_file());
}

Result<bool> Log::begin_sync() {
  SYNOD_ASSERT(!sync_in_flight_, "a sync is already in flight");
  SYNOD_RETURN_IF_ERROR(flush());
  if (unsynced_bytes_ == 0) return false;
  sync_in_flight_ = true;
  return true;
}

Status Log::sync_file() {
  if (options_.bug_skip_fdatasync) return Status::ok();
  return file_->sync();
}

Status Log::end_sync(const Status& synced) {
  SYNOD_ASSERT(sync_in_flight_, "end_sync without begin_sync");
  sync_in_flight_ = false;
  Status s = [&]() -> Status {
    SYNOD_RETURN_IF_ERROR(synced);
    ++syncs_;
    records_synced_ += unsynced_records_;
    bytes_synced_ += unsynced_bytes_;
    unsynced_records_ = 0;
    unsynced_bytes_ = 0;
    // Vouch for everything before it; deliberately not synced (see the header comment).
    const std::string synced_marker = marker(kSyncedRecord, offset_);
    SYNOD_RETURN_IF_ERROR(file_->write_at(offset_, synced_marker));
    offset_ += synced_marker.size();
    return Status::ok();
  }();
  if (!s.is_ok()) failed_ = true;
  return s;
}

Status Log::remove_segments_below(uint64_t index) {
  index = std::min(index, segment_);
  std::vector<std::string> paths;
  for (; first_segment_ < index; ++first_segment_)
    paths.push_back(join_path(options_.dir, segment_file_name(first_segment_)));
  return remove_files(fs_, options_.remove_files, std::move(paths), options_.dir);
}

}  // namespace synod::storage
