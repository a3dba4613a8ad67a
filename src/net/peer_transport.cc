#include "net/peer_transport.h"

#include <algorithm>
#include <charconv>
#include <random>

namespace synod::net {

using asio::ip::tcp;

Result<Endpoint> parse_endpoint(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return Status::invalid_argument("'" + std::string(text) + "' is not HOST:PORT");
  uint32_t port = 0;
  const std::string_view digits = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535)
    return Status::invalid_argument("'" + std::string(text) + "' has no valid port");
  return Endpoint{std::string(text.substr(0, colon)), static_cast<uint16_t>(port)};
}

Status listen(tcp::acceptor& acceptor, const Endpoint& at, const std::string& what) {
  asio::error_code ec;
  tcp::resolver resolver(acceptor.get_executor());
  auto results = resolver.resolve(at.host, std::to_string(at.port), ec);
  if (ec || results.empty())
    return Status::invalid_argument("cannot resolve " + at.to_string() + ": " + ec.message());
  const tcp::endpoint endpoint = *results.begin();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::io_error("cannot listen for " + what + " on " + at.to_string() + ": " +
                            ec.message());
  return Status::ok();
}

// Our connection to one peer: dials, says Hello, checks the peer's Hello, then writes queued
// frames in batches (one gathered write for everything queued).
class PeerTransport::Outbound : public std::enable_shared_from_this<Outbound> {
 public:
  Outbound(PeerTransport& t, NodeId peer, Endpoint endpoint)
      : t_(t),
        peer_(peer),
        endpoint_(std::move(endpoint)),
        socket_(t.io_),
        timer_(t.io_),
        resolver_(t.io_),
        reader_(t.options_.max_frame_bytes) {
    backoff_ms_ = t_.options_.reconnect_min_ms;
  }

  void start() { dial(); }
  // The peer has just dialled us and said a Hello we took: it is up. A redial waiting out its
  // backoff goes now, from the shortest backoff, instead of up to reconnect_max_ms later (a
  // restarted replica was not heard from by the leader for ~0.7 s, and a rolling restart that
  // stopped the next replica in that time left the leader without a quorum).
  void peer_is_up() {
    if (stopped_ || !waiting_) return;
    waiting_ = false;
    ++wait_gen_;  // a wait that fired already, its handler queued, then does nothing
    timer_.cancel();
    backoff_ms_ = t_.options_.reconnect_min_ms;
    dial();
  }
  void stop() {
    stopped_ = true;
    close();
    timer_.cancel();
  }

  void send(std::string frame) {
    // The core cuts every message to fit (paxos::Config::max_message_bytes): a larger frame is a
    // bug, which dropping would hide as a peer that never answers.
    SYNOD_ASSERT(frame.size() <= kFrameHeaderSize + t_.options_.max_frame_bytes,
                 "a frame larger than the peer frame limit");
    if (queued_bytes_ + frame.size() > t_.options_.max_queue_bytes) {
      ++stats_.frames_dropped;
      return;
    }
    queued_bytes_ += frame.size();
    queue_.push_back(std::move(frame));
    write();
  }

  PeerStats stats() const {
    PeerStats s = stats_;
    s.connected = ready_;
    s.queued_bytes = queued_bytes_;
    return s;
  }

 private:
  // Handlers of an earlier connection attempt find the generation moved on and do nothing.
  bool stale(uint64_t gen) const { return stopped_ || gen != gen_; }

  void dial() {
    if (stopped_) return;
    auto self = shared_from_this();
    const uint64_t gen = gen_;
    resolver_.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port),
        [this, self, gen](const asio::error_code& ec, const tcp::resolver::results_type& results) {
          if (stale(gen)) return;
          if (ec) return fail("resolve " + endpoint_.to_string() + ": " + ec.message());
          asio::async_connect(
              socket_, results,
              [this, self, gen](const asio::error_code& ec2, const tcp::endpoint&) {
                if (stale(gen)) return;
                if (ec2) return fail("connect " + endpoint_.to_string() + ": " + ec2.message());
                asio::error_code ignored;
                socket_.set_option(tcp::no_delay(true), ignored);
                arm_deadline(gen);
                if (!t_.tls_) {
                  stream_ = std::make_shared<Stream>(std::move(socket_));
                  return on_connected();
                }
                stream_ = std::make_shared<Stream>(std::move(socket_), t_.tls_);
                handshake();
              });
        });
  }

  // A peer that accepts but never finishes the TLS handshake and Hello would otherwise hold this
  // connection, and every frame queued for it, forever. (The timer is free until fail() uses it
  // for the backoff; a connection that became ready finds the handler doing nothing.)
  void arm_deadline(uint64_t gen) {
    const uint32_t bound = t_.options_.handshake_timeout_ms;
    if (bound == 0) return;
    timer_.expires_after(std::chrono::milliseconds(bound));
    timer_.async_wait([this, self = shared_from_this(), gen, bound](const asio::error_code& ec) {
      if (ec || stale(gen) || ready_) return;
      fail("peer at " + endpoint_.to_string() + " did not finish the " +
           (t_.tls_ ? "TLS handshake and " : "") + "Hello within " + std::to_string(bound) + " ms");
    });
  }

  // Mutual TLS: the server's certificate must chain to the CA (OpenSSL checks) and name the node
  // we dialled (we check), before our Hello says who we are.
  void handshake() {
    auto self = shared_from_this();
    const uint64_t gen = gen_;
    stream_->async_handshake(
        asio::ssl::stream_base::client, [this, self, gen, s = stream_](const asio::error_code& ec) {
          if (stale(gen)) return;
          if (ec) return fail("TLS handshake with " + endpoint_.to_string() + ": " + tls_error(ec));
          if (auto refusal = certificate_refusal(stream_->peer_certificate(), peer_))
            return fail("refused peer at " + endpoint_.to_string() + ": " + *refusal);
          on_connected();
        });
  }

  void on_connected() {
    hello_ = encode_hello({t_.options_.cluster_id, t_.options_.self, t_.options_.incarnation});
    auto self = shared_from_this();
    const uint64_t gen = gen_;
    stream_->async_write(asio::buffer(hello_),
                         [this, self, gen, s = stream_](const asio::error_code& ec, size_t) {
                           if (stale(gen)) return;
                           if (ec) return fail("write hello: " + ec.message());
                           read_hello();
                         });
  }

  void read_hello() {
    auto self = shared_from_this();
    const uint64_t gen = gen_;
    stream_->async_read_some(
        asio::buffer(buf_), [this, self, gen, s = stream_](const asio::error_code& ec, size_t n) {
          if (stale(gen)) return;
          if (ec) return fail("read hello: " + tls_error(ec));
          reader_.feed(std::string_view(buf_, n));
          Frame frame;
          std::string error;
          const auto status = reader_.next(frame, error);
          if (status == FrameReader::Status::kNeedMore) return read_hello();
          if (status == FrameReader::Status::kError)
            return fail("from " + endpoint_.to_string() + ": " + error);
          if (frame.kind == Frame::Kind::kRefusal) {
            t_.refused_by(peer_, frame.refusal);
            return fail("refused by n" + std::to_string(peer_.value) + " at " +
                        endpoint_.to_string() + ": " + frame.refusal.reason);
          }
          if (frame.kind != Frame::Kind::kHello)
            return fail("peer at " + endpoint_.to_string() + " did not start with a hello");
          if (auto refusal = check_hello(frame.hello, t_.options_.cluster_id, peer_))
            return fail("refused peer at " + endpoint_.to_string() + ": " + *refusal);
          if (auto refusal = t_.identity_refusal(frame.hello)) return refuse(*refusal);
          t_.presented_[peer_] = frame.hello.incarnation;
          ready_ = true;
          ++stats_.connects;
          backoff_ms_ = t_.options_.reconnect_min_ms;
          t_.log("connected to n" + std::to_string(peer_.value) + " at " + endpoint_.to_string());
          watch();
          write();
        });
  }

  // Tells the peer why its Hello was refused (a Refusal frame on our connection, which it reads
  // as the first frame after its Hello), then closes and retries as after any failure.
  void refuse(const Refusal& refusal) {
    const std::string why = "refused n" + std::to_string(peer_.value) + " at " +
                            endpoint_.to_string() + ": " + refusal.reason;
    refusal_ = encode_refusal(refusal);
    auto self = shared_from_this();
    const uint64_t gen = gen_;
    stream_->async_write(asio::buffer(refusal_),
                         [this, self, gen, why, s = stream_](const asio::error_code&, size_t) {
                           if (!stale(gen)) fail(why);
                         });
  }

  // The peer sends nothing after its Hello; a read completes only when the connection ends.
  void watch() {
    auto self = shared_from_this();
    const uint64_t gen = gen_;
    stream_->async_read_some(
        asio::buffer(buf_), [this, self, gen, s = stream_](const asio::error_code& ec, size_t) {
          if (stale(gen)) return;
          fail(ec ? "connection to n" + std::to_string(peer_.value) + " lost: " + ec.message()
                  : "n" + std::to_string(peer_.value) + " sent data on its inbound connection");
        });
  }

  void write() {
    if (!ready_ || writing_ || queue_.empty()) return;
    writing_ = true;
    // Gather up to 256 frames into one write.
    const size_t n = std::min<size_t>(queue_.size(), 256);
    buffers_.clear();
    if (stream_->tls()) {
      // TLS writes one record per buffer: one buffer for the batch makes few large records.
      batch_.clear();
      for (size_t i = 0; i < n; ++i) batch_ += queue_[i];
      buffers_.push_back(asio::buffer(batch_));
    } else {
      for (size_t i = 0; i < n; ++i) buffers_.push_back(asio::buffer(queue_[i]));
    }
    auto self = shared_from_this();
    const uint64_t gen = gen_;
    stream_->async_write(
        buffers_, [this, self, gen, n, s = stream_](const asio::error_code& ec, size_t) {
          if (stale(gen)) return;
          writing_ = false;
          if (ec) return fail("write to n" + std::to_string(peer_.value) + ": " + ec.message());
          for (size_t i = 0; i < n; ++i) {
            queued_bytes_ -= queue_.front().size();
            queue_.pop_front();
          }
          stats_.frames_sent += n;
          write();
        });
  }

  void fail(const std::string& why) {
    if (ready_ || stats_.last_error != why) t_.log(why);
    stats_.last_error = why;
    close();
    // Retry with exponential backoff and jitter, so restarted replicas do not dial in lockstep.
    const uint32_t delay =
        backoff_ms_ / 2 + static_cast<uint32_t>(jitter_() % (backoff_ms_ / 2 + 1));
    backoff_ms_ = std::min(backoff_ms_ * 2, t_.options_.reconnect_max_ms);
    timer_.expires_after(std::chrono::milliseconds(delay));
    auto self = shared_from_this();
    waiting_ = true;
    timer_.async_wait([this, self, wait_gen = ++wait_gen_](const asio::error_code& ec) {
      if (ec || stopped_ || wait_gen != wait_gen_) return;
      waiting_ = false;
      dial();
    });
  }

  void close() {
    ++gen_;
    ready_ = false;
    writing_ = false;
    asio::error_code ignored;
    if (stream_) stream_->close();
    stream_.reset();
    socket_.close(ignored);
    socket_ = tcp::socket(t_.io_);
    reader_ = FrameReader(t_.options_.max_frame_bytes);
  }

  PeerTransport& t_;
  NodeId peer_;
  Endpoint endpoint_;
  tcp::socket socket_;  // while connecting
  // Once connected: the socket, or TLS over it. Each pending operation holds it too: a TLS
  // stream must outlive its operations, which finish (aborted) after close() drops it.
  std::shared_ptr<Stream> stream_;
  asio::steady_timer timer_;
  tcp::resolver resolver_;
  FrameReader reader_;
  std::string hello_;
  std::string refusal_;
  char buf_[4096];
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  std::vector<asio::const_buffer> buffers_;
  std::string batch_;  // TLS: the frames of one write, concatenated
  bool ready_ = false;
  bool writing_ = false;
  bool stopped_ = false;
  bool waiting_ = false;   // for the backoff timer, to dial again
  uint64_t wait_gen_ = 0;  // which wait is the current one
  uint32_t backoff_ms_ = 0;
  uint64_t gen_ = 0;
  std::minstd_rand jitter_{std::random_device{}()};
  PeerStats stats_;
};

// A connection a peer dialled: reads its Hello, answers with ours, then reads frames.
class PeerTransport::Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  Inbound(PeerTransport& t, tcp::socket socket)
      : t_(t),
        stream_(t.tls_ ? Stream(std::move(socket), t.tls_) : Stream(std::move(socket))),
        reader_(t.options_.max_frame_bytes),
        deadline_(t.io_) {}

  void start() {
    asio::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    const auto remote = stream_.socket().remote_endpoint(ignored);
    address_ = remote.address().to_string();
    where_ = address_ + ":" + std::to_string(remote.port());
    arm_deadline();
    if (!stream_.tls()) return read();
    // Plaintext on a TLS port gets a clear refusal rather than OpenSSL's "wrong version number".
    auto self = shared_from_this();
    peek_tls(stream_.socket(), std::make_shared<uint8_t>(0),
             [this, self](const asio::error_code& ec, bool is_tls) {
               if (ec) return void(end(ec == asio::error::eof ? "" : "read: " + ec.message()));
               if (!is_tls) return void(end("plaintext on the TLS peer port (refused)"));
               handshake();
             });
  }
  void stop() {
    stream_.close();
    deadline_.cancel();
  }
  NodeId peer() const { return peer_; }

 private:
  // A connection that has not said who it is within the bound is closed, logged once. The
  // handler holds no reference: a connection that ended first is simply gone.
  void arm_deadline() {
    const uint32_t bound = t_.options_.handshake_timeout_ms;
    if (bound == 0) return;
    deadline_.expires_after(std::chrono::milliseconds(bound));
    deadline_.async_wait([weak = weak_from_this(), bound](const asio::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->peer_.valid() || self->ended_) return;
      self->end(self->stream_.tls() && !self->handshaken_
                    ? "TLS handshake not finished within " + std::to_string(bound) + " ms"
                    : "no Hello within " + std::to_string(bound) + " ms");
    });
  }

  // The dialler's certificate must chain to the CA (OpenSSL checks); that it names the node its
  // Hello claims is checked when the Hello comes.
  void handshake() {
    auto self = shared_from_this();
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [this, self](const asio::error_code& ec) {
                              if (ec) return void(end("TLS handshake: " + tls_error(ec)));
                              handshaken_ = true;
                              read();
                            });
  }

  void read() {
    auto self = shared_from_this();
    stream_.async_read_some(asio::buffer(buf_), [this, self](const asio::error_code& ec, size_t n) {
      if (ec) {
        // A peer that restarts ends its TLS connection without a close_notify: as quiet as EOF.
        const bool ended = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
        if (ec != asio::error::operation_aborted) end(ended ? "" : "read: " + tls_error(ec));
        return;
      }
      reader_.feed(std::string_view(buf_, n));
      // An async TLS read returns one record, and each read's frames get a flush (an fdatasync)
      // of their own, so records that queued up during one would each wait for another (SETs
      // through mutual-TLS peers ran at a seventh of plaintext's rate). Take what else is here
      // first, as one plaintext read does; at most 1 MiB.
      if (stream_.tls() && !writing_)
        for (size_t more = 0, got;
             more < (1u << 20) && (got = stream_.read_now(asio::buffer(buf_))) > 0; more += got)
          reader_.feed(std::string_view(buf_, got));
      if (drain()) read();
    });
  }

  // Handles every complete frame; false once the connection was ended.
  bool drain() {
    for (;;) {
      Frame frame;
      std::string error;
      const auto status = reader_.next(frame, error);
      if (status == FrameReader::Status::kNeedMore) return true;
      if (status == FrameReader::Status::kError) return end(error);
      if (!peer_.valid()) {
        if (frame.kind != Frame::Kind::kHello) return end("the first frame was not a hello");
        if (auto refusal = check_hello(frame.hello, t_.options_.cluster_id, std::nullopt))
          return refuse({Refusal::Code::kPeer, *refusal});
        if (!t_.options_.peers.count(frame.hello.node) || frame.hello.node == t_.options_.self)
          return refuse({Refusal::Code::kPeer, "node " + std::to_string(frame.hello.node.value) +
                                                   " is not a member of this cluster"});
        if (stream_.tls()) {
          if (auto refusal = certificate_refusal(stream_.peer_certificate(), frame.hello.node))
            return end(*refusal);  // (nothing said to a peer whose certificate is wrong)
        }
        if (auto refusal = t_.identity_refusal(frame.hello)) {
          peer_ = frame.hello.node;
          return refuse(*refusal);
        }
        peer_ = frame.hello.node;
        incarnation_ = fold64(frame.hello.incarnation);
        t_.presented_[peer_] = frame.hello.incarnation;
        t_.log("accepted inbound connection from n" + std::to_string(peer_.value) + " at " +
               where_);
        if (auto out = t_.outbound_.find(peer_); out != t_.outbound_.end())
          out->second->peer_is_up();
        hello_ = encode_hello({t_.options_.cluster_id, t_.options_.self, t_.options_.incarnation});
        writing_ = true;
        stream_.async_write(asio::buffer(hello_),
                            [self = shared_from_this()](const asio::error_code&, size_t) {
                              self->writing_ = false;
                            });
        continue;
      }
      if (t_.blocked_.count(peer_)) continue;  // fault filter: as if lost on the way
      ++t_.received_[peer_];
      switch (frame.kind) {
        case Frame::Kind::kHello:
          return end("a second hello");
        case Frame::Kind::kRefusal:
          // The dialler refused the Hello we answered with.
          t_.refused_by(peer_, frame.refusal);
          return end("refused by n" + std::to_string(peer_.value) + ": " + frame.refusal.reason);
        case Frame::Kind::kMessage:
          if (frame.envelope.from != peer_ || frame.envelope.to != t_.options_.self)
            return end("a message from n" + std::to_string(frame.envelope.from.value) + " to n" +
                       std::to_string(frame.envelope.to.value) + " on n" +
                       std::to_string(peer_.value) + "'s connection");
          // The sender's incarnation is the one its Hello presented on this connection (the
          // core ignores a member bound to another, paxos::Replica::step).
          frame.envelope.incarnation = incarnation_;
          t_.handlers_.message(frame.envelope);
          break;
        case Frame::Kind::kForward:
          t_.handlers_.forward(peer_, frame.forward);
          break;
        case Frame::Kind::kForwardReply:
          t_.handlers_.forward_reply(peer_, frame.forward_reply);
          break;
        case Frame::Kind::kReadIndexRequest:
          if (t_.handlers_.read_index_request)
            t_.handlers_.read_index_request(peer_, frame.read_index_request);
          break;
        case Frame::Kind::kReadIndexReply:
          if (t_.handlers_.read_index_reply)
            t_.handlers_.read_index_reply(peer_, frame.read_index_reply);
          break;
      }
    }
  }

  // Tells the dialler why its Hello was refused (a Refusal frame in place of our Hello), then
  // closes; false, as end(). The line is logged as end() logs its own.
  bool refuse(const Refusal& refusal) {
    if (ended_) return false;
    ended_ = true;
    note("refused inbound connection from ", refusal.reason);
    deadline_.cancel();
    refusal_ = encode_refusal(refusal);
    auto self = shared_from_this();
    stream_.async_write(asio::buffer(refusal_), [this, self](const asio::error_code& ec, size_t) {
      if (ec == asio::error::operation_aborted) return;  // the transport stopped it
      stop();
      t_.inbound_.erase(self);
    });
    return false;
  }

  bool end(const std::string& why) {
    if (ended_) return false;
    ended_ = true;
    if (!why.empty()) note("closed inbound connection from ", why);
    stop();
    t_.inbound_.erase(shared_from_this());
    return false;
  }

  // Logs `what` this connection, for `why`. Before its Hello is accepted a connection is
  // anyone's: those lines are rate-limited.
  void note(const std::string& what, const std::string& why) {
    const std::string line =
        what + (peer_.valid() ? "n" + std::to_string(peer_.value) + " " : std::string()) + where_ +
        ": " + why;
    if (peer_.valid())
      t_.log(line);
    else
      t_.refused(address_, why, line);
  }

  PeerTransport& t_;
  Stream stream_;
  FrameReader reader_;
  NodeId peer_;
  uint64_t incarnation_ = 0;  // fold64 of the incarnation in peer_'s Hello
  std::string address_;       // the remote address, without its port: the refusal log's key
  std::string where_;
  std::string hello_;
  asio::steady_timer deadline_;
  bool handshaken_ = false;
  bool ended_ = false;
  bool writing_ = false;  // our Hello is on its way
  std::string refusal_;
  char buf_[64 << 10];
};

PeerTransport::PeerTransport(asio::io_context& io, Options options, Handlers handlers)
    : io_(io),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      tls_(options_.tls),
      acceptor_(io),
      refusals_(options_.refusal_log, [this](const std::string& line) { log(line); }) {
  // A queue that holds a few of the largest frames never drops one for its size alone: only a
  // peer that stops reading fills it.
  SYNOD_ASSERT(options_.max_queue_bytes >= 2 * (kFrameHeaderSize + options_.max_frame_bytes),
               "the send queue must hold at least two of the largest frames");
}

PeerTransport::~PeerTransport() {
  stop();
}

Status PeerTransport::start() {
  auto me = options_.peers.find(options_.self);
  if (me == options_.peers.end())
    return Status::invalid_argument("this replica (n" + std::to_string(options_.self.value) +
                                    ") is not in the peer list");
  SYNOD_RETURN_IF_ERROR(listen(acceptor_, me->second, "peers"));
  accept();
  for (const auto& [id, endpoint_text] : options_.peers) {
    if (id == options_.self) continue;
    auto out = std::make_shared<Outbound>(*this, id, endpoint_text);
    outbound_[id] = out;
    out->start();
  }
  return Status::ok();
}

void PeerTransport::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  for (auto& [id, out] : outbound_) out->stop();
  for (const auto& in : std::set<std::shared_ptr<Inbound>>(inbound_)) in->stop();
  inbound_.clear();
}

void PeerTransport::accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) {
      auto in = std::make_shared<Inbound>(*this, std::move(socket));
      inbound_.insert(in);
      in->start();
    }
    accept();
  });
}

void PeerTransport::set_peers(std::map<NodeId, Endpoint> peers) {
  if (auto me = options_.peers.find(options_.self); me != options_.peers.end())
    peers[options_.self] = me->second;
  for (auto it = outbound_.begin(); it != outbound_.end();) {
    auto now = peers.find(it->first);
    if (now != peers.end() && now->second.to_string() == options_.peers.at(it->first).to_string()) {
      ++it;
      continue;
    }
    log("peer n" + std::to_string(it->first.value) + " at " +
        options_.peers.at(it->first).to_string() + " is no longer dialled");
    it->second->stop();
    it = outbound_.erase(it);
  }
  for (const auto& in : std::set<std::shared_ptr<Inbound>>(inbound_)) {
    if (in->peer().valid() && !peers.count(in->peer())) {
      in->stop();
      inbound_.erase(in);
    }
  }
  options_.peers = std::move(peers);
  if (stopped_ || !acceptor_.is_open()) return;  // start() dials them
  for (const auto& [id, endpoint] : options_.peers) {
    if (id == options_.self || outbound_.count(id)) continue;
    log("dialling peer n" + std::to_string(id.value) + " at " + endpoint.to_string());
    auto out = std::make_shared<Outbound>(*this, id, endpoint);
    outbound_[id] = out;
    out->start();
  }
}

void PeerTransport::send(NodeId to, std::string frame) {
  auto it = outbound_.find(to);
  if (it == outbound_.end()) {
    ++frames_to_strangers_;
    return;
  }
  if (blocked_.count(to)) return;
  it->second->send(std::move(frame));
}

PeerTransport::PeerStats PeerTransport::stats(NodeId peer) const {
  PeerStats s;
  if (auto it = outbound_.find(peer); it != outbound_.end()) s = it->second->stats();
  if (auto it = received_.find(peer); it != received_.end()) s.frames_received = it->second;
  if (auto it = presented_.find(peer); it != presented_.end()) s.incarnation = it->second;
  return s;
}

std::optional<Refusal> PeerTransport::identity_refusal(const Hello& hello) const {
  if (!options_.check_identity) return std::nullopt;
  return options_.check_identity(hello.node, hello.incarnation);
}

void PeerTransport::refused_by(NodeId peer, const Refusal& refusal) {
  if (refusal.code == Refusal::Code::kIdentity && handlers_.refused)
    handlers_.refused(peer, refusal);
}

void PeerTransport::log(const std::string& line) const {
  if (handlers_.log) handlers_.log(line);
}

void PeerTransport::refused(const std::string& address, const std::string& reason,
                            const std::string& line) {
  refusals_.refused(address, reason, line,
                    options_.now ? options_.now() : RefusalLog::Clock::now());
}

}  // namespace synod::net
