#include "node/http_endpoint.h"

#include <fmt/format.h>

#include <chrono>

namespace synod::node {

using asio::ip::tcp;

namespace {

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

HttpEndpoint::Response plain(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body)};
}

std::string render(const HttpEndpoint::Response& r, bool head_only) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
      r.status, reason(r.status), r.content_type, r.body.size());
  if (!head_only) out += r.body;
  return out;
}

}  // namespace

class HttpEndpoint::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpEndpoint& endpoint, tcp::socket socket)
      : endpoint_(endpoint), socket_(std::move(socket)), timer_(endpoint.io_) {}

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(endpoint_.options_.timeout_ms));
    timer_.async_wait([this, self](const asio::error_code& ec) {
      if (ec || closed_) return;
      ++endpoint_.stats_.refused;
      close();
    });
    read();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
    endpoint_.connections_.erase(shared_from_this());
  }

 private:
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_), [this, self](const asio::error_code& ec, size_t n) {
      if (closed_) return;
      if (ec) return close();
      head_.append(buf_, n);
      const size_t end = head_.find("\r\n\r\n");
      const size_t limit = endpoint_.options_.max_request_bytes;
      if (end == std::string::npos ? head_.size() > limit : end + 4 > limit)
        return respond(plain(431, "request head too large\n"), false);
      if (end == std::string::npos) return read();
      bool head_only = false;
      Response r = answer(std::string_view(head_).substr(0, end), endpoint_.handler_, head_only);
      respond(r, head_only);
    });
  }

  void respond(const Response& r, bool head_only) {
    ++endpoint_.stats_.requests;
    out_ = render(r, head_only);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_), [this, self](const asio::error_code&, size_t) {
      if (closed_) return;
      asio::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      close();
    });
  }

  HttpEndpoint& endpoint_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::string head_, out_;
  bool closed_ = false;
  char buf_[2048];
};

HttpEndpoint::HttpEndpoint(asio::io_context& io, Options options, Handler handler)
    : io_(io), options_(std::move(options)), handler_(std::move(handler)), acceptor_(io) {}

HttpEndpoint::~HttpEndpoint() {
  stop();
}

Status HttpEndpoint::start() {
  SYNOD_RETURN_IF_ERROR(net::listen(acceptor_, options_.listen, "metrics"));
  accept();
  return Status::ok();
}

void HttpEndpoint::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& c : std::set<std::shared_ptr<Connection>>(connections_)) c->close();
}

void HttpEndpoint::accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) {
      if (connections_.size() >= options_.max_connections) {
        ++stats_.refused;
        asio::error_code ignored;
        socket.close(ignored);
      } else {
        auto conn = std::make_shared<Connection>(*this, std::move(socket));
        connections_.insert(conn);
        conn->start();
      }
    }
    accept();
  });
}

HttpEndpoint::Response HttpEndpoint::answer(std::string_view head, const Handler& handler,
                                            bool& head_only) {
  // Request line: METHOD SP TARGET SP HTTP/1.x
  const std::string_view line = head.substr(0, head.find("\r\n"));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return plain(400, "malformed request line\n");
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return plain(400, "not HTTP/1.x\n");
  head_only = method == "HEAD";
  if (method != "GET" && !head_only) return plain(405, "only GET /metrics and GET /health\n");
  target = target.substr(0, target.find('?'));
  if (target != "/metrics" && target != "/health")
    return plain(404, "only /metrics and /health are served\n");
  return handler(target);
}

}  // namespace synod::node
