// The replica's HTTP endpoint for monitoring (`--metrics-listen HOST:PORT`): GET /metrics (the
// Prometheus text format) and GET /health, on the server's own Asio loop.
//
// Why hand-written on Asio rather than a library: Debian 12 packages no prometheus-cpp, and
// libcivetweb (the one embeddable HTTP server it has) runs its own worker threads, which would
// have to lock every counter the loop thread updates. Serving two fixed GET paths needs only a
// strict, bounded request reader on the loop that already owns the numbers: a scrape then reads
// them without locks, and the hot path pays nothing for being observable.
//
// Bounds: a request's head (request line and headers) is at most max_request_bytes, or the
// answer is 431 and the connection closes; one answer per connection (Connection: close); at
// most max_connections at once (more are closed unanswered at accept); a connection that has
// not sent its whole head within timeout_ms is closed. Only GET (and HEAD) of the two paths:
// other methods get 405, other paths 404, anything that is not HTTP/1.x 400.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "base/status.h"
#include "net/peer_transport.h"

namespace synod::node {

class HttpEndpoint {
 public:
  struct Options {
    net::Endpoint listen;
    size_t max_connections = 16;
    size_t max_request_bytes = 8 << 10;
    uint32_t timeout_ms = 5000;
  };
  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  // Answers GET `path` (without the query string) for /metrics and /health.
  using Handler = std::function<Response(std::string_view path)>;

  HttpEndpoint(asio::io_context& io, Options options, Handler handler);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  [[nodiscard]] Status start();
  void stop();

  struct Stats {
    uint64_t requests = 0;  // answered, whatever the status
    uint64_t refused = 0;   // closed at accept (too many connections) or timed out
  };
  const Stats& stats() const { return stats_; }
  size_t connections() const { return connections_.size(); }

  // The answer to a request head (everything before the blank line), for tests.
  static Response answer(std::string_view head, const Handler& handler, bool& head_only);

 private:
  class Connection;
  void accept();

  asio::io_context& io_;
  Options options_;
  Handler handler_;
  asio::ip::tcp::acceptor acceptor_;
  std::set<std::shared_ptr<Connection>> connections_;
  Stats stats_;
  bool stopped_ = false;
};

}  // namespace synod::node
