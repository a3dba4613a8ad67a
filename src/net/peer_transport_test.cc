// What a peer port does with connections that are not peers (net/peer_transport.h): one that never
// says Hello is closed after the handshake bound, logged once; a flood of garbage connections is
// refused every time but logged once per address and interval (on a clock driven by hand). And the
// identity handshake over real loopback sockets: each side learns the incarnation its peer
// presents, and a Hello whose incarnation the check refuses is answered with a Refusal that reaches
// the refused side's handler, with its reason, before any message.
#include "net/peer_transport.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace synod::net {
namespace {

using asio::ip::tcp;

struct Harness {
  asio::io_context io;
  std::vector<std::string> lines;
  RefusalLog::Clock::time_point now{};  // the refusal log's clock
  std::unique_ptr<PeerTransport> transport;
  uint16_t port = 0;

  explicit Harness(uint32_t handshake_timeout_ms) {
    // A free port for n1 (bound and released); n2 is never up, so n1's dialling fails quietly.
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    port = probe.local_endpoint().port();
    probe.close();
    PeerTransport::Options o;
    o.self = NodeId{1};
    o.cluster_id = 7;
    o.peers = {{NodeId{1}, {"127.0.0.1", port}}, {NodeId{2}, {"127.0.0.1", 1}}};
    o.max_frame_bytes = 1 << 16;
    o.max_queue_bytes = 4 << 16;
    o.handshake_timeout_ms = handshake_timeout_ms;
    o.now = [this] { return now; };
    PeerTransport::Handlers h;
    h.log = [this](const std::string& line) { lines.push_back(line); };
    transport = std::make_unique<PeerTransport>(io, std::move(o), std::move(h));
    EXPECT_TRUE(transport->start().is_ok());
  }

  // Connects, sends `bytes`, and runs the loop until n1 closes the connection (or 10 s pass: a
  // failure). How long that took.
  std::chrono::milliseconds until_closed(const std::string& bytes) {
    const auto start = std::chrono::steady_clock::now();
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
    if (!bytes.empty()) asio::write(s, asio::buffer(bytes));
    bool closed = false;
    char buf[64];
    s.async_read_some(asio::buffer(buf),
                      [&](const asio::error_code& ec, size_t) { closed = !!ec; });
    io.restart();
    while (!closed && std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
      io.run_one_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(closed) << "n1 kept a connection that never said Hello";
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }

  size_t count(const std::string& text) const {
    size_t n = 0;
    for (const auto& l : lines) n += l.find(text) != std::string::npos;
    return n;
  }
};

TEST(PeerTransport, AConnectionThatNeverSaysHelloIsClosedAfterTheBoundAndLoggedOnce) {
  Harness h(200);
  const auto took = h.until_closed("");
  EXPECT_GE(took.count(), 200);
  EXPECT_EQ(h.count("closed inbound connection from 127.0.0.1:"), 1u);
  EXPECT_EQ(h.count(": no Hello within 200 ms"), 1u);
}

TEST(PeerTransport, AFloodOfGarbageConnectionsIsLoggedOncePerAddressAndInterval) {
  Harness h(10000);
  const std::string garbage(32, 'x');  // a frame length far beyond the limit
  for (int i = 0; i < 50; ++i) h.until_closed(garbage);
  EXPECT_EQ(h.count("closed inbound connection from 127.0.0.1:"), 1u);
  EXPECT_EQ(h.transport->refusals_not_logged(), 49u);
  // The interval passes (on the refusal log's clock): the next one is logged, with the count.
  h.now += std::chrono::seconds(10);
  h.until_closed(garbage);
  EXPECT_EQ(h.count("closed inbound connection from 127.0.0.1:"), 2u);
  EXPECT_EQ(h.count("(and 49 more like it from 127.0.0.1 in the last 10 s, not logged)"), 1u);
}

uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

struct Pair {
  asio::io_context io;
  std::map<NodeId, Endpoint> peers;
  std::unique_ptr<PeerTransport> t[3];  // [1] and [2]
  std::vector<std::pair<NodeId, Refusal>> refused[3];
  std::vector<std::string> log[3];
  int checks[3] = {0, 0, 0};
  bool started = false;
  bool messages_expected = false;
  std::vector<paxos::Envelope> received[3];

  // `refuse_at[i]`: node i refuses the other's incarnation (kIdentity).
  // Both sides redial after reconnect_min_ms, then twice as long each time, up to
  // reconnect_max_ms.
  explicit Pair(bool refuse_at_2, uint32_t reconnect_min_ms = 20, uint32_t reconnect_max_ms = 50) {
    peers[NodeId{1}] = {"127.0.0.1", free_port()};
    peers[NodeId{2}] = {"127.0.0.1", free_port()};
    for (uint32_t i : {1u, 2u}) {
      PeerTransport::Options o;
      o.self = NodeId{i};
      o.cluster_id = 5;
      o.peers = peers;
      o.reconnect_min_ms = reconnect_min_ms;
      o.reconnect_max_ms = reconnect_max_ms;
      o.incarnation = Incarnation{i, 100 + i};
      const bool refuse = refuse_at_2 && i == 2;
      o.check_identity = [this, i, refuse](NodeId peer,
                                           const Incarnation& inc) -> std::optional<Refusal> {
        ++checks[i];
        EXPECT_EQ(inc, (Incarnation{peer.value, 100 + peer.value}));
        if (refuse) return Refusal{Refusal::Code::kIdentity, "n2 knows n1 as another incarnation"};
        return std::nullopt;
      };
      PeerTransport::Handlers h;
      h.message = [this, i](paxos::Envelope& e) {
        if (!messages_expected) ADD_FAILURE() << "a message got through";
        received[i].push_back(e);
      };
      h.forward = [](NodeId, Forward&) {};
      h.forward_reply = [](NodeId, ForwardReply&) {};
      h.log = [this, i](const std::string& line) { log[i].push_back(line); };
      h.refused = [this, i](NodeId peer, const Refusal& r) { refused[i].emplace_back(peer, r); };
      t[i] = std::make_unique<PeerTransport>(io, std::move(o), std::move(h));
    }
  }

  // Starts both (the first time), then runs the loop until `done` holds (checked every few ms),
  // for at most 10 s.
  bool run_until(const std::function<bool()>& done) {
    if (!started) {
      EXPECT_TRUE(t[1]->start().is_ok());
      EXPECT_TRUE(t[2]->start().is_ok());
      started = true;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline)
      io.run_for(std::chrono::milliseconds(5));
    return done();
  }
};

// A peer that dials in and says its Hello is up: a redial of it waiting out its backoff goes at
// once. Here n1's first redial of n2 would wait 15-30 s (a backoff of 30 s), so without that n1
// would not reach n2 within run_until's 10 s.
TEST(PeerTransport, APeerThatDialsInIsRedialledAtOnce) {
  Pair p(false, 30000, 30000);
  ASSERT_TRUE(p.t[1]->start().is_ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (p.t[1]->stats(NodeId{2}).last_error.empty() && std::chrono::steady_clock::now() < deadline)
    p.io.run_for(std::chrono::milliseconds(5));
  ASSERT_FALSE(p.t[1]->stats(NodeId{2}).last_error.empty()) << "n1's dial of n2 (down) failed";
  ASSERT_FALSE(p.t[1]->stats(NodeId{2}).connected);
  ASSERT_TRUE(p.t[2]->start().is_ok());  // n2 comes up and dials n1
  p.started = true;
  EXPECT_TRUE(p.run_until([&] { return p.t[1]->stats(NodeId{2}).connected; }))
      << "n1 waited out its backoff although n2 had dialled in";
}

TEST(PeerTransport, EachSideLearnsTheIncarnationItsPeerPresents) {
  Pair p(false);
  ASSERT_TRUE(p.run_until(
      [&] { return p.t[1]->stats(NodeId{2}).connected && p.t[2]->stats(NodeId{1}).connected; }));
  EXPECT_EQ(p.t[1]->stats(NodeId{2}).incarnation, (Incarnation{2, 102}));
  EXPECT_EQ(p.t[2]->stats(NodeId{1}).incarnation, (Incarnation{1, 101}));
  EXPECT_GE(p.checks[1], 2);  // both directions: its outbound and its inbound connection
  EXPECT_GE(p.checks[2], 2);
  EXPECT_TRUE(p.refused[1].empty());
  EXPECT_TRUE(p.refused[2].empty());
}

// The core tells incarnations apart by Envelope::incarnation (paxos::Replica::step), which no
// message carries: the receiving side sets it from the Hello of the connection the message came
// on, folded to 64 bits — whatever the sender put there.
TEST(PeerTransport, AMessageCarriesTheIncarnationItsConnectionsHelloPresented) {
  Pair p(false);
  p.messages_expected = true;
  ASSERT_TRUE(p.run_until([&] { return p.t[1]->stats(NodeId{2}).connected; }));
  paxos::Envelope e{NodeId{1}, NodeId{2}, paxos::PrepareMsg{}, /*incarnation=*/42};
  p.t[1]->send(NodeId{2}, encode_frame(e));
  ASSERT_TRUE(p.run_until([&] { return !p.received[2].empty(); }));
  EXPECT_EQ(p.received[2][0].from, NodeId{1});
  EXPECT_EQ(p.received[2][0].incarnation, fold64(Incarnation{1, 101}));
  EXPECT_EQ(p.received[2][0].incarnation, uint64_t{1 ^ 101});
}

// n2 refuses n1's incarnation: on n1's connection (a Refusal instead of n2's Hello) and on n2's
// own (a Refusal after n1's Hello). n1 is told why, both ways; no message crosses; n2 never
// counts n1 as connected.
TEST(PeerTransport, ARefusedIncarnationIsToldWhyBothWays) {
  Pair p(true);
  ASSERT_TRUE(p.run_until([&] { return p.refused[1].size() >= 2; }));
  for (const auto& [peer, refusal] : p.refused[1]) {
    EXPECT_EQ(peer, NodeId{2});
    EXPECT_EQ(refusal.code, Refusal::Code::kIdentity);
    EXPECT_EQ(refusal.reason, "n2 knows n1 as another incarnation");
  }
  EXPECT_TRUE(p.refused[2].empty());
  EXPECT_FALSE(p.t[1]->stats(NodeId{2}).connected);
  EXPECT_FALSE(p.t[2]->stats(NodeId{1}).connected);
  bool logged = false;
  for (const auto& line : p.log[1])
    logged |= line.find("refused by n2") != std::string::npos &&
              line.find("another incarnation") != std::string::npos;
  EXPECT_TRUE(logged);
}

// The members change at run time (a configuration change, node/server.cc's sync_peers): once n2
// is no longer one of n1's peers, n1 closes its connections, drops (and counts) a frame for it
// and refuses its Hellos as a non-member's; once it is one again, n1 dials it and messages flow.
TEST(PeerTransport, PeersChangeAtRunTime) {
  Pair p(false);
  p.messages_expected = true;
  ASSERT_TRUE(p.run_until(
      [&] { return p.t[1]->stats(NodeId{2}).connected && p.t[2]->stats(NodeId{1}).connected; }));
  p.t[1]->set_peers({});
  EXPECT_EQ(p.t[1]->peers().size(), 1u);  // itself
  EXPECT_FALSE(p.t[1]->stats(NodeId{2}).connected);
  const paxos::Envelope e{NodeId{1}, NodeId{2}, paxos::PrepareMsg{}, 0};
  p.t[1]->send(NodeId{2}, encode_frame(e));
  EXPECT_EQ(p.t[1]->frames_to_strangers(), 1u);
  auto said = [&](const std::string& text) {
    for (int i : {1, 2})
      for (const auto& line : p.log[i])
        if (line.find(text) != std::string::npos) return true;
    return false;
  };
  ASSERT_TRUE(p.run_until([&] { return said("is not a member of this cluster"); }));
  EXPECT_TRUE(p.received[2].empty());
  p.t[1]->set_peers({{NodeId{2}, p.peers[NodeId{2}]}});
  ASSERT_TRUE(p.run_until([&] { return p.t[1]->stats(NodeId{2}).connected; }));
  p.t[1]->send(NodeId{2}, encode_frame(e));
  ASSERT_TRUE(p.run_until([&] { return !p.received[2].empty(); }));
  EXPECT_EQ(p.received[2][0].from, NodeId{1});
}

}  // namespace
}  // namespace synod::net
