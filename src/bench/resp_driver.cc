#include "bench/resp_driver.h"

#include <array>
#include <asio.hpp>
#include <deque>
#include <memory>

#include "client/resp_client.h"

namespace synod::bench {

namespace {

using asio::ip::tcp;

class Driver;

// One connection and its requests in flight, oldest first (RESP answers in order).
class Connection {
 public:
  Connection(Driver& driver, asio::io_context& io, size_t endpoint)
      : driver_(driver), socket_(io), retry_(io), endpoint_(endpoint) {}
  void connect();
  // Fails the connection if its oldest request is older than the timeout.
  void check_timeout(Clock::time_point now);

 private:
  struct Pending {
    Op op;
    Clock::time_point start;
  };
  void fill();
  void flush();
  void read();
  void on_bytes(size_t n);
  void fail(const std::string& why);

  Driver& driver_;
  tcp::socket socket_;
  asio::steady_timer retry_;
  size_t endpoint_;
  uint64_t generation_ = 0;  // bumped on each failure; stale callbacks compare and return
  bool open_ = false;
  bool writing_ = false;
  std::deque<Pending> inflight_;
  std::string out_, sending_;
  std::array<char, 64 * 1024> in_{};
  client::ReplyParser parser_;
};

class Driver {
 public:
  explicit Driver(const LoadOptions& options)
      : options_(options), workload_(options), recorder_(options), timer_(io_) {}

  Report run() {
    for (int i = 0; i < options_.connections; ++i)
      connections_.push_back(std::make_unique<Connection>(
          *this, io_, static_cast<size_t>(i) % options_.endpoints.size()));
    for (auto& c : connections_) c->connect();
    if (workload_.prefilled()) recorder_.begin(Clock::now());
    // Prefill must finish within a bounded time, or the run reports nothing.
    prefill_deadline_ = Clock::now() + std::chrono::seconds(120);
    arm_timer();
    io_.run();
    return recorder_.report();
  }

  const LoadOptions& options() const { return options_; }
  Workload& workload() { return workload_; }
  Recorder& recorder() { return recorder_; }
  bool stopping() const { return recorder_.done(); }

  void answered(Op op, Clock::time_point start, Clock::time_point now, const kv::Reply& reply) {
    if (reply.kind == kv::Reply::Kind::kError)
      outcome_failure(op, now, reply.text);
    else
      outcome_success(op, start, now);
  }
  void outcome_success(Op op, Clock::time_point start, Clock::time_point now) {
    if (op.kind == OpKind::kPrefill) return prefill_done(now);
    recorder_.success(op, start, now);
    if (recorder_.done()) io_.stop();
  }
  void outcome_failure(Op op, Clock::time_point now, std::string_view why) {
    // A failed prefill write is queued to be sent again: the window needs every key present.
    if (op.kind == OpKind::kPrefill) {
      workload_.retry(op);
      return;
    }
    recorder_.failure(op, now, why);
    if (recorder_.done()) io_.stop();
  }
  Op next_op() { return workload_.next(); }

 private:
  void prefill_done(Clock::time_point now) {
    workload_.prefill_answered();
    if (workload_.prefilled()) recorder_.begin(now);
  }
  void arm_timer() {
    timer_.expires_after(std::chrono::milliseconds(10));
    timer_.async_wait([this](const asio::error_code& ec) {
      if (ec) return;
      const auto now = Clock::now();
      recorder_.tick(now);
      if (recorder_.done() || (!workload_.prefilled() && now > prefill_deadline_)) {
        io_.stop();
        return;
      }
      for (auto& c : connections_) c->check_timeout(now);
      arm_timer();
    });
  }

  const LoadOptions& options_;
  asio::io_context io_{1};
  Workload workload_;
  Recorder recorder_;
  asio::steady_timer timer_;
  Clock::time_point prefill_deadline_;
  std::vector<std::unique_ptr<Connection>> connections_;
};

void append_bulk(std::string& out, std::string_view s) {
  out += '$';
  out += std::to_string(s.size());
  out += "\r\n";
  out += s;
  out += "\r\n";
}

void Connection::connect() {
  const Endpoint& e = driver_.options().endpoints[endpoint_];
  asio::error_code ec;
  const auto address = asio::ip::make_address(e.host, ec);
  if (ec) return fail("bad address " + e.host);
  const uint64_t gen = generation_;
  socket_.async_connect(tcp::endpoint(address, e.port), [this, gen](const asio::error_code& err) {
    if (gen != generation_) return;
    if (err) return fail("connect: " + err.message());
    open_ = true;
    asio::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    fill();
    read();
  });
}

void Connection::fill() {
  const auto now = Clock::now();
  while (!driver_.stopping() &&
         inflight_.size() < static_cast<size_t>(driver_.options().pipeline)) {
    const Op op = driver_.next_op();
    const std::string key = Workload::key_name(op.key);
    if (op.kind == OpKind::kRead) {
      out_ += "*2\r\n$3\r\nGET\r\n";
      append_bulk(out_, key);
    } else {
      out_ += "*3\r\n$3\r\nSET\r\n";
      append_bulk(out_, key);
      append_bulk(out_, driver_.workload().value());
    }
    inflight_.push_back({op, now});
  }
  flush();
}

void Connection::flush() {
  if (writing_ || out_.empty() || !open_) return;
  writing_ = true;
  sending_.swap(out_);
  out_.clear();
  const uint64_t gen = generation_;
  asio::async_write(socket_, asio::buffer(sending_),
                    [this, gen](const asio::error_code& err, size_t) {
                      if (gen != generation_) return;
                      writing_ = false;
                      if (err) return fail("write: " + err.message());
                      flush();
                    });
}

void Connection::read() {
  const uint64_t gen = generation_;
  socket_.async_read_some(asio::buffer(in_), [this, gen](const asio::error_code& err, size_t n) {
    if (gen != generation_) return;
    if (err) return fail(err == asio::error::eof ? "connection closed" : "read: " + err.message());
    on_bytes(n);
  });
}

void Connection::on_bytes(size_t n) {
  parser_.feed(std::string_view(in_.data(), n));
  kv::Reply reply;
  std::string error;
  const auto now = Clock::now();
  for (;;) {
    const auto s = parser_.next(reply, error);
    if (s == client::ReplyParser::Status::kNeedMore) break;
    if (s == client::ReplyParser::Status::kError) return fail("bad reply: " + error);
    if (inflight_.empty()) return fail("reply without a request");
    const Pending p = inflight_.front();
    inflight_.pop_front();
    driver_.answered(p.op, p.start, now, reply);
    if (driver_.stopping()) return;
  }
  fill();
  read();
}

void Connection::check_timeout(Clock::time_point now) {
  if (inflight_.empty()) return;
  const auto age = now - inflight_.front().start;
  if (age > std::chrono::milliseconds(driver_.options().request_timeout_ms))
    fail("request timed out");
}

void Connection::fail(const std::string& why) {
  ++generation_;
  asio::error_code ignored;
  socket_.close(ignored);
  open_ = false;
  writing_ = false;
  out_.clear();
  parser_ = client::ReplyParser();
  const auto now = Clock::now();
  // Requests in flight have unknown outcomes: each is an error.
  std::deque<Pending> lost;
  lost.swap(inflight_);
  for (const Pending& p : lost) driver_.outcome_failure(p.op, now, why);
  if (lost.empty()) driver_.outcome_failure(Op{OpKind::kWrite, 0}, now, why);
  if (driver_.stopping()) return;
  endpoint_ = (endpoint_ + 1) % driver_.options().endpoints.size();
  socket_ = tcp::socket(socket_.get_executor());
  retry_.expires_after(std::chrono::milliseconds(driver_.options().reconnect_delay_ms));
  const uint64_t gen = generation_;
  retry_.async_wait([this, gen](const asio::error_code& err) {
    if (!err && gen == generation_) connect();
  });
}

}  // namespace

Report run_resp_load(const LoadOptions& options) {
  Driver driver(options);
  return driver.run();
}

}  // namespace synod::bench
