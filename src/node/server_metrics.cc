// The server's monitoring endpoint: GET /metrics and /health (node/http_endpoint.h), and the
// peer transport's notes as log lines. Numbers INFO shows are read from the same counters here;
// the histograms and event counters are Telemetry's.
#include <fmt/format.h>

#include "base/log.h"
#include "node/server.h"

namespace synod::node {

namespace {

std::string node_label(NodeId id) {
  return std::to_string(id.value);
}

}  // namespace

std::string Server::metrics_text() const {
  const paxos::Replica& r = core_->replica();
  MetricsText out;
  out.family("synod_info", "gauge", "Constant 1, labelled with this replica's identity.");
  out.sample("synod_info", 1,
             {{"node", node_label(options_.id)},
              {"cluster", std::to_string(options_.cluster_id)},
              {"version", "0.1.0"}});
  out.gauge("synod_uptime_seconds", "Seconds since this replica started.",
            (now_ms() - started_ms_) / 1000);
  // Consensus.
  out.gauge("synod_is_leader", "1 if this replica leads, else 0.",
            r.role() == paxos::Role::kLeader ? 1 : 0);
  out.gauge("synod_leader_id", "The leader this replica knows of (0: none).",
            r.leader().valid() ? r.leader().value : 0);
  out.gauge(
      "synod_ballot_round",
      "Round of this replica's own ballot (as candidate or leader; the ballot is round.node).",
      r.ballot().round);
  out.gauge("synod_promised_round", "Round of the highest ballot this replica's acceptor promised.",
            r.promised().round);
  out.gauge("synod_chosen_slot", "Every log slot up to here is known chosen.", r.commit());
  out.gauge("synod_applied_slot", "The state machine reflects every slot up to here.",
            core_->applied());
  out.gauge("synod_snapshot_slot", "The newest snapshot covers slots up to here.",
            r.snapshot_slot());
  out.gauge("synod_released_slot",
            "Chosen values up to here were let go of from memory; they are read back from the "
            "write-ahead log.",
            r.released());
  out.gauge("synod_log_memory_bytes",
            "Encoded bytes of the chosen values held in memory (bounded by --log-memory-bytes "
            "beyond those not applied yet).",
            r.chosen_bytes_held());
  out.gauge("synod_cluster_size", "Members of the cluster.", transport_->peers().size());
  // Peers.
  out.family("synod_peer_connected", "gauge",
             "1 if the outbound connection to the peer has exchanged hellos.");
  for (const auto& [id, endpoint] : transport_->peers()) {
    if (id == options_.id) continue;
    const std::string peer = node_label(id);
    out.sample("synod_peer_connected", transport_->stats(id).connected ? 1 : 0, {{"peer", peer}});
  }
  struct PeerCounter {
    const char* name;
    const char* type;
    const char* help;
    uint64_t net::PeerTransport::PeerStats::*field;
  };
  static constexpr PeerCounter kPeerCounters[] = {
      {"synod_peer_frames_sent_total", "counter", "Frames sent to the peer.",
       &net::PeerTransport::PeerStats::frames_sent},
      {"synod_peer_frames_received_total", "counter", "Frames received from the peer.",
       &net::PeerTransport::PeerStats::frames_received},
      {"synod_peer_frames_dropped_total", "counter",
       "Frames to the peer dropped: its send queue was full, or a fault filter blocks it.",
       &net::PeerTransport::PeerStats::frames_dropped},
      {"synod_peer_connects_total", "counter", "Outbound connections to the peer established.",
       &net::PeerTransport::PeerStats::connects},
  };
  for (const PeerCounter& c : kPeerCounters) {
    out.family(c.name, c.type, c.help);
    for (const auto& [id, endpoint] : transport_->peers()) {
      if (id == options_.id) continue;
      out.sample(c.name, transport_->stats(id).*c.field, {{"peer", node_label(id)}});
    }
  }
  out.counter("synod_refusal_log_lines_left_out_total",
              "Refused connections (peer port, TLS client port) whose log line the rate limit "
              "left out: at most one line per address and reason per 10 s.",
              transport_->refusals_not_logged() + client_refusals_.suppressed());
  out.family("synod_peer_send_queue_bytes", "gauge", "Bytes queued to send to the peer.");
  for (const auto& [id, endpoint] : transport_->peers()) {
    if (id == options_.id) continue;
    out.sample("synod_peer_send_queue_bytes", transport_->stats(id).queued_bytes,
               {{"peer", node_label(id)}});
  }
  if (r.role() == paxos::Role::kLeader) {
    out.family("synod_peer_lag_slots", "gauge",
               "On the leader: chosen slots the peer has not yet reported as chosen.");
    for (const auto& [id, endpoint] : transport_->peers()) {
      if (id == options_.id) continue;
      const Slot peer_commit = r.peer_commit(id);
      out.sample("synod_peer_lag_slots", r.commit() - std::min(r.commit(), peer_commit),
                 {{"peer", node_label(id)}});
    }
  }
  // Clients and requests (INFO's counters).
  out.gauge("synod_connected_clients", "Client connections open now.", connections_.size());
  out.counter("synod_connections_received_total", "Client connections accepted.",
              counters_.connections);
  out.counter("synod_commands_total", "Client commands received.", counters_.commands);
  out.counter("synod_protocol_errors_total", "Client connections closed for a RESP framing error.",
              counters_.protocol_errors);
  const Router::Counters& routed = router_->counters();
  out.counter("synod_writes_total", "Writes this replica took from its clients.", routed.writes);
  out.counter("synod_reads_total", "Reads this replica took from its clients.", routed.reads);
  out.counter("synod_forwarded_total", "Commands this follower forwarded to the leader.",
              routed.forwarded);
  out.counter("synod_forwards_served_total", "Forwarded commands this leader served.",
              routed.forwards_served);
  out.counter("synod_follower_reads_total", "Reads this follower served by a read index.",
              routed.follower_reads);
  out.counter("synod_internal_retries_total", "Commands the router retried internally.",
              routed.retries);
  out.counter("synod_unknown_outcomes_total",
              "Commands answered UNKNOWN by the router (may or may not have applied).",
              routed.unknown);
  out.gauge("synod_requests_in_progress", "Client commands in progress in the router.",
            router_->requests_in_progress());
  out.gauge("synod_sessions", "Exactly-once client sessions the state machine holds.",
            core_->store().sessions());
  out.counter("synod_session_evictions_total", "Sessions evicted at --max-sessions.",
              core_->store().session_evictions());
  out.gauge("synod_keys", "Keys in the state machine (expired ones not yet removed included).",
            core_->store().size());
  // Storage.
  out.counter("synod_wal_syncs_total", "fdatasyncs of the write-ahead log.", counters_.syncs);
  out.family("synod_wal_last_fsync_seconds", "gauge", "Duration of the last fdatasync.");
  out.sample_double("synod_wal_last_fsync_seconds",
                    static_cast<double>(counters_.sync_us_last) / 1e6);
  out.counter("synod_loop_flushes_total", "Turns of the event loop that flushed the core.",
              counters_.flushes);
  telemetry_->render(out);
  if (http_) {
    out.counter("synod_http_requests_total", "Requests answered on the metrics endpoint.",
                http_->stats().requests);
    out.counter("synod_http_refused_total",
                "Metrics-endpoint connections closed unanswered (too many, or too slow).",
                http_->stats().refused);
  }
  return out.take();
}

HttpEndpoint::Response Server::monitor(std::string_view path) const {
  if (path == "/metrics") return {200, std::string(kMetricsContentType), metrics_text()};
  // /health: 200 while this replica can serve (it knows a leader, storage is fine), else 503.
  const paxos::Replica& r = core_->replica();
  if (!fatal_.is_ok()) return {503, "text/plain; charset=utf-8", "storage failed\n"};
  if (!r.leader().valid()) return {503, "text/plain; charset=utf-8", "no leader known\n"};
  return {200, "text/plain; charset=utf-8",
          fmt::format("ok: leader n{}, applied through {}\n", r.leader().value, core_->applied())};
}

void Server::log_peer_event(const std::string& line) {
  // The transport says what happened in words (net/peer_transport.cc); refusals and losses are
  // what an operator must see, so they are warnings.
  using logging::Level;
  if (line.starts_with("connected to ")) {
    logging::write(Level::kInfo, "peer_connected", line);
  } else if (line.starts_with("accepted inbound")) {
    logging::write(Level::kInfo, "peer_accepted", line);
  } else if (line.starts_with("refused") ||
             (line.starts_with("closed inbound") && line.find(": read: ") == std::string::npos)) {
    logging::write(Level::kWarn, "peer_refused", line);
  } else {
    logging::write(Level::kWarn, "peer_connection", line);
  }
}

}  // namespace synod::node
