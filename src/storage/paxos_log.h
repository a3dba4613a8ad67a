// The acceptor's durable state — promised ballot, accepted (slot, ballot, value) entries, chosen
// marks — as records in the write-ahead log (storage/log.h). Appending a Ready's PersistBatch and
// syncing makes exactly that batch durable; opening the log rebuilds the DurableState that every
// synced batch produced (DurableState::apply, in order), so a restart begins where the last
// acknowledged promise left off. Record payloads: docs/wal-format.md.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/coding.h"
#include "paxos/codec.h"
#include "paxos/ready.h"
#include "storage/log.h"

namespace synod::storage {

enum RecordType : uint8_t {
  kPromiseRecord = 16,      // the acceptor's newest promise
  kAcceptedRecord = 17,     // an accepted proposal for one slot
  kChosenRecord = 18,       // a slot's chosen value
  kCheckpointRecord = 19,   // the promise, repeated at the start of every segment
  kTimeHorizonRecord = 20,  // the acceptor's time horizon (also repeated in every segment)
};

using paxos::decode_value;  // the value coding lives in paxos/codec.h
using paxos::encode_value;

// One readable line for a record, for `synod wal-dump`; a payload that does not decode says so.
// A value's commands are shown by `show` (the storage layer does not know what a payload means:
// wal-dump passes the key-value store's decoder), or by their ids without it.
using CommandShower = std::function<std::string(const paxos::Command&)>;
std::string describe_record(uint8_t type, std::string_view payload, const CommandShower& show = {});

class PaxosLog {
 public:
  static Result<std::unique_ptr<PaxosLog>> open(FileSystem& fs, const LogOptions& options,
                                                paxos::DurableState* state);

  // Buffers the batch; durable once sync() returns ok.
  void append(const paxos::PersistBatch& batch);
  // Writes what was appended (see Log::flush); sync() writes and makes it durable.
  Status flush();
  Status sync();
  // sync() in steps, the fdatasync on another thread (see Log::begin_sync).
  Result<bool> begin_sync();
  Status sync_file() { return log_->sync_file(); }
  Status end_sync(const Status& synced);
  bool sync_in_flight() const { return log_->sync_in_flight(); }
  // Removes every segment that holds nothing above `upto` (which a durable snapshot covers).
  Status compact(Slot upto);

  // The chosen values in the log, read back (paxos::ChosenLog). Every chosen record a flush wrote,
  // or that recovery found, above the last compaction is indexed by slot (the first one of a slot
  // stands, as in replay). holds_chosen: the slot's record is durable — a sync covered it, or
  // recovery found it (Log::open syncs the last segment, and every earlier one was synced when
  // the log rolled past it) — so that a replica which lets go of the value, and answers for the
  // slot as chosen, still knows it after a crash.
  bool holds_chosen(Slot slot) const {
    auto it = chosen_at_.find(slot);
    return it != chosen_at_.end() && it->second.flush <= synced_flush_;
  }
  Result<paxos::Value> read_chosen(Slot slot);
  // Both, for paxos::Replica::set_chosen_log (the log must outlive the replica's use of it).
  paxos::ChosenLog chosen_log();

  Log& log() { return *log_; }

 private:
  explicit PaxosLog(std::unique_ptr<Log> log) : log_(std::move(log)) {}
  void note_slot(uint64_t segment, Slot slot);

  std::unique_ptr<Log> log_;
  Ballot promised_;
  paxos::TimeHorizon time_horizon_;
  std::map<uint64_t, Slot> max_slot_;  // per segment, the highest slot any record mentions
  Slot pending_max_ = 0;               // in records appended since the last sync
  struct Location {
    uint64_t segment = 0;
    uint64_t offset = 0;
    uint64_t size = 0;   // the record's bytes, header included
    uint64_t flush = 0;  // the flush that wrote it (1: found by recovery)
  };
  std::map<Slot, Location> chosen_at_;
  // Chosen records appended since the last flush, at their offsets in the log's buffer.
  std::vector<std::pair<Slot, Location>> unwritten_chosen_;
  uint64_t flushes_ = 1;        // flushes since the log opened, counting recovery as the first
  uint64_t synced_flush_ = 1;   // everything written up to this flush is durable
  uint64_t syncing_flush_ = 0;  // ... and up to this one once the sync in flight ends well
};

// Rebuilds the state the records describe (used by open() and by tests).
Status replay(const std::vector<LogRecord>& records, paxos::DurableState& state);

}  // namespace synod::storage
