// What a replica tells its operator: the log lines of the events an operator needs (base/log.h)
// and the metrics that only exist as things happen (latency and size histograms, event and
// error counters). Numbers the server already keeps (INFO's counters, the core's slots, the
// peer transport's stats) are read where they are at scrape time (Server::metrics_text).
//
// It watches the core as ServerCore's observer (elections, step-downs, snapshots, syncs) and by
// comparing the replica after each flush with what it last saw (leader changes, catch-up). Loop
// thread only; recording is a few integer additions, no locks.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string_view>
#include <utility>

#include "base/log.h"
#include "kv/store.h"
#include "node/metrics.h"
#include "node/server_core.h"
#include "paxos/messages.h"

namespace synod::node {

class Telemetry : public ServerCore::Observer {
 public:
  // The classes of client commands, for the latency histograms.
  enum class RequestClass : uint8_t { kRead, kWrite, kAdmin, kTransaction, kScript };
  static constexpr size_t kRequestClasses = 5;
  // By lower-cased command name and its kv::classify(): EXEC is a transaction,
  // EVAL/EVALSHA/SCRIPT/FCALL scripts, what the command table reads or writes reads or writes,
  // the rest (PING, INFO, ...) admin.
  static RequestClass classify(std::string_view name, kv::CommandClass command_class);
  static RequestClass classify(std::string_view name) { return classify(name, kv::classify(name)); }
  static const char* to_string(RequestClass c);

  // Refusals of connections or requests, before any command ran.
  enum class Refusal : uint8_t { kMaxClients, kOutputLimit, kProtocolError };
  static constexpr size_t kRefusals = 3;

  explicit Telemetry(NodeId self) : self_(self) {}

  void request_done(RequestClass c, uint64_t latency_us) {
    latency_[static_cast<size_t>(c)].observe(latency_us);
  }
  // An error reply: counted by its first word (TRYAGAIN, UNKNOWN, ERR, ...).
  void error_reply(std::string_view text);
  void refused(Refusal r) { ++refusals_[static_cast<size_t>(r)]; }
  void synced(uint64_t latency_us) { fsync_.observe(latency_us); }

  // ServerCore::Observer.
  void event(const paxos::Event& event) override;
  void snapshot_saved(Slot slot, size_t bytes, uint64_t encode_ms, uint64_t save_ms,
                      uint64_t adopt_ms) override;
  void snapshot_failed(Slot slot, const Status& status) override;
  void snapshot_unreadable(Slot slot, const Status& status) override;
  void snapshot_installed(Slot slot, size_t bytes) override;
  // The server forked the child that writes a snapshot; the loop paused `fork_us` for it.
  void snapshot_forked(uint64_t fork_us) { last_fork_us_ = fork_us; }
  void sync_started(uint64_t batches) override { batches_.observe(batches); }

  // A snapshot chunk handed to the transport for `peer` (sent) or received from it: the
  // transfer's progress is the chunk's end (its offset plus its bytes) of the snapshot's total.
  enum class Direction : uint8_t { kSent, kReceived };
  void snapshot_chunk(NodeId peer, Direction direction, const paxos::SnapshotChunkMsg& chunk);
  // Every message to or from a peer passes here; snapshot chunks are counted.
  void peer_message(const paxos::Envelope& e, Direction direction) {
    if (const auto* chunk = std::get_if<paxos::SnapshotChunkMsg>(&e.message))
      snapshot_chunk(direction == Direction::kSent ? e.to : e.from, direction, *chunk);
  }

  // After each flush: logs and counts a new leader, and catch-up starting or ending.
  void after_flush(const paxos::Replica& replica, uint64_t now_ms);

  // Appends this object's metric families.
  void render(MetricsText& out) const;

 private:
  NodeId self_;
  std::array<Histogram, kRequestClasses> latency_{latency_histogram(), latency_histogram(),
                                                  latency_histogram(), latency_histogram(),
                                                  latency_histogram()};
  Histogram fsync_ = latency_histogram();
  Histogram batches_ = batch_histogram();
  Histogram snapshot_bytes_ = bytes_histogram();
  // Error replies by first word; the last entry counts every other word.
  static constexpr std::array<std::string_view, 11> kErrorClasses = {
      "TRYAGAIN", "UNKNOWN", "ERR",       "WRONGTYPE", "EXECABORT", "NOSCRIPT",
      "NOAUTH",   "NOPERM",  "WRONGPASS", "BUSY",      "other"};
  std::array<uint64_t, kErrorClasses.size()> errors_{};
  std::array<uint64_t, kRefusals> refusals_{};
  uint64_t elections_started_ = 0;
  uint64_t elections_won_ = 0;
  uint64_t elections_lost_ = 0;  // a candidate stepped down (or its election timed out)
  static constexpr size_t kStepDownReasons = 5;
  std::array<uint64_t, kStepDownReasons> step_downs_{};  // leaders, by paxos::StepDownReason
  uint64_t leader_changes_ = 0;
  uint64_t snapshots_saved_ = 0;
  uint64_t snapshots_failed_ = 0;
  uint64_t snapshot_reads_failed_ = 0;
  uint64_t last_fork_us_ = 0;
  uint64_t snapshots_installed_ = 0;
  uint64_t last_snapshot_bytes_ = 0;
  // The latest snapshot transfer with each peer, each way (finished when bytes == total).
  struct Transfer {
    Slot slot = 0;
    uint64_t bytes = 0;  // of the snapshot, moved so far
    uint64_t total = 0;
    uint64_t chunk_bytes = 0;  // over every transfer, resent chunks included
  };
  std::map<std::pair<NodeId, Direction>, Transfer> transfers_;
  uint64_t catchups_ = 0;
  uint64_t campaigns_without_leader_ = 0;  // elections started since a leader was last seen
  logging::Level campaign_level() const;
  // What after_flush() last saw.
  NodeId leader_;
  bool catching_up_ = false;
  Slot catchup_from_ = 0;
  uint64_t catchup_started_ms_ = 0;
};

}  // namespace synod::node
