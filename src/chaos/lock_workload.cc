#include "chaos/lock_workload.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/rng.h"
#include "chaos/replica_connections.h"

namespace synod::chaos {

namespace {

void sleep_ms(uint64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

// One client's connections (replica_connections.h), one command at a time.
class LockWorkload::Connections {
 public:
  Connections(const LockWorkload& w, Rng& rng)
      : w_(w),
        conns_(w.ports_, w.options_.connect_timeout_ms, w.options_.reply_timeout_ms,
               w.options_.suspect_ms, rng) {}

  // Sends `args` to a healthy replica; the reply, or the failure to get one (which leaves the
  // outcome unknown). Empty (nullopt) if `stop` was set before the command could be sent.
  std::optional<Result<kv::Reply>> call(const std::vector<std::string>& args, int64_t& call_ns,
                                        const std::atomic<bool>& stop) {
    const std::optional<size_t> replica = conns_.pick(stop);
    if (!replica) return std::nullopt;
    call_ns = w_.recorder_.now_ns();
    auto reply = conns_.conn(*replica).call(args);
    if (!reply.is_ok()) conns_.close(*replica);
    if (!reply.is_ok() || (reply->kind == kv::Reply::Kind::kError)) conns_.suspect(*replica);
    return reply;
  }

 private:
  const LockWorkload& w_;
  ReplicaConnections conns_;
};

LockWorkload::LockWorkload(LockWorkloadOptions options, ClientPortsRef ports,
                           const HistoryRecorder& recorder)
    : options_(options), ports_(std::move(ports)), recorder_(recorder) {}

void LockWorkload::run(const std::atomic<bool>& stop) {
  Rng root(options_.seed);
  std::vector<std::thread> threads;
  for (int i = 0; i < options_.lock_clients; ++i)
    threads.emplace_back([this, &stop, i, seed = root.next()] { lock_client(i, seed, stop); });
  for (int i = 0; i < options_.ttl_clients; ++i)
    threads.emplace_back([this, &stop, i, seed = root.next()] { ttl_client(i, seed, stop); });
  for (auto& t : threads) t.join();
}

void LockWorkload::lock_client(int id, uint64_t seed, const std::atomic<bool>& stop) {
  Rng rng(seed);
  Connections conns(*this, rng);
  for (uint64_t n = 1; !stop.load(); ++n) {
    LockAttempt a;
    a.client = id;
    a.lock = "lock" + std::to_string(rng.below(static_cast<uint64_t>(options_.locks)));
    a.token = "l" + std::to_string(id) + "-" + std::to_string(n);
    a.ttl_ms = static_cast<int64_t>(rng.between(options_.lock_ttl_ms / 2, options_.lock_ttl_ms));
    auto reply =
        conns.call({"SET", a.lock, a.token, "NX", "PX", std::to_string(a.ttl_ms)}, a.call_ns, stop);
    if (!reply) return;
    const int64_t reply_ns = recorder_.now_ns();
    if (reply->is_ok() &&
        (reply->value() == kv::Reply::ok() || reply->value().kind == kv::Reply::Kind::kNull)) {
      a.reply_ns = reply_ns;
      a.acquired = reply->value() == kv::Reply::ok();
    } else if (reply->is_ok() && definite_failure(reply->value())) {
      a.reply_ns = reply_ns;
    }
    if (a.acquired) {
      // Work until a random moment, never past the validity this holder may assume.
      const double valid_ms = static_cast<double>(a.ttl_ms) * (1.0 - options_.drift_bound) -
                              static_cast<double>(kClockGrainMs);
      const int64_t valid_until_ns = a.call_ns + static_cast<int64_t>(valid_ms * 1e6);
      const int64_t work_until_ns = std::min(
          valid_until_ns,
          reply_ns + static_cast<int64_t>(rng.below(static_cast<uint64_t>(a.ttl_ms)) * 1'000'000));
      const int64_t left_ns = work_until_ns - recorder_.now_ns();
      if (left_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(left_ns));
      if (!rng.chance(0.25)) {
        int64_t release_call_ns = 0;
        auto released = conns.call({"DELIFEQ", a.lock, a.token}, release_call_ns, stop);
        if (released) {
          a.release_call_ns = release_call_ns;
          if (released->is_ok() && released->value().kind == kv::Reply::Kind::kInteger)
            a.released = released->value().integer;
        }
      }
    } else {
      sleep_ms(rng.between(5, 30));
    }
    std::lock_guard lock(mu_);
    attempts_.push_back(std::move(a));
  }
}

void LockWorkload::ttl_client(int id, uint64_t seed, const std::atomic<bool>& stop) {
  Rng rng(seed);
  Connections conns(*this, rng);
  for (uint64_t n = 1; !stop.load(); ++n) {
    TtlOp op;
    op.client = id;
    op.key = "t" + std::to_string(rng.below(static_cast<uint64_t>(options_.ttl_keys)));
    op.write = rng.chance(0.3);
    std::vector<std::string> args = {"GET", op.key};
    if (op.write) {
      op.value = "t" + std::to_string(id) + "-" + std::to_string(n);
      op.ttl_ms = static_cast<int64_t>(rng.between(100, 1500));
      args = {"SET", op.key, op.value, "PX", std::to_string(op.ttl_ms)};
    }
    auto reply = conns.call(args, op.call_ns, stop);
    if (!reply) return;
    const int64_t return_ns = recorder_.now_ns();
    if (reply->is_ok()) {
      const kv::Reply& r = reply->value();
      if (definite_failure(r)) {
        op.return_ns = return_ns;
        op.failed = true;
      } else if (op.write && r == kv::Reply::ok()) {
        op.return_ns = return_ns;
      } else if (!op.write &&
                 (r.kind == kv::Reply::Kind::kBulk || r.kind == kv::Reply::Kind::kNull)) {
        op.return_ns = return_ns;
        if (r.kind == kv::Reply::Kind::kBulk) op.output = r.text;
      }
    }
    {
      std::lock_guard lock(mu_);
      ttl_ops_.push_back(std::move(op));
    }
    sleep_ms(rng.between(0, 10));
  }
}

std::vector<LockAttempt> LockWorkload::lock_attempts() const {
  std::lock_guard lock(mu_);
  return attempts_;
}

std::vector<TtlOp> LockWorkload::ttl_ops() const {
  std::lock_guard lock(mu_);
  return ttl_ops_;
}

Status LockWorkload::write(const std::string& path) const {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) return Status::io_error("cannot write " + path);
  auto line = [&](const nlohmann::ordered_json& j) {
    fmt::print(f.get(), "{}\n",
               j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  };
  for (const auto& a : lock_attempts()) {
    nlohmann::ordered_json j;
    j["kind"] = "lock";
    j["client"] = a.client;
    j["lock"] = a.lock;
    j["token"] = a.token;
    j["ttl_ms"] = a.ttl_ms;
    j["call"] = a.call_ns;
    j["return"] = a.reply_ns ? nlohmann::ordered_json(*a.reply_ns) : nlohmann::ordered_json();
    j["acquired"] = a.acquired;
    if (a.release_call_ns) j["release_call"] = *a.release_call_ns;
    if (a.released) j["released"] = *a.released;
    line(j);
  }
  for (const auto& op : ttl_ops()) {
    nlohmann::ordered_json j;
    j["kind"] = "ttl";
    j["client"] = op.client;
    j["op"] = op.write ? "set" : "get";
    j["key"] = op.key;
    if (op.write) {
      j["value"] = op.value;
      j["ttl_ms"] = op.ttl_ms;
    }
    j["call"] = op.call_ns;
    j["return"] = op.return_ns ? nlohmann::ordered_json(*op.return_ns) : nlohmann::ordered_json();
    if (op.failed) j["failed"] = true;
    if (!op.write && op.return_ns && !op.failed)
      j["output"] = op.output ? nlohmann::ordered_json(*op.output) : nlohmann::ordered_json();
    line(j);
  }
  if (std::fflush(f.get()) != 0) return Status::io_error("cannot write " + path);
  return Status::ok();
}

}  // namespace synod::chaos
