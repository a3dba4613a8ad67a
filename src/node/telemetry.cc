#include "node/telemetry.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/log.h"

namespace synod::node {

namespace {

std::string ballot_text(const Ballot& b) {
  return fmt::format("{}.{}", b.round, b.node.value);
}

const char* step_down_label(paxos::StepDownReason r) {
  switch (r) {
    case paxos::StepDownReason::kHigherBallot:
      return "higher_ballot";
    case paxos::StepDownReason::kRejected:
      return "rejected";
    case paxos::StepDownReason::kNoQuorum:
      return "no_quorum";
    case paxos::StepDownReason::kPeerCompacted:
      return "peer_compacted";
    case paxos::StepDownReason::kTimedOut:
      return "timed_out";
    case paxos::StepDownReason::kRemoved:
      return "removed";
  }
  return "other";
}

}  // namespace

Telemetry::RequestClass Telemetry::classify(std::string_view name, kv::CommandClass command_class) {
  if (name == "exec") return RequestClass::kTransaction;
  if (name == "eval" || name == "evalsha" || name == "eval_ro" || name == "evalsha_ro" ||
      name == "script" || name == "fcall" || name == "fcall_ro")
    return RequestClass::kScript;
  switch (command_class) {
    case kv::CommandClass::kWrite:
      return RequestClass::kWrite;
    case kv::CommandClass::kRead:
      return RequestClass::kRead;
    case kv::CommandClass::kUnknown:
      break;
  }
  return RequestClass::kAdmin;
}

const char* Telemetry::to_string(RequestClass c) {
  switch (c) {
    case RequestClass::kRead:
      return "read";
    case RequestClass::kWrite:
      return "write";
    case RequestClass::kAdmin:
      return "admin";
    case RequestClass::kTransaction:
      return "transaction";
    case RequestClass::kScript:
      return "script";
  }
  return "admin";
}

void Telemetry::error_reply(std::string_view text) {
  const std::string_view word = text.substr(0, text.find(' '));
  size_t i = 0;
  while (i + 1 < kErrorClasses.size() && kErrorClasses[i] != word) ++i;
  ++errors_[i];
}

void Telemetry::event(const paxos::Event& e) {
  using Kind = paxos::Event::Kind;
  using logging::Level;
  const std::string ballot = ballot_text(e.ballot);
  switch (e.kind) {
    case Kind::kElectionStarted:
      ++elections_started_;
      ++campaigns_without_leader_;
      logging::write(
          campaign_level(), "election_started",
          fmt::format("campaigning at ballot {} for slots from {} (election {} since a leader "
                      "was last seen)",
                      ballot, e.slot, campaigns_without_leader_),
          {{"ballot", ballot}, {"slot", e.slot}});
      return;
    case Kind::kElectionWon:
      ++elections_won_;
      campaigns_without_leader_ = 0;
      logging::write(
          Level::kInfo, "election_won",
          fmt::format("won the election: leads at ballot {} (chosen through {})", ballot, e.slot),
          {{"ballot", ballot}, {"slot", e.slot}});
      return;
    case Kind::kSteppedDown: {
      const char* label = step_down_label(e.reason);
      const std::string seen = e.seen.round != 0 ? " " + ballot_text(e.seen) : std::string();
      const std::string why = std::string(paxos::to_string(e.reason)) + seen;
      if (e.from == paxos::Event::kCandidate) {
        ++elections_lost_;
        logging::write(campaign_level(), "election_lost",
                       fmt::format("the election at ballot {} did not win: {}", ballot, why),
                       {{"ballot", ballot}, {"reason", label}});
      } else {
        ++step_downs_[static_cast<size_t>(e.reason)];
        logging::write(Level::kWarn, "stepped_down",
                       fmt::format("stepped down as leader of ballot {}: {}", ballot, why),
                       {{"ballot", ballot}, {"reason", label}, {"slot", e.slot}});
      }
      return;
    }
  }
}

// A replica cut off from a quorum campaigns every election timeout, each time with a start and
// a lost line: the first few of a run are info, then one in 100 (the rest debug), so that a long
// partition does not flood the log. Seeing a leader ends the run.
logging::Level Telemetry::campaign_level() const {
  return campaigns_without_leader_ <= 3 || campaigns_without_leader_ % 100 == 0
             ? logging::Level::kInfo
             : logging::Level::kDebug;
}

void Telemetry::snapshot_saved(Slot slot, size_t bytes, uint64_t encode_ms, uint64_t save_ms,
                               uint64_t adopt_ms) {
  ++snapshots_saved_;
  last_snapshot_bytes_ = bytes;
  snapshot_bytes_.observe(bytes);
  const uint64_t fork_ms = last_fork_us_ / 1000;
  logging::write(
      logging::Level::kInfo, "snapshot_saved",
      fmt::format("snapshot of the state machine through slot {} saved ({} bytes; encoded in {} "
                  "ms, written and synced in {} ms{}; the loop paused {} ms to fork and {} ms to "
                  "adopt it)",
                  slot, bytes, encode_ms, save_ms, last_fork_us_ > 0 ? " by a child process" : "",
                  fork_ms, adopt_ms),
      {{"slot", slot},
       {"bytes", uint64_t{bytes}},
       {"encode_ms", encode_ms},
       {"save_ms", save_ms},
       {"fork_ms", fork_ms},
       {"adopt_ms", adopt_ms}});
}

void Telemetry::snapshot_failed(Slot slot, const Status& status) {
  ++snapshots_failed_;
  logging::write(logging::Level::kWarn, "snapshot_failed",
                 fmt::format("snapshot through slot {} failed, nothing changed (the next is due "
                             "--snapshot-every slots on): {}",
                             slot, status.to_string()),
                 {{"slot", slot}});
}

void Telemetry::snapshot_unreadable(Slot slot, const Status& status) {
  ++snapshot_reads_failed_;
  logging::write(logging::Level::kWarn, "snapshot_unreadable",
                 fmt::format("cannot read the snapshot through slot {} to send it to a peer: {}",
                             slot, status.to_string()),
                 {{"slot", slot}});
}

void Telemetry::snapshot_installed(Slot slot, size_t bytes) {
  ++snapshots_installed_;
  last_snapshot_bytes_ = bytes;
  logging::write(logging::Level::kInfo, "snapshot_installed",
                 fmt::format("installed a snapshot through slot {} ({} bytes)", slot, bytes),
                 {{"slot", slot}, {"bytes", uint64_t{bytes}}});
}

void Telemetry::snapshot_chunk(NodeId peer, Direction direction,
                               const paxos::SnapshotChunkMsg& chunk) {
  Transfer& t = transfers_[{peer, direction}];
  t.slot = chunk.slot;
  t.total = chunk.total;
  t.bytes = std::min<uint64_t>(chunk.offset + chunk.data.size(), chunk.total);
  t.chunk_bytes += chunk.data.size();
}

void Telemetry::after_flush(const paxos::Replica& r, uint64_t now_ms) {
  const NodeId leader = r.leader();
  if (leader.valid() && r.role() != paxos::Role::kCandidate) campaigns_without_leader_ = 0;
  if (leader.valid() && leader != leader_) {
    ++leader_changes_;
    const std::string was = leader_.valid() ? fmt::format("n{}", leader_.value) : "none";
    logging::write(logging::Level::kInfo, "leader_changed",
                   fmt::format("leader is now n{} (was {}){}", leader.value, was,
                               leader == self_ ? ", this replica" : ""),
                   {{"leader", leader.value}, {"previous", leader_.value}});
    leader_ = leader;
  }
  if (r.catchup_outstanding() != catching_up_) {
    catching_up_ = r.catchup_outstanding();
    if (catching_up_) {
      ++catchups_;
      catchup_from_ = r.commit();
      catchup_started_ms_ = now_ms;
      logging::write(
          logging::Level::kInfo, "catchup_started",
          fmt::format("catching up from slot {} (leader n{})", r.commit() + 1, leader.value),
          {{"slot", r.commit()}, {"leader", leader.value}});
    } else {
      logging::write(logging::Level::kInfo, "catchup_finished",
                     fmt::format("caught up: {} slots learned, chosen through {}, in {} ms",
                                 r.commit() - std::min(r.commit(), catchup_from_), r.commit(),
                                 now_ms - catchup_started_ms_),
                     {{"slot", r.commit()}, {"ms", now_ms - catchup_started_ms_}});
    }
  }
}

void Telemetry::render(MetricsText& out) const {
  out.family("synod_request_duration_seconds", "histogram",
             "Client command latency, from parsing to reply, by command class.");
  for (size_t c = 0; c < kRequestClasses; ++c)
    out.histogram("synod_request_duration_seconds", latency_[c],
                  {{"class", to_string(static_cast<RequestClass>(c))}});
  out.family("synod_wal_fsync_duration_seconds", "histogram",
             "Duration of each fdatasync of the write-ahead log.");
  out.histogram("synod_wal_fsync_duration_seconds", fsync_);
  out.family("synod_wal_sync_batches", "histogram",
             "Batches of log records made durable by one fdatasync (group commit).");
  out.histogram("synod_wal_sync_batches", batches_);
  // Snapshot transfers: progress of the one in flight (or the last) with each peer, each way.
  const auto per_transfer = [&](const char* name, const char* type, const char* help, auto field) {
    out.family(name, type, help);
    for (const auto& [key, t] : transfers_)
      out.sample(name, t.*field,
                 {{"peer", std::to_string(key.first.value)},
                  {"direction", key.second == Direction::kSent ? "sent" : "received"}});
  };
  per_transfer("synod_snapshot_transfer_bytes", "gauge",
               "Bytes of the snapshot in transfer (or the last one) sent to or received from the "
               "peer so far; equal to synod_snapshot_transfer_size_bytes once it is complete.",
               &Transfer::bytes);
  per_transfer("synod_snapshot_transfer_size_bytes", "gauge",
               "Size of the snapshot in transfer (or the last one) with the peer.",
               &Transfer::total);
  per_transfer("synod_snapshot_transfer_slot", "gauge",
               "The slot the snapshot in transfer (or the last one) with the peer covers.",
               &Transfer::slot);
  per_transfer("synod_snapshot_chunk_bytes_total", "counter",
               "Snapshot bytes sent to or received from the peer, over every transfer (resent "
               "chunks included).",
               &Transfer::chunk_bytes);
  out.family("synod_error_replies_total", "counter",
             "Error replies to clients, by the error's first word.");
  for (size_t i = 0; i < kErrorClasses.size(); ++i) {
    std::string label(kErrorClasses[i]);
    for (char& ch : label) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.sample("synod_error_replies_total", errors_[i], {{"class", label}});
  }
  out.family("synod_refusals_total", "counter",
             "Client connections or requests refused before any command ran, by reason.");
  out.sample("synod_refusals_total", refusals_[0], {{"reason", "max_clients"}});
  out.sample("synod_refusals_total", refusals_[1], {{"reason", "output_limit"}});
  out.sample("synod_refusals_total", refusals_[2], {{"reason", "protocol_error"}});
  out.counter("synod_elections_started_total", "Elections (phase 1) this replica started.",
              elections_started_);
  out.counter("synod_elections_won_total", "Elections this replica won (it became leader).",
              elections_won_);
  out.counter("synod_elections_lost_total",
              "Elections this replica started that did not win (it stepped down as candidate).",
              elections_lost_);
  out.family("synod_leader_step_downs_total", "counter",
             "Times this replica stopped leading, by reason.");
  for (size_t i = 0; i < kStepDownReasons; ++i)
    out.sample("synod_leader_step_downs_total", step_downs_[i],
               {{"reason", step_down_label(static_cast<paxos::StepDownReason>(i))}});
  out.counter("synod_leader_changes_total", "Times this replica learned of a new leader.",
              leader_changes_);
  out.counter("synod_snapshots_saved_total", "Snapshots of the state machine this replica saved.",
              snapshots_saved_);
  out.counter("synod_snapshots_failed_total",
              "Snapshots of the state machine that failed (the replica went on without them).",
              snapshots_failed_);
  out.counter("synod_snapshot_reads_failed_total",
              "Reads of the snapshot file, to send it to a peer, that failed.",
              snapshot_reads_failed_);
  out.family("synod_snapshot_fork_seconds", "gauge",
             "How long the loop paused to fork the last snapshot's child process.");
  out.sample_double("synod_snapshot_fork_seconds", static_cast<double>(last_fork_us_) / 1e6);
  out.counter("synod_snapshots_installed_total",
              "Snapshots installed (received from a peer, or recovered at start).",
              snapshots_installed_);
  out.family("synod_snapshot_size_bytes", "histogram",
             "Sizes of the snapshots this replica saved.");
  out.histogram("synod_snapshot_size_bytes", snapshot_bytes_);
  out.gauge("synod_last_snapshot_bytes", "Size of the last snapshot saved or installed.",
            last_snapshot_bytes_);
  out.counter("synod_catchups_total", "Times this replica started catching up on chosen slots.",
              catchups_);
  out.gauge("synod_catching_up", "1 while this replica is catching up on chosen slots.",
            catching_up_ ? 1 : 0);
}

}  // namespace synod::node
