#include "chaos/bank_workload.h"

#include <charconv>
#include <chrono>
#include <optional>
#include <thread>

#include "base/rng.h"
#include "chaos/replica_connections.h"
#include "client/resp_client.h"

namespace synod::chaos {

namespace {

using Clock = std::chrono::steady_clock;
using kv::Reply;

// Moves ARGV[1] from KEYS[1] to KEYS[2] if KEYS[1] holds that much: 1 if it did, 0 if not.
constexpr const char* kTransferScript =
    "local a = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "local b = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "local amount = tonumber(ARGV[1]) "
    "if a < amount then return 0 end "
    "redis.call('SET', KEYS[1], tostring(a - amount)) "
    "redis.call('SET', KEYS[2], tostring(b + amount)) "
    "return 1";

std::optional<int64_t> balance_of(const Reply& r) {
  if (r.kind != Reply::Kind::kBulk) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(r.text.data(), r.text.data() + r.text.size(), v);
  if (ec != std::errc() || end != r.text.data() + r.text.size()) return std::nullopt;
  return v;
}

// The balances in an MGET's reply or an EXEC's of GETs; nullopt if it is not one of those.
std::optional<std::vector<std::optional<int64_t>>> balances_of(const Reply& r, size_t accounts) {
  if (r.kind != Reply::Kind::kArray || r.elements.size() != accounts) return std::nullopt;
  std::vector<std::optional<int64_t>> out;
  for (const Reply& e : r.elements) {
    if (e.kind != Reply::Kind::kBulk && e.kind != Reply::Kind::kNull) return std::nullopt;
    out.push_back(balance_of(e));
  }
  return out;
}

void sleep_ms(uint64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

std::string account_key(int i) {
  return "acct:" + std::to_string(i);
}

// One client's connections (replica_connections.h) and the replica of the current transaction,
// whose commands all go on one connection.
class BankWorkload::Client {
 public:
  Client(const BankWorkload& w, Rng& rng)
      : conns_(w.ports_, w.options_.connect_timeout_ms, w.options_.reply_timeout_ms,
               w.options_.suspect_ms, rng) {}

  // A connection to a healthy replica; nullptr if `stop` was set first.
  client::RespClient* pick(const std::atomic<bool>& stop) {
    const std::optional<size_t> replica = conns_.pick(stop);
    if (!replica) return nullptr;
    current_ = *replica;
    return &conns_.conn(current_);
  }

  // The connection from pick() failed this client: drop it (and whatever it had queued or
  // watched), and avoid its replica for a while.
  void fail() {
    conns_.close(current_);
    suspect();
  }
  // It answered with an error: keep the connection, avoid the replica.
  void suspect() { conns_.suspect(current_); }

 private:
  ReplicaConnections conns_;
  size_t current_ = 0;
};

BankWorkload::BankWorkload(BankWorkloadOptions options, ClientPortsRef ports,
                           const HistoryRecorder& recorder)
    : options_(options), ports_(std::move(ports)), recorder_(recorder) {}

std::vector<std::string> BankWorkload::account_keys() const {
  std::vector<std::string> keys;
  for (int i = 0; i < options_.accounts; ++i) keys.push_back(account_key(i));
  return keys;
}

Status BankWorkload::open_accounts(uint32_t timeout_ms) {
  std::vector<std::string> mset = {"MSET"};
  for (const auto& key : account_keys()) {
    mset.push_back(key);
    mset.push_back(std::to_string(options_.initial_balance));
  }
  const auto give_up = Clock::now() + std::chrono::milliseconds(timeout_ms);
  // Setting the same balances twice does no harm, so an unknown outcome is simply retried.
  for (size_t attempt = 0; Clock::now() < give_up; ++attempt) {
    auto c = client::RespClient::connect("127.0.0.1", ports_->at(attempt % ports_->size()),
                                         options_.connect_timeout_ms);
    if (c.is_ok()) {
      c->set_timeout_ms(options_.reply_timeout_ms);
      if (auto r = c->call(mset); r.is_ok() && *r == Reply::ok()) return Status::ok();
    }
    sleep_ms(100);
  }
  return Status::io_error("the bank's accounts could not be opened");
}

void BankWorkload::run(const std::atomic<bool>& stop) {
  Rng root(options_.seed);
  std::vector<std::thread> threads;
  for (int i = 0; i < options_.transfer_clients; ++i)
    threads.emplace_back([this, &stop, seed = root.next()] { transfer_client(seed, stop); });
  for (int i = 0; i < options_.readers; ++i)
    threads.emplace_back([this, &stop, i, seed = root.next()] {
      reader(options_.transfer_clients + i, seed, stop);
    });
  for (auto& t : threads) t.join();
}

void BankWorkload::transfer_client(uint64_t seed, const std::atomic<bool>& stop) {
  Rng rng(seed);
  Client client(*this, rng);
  std::string sha;  // the script's, once SCRIPT LOAD answered
  auto count = [&](size_t BankCounts::*field) {
    std::lock_guard lock(mu_);
    ++(counts_.*field);
  };
  while (!stop.load()) {
    const auto accounts = static_cast<uint64_t>(options_.accounts);
    const int from = static_cast<int>(rng.below(accounts));
    const int to =
        static_cast<int>((static_cast<uint64_t>(from) + 1 + rng.below(accounts - 1)) % accounts);
    const std::string a = account_key(from), b = account_key(to);
    const int64_t amount = static_cast<int64_t>(rng.between(1, 30));
    if (rng.chance(0.5)) {
      // A script: one command, so one connection is as good as another.
      client::RespClient* conn = client.pick(stop);
      if (!conn) return;
      if (sha.empty() && rng.chance(0.5)) {
        auto loaded = conn->call({"SCRIPT", "LOAD", kTransferScript});
        if (!loaded.is_ok()) {
          client.fail();  // a late reply must not answer the next command; no money moved
          continue;
        }
        if (loaded->kind == Reply::Kind::kBulk) sha = loaded->text;
      }
      const bool by_sha = !sha.empty() && rng.chance(0.5);
      auto reply = by_sha
                       ? conn->call({"EVALSHA", sha, "2", a, b, std::to_string(amount)})
                       : conn->call({"EVAL", kTransferScript, "2", a, b, std::to_string(amount)});
      if (reply.is_ok() && reply->kind == Reply::Kind::kError &&
          reply->text.rfind("NOSCRIPT", 0) == 0) {
        sha.clear();  // definitely not run: send the body
        reply = conn->call({"EVAL", kTransferScript, "2", a, b, std::to_string(amount)});
      }
      if (!reply.is_ok()) {
        client.fail();
        count(&BankCounts::unknown);
      } else if (reply->kind == Reply::Kind::kInteger && reply->integer == 1) {
        std::lock_guard lock(mu_);
        ++counts_.transfers;
        ++counts_.by_script;
      } else if (reply->kind == Reply::Kind::kInteger && reply->integer == 0) {
        count(&BankCounts::insufficient);
      } else {
        client.suspect();
        count(definite_failure(*reply) ? &BankCounts::failed : &BankCounts::unknown);
      }
    } else {
      if (!watch_transfer(client, a, b, amount, stop)) return;
    }
    sleep_ms(rng.between(0, 5));
  }
}

bool BankWorkload::watch_transfer(Client& client, const std::string& a, const std::string& b,
                                  int64_t amount, const std::atomic<bool>& stop) {
  auto count = [&](size_t BankCounts::*field) {
    std::lock_guard lock(mu_);
    ++(counts_.*field);
  };
  // Before EXEC nothing is written: a failure there closes the connection, which drops the
  // watches and the queue, and the transfer is given up as a definite failure.
  auto give_up = [&] {
    client.fail();
    count(&BankCounts::failed);
    return true;
  };
  for (int aborts = 0; aborts <= options_.max_aborts; ++aborts) {
    client::RespClient* conn = client.pick(stop);
    if (!conn) return false;
    auto watched = conn->call({"WATCH", a, b});
    if (!watched.is_ok() || *watched != Reply::ok()) return give_up();
    auto got_a = conn->call({"GET", a});
    if (!got_a.is_ok()) return give_up();
    auto got_b = conn->call({"GET", b});
    if (!got_b.is_ok()) return give_up();
    const std::optional<int64_t> balance_a = balance_of(*got_a), balance_b = balance_of(*got_b);
    if (!balance_a || !balance_b) return give_up();
    if (*balance_a < amount) {
      if (auto r = conn->call({"UNWATCH"}); !r.is_ok()) client.fail();
      count(&BankCounts::insufficient);
      return true;
    }
    auto queued = conn->pipeline({{"MULTI"},
                                  {"SET", a, std::to_string(*balance_a - amount)},
                                  {"SET", b, std::to_string(*balance_b + amount)}});
    if (!queued.is_ok() || (*queued)[0] != Reply::ok() || (*queued)[1] != Reply::simple("QUEUED") ||
        (*queued)[2] != Reply::simple("QUEUED"))
      return give_up();
    auto exec = conn->call({"EXEC"});
    if (!exec.is_ok()) {
      client.fail();
      count(&BankCounts::unknown);
      return true;
    }
    if (exec->kind == Reply::Kind::kNullArray || exec->kind == Reply::Kind::kNull) {
      count(&BankCounts::aborted);  // a watched account changed: read them again
      continue;
    }
    if (exec->kind == Reply::Kind::kArray && exec->elements.size() == 2 &&
        exec->elements[0] == Reply::ok() && exec->elements[1] == Reply::ok()) {
      count(&BankCounts::transfers);
      return true;
    }
    client.suspect();
    const bool definite = definite_failure(*exec) || (exec->kind == Reply::Kind::kError &&
                                                      exec->text.rfind("EXECABORT", 0) == 0);
    count(definite ? &BankCounts::failed : &BankCounts::unknown);
    return true;
  }
  count(&BankCounts::failed);  // aborted every time: given up, nothing applied
  return true;
}

void BankWorkload::reader(int id, uint64_t seed, const std::atomic<bool>& stop) {
  Rng rng(seed);
  Client client(*this, rng);
  const std::vector<std::string> keys = account_keys();
  std::vector<std::string> mget = {"MGET"};
  mget.insert(mget.end(), keys.begin(), keys.end());
  std::vector<std::vector<std::string>> multi = {{"MULTI"}};
  for (const auto& key : keys) multi.push_back({"GET", key});
  multi.push_back({"EXEC"});
  while (!stop.load()) {
    client::RespClient* conn = client.pick(stop);
    if (!conn) return;
    BankRead read;
    read.client = id;
    read.how = rng.chance(0.5) ? "mget" : "multi";
    read.call_ns = recorder_.now_ns();
    Result<Reply> reply = Status::io_error("not sent");
    if (read.how == "mget") {
      reply = conn->call(mget);
    } else if (auto replies = conn->pipeline(multi); replies.is_ok()) {
      reply = replies->back();
    } else {
      reply = replies.status();
    }
    read.return_ns = recorder_.now_ns();
    if (!reply.is_ok()) {
      client.fail();
    } else if (auto balances = balances_of(*reply, keys.size())) {
      read.balances = std::move(*balances);
      std::lock_guard lock(mu_);
      reads_.push_back(std::move(read));
    } else {
      client.suspect();  // an error (TRYAGAIN, UNKNOWN, EXECABORT): nothing was read
    }
    sleep_ms(rng.between(0, 10));
  }
}

bool BankWorkload::final_read(uint16_t first_port, uint32_t timeout_ms) {
  const std::vector<std::string> keys = account_keys();
  std::vector<std::string> mget = {"MGET"};
  mget.insert(mget.end(), keys.begin(), keys.end());
  const auto give_up = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (size_t attempt = 0; Clock::now() < give_up; ++attempt) {
    const uint16_t port = attempt == 0 ? first_port : ports_->at(attempt % ports_->size());
    BankRead read;
    read.client = options_.transfer_clients + options_.readers;
    read.how = "final";
    read.call_ns = recorder_.now_ns();
    if (auto c = client::RespClient::connect("127.0.0.1", port, options_.connect_timeout_ms);
        c.is_ok()) {
      c->set_timeout_ms(options_.reply_timeout_ms);
      if (auto reply = c->call(mget); reply.is_ok()) {
        if (auto balances = balances_of(*reply, keys.size())) {
          read.return_ns = recorder_.now_ns();
          read.balances = std::move(*balances);
          std::lock_guard lock(mu_);
          reads_.push_back(std::move(read));
          return true;
        }
      }
    }
    sleep_ms(100);
  }
  return false;
}

std::vector<BankRead> BankWorkload::reads() const {
  std::lock_guard lock(mu_);
  return reads_;
}

BankCounts BankWorkload::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

}  // namespace synod::chaos
