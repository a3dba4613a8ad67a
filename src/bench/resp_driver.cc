#include "bench/resp_driver.h"

#include <fmt/format.h>

#include <array>
#include <asio.hpp>
#include <deque>
#include <initializer_list>
#include <memory>

#include "base/assert.h"
#include "client/resp_client.h"

namespace synod::bench {

namespace {

using asio::ip::tcp;

class Driver;

// The script of Transaction::kEvalsha: two commands, and the counter as its value.
constexpr std::string_view kScript =
    "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCR', KEYS[2])";

// Replies a MULTI ... EXEC brings: +OK, +QUEUED for each of its 4 commands, EXEC's array.
constexpr int kMultiReplies = 6;

// A reply, shortly, for an error message; an array's first elements too.
std::string describe(const kv::Reply& r) {
  using K = kv::Reply::Kind;
  switch (r.kind) {
    case K::kSimple:
      return "+" + r.text.substr(0, 40);
    case K::kError:
      return "-" + r.text.substr(0, 80);
    case K::kInteger:
      return ":" + std::to_string(r.integer);
    case K::kBulk:
      return fmt::format("bulk of {} bytes", r.text.size());
    case K::kNull:
      return "null";
    case K::kArray: {
      std::string out = fmt::format("array of {} [", r.elements.size());
      for (size_t i = 0; i < r.elements.size() && i < 4; ++i)
        out += (i > 0 ? ", " : "") + describe(r.elements[i]);
      return out + (r.elements.size() > 4 ? ", ...]" : "]");
    }
    case K::kNullArray:
      return "null array";
  }
  return "?";
}

// Why the final reply to `op` is not what it should be; empty if it is.
std::string unexpected(const Op& op, const kv::Reply& r) {
  using K = kv::Reply::Kind;
  if (r.kind == K::kError) return r.text;
  const auto ok = [](const kv::Reply& e) { return e.kind == K::kSimple && e.text == "OK"; };
  switch (op.kind) {
    case OpKind::kMulti:
      if (r.kind == K::kArray && r.elements.size() == 4 && ok(r.elements[0]) && ok(r.elements[1]) &&
          r.elements[2].kind == K::kInteger && r.elements[2].integer >= 1 &&
          (r.elements[3].kind == K::kBulk || r.elements[3].kind == K::kNull))
        return "";
      return "EXEC: not [OK, OK, counter >= 1, value or null]: " + describe(r);
    case OpKind::kEvalsha:
      if (r.kind == K::kInteger && r.integer >= 1) return "";
      return "EVALSHA: not a counter >= 1: " + describe(r);
    default:
      return "";  // SET and GET: any reply but an error
  }
}

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
    int replies_due = 1;           // a transaction's replies not yet read, its final one included
    std::string first_unexpected;  // the first of its intermediate replies that was wrong
  };
  void load_script();
  void on_script_loaded(const kv::Reply& reply);
  void append_op(const Op& op);
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
  bool loading_ = false;  // SCRIPT LOAD is in flight: no load until its answer
  std::string script_sha_;
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

  // `first_unexpected`: what was wrong with a transaction's intermediate replies, if anything.
  void answered(Op op, Clock::time_point start, Clock::time_point now, const kv::Reply& reply,
                const std::string& first_unexpected) {
    const std::string why =
        first_unexpected.empty() ? unexpected(op, reply) : "MULTI: " + first_unexpected;
    if (!why.empty())
      outcome_failure(op, now, why);
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

void append_command(std::string& out, std::initializer_list<std::string_view> args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (std::string_view a : args) append_bulk(out, a);
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
    if (driver_.options().transaction == Transaction::kEvalsha)
      load_script();
    else
      fill();
    read();
  });
}

// Once per connection (each reconnection included): the EVALSHAs wait for the script's digest.
void Connection::load_script() {
  loading_ = true;
  append_command(out_, {"SCRIPT", "LOAD", kScript});
  inflight_.push_back({Op{OpKind::kSetup}, Clock::now(), 1, {}});
  flush();
}

void Connection::on_script_loaded(const kv::Reply& reply) {
  if (reply.kind != kv::Reply::Kind::kBulk || reply.text.size() != 40)
    return fail("SCRIPT LOAD: not a SHA1 digest: " + describe(reply));
  script_sha_ = reply.text;
  loading_ = false;
}

void Connection::append_op(const Op& op) {
  const std::string key = Workload::key_name(op.key);
  const std::string& value = driver_.workload().value();
  switch (op.kind) {
    case OpKind::kRead:
      append_command(out_, {"GET", key});
      break;
    case OpKind::kMulti:
      append_command(out_, {"MULTI"});
      append_command(out_, {"SET", key, value});
      append_command(out_, {"SET", Workload::key_name(op.key2), value});
      append_command(out_, {"INCR", Workload::counter_name(op.counter)});
      append_command(out_, {"GET", Workload::key_name(op.key3)});
      append_command(out_, {"EXEC"});
      break;
    case OpKind::kEvalsha:
      append_command(out_,
                     {"EVALSHA", script_sha_, "2", key, Workload::counter_name(op.counter), value});
      break;
    case OpKind::kWrite:
    case OpKind::kPrefill:
      append_command(out_, {"SET", key, value});
      break;
    case OpKind::kSetup:
      SYNOD_ASSERT(false, "a setup request comes from the connection, not the workload");
  }
}

void Connection::fill() {
  const auto now = Clock::now();
  while (!driver_.stopping() && !loading_ &&
         inflight_.size() < static_cast<size_t>(driver_.options().pipeline)) {
    const Op op = driver_.next_op();
    append_op(op);
    inflight_.push_back({op, now, op.kind == OpKind::kMulti ? kMultiReplies : 1, {}});
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
    Pending& front = inflight_.front();
    if (--front.replies_due > 0) {
      // MULTI's +OK, or a queued command's +QUEUED.
      const bool ok =
          reply.kind == kv::Reply::Kind::kSimple && (reply.text == "OK" || reply.text == "QUEUED");
      if (!ok && front.first_unexpected.empty()) front.first_unexpected = describe(reply);
      continue;
    }
    const Pending p = std::move(front);
    inflight_.pop_front();
    if (p.op.kind == OpKind::kSetup) {
      on_script_loaded(reply);
      if (!open_) return;  // it failed
      continue;
    }
    driver_.answered(p.op, p.start, now, reply, p.first_unexpected);
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
  loading_ = false;
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
