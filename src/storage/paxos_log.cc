#include "storage/paxos_log.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/coding.h"

namespace synod::storage {
namespace {

using paxos::decode_ballot;
using paxos::encode_ballot;

std::string promise_payload(const Ballot& b) {
  std::string out;
  encode_ballot(out, b);
  return out;
}

std::string horizon_payload(const paxos::TimeHorizon& h) {
  std::string out;
  encode_ballot(out, h.ballot);
  put_u64(out, h.ms);
  return out;
}

Status bad_record(const LogRecord& r, const std::string& what) {
  return Status::corruption(fmt::format("{} (segment {}, offset {}): {}",
                                        segment_file_name(r.segment), r.segment, r.offset, what));
}

}  // namespace

namespace {

std::string describe_value(const paxos::Value& v, const CommandShower& show) {
  if (!show || v.is_noop()) return paxos::to_string(v);
  std::string out;
  for (const paxos::Command& c : v.commands)
    out += fmt::format("\n              c{}.{} {}", c.id.client, c.id.seq, show(c));
  return out;
}

}  // namespace

std::string describe_record(uint8_t type, std::string_view payload, const CommandShower& show) {
  Reader in(payload);
  Ballot b;
  Slot slot = 0;
  paxos::Value v;
  uint64_t ms = 0;
  switch (type) {
    case kTimeHorizonRecord:
      if (decode_ballot(in, b) && in.u64(ms) && in.done())
        return fmt::format("time horizon ballot={} {} ms", to_string(b), ms);
      break;
    case kPromiseRecord:
      if (decode_ballot(in, b) && in.done()) return "promise ballot=" + to_string(b);
      break;
    case kCheckpointRecord:
      if (decode_ballot(in, b) && in.done()) return "checkpoint promise=" + to_string(b);
      break;
    case kAcceptedRecord:
      if (in.u64(slot) && decode_ballot(in, b) && decode_value(in, v) && in.done())
        return fmt::format("accepted slot={} ballot={} value={}", slot, to_string(b),
                           describe_value(v, show));
      break;
    case kChosenRecord:
      if (in.u64(slot) && decode_value(in, v) && in.done())
        return fmt::format("chosen slot={} value={}", slot, describe_value(v, show));
      break;
    default:
      return fmt::format("unknown record type {} ({} bytes)", type, payload.size());
  }
  return fmt::format("undecodable record type {} ({} bytes)", type, payload.size());
}

Status replay(const std::vector<LogRecord>& records, paxos::DurableState& state) {
  for (const auto& r : records) {
    Reader in(r.payload);
    paxos::PersistBatch batch;
    switch (r.type) {
      case kPromiseRecord:
      case kCheckpointRecord: {
        Ballot b;
        if (!decode_ballot(in, b) || !in.done()) return bad_record(r, "undecodable promise");
        // A checkpoint repeats a promise; it never lowers one.
        if (r.type == kPromiseRecord || state.promised < b) batch.promised = b;
        break;
      }
      case kTimeHorizonRecord: {
        paxos::TimeHorizon h;
        if (!decode_ballot(in, h.ballot) || !in.u64(h.ms) || !in.done())
          return bad_record(r, "undecodable time horizon");
        batch.time_horizon = h;  // only a newer one replaces it (DurableState::apply)
        break;
      }
      case kAcceptedRecord: {
        paxos::AcceptedEntry e;
        if (!in.u64(e.slot) || !decode_ballot(in, e.proposal.ballot) ||
            !decode_value(in, e.proposal.value) || !in.done())
          return bad_record(r, "undecodable accepted entry");
        batch.accepted.push_back(std::move(e));
        break;
      }
      case kChosenRecord: {
        paxos::SlotValue sv;
        if (!in.u64(sv.slot) || !decode_value(in, sv.value) || !in.done())
          return bad_record(r, "undecodable chosen mark");
        batch.chosen.push_back(std::move(sv));
        break;
      }
      default:
        return bad_record(r, fmt::format("unknown record type {}", r.type));
    }
    state.apply(batch);
  }
  return Status::ok();
}

Result<std::unique_ptr<PaxosLog>> PaxosLog::open(FileSystem& fs, const LogOptions& options,
                                                 paxos::DurableState* state) {
  std::vector<LogRecord> records;
  auto log = Log::open(fs, options, &records);
  if (!log.is_ok()) return log.status();
  paxos::DurableState recovered;
  SYNOD_RETURN_IF_ERROR(replay(records, recovered));
  std::unique_ptr<PaxosLog> plog(new PaxosLog(std::move(*log)));
  plog->promised_ = recovered.promised;
  plog->time_horizon_ = recovered.time_horizon;
  for (const auto& r : records) {
    Reader in(r.payload);
    Slot slot = 0;
    if ((r.type == kAcceptedRecord || r.type == kChosenRecord) && in.u64(slot))
      plog->note_slot(r.segment, slot);
    else
      plog->note_slot(r.segment, 0);
    if (r.type == kChosenRecord) {
      plog->chosen_at_.emplace(
          slot, Location{r.segment, r.offset, kRecordHeaderSize + r.payload.size(), 1});
    }
  }
  plog->log_->set_carry_over([p = plog.get()] {
    std::vector<std::pair<uint8_t, std::string>> out;
    out.emplace_back(kCheckpointRecord, promise_payload(p->promised_));
    // The horizon too: compaction may remove the segment that last recorded it.
    if (p->time_horizon_.ms != 0)
      out.emplace_back(kTimeHorizonRecord, horizon_payload(p->time_horizon_));
    return out;
  });
  if (state != nullptr) *state = std::move(recovered);
  return plog;
}

void PaxosLog::note_slot(uint64_t segment, Slot slot) {
  auto& m = max_slot_[segment];
  m = std::max(m, slot);
}

void PaxosLog::append(const paxos::PersistBatch& batch) {
  std::string payload;
  if (batch.promised) {
    promised_ = *batch.promised;
    log_->append(kPromiseRecord, promise_payload(*batch.promised));
  }
  if (batch.time_horizon) {
    if (batch.time_horizon->supersedes(time_horizon_)) time_horizon_ = *batch.time_horizon;
    log_->append(kTimeHorizonRecord, horizon_payload(*batch.time_horizon));
  }
  for (const auto& e : batch.accepted) {
    payload.clear();
    put_u64(payload, e.slot);
    encode_ballot(payload, e.proposal.ballot);
    encode_value(payload, e.proposal.value);
    log_->append(kAcceptedRecord, payload);
    pending_max_ = std::max(pending_max_, e.slot);
  }
  for (const auto& c : batch.chosen) {
    payload.clear();
    put_u64(payload, c.slot);
    encode_value(payload, c.value);
    unwritten_chosen_.emplace_back(
        c.slot, Location{0, log_->buffered_bytes(), kRecordHeaderSize + payload.size()});
    log_->append(kChosenRecord, payload);
    pending_max_ = std::max(pending_max_, c.slot);
  }
}

Status PaxosLog::flush() {
  SYNOD_RETURN_IF_ERROR(log_->flush());
  // Everything buffered went into the segment that is current now (a roll happens before the
  // write), so that is where those slots live — compaction must not remove it early.
  note_slot(log_->current_segment(), pending_max_);
  pending_max_ = 0;
  const Log::Position written = log_->last_written();
  ++flushes_;
  for (const auto& [slot, at] : unwritten_chosen_) {
    chosen_at_.emplace(slot,
                       Location{written.segment, written.offset + at.offset, at.size, flushes_});
  }
  unwritten_chosen_.clear();
  return Status::ok();
}

Result<paxos::Value> PaxosLog::read_chosen(Slot slot) {
  auto it = chosen_at_.find(slot);
  if (it == chosen_at_.end())
    return Status::not_found(fmt::format("no chosen record of slot {} in the log", slot));
  auto record = log_->read_record(it->second.segment, it->second.offset, it->second.size);
  if (!record.is_ok()) return record.status();
  Reader in(record->payload);
  Slot read = 0;
  paxos::Value value;
  if (record->type != kChosenRecord || !in.u64(read) || read != slot || !decode_value(in, value) ||
      !in.done())
    return bad_record(*record, fmt::format("not the chosen record of slot {}", slot));
  return value;
}

paxos::ChosenLog PaxosLog::chosen_log() {
  return paxos::ChosenLog{[this](Slot slot) { return holds_chosen(slot); },
                          [this](Slot slot) -> std::optional<paxos::Value> {
                            auto value = read_chosen(slot);
                            if (!value.is_ok()) return std::nullopt;
                            return std::move(*value);
                          }};
}

Status PaxosLog::sync() {
  SYNOD_RETURN_IF_ERROR(flush());
  SYNOD_RETURN_IF_ERROR(log_->sync());
  synced_flush_ = flushes_;
  return Status::ok();
}

Result<bool> PaxosLog::begin_sync() {
  SYNOD_RETURN_IF_ERROR(flush());
  auto pending = log_->begin_sync();
  if (pending.is_ok()) {
    if (*pending) {
      syncing_flush_ = flushes_;
    } else {
      synced_flush_ = flushes_;  // nothing written is unsynced
    }
  }
  return pending;
}

Status PaxosLog::end_sync(const Status& synced) {
  SYNOD_RETURN_IF_ERROR(log_->end_sync(synced));
  synced_flush_ = std::max(synced_flush_, syncing_flush_);
  return Status::ok();
}

Status PaxosLog::compact(Slot upto) {
  uint64_t below = log_->first_segment();
  while (below < log_->current_segment()) {
    auto it = max_slot_.find(below);
    if (it != max_slot_.end() && it->second > upto) break;
    ++below;
  }
  SYNOD_RETURN_IF_ERROR(log_->remove_segments_below(below));
  max_slot_.erase(max_slot_.begin(), max_slot_.lower_bound(below));
  chosen_at_.erase(chosen_at_.begin(), chosen_at_.upper_bound(upto));
  return Status::ok();
}

}  // namespace synod::storage
