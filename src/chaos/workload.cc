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

namespace {

using Kind = kv::Reply::Kind;

bool is_ok(const kv::Reply& r) {
  return r.kind == Kind::kSimple && r.text == "OK";
}

// A txn's reply (EXEC's, or the pair script's) that says what happened; false leaves it unknown.
bool record_txn_reply(Operation& op, const kv::Reply& r) {
  switch (txn_shape(op)) {
    case TxnShape::kReadPair:
      if (r.kind != Kind::kArray || r.elements.size() != op.parts.size()) return false;
      for (size_t i = 0; i < op.parts.size(); ++i) {
        const kv::Reply& e = r.elements[i];
        if (e.kind != Kind::kBulk && e.kind != Kind::kNull) return false;
        op.parts[i].found = e.kind == Kind::kBulk;
        op.parts[i].output = e.kind == Kind::kBulk ? e.text : "";
      }
      op.ok = true;
      return true;
    case TxnShape::kWritePair:
      if (r.kind != Kind::kArray || r.elements.size() != op.parts.size()) return false;
      for (const kv::Reply& e : r.elements)
        if (!is_ok(e)) return false;
      op.ok = true;
      return true;
    case TxnShape::kCasPair:
      if (r.kind != Kind::kInteger || (r.integer != 0 && r.integer != 1)) return false;
      op.ok = r.integer == 1;  // 0: the first key did not hold the expected value
      return true;
  }
  return false;
}

}  // namespace

TxnShape txn_shape(const Operation& op) {
  if (op.parts.front().kind == OpKind::kCas) return TxnShape::kCasPair;
  if (op.parts.front().kind == OpKind::kGet) return TxnShape::kReadPair;
  return TxnShape::kWritePair;
}

void record_reply(Operation& op, const Result<kv::Reply>& reply, int64_t return_ns) {
  op.return_ns.reset();
  op.ok = false;
  op.found.reset();
  op.error.reset();
  if (!reply.is_ok()) return;  // timed out or the connection broke: unknown
  const kv::Reply& r = reply.value();
  if (r.kind == kv::Reply::Kind::kError) {
    // A definite failure is one; any other error (UNKNOWN above all) may have taken effect. A
    // transaction discarded at EXEC and a script not in the cache did not run.
    const bool not_run = op.kind == OpKind::kTxn &&
                         (r.text.rfind("EXECABORT", 0) == 0 || r.text.rfind("NOSCRIPT", 0) == 0);
    if (definite_failure(r) || not_run) {
      op.return_ns = return_ns;
      op.error = r.text;
    }
    return;
  }
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
    case OpKind::kTxn:
      if (record_txn_reply(op, r)) op.return_ns = return_ns;
      return;
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
    case OpKind::kTxn:
      break;  // commands_for()
  }
  return {};
}

std::vector<std::vector<std::string>> commands_for(const Operation& op) {
  if (op.kind != OpKind::kTxn) return {command_for(op)};
  const Operation& a = op.parts[0];
  const Operation& b = op.parts[1];
  switch (txn_shape(op)) {
    case TxnShape::kReadPair:
      return {{"MULTI"}, {"GET", a.key}, {"GET", b.key}, {"EXEC"}};
    case TxnShape::kWritePair:
      return {{"MULTI"}, {"SET", a.key, a.value}, {"SET", b.key, b.value}, {"EXEC"}};
    case TxnShape::kCasPair:
      return {{"EVALSHA", kv::sha1_hex(kCasPairScript), "2", a.key, b.key,
               a.expect_absent ? "1" : "0", a.expect, a.new_value, b.value}};
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
      auto reply = perform(conns_.conn(*replica), op);
      if (!reply.is_ok()) conns_.close(*replica);
      record_reply(op, reply, w_.recorder_.now_ns());
      const bool replica_failed = !reply.is_ok() ||
                                  (reply->kind == kv::Reply::Kind::kError && !op.error) ||
                                  (op.error && starts_with(*op.error, "TRYAGAIN"));
      if (replica_failed) conns_.suspect(*replica);
      if (!op.outcome_unknown() && !op.error) w_.saw(op);
      w_.recorder_.add(std::move(op));
    }
  }

 private:
  // The reply that decides `op`'s outcome: the command's, or a transaction's EXEC's or
  // script's. An EVALSHA answered NOSCRIPT did not run; the script is then sent by EVAL (which
  // also caches it for the next EVALSHA).
  static Result<kv::Reply> perform(client::RespClient& conn, const Operation& op) {
    if (op.kind != OpKind::kTxn) return conn.call(command_for(op));
    std::vector<std::vector<std::string>> commands = commands_for(op);
    auto replies = conn.pipeline(commands);
    if (!replies.is_ok()) return replies.status();
    const kv::Reply& last = replies->back();
    if (last.kind != kv::Reply::Kind::kError || last.text.rfind("NOSCRIPT", 0) != 0) return last;
    std::vector<std::string> eval = commands.back();
    eval[0] = "EVAL";
    eval[1] = kCasPairScript;
    return conn.call(eval);
  }

  // get 35%, put 25%, cas 30%, del 10% of what is not a transaction; every written value is
  // unique ("c<client>-<n>").
  Operation next_op(int key) {
    if (static_cast<int>(rng_.below(100)) < w_.options_.txn_percent) return next_txn(key);
    Operation op;
    op.client = id_;
    op.key = key_name(key);
    const uint64_t dice = rng_.below(100);
    if (dice < 35) {
      op.kind = OpKind::kGet;
    } else if (dice < 60) {
      op.kind = OpKind::kPut;
      op.value = fresh();
    } else if (dice < 90) {
      op.kind = OpKind::kCas;
      expect_seen(key, op);
      op.new_value = fresh();
    } else {
      op.kind = OpKind::kDel;
    }
    return op;
  }

  // A third each: MULTI of two GETs, MULTI of two SETs, the pair script.
  Operation next_txn(int key) {
    Operation op;
    op.client = id_;
    op.kind = OpKind::kTxn;
    Operation a, b;
    a.key = key_name(key);
    b.key = key_name(partner_key(key));
    const uint64_t dice = rng_.below(3);
    if (dice == 0) {
      a.kind = b.kind = OpKind::kGet;
    } else {
      a.kind = dice == 1 ? OpKind::kPut : OpKind::kCas;
      b.kind = OpKind::kPut;
      if (a.kind == OpKind::kCas) {
        expect_seen(key, a);
        a.new_value = fresh();
      } else {
        a.value = fresh();
      }
      b.value = fresh();
    }
    op.parts = {a, b};
    return op;
  }

  std::string fresh() { return "c" + std::to_string(id_) + "-" + std::to_string(next_value_++); }

  // A cas expects the newest value some client saw for the key (or its absence).
  void expect_seen(int key, Operation& cas) {
    const Seen s = w_.seen(key);
    cas.expect_absent = !s.known || !s.present;
    cas.expect = cas.expect_absent ? "" : s.value;
  }

  Workload& w_;
  const int id_;
  Rng rng_;
  ReplicaConnections conns_;  // picks with rng_
  uint64_t next_value_ = 1;
};

namespace {

// With transactions, a key and its partner are checked together (docs/lincheck.md): each takes
// half the budget, so that the pair's search is as small as one key's without them. (The
// checker's states multiply across the pair: a restart-all run whose pairs had 400 operations
// and 50 unknown outcomes each went past 120 s of checking.)
int ops_per_key_with_partner(const WorkloadOptions& options) {
  return options.txn_percent > 0 ? std::max(options.ops_per_key / 2, 1) : options.ops_per_key;
}

}  // namespace

Workload::Workload(WorkloadOptions options, ClientPortsRef ports, HistoryRecorder& recorder)
    : options_(options),
      ports_(std::move(ports)),
      recorder_(recorder),
      budget_(options.keys, ops_per_key_with_partner(options), options.active_keys) {}

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

void Workload::saw(const Operation& op) {
  if (op.kind != OpKind::kTxn) {
    saw_one(op);
    return;
  }
  if (!op.ok) return;  // the pair script did not match: nothing written
  for (const Operation& part : op.parts) {
    Operation done = part;
    done.ok = true;
    saw_one(done);
  }
}

void Workload::saw_one(const Operation& op) {
  const int key = std::stoi(op.key.substr(1));
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
    case OpKind::kTxn:
      return;
  }
  std::lock_guard lock(seen_mu_);
  seen_[key] = s;
}

}  // namespace synod::chaos
