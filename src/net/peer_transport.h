// TCP between replicas, on one Asio event loop (the replica's; no threads of its own).
//
// Each replica dials every peer once and sends on that connection only; it receives on the
// connections its peers dialled. Both sides open with a Hello (docs/wire-format.md) naming the
// cluster, the node and its data directory's incarnation: a peer of another cluster, one that is
// not a member, one that claims another id than the one dialled, and any malformed, oversized or
// corrupt frame end the connection with a logged reason — the replica itself carries on. A Hello
// the replica refuses (and one whose incarnation the identity check refuses) is answered with a
// Refusal frame before the connection closes, so the refused side logs why; an identity refusal
// is handed to Handlers::refused, and the server stops on it. With TLS (Options::tls) every
// connection is mutual TLS before its Hello, and a peer's certificate must name the node id it
// claims (net/tls.h); plaintext is refused.
// A connection that has not finished its TLS handshake and Hello within handshake_timeout_ms is
// closed (both directions), and refusals of inbound connections are logged at most once per
// address and reason per interval (net/refusal_log.h), so a flood of garbage connections can
// neither hold sockets open nor flood the log.
// Frames to a peer wait in a bounded queue (dropped and counted beyond it:
// Paxos retransmits) while the connection is (re)established with exponential backoff.
//
// A fault filter (`set_blocked`) drops every frame to and from chosen peers, for fault-injection
// tests that need partitions without network namespaces.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "base/status.h"
#include "base/types.h"
#include "net/refusal_log.h"
#include "net/tls.h"
#include "net/wire.h"

namespace synod::net {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

// Parses "HOST:PORT".
Result<Endpoint> parse_endpoint(std::string_view text);

// Binds and listens on `at` (with SO_REUSEADDR); `what` names the listener in the error.
Status listen(asio::ip::tcp::acceptor& acceptor, const Endpoint& at, const std::string& what);

class PeerTransport {
 public:
  struct Options {
    NodeId self;
    uint64_t cluster_id = 0;
    std::map<NodeId, Endpoint> peers;  // every member, this replica included (its listen address)
    // A frame's body is at most max_frame_bytes (paxos::Config::max_message_bytes: the core cuts
    // every message to fit, so a larger frame to send is a bug and asserts); the queue to each
    // peer holds at least two of the largest frames (the server makes it four).
    size_t max_queue_bytes = 64 << 20;
    size_t max_frame_bytes = 16 << 20;
    uint32_t reconnect_min_ms = 20;
    uint32_t reconnect_max_ms = 1000;
    // Mutual TLS on both directions (net/tls.h; null: plaintext). Every connection must then
    // present a certificate from the cluster's CA naming the node it speaks for.
    std::shared_ptr<asio::ssl::context> tls;
    // A connection's TLS handshake and Hello, together, must finish within this (0: no bound).
    uint32_t handshake_timeout_ms = 10000;
    RefusalLog::Options refusal_log;
    // The refusal log's clock (null: the steady clock); tests drive it by hand.
    std::function<RefusalLog::Clock::time_point()> now;
    // This replica's incarnation (storage/identity.h), sent in every Hello.
    Incarnation incarnation;
    // Asked about every peer's Hello that passed the other checks, in both directions, before
    // anything else is read from or sent to that peer on the connection: the refusal to send
    // (Refusal::Code::kIdentity if `peer` must not be taken under this incarnation, kPeer for a
    // passing trouble of this replica's), or nullopt to take it. Unset: every one is taken.
    std::function<std::optional<Refusal>(NodeId peer, const Incarnation&)> check_identity;
  };
  struct Handlers {
    // A peer's message, its Envelope::incarnation set to fold64 of the incarnation in the Hello
    // of the connection it came on.
    std::function<void(paxos::Envelope&)> message;
    std::function<void(NodeId from, Forward&)> forward;
    std::function<void(NodeId from, ForwardReply&)> forward_reply;
    std::function<void(NodeId from, const ReadIndexRequest&)> read_index_request;
    std::function<void(NodeId from, const ReadIndexReply&)> read_index_reply;
    std::function<void(const std::string&)> log;  // one line per connection event
    // `peer` refused this replica's own Hello for its identity (Refusal::Code::kIdentity; other
    // refusals are only logged): this replica's data directory is not the one its peers know.
    std::function<void(NodeId peer, const Refusal&)> refused;
  };
  struct PeerStats {
    bool connected = false;  // our outbound connection has exchanged Hellos
    uint64_t frames_sent = 0;
    uint64_t frames_dropped = 0;  // queue full or blocked
    uint64_t frames_received = 0;
    uint64_t connects = 0;
    size_t queued_bytes = 0;
    std::string last_error;
    Incarnation incarnation;  // the one the peer presented in its last Hello taken (zero: none)
  };

  // `io` must outlive the transport; handlers run on its thread.
  PeerTransport(asio::io_context& io, Options options, Handlers handlers);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Binds the listening socket and starts dialling peers.
  Status start();
  void stop();

  // The members changed (a configuration change chosen at run time): dials the peers that are
  // new (or whose address changed), stops dialling those that are gone and closes their
  // connections, and from now on takes Hellos only from `peers` (this replica's own entry is
  // kept as it was: the listening socket does not move).
  void set_peers(std::map<NodeId, Endpoint> peers);
  const std::map<NodeId, Endpoint>& peers() const { return options_.peers; }

  // Queues one encoded frame for `to` (dropped if the queue is full or `to` is blocked; dropped
  // and counted if `to` is not a peer: a member whose address is not known yet).
  void send(NodeId to, std::string frame);

  // Certificates reloaded: connections made from now on use `tls` (established ones keep theirs).
  void set_tls(std::shared_ptr<asio::ssl::context> tls) { tls_ = std::move(tls); }

  void set_blocked(std::set<NodeId> peers) { blocked_ = std::move(peers); }
  const std::set<NodeId>& blocked() const { return blocked_; }
  PeerStats stats(NodeId peer) const;
  // Refused inbound connections whose log line was left out (rate limit).
  uint64_t refusals_not_logged() const { return refusals_.suppressed(); }
  uint64_t frames_to_strangers() const { return frames_to_strangers_; }

 private:
  class Outbound;
  class Inbound;

  void accept();
  void log(const std::string& line) const;
  // An inbound connection from `address` (no port) refused for `reason`: `line`, rate-limited.
  void refused(const std::string& address, const std::string& reason, const std::string& line);
  // Runs the identity check on a peer's Hello that passed the others.
  std::optional<Refusal> identity_refusal(const Hello& hello) const;
  void refused_by(NodeId peer, const Refusal& refusal);

  asio::io_context& io_;
  Options options_;
  Handlers handlers_;
  std::shared_ptr<asio::ssl::context> tls_;
  asio::ip::tcp::acceptor acceptor_;
  std::map<NodeId, std::shared_ptr<Outbound>> outbound_;
  std::set<std::shared_ptr<Inbound>> inbound_;
  std::map<NodeId, uint64_t> received_;
  std::map<NodeId, Incarnation> presented_;  // per peer, the incarnation of its last Hello taken
  std::set<NodeId> blocked_;
  uint64_t frames_to_strangers_ = 0;  // sent to an id that is not a peer: dropped
  RefusalLog refusals_;
  bool stopped_ = false;
};

}  // namespace synod::net
