#include "node/server.h"

#include <fmt/core.h>
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <random>
#include <set>
#include <utility>

#include "base/log.h"
#include "base/planted_bugs.h"
#include "base/rng.h"
#include "kv/command_info.h"
#include "kv/commands.h"
#include "kv/transaction.h"
#include "net/resp.h"
#include "node/backup.h"

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
    case kv::Reply::Kind::kNullArray:
      return w.null_array();
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

// Commands whose first argument is a subcommand: Redis names them cmd|sub (CLIENT LIST cmd=).
bool is_container_command(const std::string& name) {
  const kv::CommandSpec* spec = kv::describe_command(name);
  return spec && !spec->subcommands.empty();
}

// Redis's rule for client names: printable ASCII without spaces (CLIENT LIST stays parseable).
bool valid_client_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= '!' && c <= '~'; });
}

kv::Reply bad_client_name() {
  return kv::Reply::error(
      "ERR Client names cannot contain spaces, newlines or special characters.");
}

void return_freed_pages();  // (below, beside the allocator's other hooks)

}  // namespace

// One client's connection: parses pipelined requests, answers them in order.
class Server::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, net::Stream stream, std::shared_ptr<Router::Session> session)
      : server_(server),
        stream_(std::move(stream)),
        session_(std::move(session)),
        auth_(server.acl_->connect()),
        id_(++server.next_client_id_),
        created_ms_(server.now_ms()),
        last_ms_(created_ms_),
        parser_(net::RespLimits{
            .max_bulk_bytes =
                std::max(net::RespLimits{}.max_bulk_bytes, server.options_.max_command_bytes),
            .max_request_bytes = std::max(server.options_.client_query_buffer_bytes,
                                          2 * server.options_.max_command_bytes)}) {}

  uint64_t client() const { return session_->client(); }
  const std::shared_ptr<Router::Session>& session() const { return session_; }

  // Replies formatted for this client and not yet taken by the kernel.
  size_t queued_bytes() const {
    size_t n = out_.size() + sending_.size();
    for (const auto& slot : pipeline_) n += slot->size();
    return n;
  }
  bool paused() const { return paused_; }

  void start() {
    asio::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    const auto remote = stream_.socket().remote_endpoint(ignored);
    if (!ignored) remote_ = remote.address().to_string() + ":" + std::to_string(remote.port());
    const auto local = stream_.socket().local_endpoint(ignored);
    if (!ignored) local_ = local.address().to_string() + ":" + std::to_string(local.port());
    if (stream_.tls()) return start_tls();
    read();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    handshake_deadline_.reset();
    session_->close();
    stream_.close();
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
      server_.telemetry_->refused(Telemetry::Refusal::kOutputLimit);
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

  // The TLS port: a client that speaks plaintext is told so in RESP (redis-cli shows it) and
  // closed; otherwise the handshake, which checks the client's certificate per
  // --tls-auth-clients, comes before the first request is read.
  // A client that never finishes its handshake is closed after --handshake-timeout-ms. Every
  // refusal is logged through the server's rate limit (a flood is not a flood of lines).
  void start_tls() {
    asio::error_code ignored;
    const auto remote = stream_.socket().remote_endpoint(ignored);
    const std::string address = remote.address().to_string();
    const std::string where = address + ":" + std::to_string(remote.port());
    const auto refuse = [this, address, where](const std::string& reason) {
      server_.refused_client(address, reason, "refused a TLS client from " + where + ": " + reason);
    };
    auto self = shared_from_this();
    if (const uint32_t bound = server_.options_.handshake_timeout_ms; bound != 0) {
      handshake_deadline_ = std::make_unique<asio::steady_timer>(stream_.socket().get_executor());
      handshake_deadline_->expires_after(std::chrono::milliseconds(bound));
      handshake_deadline_->async_wait(
          [weak = weak_from_this(), refuse, bound](const asio::error_code& ec) {
            const auto conn = weak.lock();
            if (ec || !conn || conn->closed_) return;
            refuse("TLS handshake not finished within " + std::to_string(bound) + " ms");
            conn->close();
          });
    }
    net::peek_tls(
        stream_.socket(), std::make_shared<uint8_t>(0),
        [this, self, address, where, refuse](const asio::error_code& ec, bool is_tls) {
          if (closed_) return;
          if (ec) return close();
          if (!is_tls) {
            server_.refused_client(address, "plaintext",
                                   "refused a plaintext client from " + where + " on the TLS port");
            sending_ = "-ERR this port speaks TLS only\r\n";
            return asio::async_write(stream_.socket(), asio::buffer(sending_),
                                     [this, self](const asio::error_code&, size_t) { close(); });
          }
          stream_.async_handshake(asio::ssl::stream_base::server,
                                  [this, self, refuse](const asio::error_code& ec2) {
                                    if (closed_) return;
                                    if (ec2) {
                                      refuse(net::tls_error(ec2));
                                      return close();
                                    }
                                    handshake_deadline_.reset();  // cancels it
                                    read();
                                  });
        });
  }

  void read() {
    if (closed_ || closing_) return;
    auto self = shared_from_this();
    stream_.async_read_some(asio::buffer(buf_), [this, self](const asio::error_code& ec, size_t n) {
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
        server_.telemetry_->refused(Telemetry::Refusal::kProtocolError);
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
    stream_.async_write(asio::buffer(sending_), [this, self](const asio::error_code& ec, size_t) {
      writing_ = false;
      if (closed_) return;
      if (ec) return close();
      sending_.clear();
      write();
      resume();
    });
  }

  // Redis's MULTI/EXEC/WATCH state of this connection (kv/transaction.h).
  struct Queued {
    std::vector<std::string> args;   // for the log, if no local reply
    std::optional<kv::Reply> local;  // PING, ECHO, UNWATCH: answered without the state machine
  };
  struct Held {
    std::vector<std::string> args;
    std::shared_ptr<std::string> slot;
    int protocol;
  };
  void reset_transaction() {
    in_multi_ = false;
    multi_failed_ = false;
    queued_.clear();
    queued_bytes_ = 0;
  }
  void unwatch() {
    watched_.clear();
    watch_failed_ = false;
    ++watch_epoch_;  // a WATCH still on its way no longer counts
  }

  friend class Server;
  bool in_multi_ = false;
  bool multi_failed_ = false;  // a command was refused while queued: EXEC answers EXECABORT
  std::vector<Queued> queued_;
  size_t queued_bytes_ = 0;                  // encoded, as the EXEC entry will carry them
  std::map<std::string, uint64_t> watched_;  // key -> the log position its WATCH was served at
  uint64_t watch_epoch_ = 0;
  size_t watches_pending_ = 0;
  bool watch_failed_ = false;  // a WATCH got no answer: the next EXEC aborts, as if the key changed
  // An EXEC waits for this connection's WATCHes to answer (it carries their positions); it and
  // every request after it wait here, in order.
  std::deque<Held> held_;
  Server& server_;
  net::Stream stream_;                        // the socket, or TLS over it (the TLS port)
  std::shared_ptr<Router::Session> session_;  // the router's: client id, seqs, command order
  AuthState auth_;                            // its user, and whether it authenticated
  std::string remote_;                        // the client's address, for the log
  const uint64_t id_;                         // CLIENT ID
  std::string name_;                          // CLIENT SETNAME, HELLO SETNAME
  std::string local_;                         // the address it connected to (CLIENT LIST laddr=)
  const uint64_t created_ms_;                 // on now_ms(): CLIENT LIST age=
  uint64_t last_ms_;                          // its last command began: idle=
  std::string last_command_;                  // cmd=, as Redis names it (client|list)
  net::RespParser parser_;
  int protocol_ = 2;
  std::deque<std::shared_ptr<std::string>> pipeline_;
  std::string out_, sending_;
  bool writing_ = false;
  bool paused_ = false;
  bool closing_ = false;  // answer what is queued, then close (QUIT, protocol error)
  bool closed_ = false;
  std::unique_ptr<asio::steady_timer> handshake_deadline_;  // TLS port, until the handshake ends
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
        id > kMaxNodeIdValue)
      return Status::invalid_argument("peer '" + std::string(item) +
                                      "' is not ID=HOST:PORT with ID in 1.." +
                                      std::to_string(kMaxNodeIdValue));
    auto endpoint = net::parse_endpoint(item.substr(eq + 1));
    if (!endpoint.is_ok()) return endpoint.status();
    if (!peers.emplace(NodeId{id}, *endpoint).second)
      return Status::invalid_argument("peer " + std::to_string(id) + " is listed twice");
  }
  if (peers.empty()) return Status::invalid_argument("no peers given");
  return peers;
}

// The router's peers: its messages travel as frames on the peer transport.
class Server::AsioPeers : public RouterPeers {
 public:
  explicit AsioPeers(net::PeerTransport& transport) : transport_(transport) {}
  void send_forward(NodeId to, const net::Forward& forward) override {
    transport_.send(to, net::encode_forward(forward));
  }
  void send_forward_reply(NodeId to, net::ForwardReply reply) override {
    transport_.send(to, net::encode_forward_reply(reply));
  }
  void send_read_index_request(NodeId to, const net::ReadIndexRequest& request) override {
    transport_.send(to, net::encode_read_index_request(request));
  }
  void send_read_index_reply(NodeId to, const net::ReadIndexReply& reply) override {
    transport_.send(to, net::encode_read_index_reply(reply));
  }

 private:
  net::PeerTransport& transport_;
};

// The router's time: steady_clock, system_clock and Asio timers on the loop. Timers still
// pending when it goes are cancelled (their callbacks never run).
class Server::AsioClock : public RouterClock {
 public:
  explicit AsioClock(asio::io_context& io) : io_(io) {}
  ~AsioClock() override { cancel(); }
  uint64_t now_ms() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
  uint64_t wall_ms() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  }
  void after(uint64_t delay_ms, std::function<void()> callback) override {
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(delay_ms));
    timers_->insert(timer);
    timer->async_wait([timer, timers = std::weak_ptr<Timers>(timers_),
                       callback = std::move(callback)](const asio::error_code& ec) {
      auto live = timers.lock();
      if (!live) return;
      live->erase(timer);
      if (!ec) callback();
    });
  }
  void cancel() {
    for (const auto& timer : *timers_) timer->cancel();
    timers_ = std::make_shared<Timers>();
  }

 private:
  using Timers = std::set<std::shared_ptr<asio::steady_timer>>;
  asio::io_context& io_;
  std::shared_ptr<Timers> timers_ = std::make_shared<Timers>();
};

Server::Server(asio::io_context& io, Options options)
    : io_(io), options_(std::move(options)), acceptor_(io), tls_acceptor_(io) {}

Server::~Server() {
  stop();
  // A sync in flight finishes before the storage it syncs goes away.
  if (sync_thread_) sync_thread_->join();
}

namespace {}  // namespace

const std::vector<std::string>& Server::planted_bug_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const PlantedBugInfo& bug : planted_bugs()) out.emplace_back(bug.name);
    return out;
  }();
  return names;
}

Result<std::unique_ptr<Server>> Server::create(asio::io_context& io, Options options) {
  if (options.max_command_bytes < 1024 || options.max_command_bytes > kMaxCommandBytesLimit)
    return Status::invalid_argument(
        fmt::format("--max-command-bytes must be in 1024..{}", kMaxCommandBytesLimit));
  // Any planted bug of the registry (src/base/planted_bugs.h): the router's here, the replica's
  // and the protocol core's in ServerCore's options below.
  const PlantedBug bug = router_bug(options.planted_bug);
  if (!options.planted_bug.empty() && find_planted_bug(options.planted_bug) == nullptr) {
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
  std::vector<std::string> users = options.users;
  if (!options.aclfile.empty()) {
    auto lines = read_acl_file(options.aclfile);
    if (!lines.is_ok()) return lines.status();
    users.insert(users.end(), lines->begin(), lines->end());
  }
  auto acl = Acl::create(users, options.requirepass);
  if (!acl.is_ok()) return acl.status();
  if (options.tls_listen.port != 0 && !options.tls.enabled())
    return Status::invalid_argument("--tls-listen needs --tls-cert-file and --tls-key-file");
  if (options.listen.port == 0 && options.tls_listen.port == 0)
    return Status::invalid_argument("no client port: --listen none needs --tls-listen");
  std::unique_ptr<net::TlsContexts> tls;
  if (options.tls.enabled()) {
    auto loaded = net::TlsContexts::load(options.tls);
    if (!loaded.is_ok()) return loaded.status();
    tls = std::move(*loaded);
  }
  std::unique_ptr<Server> s(new Server(io, std::move(options)));
  s->acl_ = std::move(*acl);
  s->tls_ = std::move(tls);
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
  if (o.lease_reads)
    core.config.read_lease_ms = core.config.max_read_lease_ms(o.tick_ms, kClockDriftBound);
  core.config.set_size_limits(o.max_command_bytes);
  core.config.log_memory_bytes = o.log_memory_bytes;
  core.log.dir = o.data_dir;
  core.log.cluster_id = o.cluster_id;
  core.log.node_id = o.id.value;
  core.log.identity.initial_state = o.initial_cluster_state;
  core.incarnation_from_identity = true;
  core.snapshot_every = o.snapshot_every_slots;
  core.snapshot_log_bytes = o.snapshot_log_bytes;
  core.store.max_sessions = o.max_sessions;
  if (!o.planted_bug.empty() && bug == PlantedBug::kNone &&
      !ServerCore::plant_bug(o.planted_bug, core))
    return Status::invalid_argument("planted bug '" + o.planted_bug + "' has no switch here");
  // The cluster clock runs on steady_clock; the wall clock only dates the cluster's birth.
  Server* raw_server = s.get();
  s->clock_ = std::make_unique<AsioClock>(io);
  core.clock.monotonic_ms = [raw_server] { return raw_server->now_ms(); };
  core.clock.wall_ms = [raw_server] { return raw_server->wall_ms(); };
  // Unlinking a compacted 64 MiB segment or an older snapshot of tens of MB takes tens of ms: a
  // thread of its own does it, in order, off the event loop (as Redis unlinks in a background
  // thread). Nothing waits for it; what it has not removed yet, recovery ignores.
  s->remover_thread_ = std::make_unique<asio::thread_pool>(1);
  core.log.remove_files = [raw_server](std::vector<std::string> paths, std::string dir) {
    asio::post(*raw_server->remover_thread_,
               [raw_server, paths = std::move(paths), dir = std::move(dir)] {
                 raw_server->remove_files(paths, dir);
               });
  };
  std::random_device device;
  const uint64_t seed = (uint64_t{device()} << 32) ^ device();
  auto opened = ServerCore::open(*s->fs_, core, seed);
  if (!opened.is_ok()) {
    // A directory of another node, or an empty one with --initial-cluster-state existing, is a
    // refusal to start (start_failed, by the caller), not a failed recovery.
    if (opened.status().code() == Status::Code::kInvalidArgument) return opened.status();
    logging::write(logging::Level::kError, "recovery_failed",
                   "cannot recover " + o.data_dir + ": " + opened.status().to_string(),
                   {{"data_dir", o.data_dir}});
    return opened.status();
  }
  s->core_ = std::move(*opened);
  const storage::Identity& identity = s->core_->identity();
  if (s->core_->identity_created())
    s->log(fmt::format("data directory {} {} with incarnation {}", o.data_dir,
                       identity.origin == storage::Identity::Origin::kAdopted
                           ? "(from before identities) given an identity"
                           : fmt::format("initialized (--initial-cluster-state {})",
                                         storage::to_string(o.initial_cluster_state)),
                       to_string(identity.incarnation)));
  auto pins = storage::PeerPins::open(*s->fs_, o.data_dir, o.cluster_id, o.id.value);
  if (!pins.is_ok()) return pins.status();
  s->pins_ = std::make_unique<storage::PeerPins>(std::move(*pins));
  s->bug_wiped_replica_votes_ = core.bug_wiped_replica_votes;
  s->telemetry_ = std::make_unique<Telemetry>(o.id);
  s->core_->set_observer(s->telemetry_.get());
  net::PeerTransport::Options t;
  t.self = o.id;
  t.cluster_id = o.cluster_id;
  t.peers = o.peers;
  t.incarnation = identity.incarnation;
  if (s->tls_) t.tls = s->tls_->peers();
  t.handshake_timeout_ms = o.handshake_timeout_ms;
  // A frame carries one message body; the queue holds a few of the largest, so a retransmitted
  // Accept at the limit is never dropped for its size alone.
  t.max_frame_bytes = core.config.max_message_bytes;
  t.max_queue_bytes = 4 * (net::kFrameHeaderSize + t.max_frame_bytes);
  const size_t max_frame_bytes = t.max_frame_bytes;
  Server* raw = s.get();
  net::PeerTransport::Handlers h;
  h.message = [raw](paxos::Envelope& e) {
    raw->telemetry_->peer_message(e, Telemetry::Direction::kReceived);
    raw->core_->receive(e);
    raw->request_flush();
  };
  h.forward = [raw](NodeId from, net::Forward& f) { raw->router_->on_forward(from, f); };
  h.forward_reply = [raw](NodeId from, net::ForwardReply& r) {
    raw->router_->on_forward_reply(from, r);
  };
  h.read_index_request = [raw](NodeId from, const net::ReadIndexRequest& r) {
    raw->router_->on_read_index_request(from, r.request_id);
  };
  h.read_index_reply = [raw](NodeId from, const net::ReadIndexReply& r) {
    raw->router_->on_read_index_reply(from, r);
  };
  h.log = [](const std::string& line) { log_peer_event(line); };
  h.refused = [raw](NodeId peer, const net::Refusal& refusal) {
    raw->identity_refused(peer, refusal);
  };
  t.check_identity = [raw](NodeId peer, const Incarnation& incarnation) {
    return raw->check_identity(peer, incarnation);
  };
  s->transport_ = std::make_unique<net::PeerTransport>(io, std::move(t), std::move(h));
  s->peers_ = std::make_unique<AsioPeers>(*s->transport_);
  Router::Options r;
  r.id = o.id;
  r.tick_ms = o.tick_ms;
  r.request_timeout_ms = o.request_timeout_ms;
  r.forward_timeout_ms = o.forward_timeout_ms;
  r.max_command_bytes = o.max_command_bytes;
  r.max_frame_bytes = max_frame_bytes;
  r.follower_reads = o.follower_reads;
  r.bug = bug;
  // Client ids must never repeat across restarts (the state machine remembers replies per id):
  // they come from a generator seeded by the device and the clock.
  r.seed = seed ^ (uint64_t{o.id.value} << 56) ^ s->wall_ms();
  r.wake = [raw] { raw->request_flush(); };
  r.log = [raw](const std::string& line) { raw->log(line); };
  s->router_ = std::make_unique<Router>(*s->core_, *s->peers_, *s->clock_, std::move(r));
  s->core_->set_early_send([raw](const paxos::Envelope& e) {
    raw->telemetry_->peer_message(e, Telemetry::Direction::kSent);
    raw->transport_->send(e.to, net::encode_frame(e));
  });
  // Freeing the values of the 10,000 slots a snapshot covers took 20-95 ms of the loop (at 80 MB
  // of state): the remover thread frees them, and hands the pages back to the system at once
  // (return_freed_pages) rather than over jemalloc's ten-second decay.
  s->core_->set_disposer([raw](std::unique_ptr<paxos::Replica::Forgotten> forgotten) {
    asio::post(
        *raw->remover_thread_,
        [garbage = std::shared_ptr<paxos::Replica::Forgotten>(std::move(forgotten))]() mutable {
          garbage.reset();
          return_freed_pages();
        });
  });
  s->core_->set_garbage_disposer([raw](std::shared_ptr<void> garbage) {
    asio::post(*raw->remover_thread_, [garbage = std::move(garbage)]() mutable {
      garbage.reset();
      return_freed_pages();
    });
  });
  s->snapshot_child_ = std::make_unique<SnapshotChild>(io);
  s->core_->set_snapshot_runner([raw](ServerCore::SnapshotWork work,
                                      std::function<void(Result<ServerCore::SnapshotMade>)> done) {
    const uint64_t fork_us = raw->snapshot_child_->start(
        std::move(work), [raw, done = std::move(done)](Result<ServerCore::SnapshotMade> made) {
          done(std::move(made));
          raw->request_flush();  // (a failed adoption stops the server there)
        });
    raw->telemetry_->snapshot_forked(fork_us);
  });
  if (o.sync_thread) {
    s->sync_thread_ = std::make_unique<asio::thread_pool>(1);
    s->core_->set_sync_runner(
        [raw](std::function<Status()> fdatasync, std::function<void(Status)> done) {
          // The loop has other work while its disk syncs on a leader (clients to read,
          // Accepteds to count, commands to apply) and on a follower that forwards clients'
          // requests (to relay both ways). A follower with no client waiting cannot answer
          // before the sync anyway, and would only pay two thread handoffs per batch: it syncs
          // inline.
          if (raw->core_->replica().role() != paxos::Role::kLeader &&
              raw->router_->forwards_in_flight() == 0) {
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
  if (options_.listen.port != 0)
    SYNOD_RETURN_IF_ERROR(net::listen(acceptor_, options_.listen, "clients"));
  if (options_.tls_listen.port != 0)
    SYNOD_RETURN_IF_ERROR(net::listen(tls_acceptor_, options_.tls_listen, "TLS clients"));
  SYNOD_RETURN_IF_ERROR(transport_->start());
  if (options_.metrics_listen) {
    http_ = std::make_unique<HttpEndpoint>(
        io_, HttpEndpoint::Options{.listen = *options_.metrics_listen},
        [this](std::string_view path) { return monitor(path); });
    SYNOD_RETURN_IF_ERROR(http_->start());
  }
  if (options_.listen.port != 0) accept(acceptor_, false);
  if (options_.tls_listen.port != 0) accept(tls_acceptor_, true);
  router_->start();
  const std::string clients =
      options_.listen.port != 0 ? options_.listen.to_string() : "(no plaintext port)";
  logging::write(
      logging::Level::kInfo, "started",
      fmt::format(
          "serving clients on {}{}, peers on {}{}, metrics on {}, data in {}", clients,
          options_.tls_listen.port != 0 ? " and TLS " + options_.tls_listen.to_string() : "",
          options_.peers.at(options_.id).to_string(), tls_ ? " (mutual TLS)" : "",
          options_.metrics_listen ? options_.metrics_listen->to_string() : "(off)",
          options_.data_dir),
      {{"listen", clients}, {"data_dir", options_.data_dir}});
  if (tls_) log("TLS certificate " + net::describe_certificate_file(options_.tls.cert_file));
  return Status::ok();
}

Status Server::reload_tls() {
  if (!tls_) return Status::invalid_argument("TLS is not configured");
  if (Status s = tls_->reload(); !s.is_ok()) {
    log("TLS reload failed, still using the previous certificates: " + s.to_string());
    return s;
  }
  transport_->set_tls(tls_->peers());
  log("TLS reloaded: certificate " + net::describe_certificate_file(options_.tls.cert_file));
  return Status::ok();
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  tls_acceptor_.close(ignored);
  if (router_) router_->stop();
  if (clock_) clock_->cancel();
  if (transport_) transport_->stop();
  if (http_) http_->stop();
  for (const auto& c : std::set<std::shared_ptr<Connection>>(connections_)) c->close();
}

void Server::stop_after_handover(std::function<void()> stopped) {
  auto stop_now = [this, stopped] {
    stop();
    stopped();
  };
  if (stopped_) return stop_now();
  const NodeId target = core_->most_caught_up_voter();
  if (!target.valid()) return stop_now();  // not a leader, or the only voter
  const paxos::ProposeStatus status = core_->transfer_leadership(target);
  if (status != paxos::ProposeStatus::kQueued) {
    log(fmt::format("stopping without a handover: n{} refused it ({})", target.value,
                    status == paxos::ProposeStatus::kStale ? "a configuration change is in progress"
                                                           : "not a voter"));
    return stop_now();
  }
  log(fmt::format("handing leadership over to n{} before stopping", target.value));
  flush();
  const uint64_t deadline_ms =
      now_ms() + uint64_t(options_.election_timeout_min_ticks) * options_.tick_ms;
  handover_timer_ = std::make_unique<asio::steady_timer>(io_);
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [this, stop_now, deadline_ms, target, poll] {
    const paxos::Replica& r = core_->replica();
    if (stopped_ || r.role() != paxos::Role::kLeader || now_ms() >= deadline_ms) {
      if (!stopped_)
        log(r.role() == paxos::Role::kLeader
                ? "the handover did not happen within the election timeout: stopping anyway"
                : fmt::format("handed over to n{}: stopping", target.value));
      *poll = nullptr;  // breaks the cycle
      return stop_now();
    }
    handover_timer_->expires_after(std::chrono::milliseconds(2));
    handover_timer_->async_wait([poll](const asio::error_code& ec) {
      if (!ec && *poll) (*poll)();
    });
  };
  (*poll)();
}

void Server::accept(tcp::acceptor& acceptor, bool tls) {
  acceptor.async_accept([this, &acceptor, tls](const asio::error_code& ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) {
      if (connections_.size() >= options_.max_clients) {
        telemetry_->refused(Telemetry::Refusal::kMaxClients);
        const std::string refusal = "-ERR max number of clients reached\r\n";
        asio::error_code ignored;
        asio::write(socket, asio::buffer(refusal), ignored);
      } else {
        ++counters_.connections;
        // A TLS connection takes the contexts current now: a reload affects only later ones.
        net::Stream stream =
            tls ? net::Stream(std::move(socket), tls_->clients()) : net::Stream(std::move(socket));
        auto conn = std::make_shared<Connection>(*this, std::move(stream), router_->open_session());
        connections_.insert(conn);
        conn->start();
      }
    }
    accept(acceptor, tls);
  });
}

void Server::connection_closed(const std::shared_ptr<Connection>& conn) {
  connections_.erase(conn);
}

uint64_t Server::now_ms() const {
  return clock_->now_ms();
}

uint64_t Server::now_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t Server::wall_ms() const {
  return clock_->wall_ms();
}

void Server::log(const std::string& line) const {
  logging::write(logging::Level::kInfo, "note", line);
}

std::optional<net::Refusal> Server::check_identity(NodeId peer, const Incarnation& incarnation) {
  if (bug_wiped_replica_votes_) return std::nullopt;
  auto checked = pins_->check(peer, incarnation, wall_ms());
  if (!checked.is_ok()) {
    // Not the peer's fault: it is told to try again, and this replica's disk is in trouble.
    log("cannot record n" + std::to_string(peer.value) +
        "'s incarnation: " + checked.status().to_string());
    return net::Refusal{net::Refusal::Code::kPeer,
                        "n" + std::to_string(options_.id.value) +
                            " cannot record incarnations now: " + checked.status().to_string()};
  }
  if (checked->pinned_now)
    log(fmt::format("pinned n{}'s incarnation {} (the first this replica has seen)", peer.value,
                    to_string(incarnation)));
  if (!checked->refused) return std::nullopt;
  const std::string p = std::to_string(peer.value);
  return net::Refusal{
      net::Refusal::Code::kIdentity,
      fmt::format("n{} knows n{} as incarnation {} (first seen {}), but n{} now presents "
                  "incarnation {}: its data directory was wiped or replaced, and a replica that "
                  "lost its data must not vote under its old identity. Safe procedure: remove n{} "
                  "from the cluster and add the machine as a new member, or `synod member "
                  "replace {} ...` (docs/operations.md, \"Replacing a failed machine\"); if its "
                  "data was not lost, see \"Clearing a pinned incarnation\" there",
                  options_.id.value, p, to_string(checked->refused->incarnation),
                  storage::format_unix_ms(checked->refused->first_seen_ms), p,
                  to_string(incarnation), p, p)};
}

void Server::identity_refused(NodeId peer, const net::Refusal& refusal) {
  if (stopped_ || !fatal_.is_ok()) return;
  fatal_ = Status::invalid_argument(
      fmt::format("n{} refused this replica's identity (incarnation {} of {}): {}", peer.value,
                  to_string(core_->identity().incarnation), options_.data_dir, refusal.reason));
  logging::write(logging::Level::kError, "identity_refused",
                 "stopping: " + fatal_.to_string() +
                     ". This replica must not rejoin under its old node id; retrying cannot help",
                 {{"peer", std::to_string(peer.value)}});
  // Out of the transport's handler: it goes on touching its connection after this returns.
  asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    stop();
    io_.stop();
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
    logging::write(logging::Level::kError, "storage_failed",
                   "stopping: storage failed: " + fatal_.to_string());
    stop();
    io_.stop();
    return;
  }
  for (const auto& e : *out) {
    telemetry_->peer_message(e, Telemetry::Direction::kSent);
    transport_->send(e.to, net::encode_frame(e));
  }
  telemetry_->after_flush(core_->replica(), now_ms());
  router_->after_flush();
  sync_peers();
}

std::string Server::peer_address(NodeId id) const {
  if (const paxos::MembershipRef& m = core_->replica().membership()) {
    if (const paxos::Member* member = m->find(id); member && !member->address.empty())
      return member->address;
  }
  if (auto it = transport_->peers().find(id); it != transport_->peers().end())
    return it->second.to_string();
  if (auto it = options_.peers.find(id); it != options_.peers.end()) return it->second.to_string();
  return "";
}

void Server::sync_peers() {
  const paxos::MembershipRef& m = core_->replica().membership();
  if (m == nullptr || m == dialled_) return;  // a replica that joined dials its --peers
  dialled_ = m;
  std::map<NodeId, net::Endpoint> peers;
  for (const paxos::Member& member : m->members) {
    if (member.id == options_.id) continue;
    const std::string address = peer_address(member.id);
    auto endpoint = net::parse_endpoint(address);
    if (!endpoint.is_ok()) {
      log(fmt::format("member n{} has no usable peer address ('{}'): not dialled", member.id.value,
                      address));
      continue;
    }
    peers[member.id] = *endpoint;
  }
  // A member that joined replays the configurations from its first slot: one older than the
  // leader that feeds it (a member added later) would drop that leader, refuse its connection
  // and never learn the rest. The leader it follows stays dialled until a configuration names it.
  const NodeId leader = core_->replica().leader();
  if (leader.valid() && leader != options_.id && !peers.count(leader)) {
    if (auto it = transport_->peers().find(leader); it != transport_->peers().end())
      peers[leader] = it->second;
  }
  peers[options_.id] = options_.peers.at(options_.id);  // where this replica listens
  if (std::equal(peers.begin(), peers.end(), transport_->peers().begin(), transport_->peers().end(),
                 [](const auto& a, const auto& b) {
                   return a.first == b.first && a.second.to_string() == b.second.to_string();
                 }))
    return;
  log("configuration " + m->describe() + ": updating the peers dialled");
  transport_->set_peers(std::move(peers));
}

void Server::on_request(const std::shared_ptr<Connection>& conn, std::vector<std::string> args,
                        const std::shared_ptr<std::string>& slot, int protocol) {
  ++counters_.commands;
  serve(conn, std::move(args), slot, protocol);
}

void Server::serve(const std::shared_ptr<Connection>& conn, std::vector<std::string> args,
                   const std::shared_ptr<std::string>& slot, int protocol) {
  if (args.empty()) return finish(conn, slot, protocol, kv::Reply::error("ERR empty command"));
  const std::string name = lower(args[0]);
  conn->last_ms_ = now_ms();
  conn->last_command_ = name.substr(0, 64);
  if (is_container_command(name) && args.size() >= 2)
    conn->last_command_ += "|" + lower(args[1]).substr(0, 64);
  if (!conn->held_.empty() || (name == "exec" && conn->watches_pending_ > 0)) {
    conn->held_.push_back({std::move(args), slot, protocol});
    return;
  }
  if (auto refusal = acl_->check(conn->auth_, args))
    return refuse(conn, name, slot, protocol, *refusal);
  acl_->bind_script(conn->auth_, args);  // a restricted user's script is checked as it runs
  if (transaction_command(conn, name, args, slot, protocol)) return;
  if (name == "hello") return hello(conn, slot, args);
  if (name == "synod.backup") return backup(conn, args, slot, protocol);
  if (name == "auth") return auth(conn, args, slot, protocol);
  if (name == "acl") return finish(conn, slot, protocol, acl_->command(conn->auth_, args));
  if (name == "client") return finish(conn, slot, protocol, client_command(conn, args));
  if (name == "member") return member(conn, args, slot, protocol);
  const uint64_t start_us = now_us();
  const kv::CommandClass command_class = kv::classify(name);
  const Telemetry::RequestClass kind = Telemetry::classify(name, command_class);
  if (command_class == kv::CommandClass::kUnknown) {
    bool close = false;
    kv::Reply reply = local_command(args, close);
    if (close) conn->closing_ = true;
    telemetry_->request_done(kind, now_us() - start_us);
    return finish(conn, slot, protocol, reply);
  }
  router_->execute(conn->session(), std::move(args),
                   [this, weak = std::weak_ptr<Connection>(conn), slot, protocol, start_us,
                    kind](const kv::Reply& reply) {
                     telemetry_->request_done(kind, now_us() - start_us);
                     finish(weak, slot, protocol, reply);
                   });
}

namespace {

bool parse_u64(const std::string& text, uint64_t& v) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

// SYNOD.BACKUP                      take a backup; answers [id, bytes, slot, cluster id]
// SYNOD.BACKUP READ id offset count  up to kBackupChunkBytes of it
// SYNOD.BACKUP END id                drop it
// The backup is taken when a linearizable read (DBSIZE, through the router like any client's)
// is served: the state machine then reflects every write acknowledged before the command
// started, and perhaps some after, all chosen. Taken in the same turn of the loop, so nothing is
// applied in between.
void Server::backup(const std::shared_ptr<Connection>& conn, const std::vector<std::string>& args,
                    const std::shared_ptr<std::string>& slot, int protocol) {
  using kv::Reply;
  const uint64_t now = now_ms();
  std::erase_if(backups_,
                [&](const PendingBackup& b) { return now - b.touched_ms > kBackupIdleMs; });
  auto find = [&](const std::string& id) -> PendingBackup* {
    for (PendingBackup& b : backups_)
      if (std::to_string(b.id) == id) return &b;
    return nullptr;
  };
  const std::string sub = args.size() >= 2 ? lower(args[1]) : "";
  if (args.size() == 5 && sub == "read") {
    PendingBackup* b = find(args[2]);
    uint64_t offset = 0, count = 0;
    if (b == nullptr) return finish(conn, slot, protocol, Reply::error("ERR no such backup"));
    if (!parse_u64(args[3], offset) || !parse_u64(args[4], count) || offset > b->bytes.size())
      return finish(conn, slot, protocol, Reply::error("ERR bad offset or count"));
    b->touched_ms = now;
    count = std::min<uint64_t>({count, kBackupChunkBytes, b->bytes.size() - offset});
    return finish(conn, slot, protocol, Reply::bulk(b->bytes.substr(offset, count)));
  }
  if (args.size() == 3 && sub == "end") {
    std::erase_if(backups_,
                  [&](const PendingBackup& b) { return std::to_string(b.id) == args[2]; });
    return finish(conn, slot, protocol, Reply::ok());
  }
  if (args.size() != 1) {
    return finish(conn, slot, protocol,
                  Reply::error("ERR usage: SYNOD.BACKUP | SYNOD.BACKUP READ id offset count | "
                               "SYNOD.BACKUP END id"));
  }
  router_->execute(
      conn->session(), {"DBSIZE"},
      [this, weak = std::weak_ptr<Connection>(conn), slot, protocol](const kv::Reply& fence) {
        if (fence.kind == kv::Reply::Kind::kError) return finish(weak, slot, protocol, fence);
        Backup b;
        b.cluster_id = options_.cluster_id;
        b.slot = core_->applied();
        b.taken_unix_ms = wall_ms();
        b.state = core_->store().snapshot();
        if (backups_.size() >= kBackupsKept) backups_.erase(backups_.begin());
        backups_.push_back({next_backup_id_++, encode_backup(b), now_ms()});
        const PendingBackup& p = backups_.back();
        log(fmt::format("backup {} taken at slot {}: {} bytes", p.id, b.slot, p.bytes.size()));
        finish(weak, slot, protocol,
               kv::Reply::array({kv::Reply::integer_of(int64_t(p.id)),
                                 kv::Reply::integer_of(int64_t(p.bytes.size())),
                                 kv::Reply::integer_of(int64_t(b.slot)),
                                 kv::Reply::integer_of(int64_t(b.cluster_id))}));
      });
}

// MEMBER LIST: this replica's view of the configuration, one line per member (lag only on
// the leader, which alone hears every member's chosen prefix).
kv::Reply Server::member_list() const {
  const paxos::Replica& r = core_->replica();
  const paxos::MembershipRef& m = r.membership();
  if (m == nullptr)
    return kv::Reply::error(
        "TRYAGAIN this replica joined and has not learned its configuration "
        "yet; ask another member");
  const bool leads = r.role() == paxos::Role::kLeader;
  std::vector<kv::Reply> lines;
  lines.push_back(kv::Reply::bulk(fmt::format(
      "epoch={} next_id={} leader={} self={} change_pending={}", m->epoch, m->next_id,
      r.leader().valid() ? "n" + std::to_string(r.leader().value) : std::string("none"),
      "n" + std::to_string(options_.id.value), r.membership_change_pending() ? "yes" : "no")));
  for (const paxos::Member& member : m->members) {
    std::string lag = "?";
    if (leads) {
      const Slot reported = member.id == options_.id ? r.commit() : r.peer_commit(member.id);
      lag = reported == 0 ? "unknown" : std::to_string(r.commit() - std::min(reported, r.commit()));
    }
    std::string address = peer_address(member.id);
    lines.push_back(kv::Reply::bulk(fmt::format(
        "id={} peer={} client={} role={} incarnation={} lag={} leader={}", member.id.value,
        address.empty() ? "?" : address,
        member.id == options_.id && options_.listen.port != 0 ? options_.listen.to_string() : "?",
        member.voter ? "voter" : "learner",
        member.incarnation == 0 ? std::string("unbound")
                                : fmt::format("{:016x}", member.incarnation),
        lag, member.id == r.leader() ? "yes" : "no")));
  }
  return kv::Reply::array(std::move(lines));
}

void Server::member(const std::shared_ptr<Connection>& conn, const std::vector<std::string>& args,
                    const std::shared_ptr<std::string>& slot, int protocol) {
  const std::string sub = args.size() >= 2 ? lower(args[1]) : "";
  auto weak = std::weak_ptr<Connection>(conn);
  auto answer = [this, weak, slot, protocol](const kv::Reply& reply) {
    finish(weak, slot, protocol, reply);
  };
  if (sub == "list" && args.size() == 2) return answer(member_list());
  if (sub == "add-learner" && (args.size() == 3 || args.size() == 4)) {
    if (auto endpoint = net::parse_endpoint(args[2]); !endpoint.is_ok())
      return answer(kv::Reply::error("ERR bad peer address '" + args[2].substr(0, 128) +
                                     "': " + endpoint.status().message()));
  }
  if (ServerCore::is_member_change(args)) return router_->execute(conn->session(), args, answer);
  if (sub == "replace" && (args.size() == 4 || args.size() == 5)) {
    uint64_t old = 0, timeout_ms = 60'000;
    // A day at most: a replace holds a session until then, and a deadline must not overflow.
    constexpr uint64_t kMaxReplaceTimeoutMs = 24ull * 3600 * 1000;
    if (!parse_u64(args[2], old) || old == 0 || old > kMaxNodeIdValue ||
        (args.size() == 5 &&
         (!parse_u64(args[4], timeout_ms) || timeout_ms == 0 || timeout_ms > kMaxReplaceTimeoutMs)))
      return answer(kv::Reply::error(
          "ERR usage: MEMBER REPLACE old-id host:port [timeout-ms, 1 to 86400000]"));
    if (auto endpoint = net::parse_endpoint(args[3]); !endpoint.is_ok())
      return answer(kv::Reply::error("ERR bad peer address '" + args[3].substr(0, 128) +
                                     "': " + endpoint.status().message()));
    // A session of its own: its two changes go in order, whatever else the connection sends.
    auto session = router_->open_session();
    const std::string address = args[3];
    const uint64_t deadline_ms = now_ms() + timeout_ms;
    log(fmt::format("replacing n{} with a new member at {}", old, address));
    return router_->execute(
        session, {"MEMBER", "ADD-LEARNER", address},
        [this, session, old, address, deadline_ms, timeout_ms, answer,
         alive = std::weak_ptr<int>(alive_)](const kv::Reply& added) {
          if (alive.expired()) return;
          if (added.kind != kv::Reply::Kind::kInteger)
            return answer(kv::Reply::error(added.text + " (MEMBER REPLACE: adding " + address +
                                           " as a learner)"));
          const NodeId learner{static_cast<uint32_t>(added.integer)};
          log(fmt::format("replace: n{} added as a learner at {}; waiting until it caught up",
                          learner.value, address));
          swap_when_caught_up(session, learner, NodeId{static_cast<uint32_t>(old)}, address,
                              deadline_ms, timeout_ms, answer);
        });
  }
  answer(kv::Reply::error(
      "ERR usage: MEMBER LIST | MEMBER ADD-LEARNER host:port [id] | MEMBER PROMOTE id | "
      "MEMBER REMOVE id | MEMBER SWAP learner-id old-id | MEMBER REPLACE old-id host:port "
      "[timeout-ms] | MEMBER TRANSFER [id]"));
}

void Server::swap_when_caught_up(const std::shared_ptr<Router::Session>& session, NodeId learner,
                                 NodeId old, std::string address, uint64_t deadline_ms,
                                 uint64_t timeout_ms, std::function<void(const kv::Reply&)> done) {
  const std::string l = std::to_string(learner.value), o = std::to_string(old.value);
  router_->execute(
      session, {"MEMBER", "SWAP", l, o},
      [this, session, learner, old, address, deadline_ms, timeout_ms, done, l, o,
       alive = std::weak_ptr<int>(alive_)](const kv::Reply& reply) {
        if (alive.expired()) return;
        if (reply.kind != kv::Reply::Kind::kError) {
          log(fmt::format("replace: n{} replaced n{} ({})", l, o, reply.text));
          return done(kv::Reply::simple(reply.text + " id " + l));
        }
        // TRYAGAIN: not caught up yet (or no leader); UNKNOWN: a forward the leader kept
        // refusing. Asking again is safe either way (a swap made already answers OK).
        const bool refused = reply.text.rfind("TRYAGAIN", 0) == 0;
        const bool unknown = reply.text.rfind("UNKNOWN", 0) == 0;
        if ((refused || unknown) && now_ms() < deadline_ms) {
          clock_->after(100, [this, session, learner, old, address, deadline_ms, timeout_ms, done,
                              alive] {
            if (!alive.expired() && !stopped_)
              swap_when_caught_up(session, learner, old, address, deadline_ms, timeout_ms, done);
          });
          return;
        }
        std::string why = reply.text;
        if (refused || unknown) {
          why = fmt::format(
              "ERR n{} at {} did not catch up within {} ms (last answer: {}); {}: start it "
              "(synod server --id {} --join ...) and run MEMBER SWAP {} {}, or drop it with "
              "MEMBER REMOVE {}",
              l, address, timeout_ms, reply.text,
              refused ? "it stays a learner" : "if MEMBER LIST shows it a learner still", l, l, o,
              l);
        }
        log("replace: " + why);
        done(kv::Reply::error(why));
      });
}

namespace {

// Connection commands a transaction may hold: their replies do not depend on any state.
std::optional<kv::Reply> pure_local_reply(const std::string& name,
                                          const std::vector<std::string>& args) {
  if (name == "ping" && args.size() == 1) return kv::Reply::simple("PONG");
  if ((name == "ping" || name == "echo") && args.size() == 2) return kv::Reply::bulk(args[1]);
  if (name == "unwatch" && args.size() == 1) return kv::Reply::ok();  // EXEC unwatches anyway
  if (name == "select" && args.size() == 2)
    return args[1] == "0" ? kv::Reply::ok() : kv::Reply::error("ERR DB index is out of range");
  return std::nullopt;
}

bool is_local_command(const std::string& name) {
  static const std::set<std::string> names = {"ping",        "echo",   "quit",   "command",
                                              "select",      "client", "config", "info",
                                              "synod.fault", "hello",  "auth",   "acl"};
  return names.count(name) > 0;
}

}  // namespace

bool Server::transaction_command(const std::shared_ptr<Connection>& conn, const std::string& name,
                                 std::vector<std::string>& args,
                                 const std::shared_ptr<std::string>& slot, int protocol) {
  using kv::Reply;
  Connection& c = *conn;
  auto answer = [&](const Reply& reply) {
    finish(conn, slot, protocol, reply);
    return true;
  };
  const size_t argc = args.size();
  if (name == "exec") {
    if (argc != 1) {
      // Redis ends the transaction, if any, with the arity error.
      c.reset_transaction();
      c.unwatch();
      return answer(Reply::error(
          "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' "
          "command"));
    }
    if (!c.in_multi_) return answer(Reply::error("ERR EXEC without MULTI"));
    exec(conn, slot, protocol);
    return true;
  }
  if (name == "multi") {
    // Answered at once; a transaction under way goes on unharmed, as in Redis.
    if (argc != 1) return answer(kv::arity_error(name));
    if (c.in_multi_) return answer(Reply::error("ERR MULTI calls can not be nested"));
    c.in_multi_ = true;
    return answer(Reply::ok());
  }
  if (name == "discard") {
    if (argc != 1) {
      if (c.in_multi_) c.multi_failed_ = true;
      return answer(kv::arity_error(name));
    }
    if (!c.in_multi_) return answer(Reply::error("ERR DISCARD without MULTI"));
    c.reset_transaction();
    c.unwatch();
    return answer(Reply::ok());
  }
  if (name == "watch") {
    if (argc < 2) {
      if (c.in_multi_) c.multi_failed_ = true;
      return answer(kv::arity_error(name));
    }
    if (c.in_multi_) return answer(Reply::error("ERR WATCH inside MULTI is not allowed"));
    watch(conn, std::move(args), slot, protocol);
    return true;
  }
  if (!c.in_multi_) {
    if (name != "unwatch") return false;
    if (argc != 1) return answer(kv::arity_error(name));
    c.unwatch();
    return answer(Reply::ok());
  }
  if (name == "quit") return false;  // at once, even inside MULTI, as in Redis
  // Queued: refused now if the command table (or the connection) can tell it would fail.
  std::optional<Reply> refused;
  Connection::Queued queued;
  if (is_local_command(name) || name == "unwatch") {
    queued.local = pure_local_reply(name, args);
    if (!queued.local) {
      refused = name == "unwatch" || name == "ping" || name == "echo" || name == "select"
                    ? kv::arity_error(name)
                    : Reply::error("ERR Command not allowed inside a transaction");
    }
  } else {
    refused = kv::check_queued(args);
    // The whole transaction must fit in one log entry, and the connection holds no more.
    const size_t bytes = kv::encoded_command_bytes(args);
    if (!refused && c.queued_bytes_ + bytes > options_.max_command_bytes)
      refused = Reply::error("ERR the transaction would exceed --max-command-bytes (" +
                             std::to_string(options_.max_command_bytes) + " bytes)");
    if (!refused) c.queued_bytes_ += bytes;
    queued.args = std::move(args);
  }
  if (refused) {
    c.multi_failed_ = true;
    return answer(*refused);
  }
  c.queued_.push_back(std::move(queued));
  return answer(Reply::simple("QUEUED"));
}

void Server::watch(const std::shared_ptr<Connection>& conn, std::vector<std::string> args,
                   const std::shared_ptr<std::string>& slot, int protocol) {
  ++conn->watches_pending_;
  std::vector<std::string> keys(args.begin() + 1, args.end());
  args[0] = "WATCH";  // the state machine's read (kv/transaction.h)
  router_->execute(conn->session(), std::move(args),
                   [this, weak = std::weak_ptr<Connection>(conn), slot, protocol,
                    epoch = conn->watch_epoch_, keys = std::move(keys)](const kv::Reply& reply) {
                     auto live = weak.lock();
                     if (!live) return;
                     --live->watches_pending_;
                     const bool served = reply.kind == kv::Reply::Kind::kInteger;
                     if (epoch == live->watch_epoch_) {
                       if (served) {
                         // A key watched twice keeps its first position, as in Redis.
                         for (const auto& key : keys)
                           live->watched_.emplace(key, static_cast<uint64_t>(reply.integer));
                       } else {
                         live->watch_failed_ = true;
                       }
                     }
                     finish(live, slot, protocol, served ? kv::Reply::ok() : reply);
                     if (live->watches_pending_ == 0) release_held(live);
                   });
}

void Server::exec(const std::shared_ptr<Connection>& conn, const std::shared_ptr<std::string>& slot,
                  int protocol) {
  Connection& c = *conn;
  const bool failed = c.multi_failed_, watch_failed = c.watch_failed_;
  kv::Transaction tx;
  tx.watches.assign(c.watched_.begin(), c.watched_.end());
  // Replies known now (PING, ECHO, ...) by their place; the others come from the log entry.
  std::vector<std::optional<kv::Reply>> replies;
  for (auto& q : c.queued_) {
    replies.push_back(std::move(q.local));
    if (!replies.back()) tx.commands.push_back(std::move(q.args));
  }
  c.reset_transaction();
  c.unwatch();
  if (failed) return finish(conn, slot, protocol, kv::Reply::error(std::string(kv::kExecAbort)));
  // A WATCH that got no answer cannot vouch for its keys: abort as if they changed.
  if (watch_failed) return finish(conn, slot, protocol, kv::Reply::null_array());
  router_->execute(
      c.session(), kv::encode_exec(tx),
      [this, weak = std::weak_ptr<Connection>(conn), slot, protocol, replies = std::move(replies),
       start_us = now_us()](const kv::Reply& reply) mutable {
        telemetry_->request_done(Telemetry::RequestClass::kTransaction, now_us() - start_us);
        if (reply.kind != kv::Reply::Kind::kArray) return finish(weak, slot, protocol, reply);
        std::vector<kv::Reply> out;
        size_t next = 0;
        for (auto& r : replies) {
          if (r) {
            out.push_back(std::move(*r));
          } else if (next < reply.elements.size()) {
            out.push_back(reply.elements[next++]);
          }
        }
        finish(weak, slot, protocol, kv::Reply::array(std::move(out)));
      });
}

void Server::release_held(const std::shared_ptr<Connection>& conn) {
  std::deque<Connection::Held> held = std::move(conn->held_);
  conn->held_.clear();
  for (auto& h : held) serve(conn, std::move(h.args), h.slot, h.protocol);
}

void Server::finish(const std::weak_ptr<Connection>& weak, const std::shared_ptr<std::string>& slot,
                    int protocol, const kv::Reply& reply) {
  if (reply.kind == kv::Reply::Kind::kError) {
    ++counters_.errors;
    telemetry_->error_reply(reply.text);
  }
  net::RespWriter w(protocol);
  write_reply(w, reply);
  *slot = w.take();
  if (auto conn = weak.lock()) conn->reply_ready();
}

// HELLO [protover ...]: switches the connection to RESP2 or RESP3 and answers with a map (an
// array of pairs in RESP2), as Redis does.
void Server::hello(const std::shared_ptr<Connection>& conn,
                   const std::shared_ptr<std::string>& slot, const std::vector<std::string>& args) {
  HelloRequest request;
  if (auto error = parse_hello(args, request)) return finish(conn, slot, conn->protocol_, *error);
  if (request.auth) {
    const auto& [user, password] = *request.auth;
    if (auto failure = acl_->authenticate(conn->auth_, user, password);
        failure != Acl::Failure::kNone) {
      log_auth_failure(*conn, user, failure);
      return finish(
          conn, slot, conn->protocol_,
          kv::Reply::error("WRONGPASS invalid username-password pair or user is disabled."));
    }
  }
  if (!conn->auth_.authenticated)
    return finish(
        conn, slot, conn->protocol_,
        kv::Reply::error("NOAUTH HELLO must be called with the client already authenticated, "
                         "otherwise the HELLO AUTH <user> <pass> option can be used to "
                         "authenticate the client and select the RESP protocol version at the "
                         "same time"));
  if (request.setname) {
    if (!valid_client_name(*request.setname))
      return finish(conn, slot, conn->protocol_, bad_client_name());
    conn->name_ = *request.setname;
  }
  if (request.protocol) conn->protocol_ = request.protocol;
  const auto& r = core_->replica();
  net::RespWriter w(conn->protocol_);
  // As Redis 7.0's, with Synod's leader added: "standalone", since Synod is one keyspace on every
  // replica (a cluster-aware client that read "cluster" would look for CLUSTER SLOTS).
  w.map(8);
  w.bulk("server");
  w.bulk("synod");
  w.bulk("version");
  w.bulk("7.0.0");
  w.bulk("proto");
  w.integer(conn->protocol_);
  w.bulk("id");
  w.integer(static_cast<int64_t>(conn->id_));
  w.bulk("mode");
  w.bulk("standalone");
  w.bulk("role");
  w.bulk(r.role() == paxos::Role::kLeader ? "master" : "replica");
  w.bulk("leader");
  w.integer(r.leader().valid() ? r.leader().value : 0);
  w.bulk("modules");
  w.array(0);
  *slot = w.take();
  conn->reply_ready();
}

void Server::refuse(const std::shared_ptr<Connection>& conn, const std::string& name,
                    const std::shared_ptr<std::string>& slot, int protocol,
                    const kv::Reply& refusal) {
  Connection& c = *conn;
  if (name == "exec") {
    // As Redis: a refused EXEC ends the transaction, if any, and says why.
    c.reset_transaction();
    c.unwatch();
    return finish(conn, slot, protocol,
                  kv::Reply::error("EXECABORT Transaction discarded because of: " + refusal.text));
  } else if (c.in_multi_) {
    c.multi_failed_ = true;  // EXEC answers EXECABORT, as for any command refused while queued
  }
  finish(conn, slot, protocol, refusal);
}

void Server::auth(const std::shared_ptr<Connection>& conn, const std::vector<std::string>& args,
                  const std::shared_ptr<std::string>& slot, int protocol) {
  Acl::Failure failure = Acl::Failure::kNone;
  kv::Reply reply = acl_->auth(conn->auth_, args, failure);
  if (failure != Acl::Failure::kNone)
    log_auth_failure(*conn, args.size() == 2 ? "default" : args[1], failure);
  finish(conn, slot, protocol, reply);
}

void Server::log_auth_failure(const Connection& conn, std::string_view user, Acl::Failure failure) {
  // Bounded, so that a client guessing passwords cannot flood the log.
  constexpr uint32_t kLinesPerSecond = 10;
  const uint64_t second = now_ms() / 1000;
  if (second != auth_log_.second) {
    auth_log_.second = second;
    auth_log_.lines = 0;
  }
  if (auth_log_.lines >= kLinesPerSecond) {
    ++auth_log_.left_out;
    return;
  }
  ++auth_log_.lines;
  // A name no user has may be a password typed in the wrong place: never logged.
  const std::string who = failure == Acl::Failure::kUnknownUser
                              ? fmt::format("an unknown user ({} bytes)", user.size())
                              : fmt::format("user '{}'", user);
  const char* why = failure == Acl::Failure::kUnknownUser ? "no such user"
                    : failure == Acl::Failure::kDisabled  ? "the user is off"
                                                          : "wrong password";
  std::string line = fmt::format("AUTH failed for {} from {}: {}", who, conn.remote_, why);
  if (auth_log_.left_out)
    line += fmt::format(" ({} earlier failures not logged)", std::exchange(auth_log_.left_out, 0));
  log(line);
}

kv::Reply Server::client_command(const std::shared_ptr<Connection>& conn,
                                 const std::vector<std::string>& args) {
  using kv::Reply;
  const size_t argc = args.size();
  const std::string sub = argc >= 2 ? lower(args[1]) : "";
  auto arity = [&] {
    return Reply::error("ERR wrong number of arguments for 'client|" + sub + "' command");
  };
  if (argc < 2) return Reply::error("ERR wrong number of arguments for 'client' command");
  if (sub == "id") return argc == 2 ? Reply::integer_of(int64_t(conn->id_)) : arity();
  if (sub == "getname")
    return argc != 2 ? arity() : conn->name_.empty() ? Reply::null() : Reply::bulk(conn->name_);
  if (sub == "setname") {
    if (argc != 3) return arity();
    if (!valid_client_name(args[2])) return bad_client_name();
    conn->name_ = args[2];
    return Reply::ok();
  }
  // Redis 7.2's library name and version: accepted (redis-py sends them), not shown by 7.0.
  if (sub == "setinfo") return argc == 4 ? Reply::ok() : arity();
  if (sub == "info") return argc == 2 ? Reply::bulk(client_line(*conn)) : arity();
  if (sub == "list") {
    // CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id...]: every connection here is a
    // normal one (replicas talk on the peer port, Synod has no pub/sub).
    std::set<uint64_t> ids;
    bool any_id = false, none = false;
    for (size_t i = 2; i < argc; ++i) {
      const std::string option = lower(args[i]);
      if (option == "type" && i + 1 < argc) {
        const std::string type = lower(args[++i]);
        if (type != "normal" && type != "master" && type != "replica" && type != "pubsub")
          return Reply::error("ERR Unknown client type '" + args[i] + "'");
        none = none || type != "normal";
      } else if (option == "id" && i + 1 < argc) {
        any_id = true;
        for (++i; i < argc; ++i) {
          uint64_t id = 0;
          if (!parse_u64(args[i], id) || id == 0) return Reply::error("ERR Invalid client ID");
          ids.insert(id);
        }
      } else {
        return Reply::error("ERR syntax error");
      }
    }
    std::vector<const Connection*> shown;
    for (const auto& c : connections_)
      if (!none && (!any_id || ids.count(c->id_))) shown.push_back(c.get());
    std::sort(shown.begin(), shown.end(),
              [](const Connection* a, const Connection* b) { return a->id_ < b->id_; });
    std::string out;
    for (const Connection* c : shown) out += client_line(*c);
    return Reply::bulk(out);
  }
  if (sub == "kill") return client_kill(conn, args);
  return Reply::error("ERR unknown subcommand '" + args[1].substr(0, 128) + "'. Try CLIENT HELP.");
}

// CLIENT KILL ip:port (answers OK or an error) | CLIENT KILL filter value ... (answers how many
// were closed), with the filters ID, ADDR, LADDR, USER, TYPE and SKIPME, as in Redis 7.0.
kv::Reply Server::client_kill(const std::shared_ptr<Connection>& conn,
                              const std::vector<std::string>& args) {
  using kv::Reply;
  const size_t argc = args.size();
  std::optional<uint64_t> id;
  std::optional<std::string> addr, laddr, user;
  bool skip_me = true, no_type = false;
  if (argc == 3) {
    addr = args[2];
    skip_me = false;
  } else if (argc > 3 && argc % 2 == 0) {
    for (size_t i = 2; i < argc; i += 2) {
      const std::string filter = lower(args[i]);
      const std::string& value = args[i + 1];
      if (filter == "id") {
        uint64_t v = 0;
        if (!parse_u64(value, v) || v == 0)
          return Reply::error("ERR client-id should be greater than 0");
        id = v;
      } else if (filter == "addr") {
        addr = value;
      } else if (filter == "laddr") {
        laddr = value;
      } else if (filter == "user") {
        user = value;
      } else if (filter == "type") {
        const std::string type = lower(value);
        if (type != "normal" && type != "master" && type != "replica" && type != "pubsub")
          return Reply::error("ERR Unknown client type '" + value + "'");
        no_type = type != "normal";
      } else if (filter == "skipme") {
        const std::string yes_no = lower(value);
        if (yes_no != "yes" && yes_no != "no") return Reply::error("ERR syntax error");
        skip_me = yes_no == "yes";
      } else {
        return Reply::error("ERR syntax error");
      }
    }
  } else {
    return Reply::error("ERR syntax error");
  }
  std::vector<std::shared_ptr<Connection>> victims;
  for (const auto& c : connections_) {
    if (no_type || (id && c->id_ != *id) || (addr && c->remote_ != *addr) ||
        (laddr && c->local_ != *laddr) ||
        (user && (c->auth_.user == nullptr || c->auth_.user->name != *user)) ||
        (skip_me && c == conn))
      continue;
    victims.push_back(c);
  }
  for (const auto& c : victims) {
    log(fmt::format("CLIENT KILL: closing client id={} addr={}", c->id_, c->remote_));
    if (c == conn) {
      conn->closing_ = true;  // this reply first, as in Redis
    } else {
      c->close();
    }
  }
  if (argc == 3) return victims.empty() ? Reply::error("ERR No such client") : Reply::ok();
  return Reply::integer_of(static_cast<int64_t>(victims.size()));
}

// The fields of Redis 7.0's CLIENT LIST line that Synod can fill truthfully, in Redis's order;
// those about buffers Synod does not have (qbuf, argv-mem, rbs, ...) are left out.
std::string Server::client_line(const Connection& c) const {
  const uint64_t now = now_ms();
  std::string flags;
  if (c.in_multi_) flags += 'x';
  if (c.closing_) flags += 'A';
  if (flags.empty()) flags = "N";
  // Asio's native_handle() is not const, though reading it changes nothing.
  const int fd = static_cast<int>(const_cast<Connection&>(c).stream_.socket().native_handle());
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 "
      "multi={} omem={} cmd={} user={} redir=-1 resp={}\n",
      c.id_, c.remote_, c.local_, fd, c.name_, (now - c.created_ms_) / 1000,
      (now - c.last_ms_) / 1000, flags, c.in_multi_ ? int64_t(c.queued_.size()) : -1,
      c.queued_bytes(), c.last_command_.empty() ? "NULL" : c.last_command_,
      c.auth_.user != nullptr ? c.auth_.user->name : "default", c.protocol_);
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
  if (name == "command") return kv::command_command(args);
  if (name == "select") {
    if (argc != 2) return arity();
    return args[1] == "0" ? Reply::ok() : Reply::error("ERR DB index is out of range");
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
      if (ec != std::errc() || !transport_->peers().count(NodeId{id}) || NodeId{id} == options_.id)
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

namespace {

struct DataDirUsage {
  uint64_t wal_bytes = 0;       // the log's segments (preallocated: their full size)
  uint64_t snapshot_bytes = 0;  // snapshot files kept
};

// What the data directory holds, by kind (storage/log.cc and snapshot_store.cc name the files),
// for INFO and `synod status`: a directory listing, rare enough to do on the loop.
DataDirUsage data_dir_usage(const std::string& dir) {
  DataDirUsage usage;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const uint64_t size = it->file_size(ec);
    if (ec) continue;
    if (name.rfind("wal-", 0) == 0) usage.wal_bytes += size;
    if (name.rfind("snap-", 0) == 0) usage.snapshot_bytes += size;
  }
  return usage;
}

}  // namespace

namespace {

// Redis's bytesToHuman: 1023B, 1.00K, 2.50M, ...
std::string bytes_to_human(uint64_t bytes) {
  const char* units = "KMGTP";
  if (bytes < 1024) return fmt::format("{}B", bytes);
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < 5) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.2f}{}", value, units[unit]);
}

// The resident set size, from /proc/self/statm (its second field, in pages).
uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size_pages = 0, resident_pages = 0;
  const int read = std::fscanf(f, "%lu %lu", &size_pages, &resident_pages);
  std::fclose(f);
  if (read != 2) return 0;
  return static_cast<uint64_t>(resident_pages) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// jemalloc's control interface, if the binary links jemalloc (the synod binary does, unless built
// with the sanitizers); null otherwise.
extern "C" int mallctl(const char* name, void* old_value, size_t* old_len, void* new_value,
                       size_t new_len) __attribute__((weak));
// After a snapshot's compaction frees the log it covers (tens of MB): this thread's cached blocks
// go back to their arenas, and every arena's unused dirty pages back to the system. Left to
// jemalloc's decay, resident memory after a snapshot stayed up by the log's size for about ten
// seconds (bench/compare --only memory). Nothing without jemalloc.
void return_freed_pages() {
  if (mallctl == nullptr) return;
  (void)mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  (void)mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: MALLCTL_ARENAS_ALL
}

// The sanitizers' allocator (AddressSanitizer replaces malloc, so mallinfo2 sees nothing), if the
// binary is built with them; null otherwise.
extern "C" size_t __sanitizer_get_current_allocated_bytes() __attribute__((weak));

struct Allocated {
  uint64_t bytes = 0;
  std::string allocator;
};

// What the allocator has handed out and not taken back: jemalloc's stats.allocated (as Redis
// built with jemalloc counts), else the sanitizers' count, else glibc malloc's mallinfo2 (blocks in
// use in its arenas, plus its mmapped blocks).
Allocated allocated_bytes() {
  if (mallctl != nullptr) {
    uint64_t epoch = 1;
    size_t epoch_len = sizeof(epoch);
    size_t bytes = 0, bytes_len = sizeof(bytes);
    const char* version = nullptr;
    size_t version_len = sizeof(version);
    // Writing the epoch refreshes jemalloc's cached statistics.
    if (mallctl("epoch", &epoch, &epoch_len, &epoch, epoch_len) == 0 &&
        mallctl("stats.allocated", &bytes, &bytes_len, nullptr, 0) == 0) {
      const bool named = mallctl("version", &version, &version_len, nullptr, 0) == 0;
      // "5.3.0-0-g54eaed1d..." is shown as Redis shows it: jemalloc-5.3.0.
      const std::string full = named && version != nullptr ? version : "unknown";
      return {bytes, "jemalloc-" + full.substr(0, full.find('-'))};
    }
  }
  if (__sanitizer_get_current_allocated_bytes != nullptr)
    return {__sanitizer_get_current_allocated_bytes(), "sanitizer"};
  const struct mallinfo2 m = ::mallinfo2();
  return {m.uordblks + m.hblkhd, "libc"};
}

}  // namespace

// Redis's used_memory is what its allocator handed out and not taken back.
std::string Server::memory_info() const {
  const Allocated allocated = allocated_bytes();
  const uint64_t used = allocated.bytes;
  const uint64_t rss = resident_bytes();
  used_memory_peak_ = std::max(used_memory_peak_, used);
  std::string out = "# Memory\r\n";
  auto add = [&](const std::string& line) { out += line + "\r\n"; };
  add(fmt::format("used_memory:{}", used));
  add("used_memory_human:" + bytes_to_human(used));
  add(fmt::format("used_memory_rss:{}", rss));
  add("used_memory_rss_human:" + bytes_to_human(rss));
  add(fmt::format("used_memory_peak:{}", used_memory_peak_));
  add("used_memory_peak_human:" + bytes_to_human(used_memory_peak_));
  // Synod evicts nothing: a write that would pass a per-key bound is refused instead.
  add("maxmemory:0");
  add("maxmemory_human:0B");
  add("maxmemory_policy:noeviction");
  add(fmt::format("mem_fragmentation_ratio:{:.2f}",
                  used == 0 ? 0.0 : static_cast<double>(rss) / static_cast<double>(used)));
  add("mem_allocator:" + allocated.allocator);
  add("");
  return out;
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
  if (all || section == "clients") {
    add("# Clients");
    add(fmt::format("connected_clients:{}", connections_.size()));
    add("blocked_clients:0");  // Synod has no blocking commands
    add("");
  }
  if (all || section == "memory") out += memory_info();
  if (all || section == "persistence") {
    // Every write is in the log, fsynced on a quorum, before it is acknowledged: no background
    // save or rewrite exists to be in progress (redis-cli --stat reads these).
    add("# Persistence");
    add("loading:0");
    add("rdb_bgsave_in_progress:0");
    add("aof_enabled:1");
    add("aof_rewrite_in_progress:0");
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
    add("incarnation:" + to_string(core_->identity().incarnation));
    add(fmt::format("incarnation64:{:016x}", fold64(core_->identity().incarnation)));
    add(fmt::format("leader_id:{}", r.leader().valid() ? r.leader().value : 0));
    add(fmt::format("ballot:{}.{}", r.ballot().round, r.ballot().node.value));
    add(fmt::format("promised:{}.{}", r.promised().round, r.promised().node.value));
    add(fmt::format("chosen_slot:{}", r.commit()));
    add(fmt::format("applied_slot:{}", core_->applied()));
    add(fmt::format("snapshot_slot:{}", r.snapshot_slot()));
    // Chosen values let go of (--log-memory-bytes): read back from the log up to this slot, and
    // the encoded bytes of those still held.
    add(fmt::format("released_slot:{}", r.released()));
    add(fmt::format("log_memory_bytes:{}", r.chosen_bytes_held()));
    // Lease reads (--lease-reads): the lease's length (0: off) and whether it holds now.
    add(fmt::format("read_lease_ms:{}", core_->options().config.read_lease_ms));
    add(fmt::format("lease_holds:{}", r.lease_holds() ? 1 : 0));
    const DataDirUsage usage = data_dir_usage(options_.data_dir);
    add(fmt::format("wal_bytes:{}", usage.wal_bytes));
    add(fmt::format("snapshot_bytes:{}", usage.snapshot_bytes));
    add(fmt::format("replicas:{}", transport_->peers().size()));
    // The configuration governing the first unchosen slot, with each member's bound incarnation.
    if (const paxos::MembershipRef& m = r.membership()) {
      add(fmt::format("config_epoch:{}", m->epoch));
      for (const paxos::Member& member : m->members)
        add(fmt::format("member_{}:voter={},weight={},incarnation={}", member.id.value,
                        member.voter ? 1 : 0, member.weight,
                        member.incarnation == 0 ? std::string("none")
                                                : fmt::format("{:016x}", member.incarnation)));
    }
    for (const auto& [id, endpoint] : transport_->peers()) {
      if (id == options_.id) continue;
      const auto s = transport_->stats(id);
      add(
          fmt::format("peer_{}:addr={},connected={},blocked={},frames_sent={},frames_received={},"
                      "frames_dropped={},queued_bytes={},connects={},incarnation={}",
                      id.value, endpoint.to_string(), s.connected ? 1 : 0,
                      transport_->blocked().count(id) ? 1 : 0, s.frames_sent, s.frames_received,
                      s.frames_dropped, s.queued_bytes, s.connects,
                      s.incarnation.valid() ? to_string(s.incarnation) : "none"));
    }
    add("");
  }
  if (all || section == "stats") {
    add("# Stats");
    add(fmt::format("total_connections_received:{}", counters_.connections));
    add(fmt::format("total_commands_processed:{}", counters_.commands));
    const Router::Counters& routed = router_->counters();
    add(fmt::format("writes:{}", routed.writes));
    add(fmt::format("reads:{}", routed.reads));
    add(fmt::format("forwarded_to_leader:{}", routed.forwarded));
    add(fmt::format("forwards_served:{}", routed.forwards_served));
    add(fmt::format("follower_reads:{}", routed.follower_reads));
    add(fmt::format("read_index_requests:{}", routed.index_requests));
    add(fmt::format("read_index_requests_served:{}", routed.index_requests_served));
    add(fmt::format("internal_retries:{}", routed.retries));
    add(fmt::format("unknown_outcomes:{}", routed.unknown));
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
    add(fmt::format("wal_sync_us_last:{}", counters_.sync_us_last));
    add(fmt::format("requests_in_progress:{}", router_->requests_in_progress()));
    add("");
  }
  if (all || section == "keyspace") {
    add("# Keyspace");
    const kv::Keyspace::ExpiryStats expiry = core_->store().expiry_stats();
    add(fmt::format("db0:keys={},expires={},avg_ttl={}", core_->store().size(), expiry.expires,
                    expiry.avg_ttl_ms));
    add(fmt::format("log_clock_ms:{}", core_->store().clock_ms()));
    add(fmt::format("sessions:{}", core_->store().sessions()));
    add(fmt::format("max_sessions:{}", options_.max_sessions));
    add(fmt::format("session_evictions:{}", core_->store().session_evictions()));
    add(fmt::format("cluster_time_ms:{}", core_->cluster_time_ms()));
    add("clock_faults:" + core_->clock_faults().describe());
  }
  // Asked for by name only, never by the default, `all` or `everything`: the digest encodes the
  // whole state machine on the event loop (230 ms at 316k keys on the machine where this was
  // found, longer than an election timeout), and an INFO from a monitoring poll on the leader
  // cost the cluster an election.
  if (section == "digest") {
    add("# Digest");
    add(fmt::format("state_digest:{:016x}", core_->store().digest()));
    add(fmt::format("applied_slot:{}", core_->applied()));
  }
  return out;
}

// On the remover thread.
void Server::remove_files(const std::vector<std::string>& paths, const std::string& dir) {
  Status removed = storage::remove_in_order(*fs_, paths, dir, removals_stuck_);
  if (!removed.is_ok())
    logging::write(logging::Level::kWarn, "remove_failed",
                   "cannot remove files nothing needs any more; nothing more is removed until a "
                   "restart: " +
                       removed.to_string(),
                   {{"dir", dir}});
}

}  // namespace synod::node
