#include "chaos/final_reads.h"

#include <fmt/core.h>

#include <deque>
#include <map>

#include "base/assert.h"

namespace synod::chaos {

namespace {

using lincheck::Operation;
using lincheck::OpKind;

// The operation may have changed the key: acknowledged or unknown, and not a definite failure
// or a cas that did not match.
bool may_have_written(const Operation& op) {
  if (op.kind == OpKind::kGet || op.error) return false;
  if (op.outcome_unknown()) return true;
  return op.ok;
}

bool acknowledged_write(const Operation& op) {
  return may_have_written(op) && !op.outcome_unknown();
}

struct Effect {
  bool present = false;
  std::string value;
};

Effect effect_of(const Operation& op) {
  SYNOD_ASSERT(op.kind != OpKind::kTxn, "a txn's writes are judged part by part");
  if (op.kind == OpKind::kDel) return {};
  return {true, op.kind == OpKind::kPut ? op.value : op.new_value};
}

std::string shown(const Effect& e) {
  return e.present ? "\"" + e.value + "\"" : "missing";
}

// The acknowledged write that every other possible write returned before, if there is one.
const Operation* last_write(const std::vector<const Operation*>& writes) {
  for (const Operation* w : writes) {
    if (!acknowledged_write(*w)) continue;
    bool last = true;
    for (const Operation* o : writes)
      if (o != w && (o->outcome_unknown() || *o->return_ns >= w->call_ns)) last = false;
    if (last) return w;
  }
  return nullptr;
}

std::string check_key(const std::string& key, const std::vector<const Operation*>& writes,
                      const Effect& final) {
  bool any_del = false;
  bool any_ack = false;
  bool produced = false;
  for (const Operation* w : writes) {
    any_del |= w->kind == OpKind::kDel;
    any_ack |= acknowledged_write(*w) && w->kind != OpKind::kDel;
    const Effect e = effect_of(*w);
    produced |= e.present && final.present && e.value == final.value;
  }
  if (final.present && !produced)
    return fmt::format("{}: final value \"{}\" was never written by any operation", key,
                       final.value);
  if (!final.present && any_ack && !any_del)
    return fmt::format("{}: missing at the end, though a write was acknowledged and no del ran",
                       key);
  if (const Operation* w = last_write(writes)) {
    const Effect want = effect_of(*w);
    if (want.present != final.present || want.value != final.value)
      return fmt::format(
          "{}: the last write, acknowledged with nothing after or beside it, was lost: {} "
          "(line {}) should leave {}, the final read found {}",
          key, lincheck::describe(*w), w->line, shown(want), shown(final));
  }
  return "";
}

}  // namespace

FinalReadReport check_final_reads(const lincheck::History& history, int64_t final_client,
                                  const std::vector<std::string>& keys) {
  std::map<std::string, std::vector<const Operation*>> writes;
  std::map<std::string, const Operation*> final_read;  // the latest successful final read
  // A txn's writes, each as an operation of its own with the txn's interval and outcome (a txn
  // that did not match wrote nothing).
  std::deque<Operation> txn_writes;
  for (const Operation& op : history.ops) {
    if (op.kind != OpKind::kTxn || op.client == final_client || !may_have_written(op)) continue;
    for (const Operation& part : op.parts) {
      if (part.kind == OpKind::kGet) continue;
      Operation w = part;
      w.call_ns = op.call_ns;
      w.return_ns = op.return_ns;
      w.ok = op.ok;
      w.error = op.error;
      w.found.reset();
      w.line = op.line;
      writes[w.key].push_back(&txn_writes.emplace_back(std::move(w)));
    }
  }
  for (const Operation& op : history.ops) {
    if (op.kind == OpKind::kTxn) continue;
    if (op.client == final_client) {
      if (op.kind == OpKind::kGet && op.ok && !op.error && !op.outcome_unknown()) {
        const Operation*& r = final_read[op.key];
        if (!r || r->call_ns < op.call_ns) r = &op;
      }
      continue;
    }
    if (may_have_written(op)) writes[op.key].push_back(&op);
  }
  FinalReadReport report;
  for (const std::string& key : keys) {
    auto r = final_read.find(key);
    if (r == final_read.end()) {
      report.unread.push_back(key);
      continue;
    }
    ++report.keys_checked;
    const Effect final{r->second->found != false, r->second->output};
    std::string lost = check_key(key, writes[key], final);
    if (!lost.empty()) report.lost.push_back(std::move(lost));
  }
  return report;
}

}  // namespace synod::chaos
