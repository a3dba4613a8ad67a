// The checker against a correct register and against planted anomalies. Histories come from
// simulated clients of one in-memory store: each operation takes effect at one random instant
// inside its interval, so every generated history is linearizable by construction. Each planted
// anomaly is chosen so that no order can explain it, so the checker must reject every one.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "lincheck/checker.h"

namespace synod::lincheck {
namespace {

struct Generated {
  History history;
  std::vector<int64_t> effect_ns;  // per operation: when it took effect (-1: never)
};

class Generator {
 public:
  // Each operation times out with probability 2 / timeout_one_in (half of those take effect).
  Generator(uint64_t seed, int timeout_one_in) : rng_(seed), timeout_one_in_(timeout_one_in) {}
  // One operation in `one_in` is a txn on keys a and b (a read, a write or a cas of a with a put
  // of b), applied whole at its one instant.
  Generator& with_txns(int one_in) {
    txn_one_in_ = one_in;
    return *this;
  }

  // Every `period` ns, every replica restarts: an operation called in the first `length` ns of a
  // period gets no answer (half of those take effect, at once or much later).
  Generator& with_outages(int64_t period, int64_t length) {
    outage_period_ = period;
    outage_length_ = length;
    return *this;
  }

  Generated run(int clients, int ops_per_client, int keys) {
    Generated g;
    for (int c = 0; c < clients; ++c) {
      int64_t t = pick(0, 20);
      for (int i = 0; i < ops_per_client; ++i) {
        Operation op;
        op.client = c;
        op.key = std::string(1, char('a' + pick(0, keys - 1)));
        op.kind = OpKind(pick(0, 3));
        if (txn_one_in_ > 0 && keys >= 2 && pick(0, txn_one_in_ - 1) == 0) make_txn(op);
        op.call_ns = t;
        const int64_t effect = t + pick(0, 30);
        op.return_ns = effect + pick(0, 30);
        t = *op.return_ns + pick(1, 10);
        int64_t effect_ns = effect;
        int64_t fate = pick(0, timeout_one_in_ - 1);
        if (outage_period_ > 0 && op.call_ns % outage_period_ < outage_length_) fate = pick(0, 1);
        if (fate == 0) {  // timed out, but took effect (maybe much later)
          op.return_ns.reset();
          effect_ns = effect + (pick(0, 3) == 0 ? pick(100, 2000) : 0);
        } else if (fate == 1) {  // timed out and never happened
          op.return_ns.reset();
          effect_ns = -1;
        } else if (fate == 2 && op.kind != OpKind::kGet) {  // a definite failure
          op.error = "NOTLEADER";
          effect_ns = -1;
        }
        g.history.ops.push_back(op);
        g.effect_ns.push_back(effect_ns);
      }
    }
    apply_in_effect_order(g);
    return g;
  }

 private:
  int64_t pick(int64_t lo, int64_t hi) { return lo + int64_t(rng_() % uint64_t(hi - lo + 1)); }

  // Runs the operations on a single copy of the store at their effect instants and fills in
  // what each client saw. Every written value is fresh, so a value names its one writer.
  void apply_in_effect_order(Generated& g) {
    std::vector<size_t> order(g.history.ops.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return g.effect_ns[a] < g.effect_ns[b]; });
    std::map<std::string, std::optional<std::string>> store;
    std::vector<std::string> written;
    for (const size_t i : order) {
      Operation& op = g.history.ops[i];
      if (op.kind == OpKind::kTxn) {
        apply_txn(op, g.effect_ns[i] >= 0, "v" + std::to_string(i), store, written);
        continue;
      }
      std::optional<std::string>& value = store[op.key];
      const std::string fresh = "v" + std::to_string(i);
      switch (op.kind) {
        case OpKind::kGet:
          op.ok = true;
          op.found = value.has_value();
          op.output = value.value_or("");
          break;
        case OpKind::kPut:
          op.value = fresh;
          op.ok = true;
          if (g.effect_ns[i] >= 0) value = fresh;
          break;
        case OpKind::kDel:
          op.ok = true;
          op.found = value.has_value();
          if (g.effect_ns[i] >= 0) value.reset();
          break;
        case OpKind::kCas: {
          op.new_value = fresh;
          // Mostly the current value, sometimes an old one, sometimes "only if missing".
          const int64_t choice = pick(0, 9);
          if (choice < 2 || (!value && choice < 6)) {
            op.expect_absent = true;
          } else if (choice < 7 && value) {
            op.expect = *value;
          } else {
            op.expect =
                written.empty() ? "none" : written[size_t(pick(0, int64_t(written.size()) - 1))];
          }
          op.ok = op.expect_absent ? !value.has_value() : value == op.expect;
          if (op.ok && g.effect_ns[i] >= 0) value = fresh;
          break;
        }
        case OpKind::kTxn:
          SYNOD_ASSERT(false, "this generator makes single-key operations only");
      }
      if (op.error) op.ok = false;
      if (op.kind == OpKind::kPut || op.kind == OpKind::kCas) written.push_back(fresh);
    }
  }

  void make_txn(Operation& op) {
    op.kind = OpKind::kTxn;
    op.key.clear();
    Operation a, b;
    a.key = "a";
    b.key = "b";
    const int64_t shape = pick(0, 2);
    a.kind = shape == 0 ? OpKind::kGet : shape == 1 ? OpKind::kPut : OpKind::kCas;
    b.kind = shape == 0 ? OpKind::kGet : OpKind::kPut;
    op.parts = {a, b};
  }

  // Runs a txn's parts at its instant (`effect`: it took effect at all); a cas part that does not
  // match makes the whole txn a mismatch that writes nothing.
  void apply_txn(Operation& op, bool effect, const std::string& fresh,
                 std::map<std::string, std::optional<std::string>>& store,
                 std::vector<std::string>& written) {
    Operation& a = op.parts[0];
    Operation& b = op.parts[1];
    std::optional<std::string>& va = store["a"];
    std::optional<std::string>& vb = store["b"];
    op.ok = true;
    switch (a.kind) {
      case OpKind::kGet:
        a.found = va.has_value();
        a.output = va.value_or("");
        b.found = vb.has_value();
        b.output = vb.value_or("");
        break;
      case OpKind::kCas:
        if (pick(0, 2) == 0 || !va) {
          a.expect_absent = !va || pick(0, 1) == 0;
        } else {
          a.expect = *va;
        }
        op.ok = a.expect_absent ? !va.has_value() : va == a.expect;
        [[fallthrough]];
      default:
        a.value = a.new_value = fresh + "a";
        b.value = fresh + "b";
        written.push_back(fresh + "a");
        written.push_back(fresh + "b");
        if (op.ok && effect) {
          va = fresh + "a";
          vb = fresh + "b";
        }
        if (a.kind == OpKind::kCas) a.value.clear();
    }
    if (op.error) op.ok = false;
  }

  std::mt19937_64 rng_;
  int64_t timeout_one_in_;
  int64_t outage_period_ = 0;
  int64_t outage_length_ = 0;
  int txn_one_in_ = 0;
};

bool completed_ok(const Operation& op) {
  return op.return_ns && op.ok && !op.error;
}

bool writes(const Operation& op) {
  return op.kind == OpKind::kPut || op.kind == OpKind::kDel || op.kind == OpKind::kCas;
}

// A read that returns the value of a write that a later, completed write had overwritten
// before the read began.
bool plant_stale_read(History& h) {
  for (Operation& read : h.ops) {
    if (read.kind != OpKind::kGet || !completed_ok(read)) continue;
    for (const Operation& newer : h.ops) {
      if (newer.key != read.key || !writes(newer) || !completed_ok(newer) ||
          *newer.return_ns >= read.call_ns)
        continue;
      for (const Operation& older : h.ops) {
        if (older.key != read.key || !completed_ok(older) || *older.return_ns >= newer.call_ns)
          continue;
        const std::string* value = older.kind == OpKind::kPut   ? &older.value
                                   : older.kind == OpKind::kCas ? &older.new_value
                                                                : nullptr;
        if (!value || (read.found != false && read.output == *value)) continue;
        read.found = true;
        read.output = *value;
        return true;
      }
    }
  }
  return false;
}

// A put the client was told failed, whose value a completed read saw.
bool plant_failed_write_visible(History& h) {
  for (Operation& put : h.ops) {
    if (put.kind != OpKind::kPut || !completed_ok(put)) continue;
    const bool seen = std::any_of(h.ops.begin(), h.ops.end(), [&](const Operation& r) {
      return r.kind == OpKind::kGet && completed_ok(r) && r.found != false && r.output == put.value;
    });
    if (!seen) continue;
    put.ok = false;
    return true;
  }
  return false;
}

// A read of a value nobody wrote.
bool plant_phantom_read(History& h) {
  for (Operation& read : h.ops) {
    if (read.kind != OpKind::kGet || !completed_ok(read)) continue;
    read.found = true;
    read.output = "phantom";
    return true;
  }
  return false;
}

// `clean` must pass; each anomaly planted in it (counted in `planted`) must fail.
void expect_clean_passes_and_plants_fail(const History& clean, const Limits& limits,
                                         size_t& planted) {
  const Verdict v = check(clean, limits);
  ASSERT_EQ(v.outcome, Outcome::kLinearizable) << format_verdict(v);
  for (auto plant : {plant_stale_read, plant_failed_write_visible, plant_phantom_read}) {
    History bad = clean;
    if (!plant(bad)) continue;
    ++planted;
    const Verdict failed = check(bad, limits);
    ASSERT_EQ(failed.outcome, Outcome::kNotLinearizable) << format_verdict(failed);
  }
}

TEST(RandomHistories, CorrectRegisterIsLinearizableAndPlantedAnomaliesAreCaught) {
  size_t planted = 0, unknown_ops = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Generated g = Generator(seed, 20).run(/*clients=*/5, /*ops_per_client=*/12, /*keys=*/2);
    for (const Operation& op : g.history.ops) unknown_ops += op.outcome_unknown();
    expect_clean_passes_and_plants_fail(g.history, Limits{30.0, 10'000'000}, planted);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(planted, 600u);
  EXPECT_GT(unknown_ops, 1000u);
}

// The same with transactions on keys a and b (one operation in four), which the checker searches
// as one object: generated histories stay linearizable, planted anomalies are still caught.
TEST(RandomHistories, TransactionsKeepCorrectHistoriesLinearizableAndAnomaliesCaught) {
  size_t planted = 0, txns = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Generated g =
        Generator(seed, 20).with_txns(4).run(/*clients=*/5, /*ops_per_client=*/12, /*keys=*/3);
    for (const Operation& op : g.history.ops) txns += op.kind == OpKind::kTxn;
    expect_clean_passes_and_plants_fail(g.history, Limits{30.0, 10'000'000}, planted);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(planted, 500u);
  EXPECT_GT(txns, 3000u);
}

// One busy key, 2000 operations: the memo collapses the orders of overlapping operations that
// lead to the same state. A timed-out operation stays open to the end of the history, so the
// cost grows with how many are open at once (docs/lincheck.md); here 1% time out.
TEST(RandomHistories, LongOneKeyHistoriesAreDecided) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const Generated g = Generator(seed, 200).run(/*clients=*/8, /*ops_per_client=*/250, /*keys=*/1);
    const Verdict v = check(g.history, Limits{30.0, 10'000'000});
    EXPECT_EQ(v.outcome, Outcome::kLinearizable) << "seed " << seed << ": " << v.reason;
  }
}

// Every replica restarted at once (chaos.restart-all) leaves each operation in flight without an
// answer: here every operation called in the first 60 ns of each 1,000 (and 1% of the rest), on
// one key, so a few dozen are open together. Each subset of them could be a search state of its
// own (2^k), and such a history ran out of any budget; the rules of docs/lincheck.md ("Unknown
// outcomes in the search") decide it, and the verdicts stay right: clean histories pass, planted
// anomalies fail.
TEST(RandomHistories, ManyTimedOutOperationsOnOneKeyAreDecided) {
  size_t planted = 0, unknown_ops = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Generated g =
        Generator(seed, 100).with_outages(1000, 60).run(/*clients=*/6, /*ops_per_client=*/35,
                                                        /*keys=*/1);
    for (const Operation& op : g.history.ops) unknown_ops += op.outcome_unknown();
    expect_clean_passes_and_plants_fail(g.history, Limits{60.0, 2'000'000}, planted);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(planted, 80u);
  EXPECT_GT(unknown_ops, 800u);
}

}  // namespace
}  // namespace synod::lincheck
