// `synod server`: one replica of the key-value service on one Asio event loop.
//
// The loop owns everything — the ServerCore (protocol core, storage, state machine), the peer
// transport and the client connections. Each turn of the loop handles whatever sockets and timers
// are ready, then runs one flush: the core's effects in the order ready.h demands. Many clients'
// commands that arrive together share one sync and one Accept (group commit and batching fall out
// of the loop's shape). The one other thread runs the log's fdatasync on a leader (and on a
// follower relaying clients' requests) and posts its completion back to the loop; meanwhile the
// loop keeps reading, proposing and applying, and holds acceptor answers until their sync is done
// (ServerCore::set_sync_runner). It touches nothing but the file being synced.
//
// Clients speak RESP2/RESP3 (docs/operations.md lists the commands). Every replica accepts them:
// the leader proposes writes and serves linearizable reads by read index; a follower forwards
// both to the leader over the peer connection. The server retries inside the cluster until the
// request's deadline — a definite refusal (TRYAGAIN: not applied) after a short pause, an unknown
// outcome with the same command id, which the state machine applies at most once — so a client
// sees a definite answer whenever one can be had, and UNKNOWN only when the command may or may
// not have taken effect.
#pragma once

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "base/rng.h"
#include "net/peer_transport.h"
#include "node/server_core.h"
#include "storage/file_system.h"

namespace synod::node {

// The largest --max-command-bytes: a peer frame then holds 1 GiB, well within its u32 length.
inline constexpr size_t kMaxCommandBytesLimit = size_t{512} << 20;

class Server {
 public:
  struct Options {
    NodeId id;
    uint64_t cluster_id = 1;
    std::map<NodeId, net::Endpoint> peers;  // every member's peer address, this one included
    net::Endpoint listen;                   // for clients
    std::string data_dir;
    uint32_t tick_ms = 10;
    uint32_t election_timeout_min_ticks = 15;
    uint32_t election_timeout_max_ticks = 30;
    uint32_t heartbeat_interval_ticks = 3;
    uint32_t request_timeout_ms = 5000;  // a client's command gets a definite answer or UNKNOWN
    uint32_t forward_timeout_ms = 1000;  // a forward unanswered this long is sent again
    uint64_t snapshot_every_slots = 10000;
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
    // fdatasync on a thread of its own, so the event loop keeps serving while the disk works
    // (false: on the loop thread, for comparison).
    bool sync_thread = true;
    // A follower serves its clients' linearizable reads itself, by a read index it asks the
    // leader for once per batch (false: it forwards each read to the leader, for comparison).
    bool follower_reads = true;
    // Planted bugs, for showing that the fault harness catches them (never in production):
    //   "stale-follower-reads": a follower answers reads from its own state machine;
    //   "ack-before-chosen": the leader acknowledges a write as soon as it proposes it;
    //   "follower-read-before-apply": a follower serves a read as soon as the leader gives it a
    //   read index, without waiting to apply through it;
    //   "wall-clock-expiry": the leader stamps commands with its wall clock (expiry and locks);
    //   "reads-at-local-clock": reads are served at the serving replica's wall clock.
    std::string planted_bug;
  };

  static Result<std::unique_ptr<Server>> create(asio::io_context& io, Options options);
  // Options::planted_bug, parsed; and the names it accepts, in a stable order.
  enum class PlantedBug {
    kNone,
    kStaleFollowerReads,
    kAckBeforeChosen,
    kFollowerReadBeforeApply,
    kWallClockExpiry,    // ServerCore::Options::bug_wall_clock_expiry
    kReadsAtLocalClock,  // ServerCore::Options::bug_reads_at_local_clock
  };
  static const std::vector<std::string>& planted_bug_names();
  ~Server();

  // Starts listening; returns once the sockets are bound.
  Status start();
  // Stops accepting and closes every connection; io.run() then returns.
  void stop();
  // A storage failure stops the replica: what it promised might not be on disk.
  const Status& fatal() const { return fatal_; }

  // Used by the client connections (internal).
  class Connection;
  struct Op;
  void on_request(const std::shared_ptr<Connection>& conn, std::vector<std::string> args,
                  const std::shared_ptr<std::string>& slot, int protocol);
  void connection_closed(const std::shared_ptr<Connection>& conn);

 private:
  Server(asio::io_context& io, Options options);

  void accept();
  void on_tick();
  void request_flush();
  void flush();
  static bool must_wait(const Connection& conn, const Op& op);
  void start_op(const std::shared_ptr<Connection>& conn, const std::shared_ptr<Op>& op);
  void execute(const std::shared_ptr<Op>& op);
  void on_result(const std::shared_ptr<Op>& op, const kv::Reply& reply);
  void retry_later(const std::shared_ptr<Op>& op);
  void finish(const std::shared_ptr<Op>& op, const kv::Reply& reply);
  void on_forward(NodeId from, net::Forward& forward);
  void on_forward_reply(NodeId from, net::ForwardReply& reply);
  void on_read_index_request(NodeId from, uint64_t request_id);
  void on_read_index_reply(NodeId from, const net::ReadIndexReply& reply);
  void send_index_request();
  void serve_indexed_reads();
  void hello(const std::shared_ptr<Connection>& conn, const std::shared_ptr<Op>& op,
             const std::vector<std::string>& args);
  kv::Reply local_command(const std::vector<std::string>& args, bool& close);
  kv::Reply fault_command(const std::vector<std::string>& args);
  std::string info(const std::string& section) const;
  void log(const std::string& line) const;
  uint64_t now_ms() const;   // monotonic, for deadlines
  uint64_t wall_ms() const;  // Unix time, written into the log as the leader's clock

  asio::io_context& io_;
  Options options_;
  PlantedBug bug_ = PlantedBug::kNone;  // Options::planted_bug, parsed once
  // Tells a finished sync, posted back to the loop, whether this server is still there.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::unique_ptr<storage::FileSystem> fs_;
  std::unique_ptr<ServerCore> core_;
  std::unique_ptr<net::PeerTransport> transport_;
  std::unique_ptr<asio::thread_pool> sync_thread_;  // runs the log's fdatasync (one thread)
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer tick_timer_;
  std::set<std::shared_ptr<Connection>> connections_;
  std::map<uint64_t, std::shared_ptr<Op>> forwarded_;  // request id -> op awaiting the leader
  std::set<std::shared_ptr<Op>> waiting_;              // ops between attempts or in the core
  // Follower reads (Options::follower_reads): the reads gathered since the last read-index
  // request (one per flush), the requests in flight and the reads each covers, and reads given
  // an index that wait for this replica to apply through it.
  std::vector<std::shared_ptr<Op>> index_gathering_;
  struct IndexRequest {
    NodeId to;  // the leader asked: only its reply counts
    uint64_t deadline_ms = 0;
    std::vector<std::shared_ptr<Op>> ops;
  };
  std::map<uint64_t, IndexRequest> index_requests_;  // by request id
  struct IndexedRead {
    std::shared_ptr<Op> op;
    Slot slot = 0;
    uint64_t leader_ms = 0;
  };
  std::vector<IndexedRead> index_ready_;
  // Request ids (forwards, read-index requests) start at a random point in each incarnation, so
  // that a reply queued for an earlier incarnation of this replica never matches a new request.
  uint64_t next_request_id_ = 1;
  std::unique_ptr<Rng> client_ids_;
  NodeId last_leader_;
  size_t max_frame_bytes_ = 0;  // the peer frame limit (a message body), from max_command_bytes
  bool flush_posted_ = false;
  bool stopped_ = false;
  Status fatal_;
  uint64_t started_ms_ = 0;

  struct Counters {
    uint64_t connections = 0;
    uint64_t commands = 0;
    uint64_t writes = 0;
    uint64_t reads = 0;
    uint64_t forwarded = 0;
    uint64_t forwards_served = 0;
    uint64_t follower_reads = 0;         // reads this follower served by a read index
    uint64_t index_requests = 0;         // read-index requests it sent
    uint64_t index_requests_served = 0;  // ... and, on the leader, answered
    uint64_t retries = 0;
    uint64_t unknown = 0;
    uint64_t errors = 0;
    uint64_t protocol_errors = 0;
    uint64_t output_limit_closes = 0;  // connections closed at client_output_hard_bytes
    uint64_t flushes = 0;
    uint64_t syncs = 0;        // fdatasyncs of the log
    uint64_t sync_us = 0;      // time spent in them
    uint64_t sync_us_max = 0;  // the longest
  } counters_;
  void note_sync(uint64_t us) {
    ++counters_.syncs;
    counters_.sync_us += us;
    counters_.sync_us_max = std::max(counters_.sync_us_max, us);
  }
};

// Parses "1=HOST:PORT,2=HOST:PORT,...".
Result<std::map<NodeId, net::Endpoint>> parse_peers(std::string_view text);

}  // namespace synod::node
