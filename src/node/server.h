// `synod server`: one replica of the key-value service on one Asio event loop.
//
// The loop owns everything — the ServerCore (protocol core, storage, state machine), the request
// router (node/router.h: forwarding, follower reads, retries, deadlines, sessions), the peer
// transport and the client connections. This file is the RESP connection layer (sockets,
// parsing, pipelines, output buffers) and the commands a replica answers alone (PING, INFO,
// SYNOD.FAULT, ...); the router gets its peers and its clock through Asio implementations of its
// two seams. Each turn of the loop handles whatever sockets and timers are ready, then runs one
// flush: the core's effects in the order ready.h demands. Many clients' commands that arrive
// together share one sync and one Accept (group commit and batching fall out of the loop's
// shape). The one other thread runs the log's fdatasync on a leader (and on a follower relaying
// clients' requests) and posts its completion back to the loop; meanwhile the loop keeps
// reading, proposing and applying, and holds acceptor answers until their sync is done
// (ServerCore::set_sync_runner). It touches nothing but the file being synced.
//
// Clients speak RESP2/RESP3 (docs/operations.md lists the commands). Every replica accepts them;
// what happens to a replicated command is the router's (node/router.h).
#pragma once

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "base/rng.h"
#include "net/peer_transport.h"
#include "net/tls.h"
#include "node/acl.h"
#include "node/http_endpoint.h"
#include "node/router.h"
#include "node/server_core.h"
#include "node/snapshot_child.h"
#include "node/telemetry.h"
#include "paxos/config.h"
#include "storage/file_system.h"
#include "storage/identity.h"

namespace synod::node {

// The largest --max-command-bytes: a peer frame then holds 1 GiB, well within its u32 length.
inline constexpr size_t kMaxCommandBytesLimit = size_t{512} << 20;

class Server {
 public:
  struct Options {
    NodeId id;
    uint64_t cluster_id = 1;
    std::map<NodeId, net::Endpoint> peers;  // every member's peer address, this one included
    net::Endpoint listen;                   // for clients (port 0: none, --listen none)
    // TLS (net/tls.h): with cert and key files the peer port speaks only mutual TLS, and
    // tls_listen (port 0: none), as Redis's tls-port, serves TLS clients only.
    net::TlsFiles tls;
    net::Endpoint tls_listen;
    // A TLS client's handshake, and a peer connection's TLS handshake and Hello, must finish
    // within this; the connection is closed otherwise (0: no bound).
    uint32_t handshake_timeout_ms = 10000;
    // GET /metrics (Prometheus) and /health over HTTP (node/http_endpoint.h); none if unset.
    std::optional<net::Endpoint> metrics_listen;
    std::string data_dir;
    // Whether an empty data_dir may be initialized (storage/identity.h): kNew as a founding
    // member, kJoin as a member just added at run time; kExisting refuses it (the data is lost).
    storage::InitialClusterState initial_cluster_state = storage::InitialClusterState::kNew;
    uint32_t tick_ms = 10;
    // (paxos::Config's defaults, production's, which the simulators start from too)
    uint32_t election_timeout_min_ticks = paxos::Config{}.election_timeout_min_ticks;
    uint32_t election_timeout_max_ticks = paxos::Config{}.election_timeout_max_ticks;
    uint32_t heartbeat_interval_ticks = paxos::Config{}.heartbeat_interval_ticks;
    // Lease reads (docs/core.md, "Lease reads"): the leader serves linearizable reads without a
    // confirmation round while its lease holds, paxos::Config::max_read_lease_ms of the tick and
    // kClockDriftBound. Safe only if every replica's monotonic clock keeps to that rate bound.
    bool lease_reads = false;
    uint32_t request_timeout_ms = 5000;  // a client's command gets a definite answer or UNKNOWN
    uint32_t forward_timeout_ms = 1000;  // a forward unanswered this long is sent again
    uint64_t snapshot_every_slots = 10000;
    uint64_t snapshot_log_bytes = 16 << 20;  // ServerCore::Options::snapshot_log_bytes
    size_t log_memory_bytes = paxos::Config{}.log_memory_bytes;
    size_t max_clients = 10000;
    size_t max_inflight_per_client = 48;  // pipelined commands in progress per connection
    // The state machine's exactly-once sessions kept at most (kv/store.h); the same on every
    // replica for the cluster's whole life.
    size_t max_sessions = kv::kDefaultMaxSessions;
    // One request's bytes, as Redis's client-query-buffer-limit: a client that sends more is
    // answered with a protocol error and disconnected. Above the largest command, so that one
    // slightly too big gets the command-size refusal and the connection stays.
    size_t client_query_buffer_bytes = 32 << 20;
    // Replies queued for a client that does not read them, as Redis's client-output-buffer-limit:
    // above the soft limit the connection's next requests are not read (backpressure; commands
    // already in progress still answer), above the hard limit it is closed.
    size_t client_output_soft_bytes = 16 << 20;
    size_t client_output_hard_bytes = 256 << 20;
    // The largest command (its encoded size: kv::encoded_command_bytes) a client may send; a
    // larger one is refused before it is proposed or forwarded. Every peer-message bound derives
    // from it (see peer_limits in server.cc and docs/wire-format.md).
    size_t max_command_bytes = 8 << 20;
    bool fault_injection = false;  // accept SYNOD.FAULT (tests only)
    // Client authentication (node/acl.h): the default user's password, and ACL users as Redis's
    // `user` lines ("name on #<sha256> ~* +@read"). Neither: every client has every right.
    std::string requirepass;
    std::vector<std::string> users;
    std::string aclfile;  // more user lines, as Redis's aclfile ("user NAME RULE..." a line)
    // fdatasync on a thread of its own, so the event loop keeps serving while the disk works
    // (false: on the loop thread, for comparison).
    bool sync_thread = true;
    // A follower serves its clients' linearizable reads itself, by a read index it asks the
    // leader for once per batch (false: it forwards each read to the leader, for comparison).
    bool follower_reads = true;
    // A planted bug, for showing that the fault harness catches it (never in production): any
    // name of the registry (src/base/planted_bugs.h, `synod bugs`) — the router's own
    // (stale-follower-reads, ack-before-chosen, follower-read-before-apply), the replica's
    // (e.g. wall-clock-expiry) or the protocol core's.
    std::string planted_bug;
  };

  static Result<std::unique_ptr<Server>> create(asio::io_context& io, Options options);
  // Options::planted_bug, parsed (the router's own bugs); and every name it accepts (the whole
  // registry), in a stable order.
  using PlantedBug = Router::PlantedBug;
  static const std::vector<std::string>& planted_bug_names();
  // The router's own planted bug called `name` (kNone if it is not one of them).
  static PlantedBug router_bug(std::string_view name) {
    return Router::parse_planted_bug(name).value_or(PlantedBug::kNone);
  }
  ~Server();

  // Starts listening; returns once the sockets are bound.
  Status start();
  // Stops accepting and closes every connection; io.run() then returns.
  void stop();
  // SIGTERM: a leader first hands leadership over to the most caught-up voter
  // (ServerCore::transfer_leadership) and keeps serving until it no longer leads or the minimum
  // election timeout has passed, so that a rolling restart costs no election timeout; then it
  // stops. Elsewhere it stops at once. `stopped` runs after stop(), on the loop's thread.
  void stop_after_handover(std::function<void()> stopped);
  // Loads the TLS files again (SIGHUP): new connections use them; on failure the current ones
  // stay and the log says why.
  Status reload_tls();
  // A storage failure stops the replica: what it promised might not be on disk.
  const Status& fatal() const { return fatal_; }

  // Used by the client connections (internal).
  class Connection;
  void on_request(const std::shared_ptr<Connection>& conn, std::vector<std::string> args,
                  const std::shared_ptr<std::string>& slot, int protocol);
  void connection_closed(const std::shared_ptr<Connection>& conn);

 private:
  Server(asio::io_context& io, Options options);

  class AsioPeers;
  class AsioClock;
  void accept(asio::ip::tcp::acceptor& acceptor, bool tls);
  void request_flush();
  void flush();
  // Formats `reply` into the pipeline slot of `conn` and sends what is ready.
  void finish(const std::weak_ptr<Connection>& conn, const std::shared_ptr<std::string>& slot,
              int protocol, const kv::Reply& reply);
  void hello(const std::shared_ptr<Connection>& conn, const std::shared_ptr<std::string>& slot,
             const std::vector<std::string>& args);
  // Authentication (node/acl.h): a command the connection's user may not run yet, AUTH, and a
  // failed attempt's log line (never the password; at most a few a second).
  void refuse(const std::shared_ptr<Connection>& conn, const std::string& name,
              const std::shared_ptr<std::string>& slot, int protocol, const kv::Reply& refusal);
  void auth(const std::shared_ptr<Connection>& conn, const std::vector<std::string>& args,
            const std::shared_ptr<std::string>& slot, int protocol);
  void log_auth_failure(const Connection& conn, std::string_view user, Acl::Failure failure);
  void serve(const std::shared_ptr<Connection>& conn, std::vector<std::string> args,
             const std::shared_ptr<std::string>& slot, int protocol);
  // MULTI, EXEC, DISCARD, WATCH, UNWATCH and queuing inside MULTI (kv/transaction.h): true if it
  // took the request.
  bool transaction_command(const std::shared_ptr<Connection>& conn, const std::string& name,
                           std::vector<std::string>& args, const std::shared_ptr<std::string>& slot,
                           int protocol);
  void watch(const std::shared_ptr<Connection>& conn, std::vector<std::string> args,
             const std::shared_ptr<std::string>& slot, int protocol);
  void exec(const std::shared_ptr<Connection>& conn, const std::shared_ptr<std::string>& slot,
            int protocol);
  // Serves the requests held behind an EXEC that waited for its WATCH reads.
  void release_held(const std::shared_ptr<Connection>& conn);
  kv::Reply local_command(const std::vector<std::string>& args, bool& close);
  // CLIENT ID/SETNAME/GETNAME/INFO/LIST/KILL/SETINFO, about this replica's connections.
  kv::Reply client_command(const std::shared_ptr<Connection>& conn,
                           const std::vector<std::string>& args);
  kv::Reply client_kill(const std::shared_ptr<Connection>& conn,
                        const std::vector<std::string>& args);
  std::string client_line(const Connection& c) const;  // CLIENT LIST's line, as Redis 7.0's
  std::string memory_info() const;                     // INFO's # Memory section
  // SYNOD.BACKUP: an online backup (node/backup.h), taken at a linearizable point and handed
  // out in chunks.
  void backup(const std::shared_ptr<Connection>& conn, const std::vector<std::string>& args,
              const std::shared_ptr<std::string>& slot, int protocol);
  kv::Reply fault_command(const std::vector<std::string>& args);
  // MEMBER LIST | ADD-LEARNER | PROMOTE | REMOVE | SWAP | REPLACE (docs/operations.md): changes
  // go through the router to the leader, as writes do; LIST is this replica's view.
  void member(const std::shared_ptr<Connection>& conn, const std::vector<std::string>& args,
              const std::shared_ptr<std::string>& slot, int protocol);
  kv::Reply member_list() const;
  // MEMBER REPLACE's second step: swaps learner `learner` in for voter `old` once it caught up,
  // asking again until `deadline_ms`.
  void swap_when_caught_up(const std::shared_ptr<Router::Session>& session, NodeId learner,
                           NodeId old, std::string address, uint64_t deadline_ms,
                           uint64_t timeout_ms, std::function<void(const kv::Reply&)> done);
  // The peer address of member `id` (its configuration's, else --peers'), empty if unknown.
  std::string peer_address(NodeId id) const;
  // Dials the members of the current configuration and no one else (after each flush).
  void sync_peers();
  std::string info(const std::string& section) const;
  // The Prometheus text of every metric, and the HTTP endpoint's answers (server_metrics.cc).
  std::string metrics_text() const;
  HttpEndpoint::Response monitor(std::string_view path) const;
  void log(const std::string& line) const;
  // A client refused at the TLS port (plaintext, a failed or unfinished handshake): `line`,
  // logged at most once per address and kind of refusal per interval (net/refusal_log.h).
  void refused_client(const std::string& address, const std::string& reason,
                      const std::string& line) {
    client_refusals_.refused(address, reason, line, net::RefusalLog::Clock::now());
  }
  // The identity check of the peer transport: a peer must present the incarnation this replica
  // pinned for it when it first took it (storage::PeerPins; the first one is pinned).
  std::optional<net::Refusal> check_identity(NodeId peer, const Incarnation& incarnation);
  // A peer refused this replica's incarnation: it stops (exit code 1), naming the procedure.
  void identity_refused(NodeId peer, const net::Refusal& refusal);
  uint64_t now_ms() const;   // monotonic, for deadlines
  static uint64_t now_us();  // monotonic, for latency metrics
  // A peer transport's note (connected, lost, refused ...), as an operator's log line.
  static void log_peer_event(const std::string& line);
  uint64_t wall_ms() const;  // Unix time, written into the log as the leader's clock

  asio::io_context& io_;
  Options options_;
  // Tells a finished sync, posted back to the loop, whether this server is still there.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::unique_ptr<storage::FileSystem> fs_;
  std::unique_ptr<Telemetry> telemetry_;  // the core's observer: outlives it
  std::unique_ptr<ServerCore> core_;
  std::unique_ptr<storage::PeerPins> pins_;  // in the data directory
  bool bug_wiped_replica_votes_ = false;     // planted: check_identity takes any incarnation
  std::unique_ptr<net::PeerTransport> transport_;
  paxos::MembershipRef dialled_;  // the configuration the transport's peers were taken from
  std::unique_ptr<asio::thread_pool> sync_thread_;     // runs the log's fdatasync (one thread)
  std::unique_ptr<SnapshotChild> snapshot_child_;      // takes snapshots in a forked child
  std::unique_ptr<asio::thread_pool> remover_thread_;  // unlinks files compaction left behind
  // On remover_thread_: storage::remove_in_order, logging a failure.
  void remove_files(const std::vector<std::string>& paths, const std::string& dir);
  bool removals_stuck_ = false;  // a file could not be removed: nothing more is
  std::unique_ptr<AsioPeers> peers_;
  std::unique_ptr<AsioClock> clock_;
  std::unique_ptr<Router> router_;  // after core_: it goes first
  std::unique_ptr<Acl> acl_;
  struct {
    uint64_t second = 0;  // of now_ms(), in which `lines` were logged
    uint32_t lines = 0;
    uint64_t left_out = 0;  // failures not logged since the last line
  } auth_log_;
  std::unique_ptr<HttpEndpoint> http_;
  asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<net::TlsContexts> tls_;  // null without TLS
  net::RefusalLog client_refusals_{{}, [this](const std::string& line) { log(line); }};
  asio::ip::tcp::acceptor tls_acceptor_;
  std::set<std::shared_ptr<Connection>> connections_;
  // Backups taken and not yet read to the end: at most kBackupsKept, each dropped after
  // kBackupIdleMs without a read (a client that went away).
  struct PendingBackup {
    uint64_t id = 0;
    std::string bytes;
    uint64_t touched_ms = 0;
  };
  static constexpr size_t kBackupsKept = 2;
  static constexpr uint64_t kBackupIdleMs = 300'000;
  std::vector<PendingBackup> backups_;
  uint64_t next_backup_id_ = 1;
  bool flush_posted_ = false;
  bool stopped_ = false;
  std::unique_ptr<asio::steady_timer> handover_timer_;  // stop_after_handover's polling
  Status fatal_;
  uint64_t started_ms_ = 0;
  uint64_t next_client_id_ = 0;            // CLIENT ID: 1, 2, ... on this replica, as Redis's
  mutable uint64_t used_memory_peak_ = 0;  // the most INFO has seen allocated

  struct Counters {
    uint64_t connections = 0;
    uint64_t commands = 0;
    uint64_t errors = 0;
    uint64_t protocol_errors = 0;
    uint64_t output_limit_closes = 0;  // connections closed at client_output_hard_bytes
    uint64_t flushes = 0;
    uint64_t syncs = 0;        // fdatasyncs of the log
    uint64_t sync_us = 0;      // time spent in them
    uint64_t sync_us_max = 0;  // the longest
    uint64_t sync_us_last = 0;
  } counters_;
  void note_sync(uint64_t us) {
    ++counters_.syncs;
    counters_.sync_us_last = us;
    counters_.sync_us += us;
    counters_.sync_us_max = std::max(counters_.sync_us_max, us);
    telemetry_->synced(us);
  }
};

// Parses "1=HOST:PORT,2=HOST:PORT,...".
Result<std::map<NodeId, net::Endpoint>> parse_peers(std::string_view text);

}  // namespace synod::node
