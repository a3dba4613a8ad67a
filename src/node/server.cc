#include "node/server.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <deque>
#include <random>

#include "base/rng.h"
#include "net/resp.h"

namespace synod::node {

using asio::ip::tcp;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void write_reply(net::RespWriter& w, const kv::Reply& r) {
  switch (r.kind) {
    case kv::Reply::Kind::kSimple:
      return w.simple(r.text);
    case kv::Reply::Kind::kError:
      return w.error(r.text);
    case kv::Reply::Kind::kInteger:
      return w.integer(r.integer);
    case kv::Reply::Kind::kBulk:
      return w.bulk(r.text);
    case kv::Reply::Kind::kNull:
      return w.null();
    case kv::Reply::Kind::kArray:
      w.array(r.elements.size());
      for (const auto& e : r.elements) write_reply(w, e);
      return;
  }
}

// Runs `fdatasync`; its status and how long it took, in microseconds.
std::pair<Status, uint64_t> timed(const std::function<Status()>& fdatasync) {
  const auto start = std::chrono::steady_clock::now();
  Status synced = fdatasync();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  return {std::move(synced), static_cast<uint64_t>(us.count())};
}

bool starts_with(const kv::Reply& r, std::string_view prefix) {
  return r.kind == kv::Reply::Kind::kError && r.text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

// A request in progress: one client command, through every attempt until its answer.
struct Server::Op {
  std::weak_ptr<Connection> conn;
  std::shared_ptr<std::string> slot;  // where the encoded reply goes, in pipeline order
  int protocol = 2;
  std::vector<std::string> args;
  bool read = false;
  uint64_t client = 0, seq = 0;
  uint64_t deadline_ms = 0;
  uint64_t retry_at_ms = 0;  // between attempts: when to try again
  uint64_t forward_id = 0;   // while forwarded: the request id awaited
  NodeId forward_to;         // ... from this peer
  uint64_t forward_deadline_ms = 0;
  bool maybe_applied = false;         // some attempt may have taken effect
  bool maybe_applied_before = false;  // ... some attempt before the current one
  bool done = false;
  kv::Reply last_refusal;
};

// One client's connection: parses pipelined requests, answers them in order.
class Server::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, tcp::socket socket, uint64_t client)
      : server_(server),
        socket_(std::move(socket)),
        client_(client),
        parser_(net::RespLimits{
            .max_bulk_bytes =
                std::max(net::RespLimits{}.max_bulk_bytes, server.options_.max_command_bytes),
            .max_request_bytes = std::max(server.options_.client_query_buffer_bytes,
                                          2 * server.options_.max_command_bytes)}) {}

  uint64_t client() const { return client_; }
  // Seqs increase and never exceed the state machine's first_seq() when assigned, which is how
  // the store tells a new client from one whose session it evicted (kv/store.h).
  uint64_t next_seq(uint64_t first_seq) {
    next_seq_ = std::max(next_seq_, first_seq);
    return next_seq_++;
  }

  // Replies formatted for this client and not yet taken by the kernel.
  size_t queued_bytes() const {
    size_t n = out_.size() + sending_.size();
    for (const auto& slot : pipeline_) n += slot->size();
    return n;
  }
  bool paused() const { return paused_; }

  void start() {
    asio::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    read();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    socket_.close(ignored);
    server_.connection_closed(shared_from_this());
  }

  // A slot was filled: send every finished reply at the front, in order.
  void reply_ready() {
    if (closed_) return;
    while (!pipeline_.empty() && !pipeline_.front()->empty()) {
      out_ += *pipeline_.front();
      pipeline_.pop_front();
    }
    if (queued_bytes() > server_.options_.client_output_hard_bytes) {
      // A client that does not read its replies holds no more than this.
      ++server_.counters_.output_limit_closes;
      return close();
    }
    write();
    resume();
  }

 private:
  // Reading waits while the pipeline is full or the replies queued exceed the soft limit.
  bool must_pause() const {
    return pipeline_.size() >= server_.options_.max_inflight_per_client ||
           queued_bytes() > server_.options_.client_output_soft_bytes;
  }

  void resume() {
    if (!paused_ || closed_ || must_pause()) return;
    paused_ = false;
    parse();
    if (!paused_ && !closing_) read();
  }

  void read() {
    if (closed_ || closing_) return;
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_), [this, self](const asio::error_code& ec, size_t n) {
      if (closed_) return;
      if (ec) return close();
      parser_.feed(std::string_view(buf_, n));
      parse();
      if (!paused_ && !closing_) read();
      server_.request_flush();
    });
  }

  void parse() {
    std::vector<std::string> args;
    std::string error;
    while (!closing_) {
      if (must_pause()) {
        paused_ = true;  // reading resumes as replies go out
        return;
      }
      const auto status = parser_.next(args, error);
      if (status == net::RespParser::Status::kNeedMore) return;
      auto slot = std::make_shared<std::string>();
      pipeline_.push_back(slot);
      if (status == net::RespParser::Status::kError) {
        // The stream cannot be resynchronized after a framing error: answer, then close.
        ++server_.counters_.protocol_errors;
        net::RespWriter w(protocol_);
        w.error(error);
        *slot = w.take();
        closing_ = true;
        reply_ready();
        return;
      }
      server_.on_request(shared_from_this(), std::move(args), slot, protocol_);
      args.clear();
    }
  }

  void write() {
    if (writing_ || closed_) return;
    if (out_.empty()) {
      if (closing_ && pipeline_.empty()) close();
      return;
    }
    writing_ = true;
    sending_ = std::move(out_);
    out_.clear();
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(sending_),
                      [this, self](const asio::error_code& ec, size_t) {
                        writing_ = false;
                        if (closed_) return;
                        if (ec) return close();
                        sending_.clear();
                        write();
                        resume();
                      });
  }

  friend class Server;
  Server& server_;
  tcp::socket socket_;
  uint64_t client_;
  uint64_t next_seq_ = 1;
  net::RespParser parser_;
  int protocol_ = 2;
  std::deque<std::shared_ptr<std::string>> pipeline_;
  std::string out_, sending_;
  bool writing_ = false;
  bool paused_ = false;
  bool closing_ = false;  // answer what is queued, then close (QUIT, protocol error)
  bool closed_ = false;
  size_t writes_in_progress_ = 0;
  size_t reads_in_progress_ = 0;
  std::deque<std::shared_ptr<Server::Op>> deferred_;  // waiting for earlier writes to finish
  char buf_[16 << 10];
};

Result<std::map<NodeId, net::Endpoint>> parse_peers(std::string_view text) {
  std::map<NodeId, net::Endpoint> peers;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = item.find('=');
    uint32_t id = 0;
    if (eq == std::string_view::npos ||
        std::from_chars(item.data(), item.data() + eq, id).ptr != item.data() + eq || id == 0 ||
        id > paxos::NodeSet::kMaxNodeId)
      return Status::invalid_argument("peer '" + std::string(item) +
                                      "' is not ID=HOST:PORT with ID in 1..63");
    auto endpoint = net::parse_endpoint(item.substr(eq + 1));
    if (!endpoint.is_ok()) return endpoint.status();
    if (!peers.emplace(NodeId{id}, *endpoint).second)
      return Status::invalid_argument("peer " + std::to_string(id) + " is listed twice");
  }
  if (peers.empty()) return Status::invalid_argument("no peers given");
  return peers;
}

Server::Server(asio::io_context& io, Options options)
    : io_(io), options_(std::move(options)), acceptor_(io), tick_timer_(io) {}

Server::~Server() {
  stop();
  // A sync in flight finishes before the storage it syncs goes away.
  if (sync_thread_) sync_thread_->join();
}

namespace {
constexpr std::pair<const char*, Server::PlantedBug> kPlantedBugs[] = {
    {"stale-follower-reads", Server::PlantedBug::kStaleFollowerReads},
    {"ack-before-chosen", Server::PlantedBug::kAckBeforeChosen},
    {"follower-read-before-apply", Server::PlantedBug::kFollowerReadBeforeApply},
    {"wall-clock-expiry", Server::PlantedBug::kWallClockExpiry},
    {"reads-at-local-clock", Server::PlantedBug::kReadsAtLocalClock},
};
}  // namespace

const std::vector<std::string>& Server::planted_bug_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, bug] : kPlantedBugs) out.emplace_back(name);
    return out;
  }();
  return names;
}

namespace {

// Every byte bound of the protocol, derived from the largest command (docs/wire-format.md).
void set_size_limits(size_t max_command_bytes, paxos::Config& config) {
  config.max_command_bytes = max_command_bytes;
  // Twice the largest command: any one slot's value fits with room to spare, and so does a
  // Forward of the largest command.
  config.max_message_bytes = std::max<size_t>(16 << 20, 2 * max_command_bytes);
  config.max_inflight_bytes = std::max<size_t>(32 << 20, 2 * config.max_message_bytes);
  config.max_queued_bytes = std::max<size_t>(64 << 20, 4 * config.max_message_bytes);
}

}  // namespace

Result<std::unique_ptr<Server>> Server::create(asio::io_context& io, Options options) {
  if (options.max_command_bytes < 1024 || options.max_command_bytes > kMaxCommandBytesLimit)
    return Status::invalid_argument(
        fmt::format("--max-command-bytes must be in 1024..{}", kMaxCommandBytesLimit));
  PlantedBug bug = PlantedBug::kNone;
  for (const auto& [name, planted] : kPlantedBugs)
    if (options.planted_bug == name) bug = planted;
  if (!options.planted_bug.empty() && bug == PlantedBug::kNone) {
    return Status::invalid_argument("unknown planted bug '" + options.planted_bug + "' (" +
                                    fmt::format("{}", fmt::join(planted_bug_names(), ", ")) + ")");
  }
  if (options.max_sessions == 0) return Status::invalid_argument("--max-sessions must be >= 1");
  if (options.client_output_soft_bytes > options.client_output_hard_bytes)
    return Status::invalid_argument(
        "--client-output-soft-limit must not exceed --client-output-hard-limit");
  if (!options.peers.count(options.id))
    return Status::invalid_argument("--id " + std::to_string(options.id.value) +
                                    " is not in --peers");
  std::unique_ptr<Server> s(new Server(io, std::move(options)));
  s->bug_ = bug;
  const Options& o = s->options_;
  s->fs_ = storage::make_posix_file_system();
  ServerCore::Options core;
  core.config.self = o.id;
  std::vector<NodeId> members;
  for (const auto& [id, endpoint] : o.peers) members.push_back(id);
  core.config.quorum = paxos::QuorumSystem::majority(members);
  core.config.election_timeout_min_ticks = o.election_timeout_min_ticks;
  core.config.election_timeout_max_ticks = o.election_timeout_max_ticks;
  core.config.heartbeat_interval_ticks = o.heartbeat_interval_ticks;
  set_size_limits(o.max_command_bytes, core.config);
  core.log.dir = o.data_dir;
  core.log.cluster_id = o.cluster_id;
  core.log.node_id = o.id.value;
  core.snapshot_every = o.snapshot_every_slots;
  core.store.max_sessions = o.max_sessions;
  core.bug_wall_clock_expiry = bug == PlantedBug::kWallClockExpiry;
  core.bug_reads_at_local_clock = bug == PlantedBug::kReadsAtLocalClock;
  // The cluster clock runs on steady_clock; the wall clock only dates the cluster's birth.
  Server* raw_server = s.get();
  core.clock.monotonic_ms = [raw_server] { return raw_server->now_ms(); };
  core.clock.wall_ms = [raw_server] { return raw_server->wall_ms(); };
  std::random_device device;
  const uint64_t seed = (uint64_t{device()} << 32) ^ device();
  auto opened = ServerCore::open(*s->fs_, core, seed);
  if (!opened.is_ok()) return opened.status();
  s->core_ = std::move(*opened);
  // Client ids must never repeat across restarts (the state machine remembers replies per id):
  // they come from a generator seeded by the device and the clock.
  s->client_ids_ = std::make_unique<Rng>(seed ^ (uint64_t{o.id.value} << 56) ^ s->wall_ms());
  s->next_request_id_ = (s->client_ids_->next() >> 1) | 1;
  net::PeerTransport::Options t;
  t.self = o.id;
  t.cluster_id = o.cluster_id;
  t.peers = o.peers;
  // A frame carries one message body; the queue holds a few of the largest, so a retransmitted
  // Accept at the limit is never dropped for its size alone.
  t.max_frame_bytes = core.config.max_message_bytes;
  t.max_queue_bytes = 4 * (net::kFrameHeaderSize + t.max_frame_bytes);
  s->max_frame_bytes_ = t.max_frame_bytes;
  Server* raw = s.get();
  net::PeerTransport::Handlers h;
  h.message = [raw](paxos::Envelope& e) {
    raw->core_->receive(e);
    raw->request_flush();
  };
  h.forward = [raw](NodeId from, net::Forward& f) { raw->on_forward(from, f); };
  h.forward_reply = [raw](NodeId from, net::ForwardReply& r) { raw->on_forward_reply(from, r); };
  h.read_index_request = [raw](NodeId from, const net::ReadIndexRequest& r) {
    raw->on_read_index_request(from, r.request_id);
  };
  h.read_index_reply = [raw](NodeId from, const net::ReadIndexReply& r) {
    raw->on_read_index_reply(from, r);
  };
  h.log = [raw](const std::string& line) { raw->log(line); };
  s->transport_ = std::make_unique<net::PeerTransport>(io, std::move(t), std::move(h));
  s->core_->set_early_send(
      [raw](const paxos::Envelope& e) { raw->transport_->send(e.to, net::encode_frame(e)); });
  if (o.sync_thread) {
    s->sync_thread_ = std::make_unique<asio::thread_pool>(1);
    s->core_->set_sync_runner(
        [raw](std::function<Status()> fdatasync, std::function<void(Status)> done) {
          // The loop has other work while its disk syncs on a leader (clients to read,
          // Accepteds to count, commands to apply) and on a follower that forwards clients'
          // requests (to relay both ways). A follower with no client waiting cannot answer
          // before the sync anyway, and would only pay two thread handoffs per batch: it syncs
          // inline.
          if (raw->core_->replica().role() != paxos::Role::kLeader && raw->forwarded_.empty()) {
            auto [synced, us] = timed(fdatasync);
            raw->note_sync(us);
            done(synced);
            return;
          }
          asio::post(*raw->sync_thread_,
                     [raw, alive = std::weak_ptr<int>(raw->alive_),
                      fdatasync = std::move(fdatasync), done = std::move(done)]() mutable {
                       auto [synced, us] = timed(fdatasync);
                       asio::post(raw->io_, [raw, alive = std::move(alive), us,
                                             synced = std::move(synced), done = std::move(done)] {
                         if (alive.expired()) return;
                         raw->note_sync(us);
                         done(synced);
                         raw->request_flush();
                       });
                     });
        });
  }
  return s;
}

Status Server::start() {
  started_ms_ = now_ms();
  SYNOD_RETURN_IF_ERROR(net::listen(acceptor_, options_.listen, "clients"));
  SYNOD_RETURN_IF_ERROR(transport_->start());
  accept();
  on_tick();
  log(fmt::format("serving clients on {}, peers on {}, data in {}", options_.listen.to_string(),
                  options_.peers.at(options_.id).to_string(), options_.data_dir));
  return Status::ok();
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  tick_timer_.cancel();
  if (transport_) transport_->stop();
  for (const auto& c : std::set<std::shared_ptr<Connection>>(connections_)) c->close();
}

void Server::accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) {
      if (connections_.size() >= options_.max_clients) {
        const std::string refusal = "-ERR max number of clients reached\r\n";
        asio::error_code ignored;
        asio::write(socket, asio::buffer(refusal), ignored);
      } else {
        ++counters_.connections;
        const uint64_t client = client_ids_->next() | 1;  // 0 means untracked
        auto conn = std::make_shared<Connection>(*this, std::move(socket), client);
        connections_.insert(conn);
        conn->start();
      }
    }
    accept();
  });
}

void Server::connection_closed(const std::shared_ptr<Connection>& conn) {
  connections_.erase(conn);
}

uint64_t Server::now_ms() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t Server::wall_ms() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void Server::log(const std::string& line) const {
  fmt::print(stderr, "n{} {}\n", options_.id.value, line);
}

void Server::on_tick() {
  if (stopped_) return;
  core_->tick();
  const uint64_t now = now_ms();
  // A new leader: forwards to the old one are sent again at once (writes keep their command id,
  // so one that did reach the old leader is still applied at most once).
  const NodeId leader = core_->replica().leader();
  const bool leader_changed = leader != last_leader_;
  last_leader_ = leader;
  // Read-index requests unanswered too long, or to an old leader: their reads go again (a late
  // reply is ignored). Every read not yet answered is in waiting_.
  std::set<std::shared_ptr<Op>> reindex;
  std::erase_if(index_requests_, [&](auto& entry) {
    if (entry.second.deadline_ms > now && !leader_changed) return false;
    reindex.insert(entry.second.ops.begin(), entry.second.ops.end());
    return true;
  });
  // Ops between attempts, forwards unanswered too long, reads whose index request expired, and
  // requests past their deadline.
  std::vector<std::shared_ptr<Op>> due;
  for (const auto& op : waiting_)
    if ((op->retry_at_ms && op->retry_at_ms <= now) ||
        (op->forward_id && (op->forward_deadline_ms <= now || leader_changed)) ||
        op->deadline_ms <= now || reindex.count(op))
      due.push_back(op);
  for (const auto& op : due) {
    waiting_.erase(op);
    if (op->forward_id) {
      forwarded_.erase(op->forward_id);
      op->forward_id = 0;
    }
    op->retry_at_ms = 0;
    execute(op);
  }
  request_flush();
  tick_timer_.expires_after(std::chrono::milliseconds(options_.tick_ms));
  tick_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) on_tick();
  });
}

void Server::request_flush() {
  if (flush_posted_ || stopped_) return;
  flush_posted_ = true;
  asio::post(io_, [this] {
    flush_posted_ = false;
    flush();
  });
}

void Server::flush() {
  if (stopped_) return;
  ++counters_.flushes;
  auto out = core_->flush();
  if (!out.is_ok()) {
    fatal_ = out.status();
    log("stopping: storage failed: " + fatal_.to_string());
    stop();
    io_.stop();
    return;
  }
  for (const auto& e : *out) transport_->send(e.to, net::encode_frame(e));
  serve_indexed_reads();
  send_index_request();
}

void Server::on_request(const std::shared_ptr<Connection>& conn, std::vector<std::string> args,
                        const std::shared_ptr<std::string>& slot, int protocol) {
  ++counters_.commands;
  auto op = std::make_shared<Op>();
  op->conn = conn;
  op->slot = slot;
  op->protocol = protocol;
  if (args.empty()) return finish(op, kv::Reply::error("ERR empty command"));
  const std::string name = lower(args[0]);
  const kv::CommandClass cls = kv::classify(name);
  if (name == "hello") return hello(conn, op, args);
  if (cls == kv::CommandClass::kUnknown) {
    bool close = false;
    kv::Reply reply = local_command(args, close);
    if (close) conn->closing_ = true;
    return finish(op, reply);
  }
  // Refused here, before it is proposed or forwarded: no message could carry it.
  if (const size_t bytes = kv::encoded_command_bytes(args); bytes > options_.max_command_bytes)
    return finish(op, too_large(options_.max_command_bytes, bytes));
  op->read = cls == kv::CommandClass::kRead;
  (op->read ? counters_.reads : counters_.writes)++;
  op->args = std::move(args);
  op->client = conn->client();
  if (!op->read) op->seq = conn->next_seq(core_->store().first_seq());
  op->deadline_ms = now_ms() + options_.request_timeout_ms;
  // A connection's commands take effect in the order it sent them, as with Redis. Writes go to
  // the log in order and reads may run together, but a read waits for the connection's earlier
  // writes (its read index would not cover a write still queued) and a write for its earlier
  // reads (a read sees the state machine as of when it is served, which must not include it).
  if (!conn->deferred_.empty() || must_wait(*conn, *op)) {
    conn->deferred_.push_back(op);
    return;
  }
  start_op(conn, op);
}

bool Server::must_wait(const Connection& conn, const Op& op) {
  return op.read ? conn.writes_in_progress_ > 0 : conn.reads_in_progress_ > 0;
}

void Server::start_op(const std::shared_ptr<Connection>& conn, const std::shared_ptr<Op>& op) {
  ++(op->read ? conn->reads_in_progress_ : conn->writes_in_progress_);
  op->deadline_ms = now_ms() + options_.request_timeout_ms;
  execute(op);
}

void Server::execute(const std::shared_ptr<Op>& op) {
  if (op->done) return;
  if (now_ms() >= op->deadline_ms) {
    ++counters_.unknown;
    if (op->maybe_applied)
      return finish(
          op,
          kv::Reply::error("UNKNOWN no answer from the cluster in time; the command may or may not "
                           "have taken effect"));
    std::string why = op->last_refusal.text;
    if (why.empty())
      why = "TRYAGAIN no leader could be reached in time; the command was not applied";
    return finish(op, kv::Reply::error(why));
  }
  const NodeId self = options_.id;
  const NodeId leader = core_->replica().leader();
  auto done = [this, op](const kv::Reply& r) { on_result(op, r); };
  if (bug_ == PlantedBug::kStaleFollowerReads && op->read &&
      core_->replica().role() != paxos::Role::kLeader)
    return finish(op, core_->store().read(op->args, wall_ms()));
  if (bug_ == PlantedBug::kAckBeforeChosen && !op->read &&
      core_->replica().role() == paxos::Role::kLeader) {
    core_->submit(op->client, op->seq, op->args, [](const kv::Reply&) {});
    request_flush();
    return finish(op, kv::Reply::ok());
  }
  if (core_->replica().role() == paxos::Role::kLeader || !leader.valid() || leader == self) {
    waiting_.insert(op);
    if (op->read) {
      core_->read(op->args, done);
    } else {
      op->maybe_applied_before = op->maybe_applied;
      op->maybe_applied = true;  // it may reach an acceptor from here on
      core_->submit(op->client, op->seq, op->args, done);
    }
    request_flush();
    return;
  }
  if (op->read && options_.follower_reads) {
    // Served here, by a read index the leader gives for the whole batch (send_index_request).
    waiting_.insert(op);
    index_gathering_.push_back(op);
    request_flush();
    return;
  }
  // Forward to the leader; the reply (or its absence) comes back through on_forward_reply/tick.
  ++counters_.forwarded;
  op->forward_id = next_request_id_++;
  op->forward_to = leader;
  op->forward_deadline_ms = now_ms() + options_.forward_timeout_ms;
  if (!op->read) {
    op->maybe_applied_before = op->maybe_applied;
    op->maybe_applied = true;
  }
  forwarded_[op->forward_id] = op;
  waiting_.insert(op);
  transport_->send(leader,
                   net::encode_forward({op->forward_id, op->read, op->client, op->seq, op->args}));
}

void Server::on_result(const std::shared_ptr<Op>& op, const kv::Reply& reply) {
  if (op->done) return;
  waiting_.erase(op);
  if (starts_with(reply, "TRYAGAIN")) {
    // Definitely not applied by this attempt: try again shortly (a leader may be elected).
    op->last_refusal = reply;
    op->maybe_applied = op->maybe_applied_before;
    return retry_later(op);
  }
  if (starts_with(reply, "UNKNOWN")) {
    op->maybe_applied = true;
    return retry_later(op);  // the same id: applied at most once
  }
  if (starts_with(reply, "SESSIONEXPIRED") || starts_with(reply, "ERR command too old")) {
    // The state machine no longer knows this (client, seq): it refused this attempt, as it will
    // every later one with the same seq.
    op->maybe_applied = op->maybe_applied_before;
    auto conn = op->conn.lock();
    if (!op->maybe_applied && conn) {
      // No attempt can take effect, so the command never did: send it again with a seq the store
      // does not doubt (it doubted this one because other clients' sessions were evicted since
      // the seq was given: the table turned over while the command was on its way).
      op->seq = conn->next_seq(core_->store().first_seq());
      op->last_refusal = kv::Reply::error(
          "TRYAGAIN the session table turned over faster than the command reached the log; the "
          "command was not applied");
      return retry_later(op);
    }
    ++counters_.unknown;
    return finish(op, kv::Reply::error("UNKNOWN this connection's exactly-once session expired "
                                       "(the session table is full): the command may or may not "
                                       "have taken effect"));
  }

  finish(op, reply);
}

void Server::retry_later(const std::shared_ptr<Op>& op) {
  ++counters_.retries;
  op->retry_at_ms = now_ms() + options_.tick_ms;
  waiting_.insert(op);
}

void Server::finish(const std::shared_ptr<Op>& op, const kv::Reply& reply) {
  if (op->done) return;
  op->done = true;
  waiting_.erase(op);
  if (op->forward_id) forwarded_.erase(op->forward_id);
  if (reply.kind == kv::Reply::Kind::kError) ++counters_.errors;
  net::RespWriter w(op->protocol);
  write_reply(w, reply);
  *op->slot = w.take();
  auto conn = op->conn.lock();
  if (!conn) return;
  conn->reply_ready();
  if (op->client == 0) return;  // answered locally, never counted
  --(op->read ? conn->reads_in_progress_ : conn->writes_in_progress_);
  // What waited goes now, in order, until one must wait again.
  while (!conn->deferred_.empty() && !must_wait(*conn, *conn->deferred_.front())) {
    auto next = conn->deferred_.front();
    conn->deferred_.pop_front();
    start_op(conn, next);
  }
}

void Server::on_forward(NodeId from, net::Forward& f) {
  ++counters_.forwards_served;
  const uint64_t id = f.request_id;
  auto done = [this, from, id](const kv::Reply& r) {
    std::string bytes;
    kv::encode_reply(bytes, r);
    // A reply may be larger than any command (one that returns a value APPENDs built up): one
    // too large for a frame is answered with an error instead.
    if (bytes.size() + 64 > max_frame_bytes_) {
      const size_t size = bytes.size();
      bytes.clear();
      kv::encode_reply(bytes, kv::Reply::error("ERR the reply of " + std::to_string(size) +
                                               " bytes is too large to forward; ask the leader"));
    }
    if (!stopped_) transport_->send(from, net::encode_forward_reply({id, std::move(bytes)}));
  };
  if (f.args.empty() || kv::classify(f.args[0]) == kv::CommandClass::kUnknown)
    return done(kv::Reply::error("ERR not a replicated command"));
  // Never forwarded again: on a replica that is not the leader the core refuses at once
  // (TRYAGAIN, naming the leader it believes in), and the sender looks for the leader itself.
  if (f.read)
    core_->read(std::move(f.args), done);
  else
    core_->submit(f.client, f.seq, std::move(f.args), done);
  request_flush();
}

void Server::on_forward_reply(NodeId from, net::ForwardReply& r) {
  auto it = forwarded_.find(r.request_id);
  if (it == forwarded_.end() || it->second->forward_to != from) return;  // late, or not ours
  auto op = it->second;
  forwarded_.erase(it);
  op->forward_id = 0;
  auto reply = kv::decode_reply(r.reply);
  if (!reply.is_ok()) {
    log("undecodable reply to a forwarded command");
    waiting_.erase(op);
    return retry_later(op);
  }
  on_result(op, *reply);
}

// The leader's side of a follower read: confirm leadership with a quorum, answer with the read
// index, and send the follower a heartbeat right away so that it learns the chosen prefix up to
// that slot without waiting for the next one.
void Server::on_read_index_request(NodeId from, uint64_t request_id) {
  ++counters_.index_requests_served;
  // The reads' time is the cluster time now, when the index is fixed, as for reads on the
  // leader (ServerCore::read_index): state through the index at a later time could show a key
  // expired that a write after the index (acknowledged before that time) had kept alive.
  core_->read_index([this, from, request_id](bool ok, Slot slot, uint64_t time_ms) {
    if (stopped_) return;
    if (ok) core_->share_commit(from, slot);
    transport_->send(from, net::encode_read_index_reply({request_id, ok, slot, time_ms}));
  });
  request_flush();
}

// One read-index request per flush, for every read gathered since the previous one (the leader
// batches requests that arrive together into one confirmation round).
void Server::send_index_request() {
  if (index_gathering_.empty() || stopped_) return;
  const NodeId leader = core_->replica().leader();
  auto ops = std::move(index_gathering_);
  index_gathering_.clear();
  if (!leader.valid() || leader == options_.id || core_->replica().role() == paxos::Role::kLeader) {
    for (const auto& op : ops) {  // leadership moved: each read finds its way again
      waiting_.erase(op);
      execute(op);
    }
    return;
  }
  ++counters_.index_requests;
  const uint64_t id = next_request_id_++;
  index_requests_[id] =
      IndexRequest{leader, now_ms() + options_.forward_timeout_ms, std::move(ops)};
  transport_->send(leader, net::encode_read_index_request({id}));
}

void Server::on_read_index_reply(NodeId from, const net::ReadIndexReply& r) {
  auto it = index_requests_.find(r.request_id);
  if (it == index_requests_.end() || it->second.to != from) return;  // late, or not ours
  auto ops = std::move(it->second.ops);
  index_requests_.erase(it);
  for (const auto& op : ops) {
    if (op->done) continue;
    if (r.ok) {
      index_ready_.push_back({op, r.slot, r.leader_ms});
    } else {
      on_result(op, kv::Reply::error("TRYAGAIN leadership changed; the read was not served"));
    }
  }
  serve_indexed_reads();
  request_flush();
}

// Reads given an index are served once this replica's state machine reflects that slot: it then
// holds every write acknowledged before the read was asked, and only chosen commands.
void Server::serve_indexed_reads() {
  const Slot applied = core_->applied();
  std::vector<IndexedRead> ready;
  std::erase_if(index_ready_, [&](IndexedRead& r) {
    if (r.op->done) return true;
    // The planted bug follower-read-before-apply serves as soon as the index arrives.
    if (applied < r.slot && bug_ != PlantedBug::kFollowerReadBeforeApply) return false;
    ready.push_back(std::move(r));
    return true;
  });
  for (auto& r : ready) {
    ++counters_.follower_reads;
    finish(r.op, core_->store().read(r.op->args, r.leader_ms));
  }
}

// HELLO [protover ...]: switches the connection to RESP2 or RESP3 and answers with a map (an
// array of pairs in RESP2), as Redis does.
void Server::hello(const std::shared_ptr<Connection>& conn, const std::shared_ptr<Op>& op,
                   const std::vector<std::string>& args) {
  if (args.size() >= 2) {
    int v = 0;
    auto [end, ec] = std::from_chars(args[1].data(), args[1].data() + args[1].size(), v);
    if (ec != std::errc() || end != args[1].data() + args[1].size())
      return finish(op, kv::Reply::error("ERR Protocol version is not an integer or out of range"));
    if (v != 2 && v != 3)
      return finish(op, kv::Reply::error("NOPROTO unsupported protocol version"));
    conn->protocol_ = v;
  }
  const auto& r = core_->replica();
  net::RespWriter w(conn->protocol_);
  w.map(8);
  w.bulk("server");
  w.bulk("synod");
  w.bulk("version");
  w.bulk("7.0.0");
  w.bulk("proto");
  w.integer(conn->protocol_);
  w.bulk("id");
  w.integer(static_cast<int64_t>(conn->client() >> 1));
  w.bulk("mode");
  w.bulk("cluster");
  w.bulk("role");
  w.bulk(r.role() == paxos::Role::kLeader ? "master" : "replica");
  w.bulk("leader");
  w.integer(r.leader().valid() ? r.leader().value : 0);
  w.bulk("modules");
  w.array(0);
  op->done = true;
  *op->slot = w.take();
  conn->reply_ready();
}

kv::Reply Server::local_command(const std::vector<std::string>& args, bool& close) {
  using kv::Reply;
  const std::string name = lower(args[0]);
  const size_t argc = args.size();
  auto arity = [&] {
    return Reply::error("ERR wrong number of arguments for '" + name + "' command");
  };
  if (name == "ping") {
    if (argc == 1) return Reply::simple("PONG");
    if (argc == 2) return Reply::bulk(args[1]);
    return arity();
  }
  if (name == "echo") return argc == 2 ? Reply::bulk(args[1]) : arity();
  if (name == "quit") {
    close = true;
    return Reply::ok();
  }
  if (name == "command") {
    if (argc >= 2 && lower(args[1]) == "count") return Reply::integer_of(0);
    return Reply::array({});  // enough for redis-cli (COMMAND DOCS), which then works without hints
  }
  if (name == "select") {
    if (argc != 2) return arity();
    return args[1] == "0" ? Reply::ok() : Reply::error("ERR DB index is out of range");
  }
  if (name == "client") {
    if (argc >= 2 && (lower(args[1]) == "setname" || lower(args[1]) == "setinfo"))
      return Reply::ok();
    if (argc >= 2 && lower(args[1]) == "id") return Reply::integer_of(1);
    return Reply::error("ERR unknown CLIENT subcommand");
  }
  if (name == "config") {
    // Clients such as redis-benchmark read settings at start; Synod has no runtime CONFIG.
    if (argc == 3 && lower(args[1]) == "get") {
      // What Synod does is fixed: every acknowledged write is fsynced on a quorum.
      static const std::map<std::string, std::string> fixed = {
          {"save", ""}, {"appendonly", "yes"}, {"appendfsync", "always"}, {"databases", "1"}};
      std::vector<Reply> out;
      for (const auto& [k, v] : fixed)
        if (kv::glob_match(lower(args[2]), k)) {
          out.push_back(Reply::bulk(k));
          out.push_back(Reply::bulk(v));
        }
      return Reply::array(std::move(out));
    }
    return Reply::error("ERR CONFIG is not supported; see synod server --help");
  }
  if (name == "info") return Reply::bulk(info(argc >= 2 ? lower(args[1]) : "default"));
  if (name == "synod.fault") return fault_command(args);
  std::string shown = args[0].substr(0, 128);
  std::string rest;
  for (size_t i = 1; i < argc && i < 8; ++i) rest += "'" + args[i].substr(0, 64) + "' ";
  return Reply::error("ERR unknown command '" + shown + "', with args beginning with: " + rest);
}

// SYNOD.FAULT BLOCK id... | SYNOD.FAULT CLEAR: drop every frame to and from those peers, as a
// partition would. SYNOD.FAULT CLOCK ...: skew, step or drift this replica's clocks (see
// node/clock_faults.h). Only with --fault-injection.
kv::Reply Server::fault_command(const std::vector<std::string>& args) {
  if (!options_.fault_injection)
    return kv::Reply::error("ERR fault injection is off (start the server with --fault-injection)");
  if (args.size() >= 2 && lower(args[1]) == "clear") {
    transport_->set_blocked({});
    log("fault filter cleared");
    return kv::Reply::ok();
  }
  if (args.size() >= 2 && lower(args[1]) == "clock") {
    if (Status s = core_->clock_fault(args); !s.is_ok())
      return kv::Reply::error("ERR " + s.message());
    log("clock faults: " + core_->clock_faults().describe());
    return kv::Reply::ok();
  }
  if (args.size() >= 2 && lower(args[1]) == "block") {
    std::set<NodeId> blocked;
    for (size_t i = 2; i < args.size(); ++i) {
      uint32_t id = 0;
      auto [end, ec] = std::from_chars(args[i].data(), args[i].data() + args[i].size(), id);
      if (ec != std::errc() || !options_.peers.count(NodeId{id}) || NodeId{id} == options_.id)
        return kv::Reply::error("ERR '" + args[i] + "' is not a peer's id");
      blocked.insert(NodeId{id});
    }
    transport_->set_blocked(blocked);
    std::string which;
    for (auto id : blocked) which += " n" + std::to_string(id.value);
    log("fault filter: dropping all traffic with" + which);
    return kv::Reply::ok();
  }
  return kv::Reply::error(
      "ERR usage: SYNOD.FAULT BLOCK id... | SYNOD.FAULT CLEAR | SYNOD.FAULT CLOCK ...");
}

std::string Server::info(const std::string& section) const {
  const auto& r = core_->replica();
  const bool all = section == "default" || section == "all" || section == "everything";
  std::string out;
  auto add = [&](const std::string& line) { out += line + "\r\n"; };
  if (all || section == "server") {
    add("# Server");
    add("synod_version:0.1.0");
    add("redis_version:7.0.0");  // what clients check for features; Synod speaks RESP2/3
    add(fmt::format("process_id:{}", static_cast<long>(::getpid())));
    add("tcp_port:" + std::to_string(options_.listen.port));
    add(fmt::format("uptime_in_seconds:{}", (now_ms() - started_ms_) / 1000));
    add("data_dir:" + options_.data_dir);
    add("");
  }
  if (all || section == "replication") {
    const char* role = r.role() == paxos::Role::kLeader      ? "leader"
                       : r.role() == paxos::Role::kCandidate ? "candidate"
                                                             : "follower";
    add("# Replication");
    add(fmt::format("role:{}", role));
    add(fmt::format("node_id:{}", options_.id.value));
    add(fmt::format("cluster_id:{}", options_.cluster_id));
    add(fmt::format("leader_id:{}", r.leader().valid() ? r.leader().value : 0));
    add(fmt::format("ballot:{}.{}", r.ballot().round, r.ballot().node.value));
    add(fmt::format("promised:{}.{}", r.promised().round, r.promised().node.value));
    add(fmt::format("chosen_slot:{}", r.commit()));
    add(fmt::format("applied_slot:{}", core_->applied()));
    add(fmt::format("snapshot_slot:{}", r.snapshot_slot()));
    add(fmt::format("replicas:{}", options_.peers.size()));
    for (const auto& [id, endpoint] : options_.peers) {
      if (id == options_.id) continue;
      const auto s = transport_->stats(id);
      add(
          fmt::format("peer_{}:addr={},connected={},blocked={},frames_sent={},frames_received={},"
                      "frames_dropped={},queued_bytes={},connects={}",
                      id.value, endpoint.to_string(), s.connected ? 1 : 0,
                      transport_->blocked().count(id) ? 1 : 0, s.frames_sent, s.frames_received,
                      s.frames_dropped, s.queued_bytes, s.connects));
    }
    add("");
  }
  if (all || section == "stats") {
    add("# Stats");
    add(fmt::format("total_connections_received:{}", counters_.connections));
    add(fmt::format("connected_clients:{}", connections_.size()));
    add(fmt::format("total_commands_processed:{}", counters_.commands));
    add(fmt::format("writes:{}", counters_.writes));
    add(fmt::format("reads:{}", counters_.reads));
    add(fmt::format("forwarded_to_leader:{}", counters_.forwarded));
    add(fmt::format("forwards_served:{}", counters_.forwards_served));
    add(fmt::format("follower_reads:{}", counters_.follower_reads));
    add(fmt::format("read_index_requests:{}", counters_.index_requests));
    add(fmt::format("read_index_requests_served:{}", counters_.index_requests_served));
    add(fmt::format("internal_retries:{}", counters_.retries));
    add(fmt::format("unknown_outcomes:{}", counters_.unknown));
    add(fmt::format("error_replies:{}", counters_.errors));
    add(fmt::format("protocol_errors:{}", counters_.protocol_errors));
    size_t queued = 0, queued_max = 0, paused = 0;
    for (const auto& c : connections_) {
      queued += c->queued_bytes();
      queued_max = std::max(queued_max, c->queued_bytes());
      paused += c->paused() ? 1 : 0;
    }
    add(fmt::format("client_output_queued_bytes:{}", queued));
    add(fmt::format("client_output_queued_bytes_max:{}", queued_max));
    add(fmt::format("clients_paused:{}", paused));
    add(fmt::format("client_output_limit_closes:{}", counters_.output_limit_closes));
    add(fmt::format("loop_flushes:{}", counters_.flushes));
    add(fmt::format("wal_syncs:{}", counters_.syncs));
    add(fmt::format("wal_sync_us_total:{}", counters_.sync_us));
    add(fmt::format("wal_sync_us_max:{}", counters_.sync_us_max));
    add(fmt::format("requests_in_progress:{}", waiting_.size()));
    add("");
  }
  if (all || section == "keyspace") {
    add("# Keyspace");
    add(fmt::format("db0:keys={}", core_->store().size()));
    add(fmt::format("state_digest:{:016x}", core_->store().digest()));
    add(fmt::format("log_clock_ms:{}", core_->store().clock_ms()));
    add(fmt::format("sessions:{}", core_->store().sessions()));
    add(fmt::format("max_sessions:{}", options_.max_sessions));
    add(fmt::format("session_evictions:{}", core_->store().session_evictions()));
    add(fmt::format("cluster_time_ms:{}", core_->cluster_time_ms()));
    add("clock_faults:" + core_->clock_faults().describe());
  }
  return out;
}

}  // namespace synod::node
