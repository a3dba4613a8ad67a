// The metrics text format, the monitoring endpoint's request handling, the operator log's two
// formats, and the events the protocol core reports for them. (Debian's promtool and a real
// Prometheus server check a running cluster's output in src/tools/metrics_e2e.py.)
#include "node/metrics.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "node/http_endpoint.h"
#include "node/telemetry.h"

namespace synod::node {
namespace {

TEST(MetricsText, HistogramHasCumulativeBucketsSumAndCountInSeconds) {
  Histogram h = latency_histogram();
  h.observe(40);          // <= 50 us
  h.observe(300);         // <= 500 us
  h.observe(20'000'000);  // above every bound: +Inf only
  MetricsText out;
  out.family("x_seconds", "histogram", "A test.");
  out.histogram("x_seconds", h, {{"class", "read"}});
  const std::string text = out.take();
  EXPECT_NE(text.find("# HELP x_seconds A test.\n# TYPE x_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{class=\"read\",le=\"5e-05\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("x_seconds_bucket{class=\"read\",le=\"0.00025\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{class=\"read\",le=\"0.0005\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{class=\"read\",le=\"10\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{class=\"read\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_sum{class=\"read\"} 20.00034\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_count{class=\"read\"} 3\n"), std::string::npos);
}

TEST(MetricsText, EscapesLabelValuesAndHelp) {
  MetricsText out;
  out.family("y_total", "counter", "back\\slash\nnewline");
  out.sample("y_total", 7, {{"peer", "a\"b\\c\nd"}});
  EXPECT_EQ(out.take(),
            "# HELP y_total back\\\\slash\\nnewline\n# TYPE y_total counter\n"
            "y_total{peer=\"a\\\"b\\\\c\\nd\"} 7\n");
}

HttpEndpoint::Response serve_path(std::string_view path) {
  return {200, "text/plain", std::string(path)};
}

int status_of(std::string_view head) {
  bool head_only = false;
  return HttpEndpoint::answer(head, serve_path, head_only).status;
}

TEST(HttpEndpoint, ServesOnlyGetOfMetricsAndHealth) {
  bool head_only = false;
  auto r = HttpEndpoint::answer("GET /metrics HTTP/1.1\r\nHost: x", serve_path, head_only);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "/metrics");
  EXPECT_FALSE(head_only);
  EXPECT_EQ(HttpEndpoint::answer("GET /health?x=1 HTTP/1.0", serve_path, head_only).body,
            "/health");
  EXPECT_EQ(status_of("HEAD /metrics HTTP/1.1"), 200);
  EXPECT_EQ(status_of("GET /other HTTP/1.1"), 404);
  EXPECT_EQ(status_of("GET /metrics/../x HTTP/1.1"), 404);
  EXPECT_EQ(status_of("POST /metrics HTTP/1.1"), 405);
  EXPECT_EQ(status_of("GET /metrics HTTP/2"), 400);
  EXPECT_EQ(status_of("GET /metrics"), 400);
  EXPECT_EQ(status_of("GET  /metrics HTTP/1.1"), 400);
  EXPECT_EQ(status_of(""), 400);
}

TEST(Telemetry, ClassifiesCommands) {
  using C = Telemetry::RequestClass;
  EXPECT_EQ(Telemetry::classify("get"), C::kRead);
  EXPECT_EQ(Telemetry::classify("set"), C::kWrite);
  EXPECT_EQ(Telemetry::classify("exec"), C::kTransaction);
  EXPECT_EQ(Telemetry::classify("evalsha"), C::kScript);
  EXPECT_EQ(Telemetry::classify("info"), C::kAdmin);
}

TEST(Telemetry, CountsErrorsByTheirFirstWord) {
  Telemetry t(NodeId{1});
  t.error_reply("TRYAGAIN not the leader");
  t.error_reply("TRYAGAIN again");
  t.error_reply("UNKNOWN maybe");
  t.error_reply("WEIRD thing");
  MetricsText out;
  t.render(out);
  const std::string text = out.take();
  EXPECT_NE(text.find("synod_error_replies_total{class=\"tryagain\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("synod_error_replies_total{class=\"unknown\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("synod_error_replies_total{class=\"other\"} 1\n"), std::string::npos);
}

// The leader sends n3 a snapshot in chunks while n2 sends this replica one: each transfer's
// progress, size and slot per peer and direction; other messages count for nothing.
TEST(Telemetry, SnapshotTransferProgressPerPeerAndDirection) {
  Telemetry t(NodeId{1});
  const auto chunk = [](NodeId from, NodeId to, uint64_t offset, size_t bytes) {
    return paxos::Envelope{from, to,
                           paxos::SnapshotChunkMsg{.slot = 900,
                                                   .total = 10000,
                                                   .digest = 0,
                                                   .offset = offset,
                                                   .data = std::string(bytes, 'x')}};
  };
  t.peer_message(chunk(NodeId{1}, NodeId{3}, 0, 4096), Telemetry::Direction::kSent);
  t.peer_message(chunk(NodeId{1}, NodeId{3}, 4096, 4096), Telemetry::Direction::kSent);
  t.peer_message(chunk(NodeId{2}, NodeId{1}, 0, 4096), Telemetry::Direction::kReceived);
  t.peer_message(paxos::Envelope{NodeId{1}, NodeId{2}, paxos::PrepareMsg{}},
                 Telemetry::Direction::kSent);
  MetricsText out;
  t.render(out);
  std::string text = out.take();
  EXPECT_NE(text.find("synod_snapshot_transfer_bytes{peer=\"3\",direction=\"sent\"} 8192\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("synod_snapshot_transfer_bytes{peer=\"2\",direction=\"received\"} 4096\n"),
            std::string::npos);
  EXPECT_NE(text.find("synod_snapshot_transfer_size_bytes{peer=\"3\",direction=\"sent\"} "
                      "10000\n"),
            std::string::npos);
  EXPECT_NE(text.find("synod_snapshot_transfer_slot{peer=\"2\",direction=\"received\"} 900\n"),
            std::string::npos);
  EXPECT_EQ(text.find("peer=\"2\",direction=\"sent\""), std::string::npos);  // no transfer
  // The last chunk: complete, progress equals size. A resent chunk counts in the total only.
  t.peer_message(chunk(NodeId{1}, NodeId{3}, 8192, 1808), Telemetry::Direction::kSent);
  t.peer_message(chunk(NodeId{1}, NodeId{3}, 8192, 1808), Telemetry::Direction::kSent);
  MetricsText again;
  t.render(again);
  text = again.take();
  EXPECT_NE(text.find("synod_snapshot_transfer_bytes{peer=\"3\",direction=\"sent\"} 10000\n"),
            std::string::npos);
  EXPECT_NE(text.find("synod_snapshot_chunk_bytes_total{peer=\"3\",direction=\"sent\"} 11808\n"),
            std::string::npos);
}

TEST(Log, JsonLinesParseAndCarryTheirFields) {
  logging::configure(logging::Format::kJson, logging::Level::kInfo, 3);
  testing::internal::CaptureStderr();
  logging::write(logging::Level::kWarn, "stepped_down", "lost \"it\"\n",
                 {{"ballot", "4.3"}, {"slot", uint64_t{42}}});
  logging::write(logging::Level::kDebug, "hidden", "below the level");
  const std::string out = testing::internal::GetCapturedStderr();
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  const auto line = nlohmann::json::parse(out);
  EXPECT_EQ(line["level"], "warning");
  EXPECT_EQ(line["node"], 3);
  EXPECT_EQ(line["event"], "stepped_down");
  EXPECT_EQ(line["msg"], "lost \"it\"\n");
  EXPECT_EQ(line["ballot"], "4.3");
  EXPECT_EQ(line["slot"], 42);
  EXPECT_EQ(line["ts"].get<std::string>().size(), std::string("2026-12-05T20:14:59.123Z").size());
}

TEST(Log, TextLinesHaveTimestampLevelNodeAndEvent) {
  logging::configure(logging::Format::kText, logging::Level::kInfo, 2);
  testing::internal::CaptureStderr();
  logging::write(logging::Level::kInfo, "election_won", "won", {{"ballot", "1.2"}});
  const std::string out = testing::internal::GetCapturedStderr();
  // 2026-12-05T20:14:59.123Z info n2 election_won: won
  ASSERT_GT(out.size(), 25u);
  EXPECT_EQ(out[10], 'T');
  EXPECT_EQ(out[23], 'Z');
  EXPECT_EQ(out.substr(24), " info n2 election_won: won\n");
  EXPECT_FALSE(logging::parse_level("loud").is_ok());
  EXPECT_FALSE(logging::parse_format("xml").is_ok());
}

}  // namespace
}  // namespace synod::node

namespace synod::node {
namespace {

size_t count_of(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

TEST(Telemetry, ACutOffReplicaDoesNotFloodTheLogWithElections) {
  logging::configure(logging::Format::kText, logging::Level::kInfo, 1);
  Telemetry t(NodeId{1});
  testing::internal::CaptureStderr();
  for (uint64_t round = 1; round <= 200; ++round) {
    paxos::Event started;
    started.kind = paxos::Event::Kind::kElectionStarted;
    started.ballot = Ballot{round, NodeId{1}};
    t.event(started);
    paxos::Event lost = started;
    lost.kind = paxos::Event::Kind::kSteppedDown;
    lost.reason = paxos::StepDownReason::kTimedOut;
    t.event(lost);
  }
  const std::string out = testing::internal::GetCapturedStderr();
  // Elections 1, 2, 3, 100 and 200 are logged; every one is counted.
  EXPECT_EQ(count_of(out, "election_started"), 5u) << out;
  EXPECT_EQ(count_of(out, "election_lost"), 5u);
  MetricsText m;
  t.render(m);
  const std::string text = m.take();
  EXPECT_NE(text.find("synod_elections_started_total 200\n"), std::string::npos);
  EXPECT_NE(text.find("synod_elections_lost_total 200\n"), std::string::npos);
}

}  // namespace
}  // namespace synod::node
