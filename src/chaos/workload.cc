#include "chaos/workload.h"

#include <algorithm>
#include <thread>

#include "chaos/replica_connections.h"

namespace synod::chaos {

namespace {

using lincheck::Operation;
using lincheck::OpKind;

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::string key_name(int index) {
  return "k" + std::to_string(index);
}

void record_reply(Operation& op, const Result<kv::Reply>& reply, int64_t return_ns) {
  op.return_ns.reset();
  op.ok = false;
  op.found.reset();
  op.error.reset();
  if (!reply.is_ok()) return;  // timed out or the connection broke: unknown
  const kv::Reply& r = reply.value();
  if (r.kind == kv::Reply::Kind::kError) {
    // A definite failure is one; any other error (UNKNOWN above all) may have taken effect.
    if (definite_failure(r)) {
      op.return_ns = return_ns;
      op.error = r.text;
    }
    return;
  }
  using Kind = kv::Reply::Kind;
  switch (op.kind) {
    case OpKind::kGet:
      if (r.kind != Kind::kBulk && r.kind != Kind::kNull) return;
      op.found = r.kind == Kind::kBulk;
      op.output = r.kind == Kind::kBulk ? r.text : "";
      break;
    case OpKind::kPut:
      if (r.kind != Kind::kSimple || r.text != "OK") return;
      break;
    case OpKind::kCas:
      if (r.kind != Kind::kNull && !(r.kind == Kind::kSimple && r.text == "OK")) return;
      op.return_ns = return_ns;
      op.ok = r.kind == Kind::kSimple;  // nil: the value did not match
      return;
    case OpKind::kDel:
      if (r.kind != Kind::kInteger) return;
      op.found = r.integer > 0;
      break;
  }
  op.return_ns = return_ns;
  op.ok = true;
}

std::vector<std::string> command_for(const Operation& op) {
  switch (op.kind) {
    case OpKind::kGet:
      return {"GET", op.key};
    case OpKind::kPut:
      return {"SET", op.key, op.value};
    case OpKind::kCas:
      if (op.expect_absent) return {"SET", op.key, op.new_value, "NX"};
      return {"SET", op.key, op.new_value, "IFEQ", op.expect};
    case OpKind::kDel:
      return {"DEL", op.key};
  }
  return {};
}

KeyBudget::KeyBudget(int keys, int ops_per_key, int active)
    : ops_per_key_(std::max(ops_per_key, 1)),
      active_(static_cast<size_t>(std::clamp(active, 1, std::max(keys, 1)))) {
  for (int k = 0; k < std::max(keys, 1); ++k) {
    left_.push_back(ops_per_key_);
    open_.push_back(k);
  }
}

int KeyBudget::claim(Rng& rng) {
  std::lock_guard lock(mu_);
  const size_t i = rng.below(std::min(open_.size(), active_));
  const int key = open_[i];
  if (--left_[static_cast<size_t>(key)] == 0) {
    open_.erase(open_.begin() + static_cast<long>(i));
    if (open_.size() < active_) {
      open_.push_back(static_cast<int>(left_.size()));
      left_.push_back(ops_per_key_);
    }
  }
  return key;
}

int KeyBudget::keys_used() {
  std::lock_guard lock(mu_);
  return static_cast<int>(left_.size());
}

// One client: one operation at a time, a connection per replica made on demand.
class Workload::Client {
 public:
  Client(Workload& w, int id, Rng rng)
      : w_(w),
        id_(id),
        rng_(rng),
        conns_(w.ports_, w.options_.connect_timeout_ms, w.options_.reply_timeout_ms,
               w.options_.suspect_ms, rng_) {}

  void run(const std::atomic<bool>& stop) {
    while (!stop.load()) {
      const int key = w_.budget_.claim(rng_);
      Operation op = next_op(key);
      // A replica that refuses the connection never saw the command: try another.
      const std::optional<size_t> replica = conns_.pick(stop);
      if (!replica) return;
      op.call_ns = w_.recorder_.now_ns();
      auto reply = conns_.conn(*replica).call(command_for(op));
      if (!reply.is_ok()) conns_.close(*replica);
      record_reply(op, reply, w_.recorder_.now_ns());
      const bool replica_failed = !reply.is_ok() ||
                                  (reply->kind == kv::Reply::Kind::kError && !op.error) ||
                                  (op.error && starts_with(*op.error, "TRYAGAIN"));
      if (replica_failed) conns_.suspect(*replica);
      if (!op.outcome_unknown() && !op.error) w_.saw(key, op);
      w_.recorder_.add(std::move(op));
    }
  }

 private:
  // get 35%, put 25%, cas 30%, del 10%; every written value is unique ("c<client>-<n>").
  Operation next_op(int key) {
    Operation op;
    op.client = id_;
    op.key = key_name(key);
    const uint64_t dice = rng_.below(100);
    const std::string fresh = "c" + std::to_string(id_) + "-" + std::to_string(next_value_);
    if (dice < 35) {
      op.kind = OpKind::kGet;
    } else if (dice < 60) {
      op.kind = OpKind::kPut;
      op.value = fresh;
      ++next_value_;
    } else if (dice < 90) {
      op.kind = OpKind::kCas;
      const Seen s = w_.seen(key);
      op.expect_absent = !s.known || !s.present;
      op.expect = op.expect_absent ? "" : s.value;
      op.new_value = fresh;
      ++next_value_;
    } else {
      op.kind = OpKind::kDel;
    }
    return op;
  }

  Workload& w_;
  const int id_;
  Rng rng_;
  ReplicaConnections conns_;  // picks with rng_
  uint64_t next_value_ = 1;
};

Workload::Workload(WorkloadOptions options, std::vector<uint16_t> ports, HistoryRecorder& recorder)
    : options_(options),
      ports_(std::move(ports)),
      recorder_(recorder),
      budget_(options.keys, options.ops_per_key, options.active_keys) {}

void Workload::run(const std::atomic<bool>& stop) {
  Rng root(options_.seed);
  std::vector<std::thread> threads;
  for (int i = 0; i < options_.clients; ++i)
    threads.emplace_back([this, &stop, i, rng = root.fork()] { Client(*this, i, rng).run(stop); });
  for (auto& t : threads) t.join();
}

Workload::Seen Workload::seen(int key) {
  std::lock_guard lock(seen_mu_);
  auto it = seen_.find(key);
  return it == seen_.end() ? Seen{} : it->second;
}

void Workload::saw(int key, const Operation& op) {
  Seen s;
  s.known = true;
  switch (op.kind) {
    case OpKind::kGet:
      s.present = op.found != false;
      s.value = op.output;
      break;
    case OpKind::kPut:
      s.present = true;
      s.value = op.value;
      break;
    case OpKind::kCas:
      if (!op.ok) return;
      s.present = true;
      s.value = op.new_value;
      break;
    case OpKind::kDel:
      s.present = false;
      break;
  }
  std::lock_guard lock(seen_mu_);
  seen_[key] = s;
}

}  // namespace synod::chaos
