// What a peer port does with connections that are not peers (net/peer_transport.h): one that never
// says Hello is closed after the handshake bound, logged once; a flood of garbage connections is
// refused every time but logged once per address and interval (on a clock driven by hand).
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

}  // namespace
}  // namespace synod::net
