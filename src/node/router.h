// The request router of one replica: what happens to a client's replicated command between the
// connection that received it and the state machine's answer. No sockets, threads or clocks of
// its own: it reaches its peers through RouterPeers and time through RouterClock, so the server
// (node/server.cc, Asio behind both) and the whole-replica simulator (sim/core_sim.cc, its
// network and per-replica clocks behind both) run the same router.
//
// Every replica accepts clients' commands: the leader proposes writes and serves linearizable
// reads by read index; a follower forwards writes to the leader and serves reads itself by a
// read index it asks the leader for (or forwards them too, without follower reads). The router
// retries inside the cluster until the request's deadline — a definite refusal (TRYAGAIN: not
// applied) after a short pause, an unknown outcome with the same command id, which the state
// machine applies at most once — so a client sees a definite answer whenever one can be had, and
// UNKNOWN only when the command may or may not have taken effect.
//
// Sessions: each client connection is a Session with its own client id; its writes get
// increasing sequence numbers (the command id (client, seq) is what makes a retry exactly-once),
// and its commands take effect in the order it sent them.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/rng.h"
#include "net/wire.h"
#include "node/server_core.h"

namespace synod::node {

// The router's peers: each call hands one message to the replica `to`, which may never receive
// it (the router retries on its own deadlines). Replies arrive through Router::on_*.
class RouterPeers {
 public:
  virtual ~RouterPeers() = default;
  virtual void send_forward(NodeId to, const net::Forward& forward) = 0;
  virtual void send_forward_reply(NodeId to, net::ForwardReply reply) = 0;
  virtual void send_read_index_request(NodeId to, const net::ReadIndexRequest& request) = 0;
  virtual void send_read_index_reply(NodeId to, const net::ReadIndexReply& reply) = 0;
};

// The router's time: a monotonic clock for deadlines, the wall clock (read only by a planted
// bug), and a timer.
class RouterClock {
 public:
  virtual ~RouterClock() = default;
  virtual uint64_t now_ms() = 0;
  virtual uint64_t wall_ms() = 0;
  // Runs `callback` once, about `delay_ms` from now (never from inside this call).
  virtual void after(uint64_t delay_ms, std::function<void()> callback) = 0;
};

class Router {
 public:
  // Planted bugs, for showing that the fault harnesses catch them (never in production).
  enum class PlantedBug {
    kNone,
    kStaleFollowerReads,       // a follower answers reads from its own state machine
    kAckBeforeChosen,          // the leader acknowledges a write as soon as it proposes it
    kFollowerReadBeforeApply,  // a follower serves a read as soon as it has the read index
    kForwardRetryNewId,        // a forwarded write is sent again with a new command id
    kDuplicateForwardsRun,     // a copy of a forward taken before is run again
    kMultiSplit,               // EXEC's commands are proposed one log entry each
    kForwardRefusalTrusted,    // a refused forward is taken to mean its write was not applied
  };
  // The names the --planted-bug flags accept, in a stable order; parse_planted_bug("") is kNone.
  static const std::vector<std::string>& planted_bug_names();
  static std::optional<PlantedBug> parse_planted_bug(std::string_view name);

  struct Options {
    NodeId id;
    uint32_t tick_ms = 10;               // the core's tick, and how often deadlines are checked
    uint32_t request_timeout_ms = 5000;  // a command gets a definite answer or UNKNOWN by then
    uint32_t forward_timeout_ms = 1000;  // a forward unanswered this long is sent again
    size_t max_command_bytes = 8 << 20;  // larger commands are refused before they go anywhere
    size_t max_frame_bytes = 16 << 20;   // a forwarded reply larger than this is refused
    bool follower_reads = true;
    PlantedBug bug = PlantedBug::kNone;
    uint64_t seed = 1;  // client ids and request ids: never to repeat across incarnations
    // The host runs the core's flush soon and then calls after_flush() (several calls, one flush).
    std::function<void()> wake;
    std::function<void(const std::string&)> log;
    // For the simulator: a read is served now, from a state machine applied through `applied`,
    // for the session `client` (0 if not known there).
    std::function<void(uint64_t client, Slot applied)> read_served;
  };

  // One client connection.
  class Session;
  using Done = std::function<void(const kv::Reply&)>;

  Router(ServerCore& core, RouterPeers& peers, RouterClock& clock, Options options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Starts the tick (the core's, and the router's deadlines).
  void start();
  // No more ticks, sends or answers.
  void stop();

  std::shared_ptr<Session> open_session();
  // A replicated command (kv::classify is not kUnknown) from `session`: `done` runs once with the
  // answer, unless the session is closed first.
  void execute(const std::shared_ptr<Session>& session, std::vector<std::string> args, Done done);

  // The host calls this after each flush of the core.
  void after_flush();

  // From peers.
  void on_forward(NodeId from, net::Forward& forward);
  void on_forward_reply(NodeId from, net::ForwardReply& reply);
  void on_read_index_request(NodeId from, uint64_t request_id);
  void on_read_index_reply(NodeId from, const net::ReadIndexReply& reply);

  size_t forwards_in_flight() const { return forwarded_.size(); }
  size_t requests_in_progress() const { return waiting_.size(); }

  struct Counters {
    uint64_t writes = 0;
    uint64_t reads = 0;
    uint64_t forwarded = 0;
    uint64_t forwards_served = 0;
    uint64_t follower_reads = 0;         // reads this follower served by a read index
    uint64_t index_requests = 0;         // read-index requests it sent
    uint64_t index_requests_served = 0;  // ... and, on the leader, answered
    uint64_t retries = 0;
    uint64_t unknown = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Op;
  struct SplitExec;
  void tick();
  static bool must_wait(const Session& session, const Op& op);
  void start_op(const std::shared_ptr<Op>& op);
  void attempt(const std::shared_ptr<Op>& op);
  void on_result(const std::shared_ptr<Op>& op, const kv::Reply& reply);
  void retry_later(const std::shared_ptr<Op>& op);
  void finish(const std::shared_ptr<Op>& op, const kv::Reply& reply);
  // The planted bug multi-split: proposes the next part of a split transaction.
  void execute_part(const std::shared_ptr<Session>& session,
                    const std::shared_ptr<SplitExec>& split);
  void send_index_request();
  void serve_indexed_reads();
  void served(uint64_t client) {
    if (options_.read_served) options_.read_served(client, core_.applied());
  }
  void wake() {
    if (!stopped_ && options_.wake) options_.wake();
  }
  void log(const std::string& line) {
    if (options_.log) options_.log(line);
  }

  ServerCore& core_;
  RouterPeers& peers_;
  RouterClock& clock_;
  Options options_;
  Rng ids_;
  // Tells a timer that fires after the router is gone not to touch it.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool started_ = false;
  bool stopped_ = false;
  // Ops in the order they arrived, so that what a tick finds due goes in an order that does not
  // depend on where the allocator put them (the simulator replays a seed exactly).
  struct Arrival {
    bool operator()(const std::shared_ptr<Op>& a, const std::shared_ptr<Op>& b) const;
  };
  using OpSet = std::set<std::shared_ptr<Op>, Arrival>;
  uint64_t next_op_ = 0;
  std::map<uint64_t, std::shared_ptr<Op>> forwarded_;  // request id -> op awaiting the leader
  OpSet waiting_;                                      // ops between attempts or in the core
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
  // The forwards this replica has taken, per sender, so that a copy that arrives again (the
  // network duplicated it, or a peer resent it) is dropped and never run twice: its sender may
  // already have told its client that the first copy's refusal (TRYAGAIN) was definite. Kept
  // for kForwardMemoryMs and at most kForwardMemory per sender (beyond them a copy would be
  // minutes late, past every deadline).
  static constexpr uint64_t kForwardMemoryMs = 60'000;
  static constexpr size_t kForwardMemory = 1 << 16;
  struct TakenForwards {
    std::set<uint64_t> ids;
    std::deque<std::pair<uint64_t, uint64_t>> order;  // (taken at ms, id), oldest first
  };
  std::map<NodeId, TakenForwards> taken_forwards_;
  // False if this forward was taken before (a copy); remembers it otherwise.
  bool take_forward(NodeId from, uint64_t request_id);
  NodeId last_leader_;
  Counters counters_;
};

class Router::Session {
 public:
  explicit Session(uint64_t client) : client_(client) {}
  // The state machine's client id of this connection's commands (never 0).
  uint64_t client() const { return client_; }
  // The connection is gone: no more answers, and what it had queued never starts.
  void close() {
    closed_ = true;
    deferred_.clear();
  }
  // The sequence number of this session's latest write.
  uint64_t last_seq() const { return next_seq_ - 1; }

 private:
  friend class Router;
  // Seqs increase and never fall below the state machine's first_seq() when assigned, which is
  // how the store tells a new client from one whose session it evicted (kv/store.h).
  uint64_t next_seq(uint64_t first_seq) {
    next_seq_ = std::max(next_seq_, first_seq);
    return next_seq_++;
  }
  uint64_t client_;
  uint64_t next_seq_ = 1;
  size_t writes_in_progress_ = 0;
  size_t reads_in_progress_ = 0;
  std::deque<std::shared_ptr<Op>> deferred_;  // waiting for earlier commands to finish
  bool closed_ = false;
};

}  // namespace synod::node
