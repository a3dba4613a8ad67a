#include "lincheck/checker.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <tuple>

#include "base/assert.h"
#include "lincheck/state_cache.h"

namespace synod::lincheck {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kAbsent = -1;  // the register value of a missing key
// Every value that no condition names: they satisfy the same conditions, so one stands for all.
constexpr int32_t kUnnamed = -2;

// One register access as the model sees it: a condition on the value it finds in register `slot`
// of its group, and optionally a value it leaves (kAbsent for a delete).
struct Part {
  enum class Require { kAny, kEqual, kNotEqual };
  int32_t slot = 0;  // the key's index in its group
  Require require = Require::kAny;
  int32_t operand = kAbsent;
  bool writes = false;
  int32_t written = kAbsent;

  auto fields() const { return std::tie(slot, require, operand, writes, written); }
  bool operator<(const Part& o) const { return fields() < o.fields(); }

  bool allows(int32_t value) const {
    switch (require) {
      case Require::kAny:
        return true;
      case Require::kEqual:
        return value == operand;
      case Require::kNotEqual:
        return value != operand;
    }
    return false;
  }
};

// One operation: its parts, applied in order at one instant (one part except for a txn).
struct Step {
  std::vector<Part> parts;
  bool unknown = false;  // no return: may take effect at any time after its call, or never
  int64_t call_ns = 0;
  int64_t return_ns = 0;  // meaningless when unknown
  size_t record = 0;      // index into the group's KeyReport::ops
  // Unknown steps only: the unknown step with the same parts called last before this one, or
  // -1. The search places this one only after it (see order_interchangeable_unknowns).
  int32_t placed_after = -1;
  // Writes its group's one register without looking at it first: whatever an unknown step
  // placed just before it did is lost unseen.
  bool blind_write = false;
  // An unknown outcome that writes no value any condition names (only kAbsent or kUnnamed): the
  // search tries it only after every other candidate.
  bool deferred = false;
};

// Registers' values, interned per group of keys so that the search compares integers.
class Values {
 public:
  int32_t id(const std::string& value) {
    auto [it, inserted] = ids_.try_emplace(value, int32_t(ids_.size()));
    return it->second;
  }

 private:
  std::map<std::string, int32_t> ids_;
};

// The states of a group's registers, each an int32 for the memo. A group of one key is its
// register's value itself; a larger group's states are tuples of values, interned as they are
// reached.
class States {
 public:
  explicit States(size_t keys) : keys_(keys) {
    if (keys_ > 1) intern(std::vector<int32_t>(keys_, kAbsent));
  }
  int32_t initial() const { return keys_ > 1 ? 0 : kAbsent; }

  // The state `step` leaves when applied in `state`, or nullopt if its conditions fail there.
  std::optional<int32_t> apply(const Step& step, int32_t state) {
    if (keys_ == 1) {
      for (const Part& p : step.parts) {
        if (!p.allows(state)) return std::nullopt;
        if (p.writes) state = p.written;
      }
      return state;
    }
    scratch_ = tuples_[size_t(state)];
    bool changed = false;
    for (const Part& p : step.parts) {
      int32_t& value = scratch_[size_t(p.slot)];
      if (!p.allows(value)) return std::nullopt;
      if (p.writes && value != p.written) {
        value = p.written;
        changed = true;
      }
    }
    return changed ? intern(scratch_) : state;
  }

 private:
  int32_t intern(const std::vector<int32_t>& tuple) {
    auto [it, inserted] = ids_.try_emplace(tuple, int32_t(tuples_.size()));
    if (inserted) tuples_.push_back(tuple);
    return it->second;
  }

  const size_t keys_;
  std::vector<std::vector<int32_t>> tuples_;
  std::map<std::vector<int32_t>, int32_t> ids_;
  std::vector<int32_t> scratch_;
};

// Translates one single-key record (or a txn's part, with the txn's `ok` and `unknown`: a part's
// own are not consulted) into a Part, or nullopt when it constrains nothing (docs/lincheck.md).
std::optional<Part> to_part(const Operation& op, bool ok, bool unknown, int32_t slot,
                            Values& values) {
  using Require = Part::Require;
  Part part;
  part.slot = slot;
  const bool effect = ok || unknown;
  switch (op.kind) {
    case OpKind::kGet:
      if (!ok || unknown) return std::nullopt;  // a read nobody saw tells nothing
      part.require = Require::kEqual;
      part.operand = op.found == false ? kAbsent : values.id(op.output);
      return part;
    case OpKind::kPut:
      if (!effect) return std::nullopt;
      part.writes = true;
      part.written = values.id(op.value);
      return part;
    case OpKind::kDel:
      if (!effect) return std::nullopt;
      if (!unknown && op.found) {
        part.require = *op.found ? Require::kNotEqual : Require::kEqual;
        part.operand = kAbsent;
      }
      part.writes = true;
      part.written = kAbsent;
      return part;
    case OpKind::kCas:
      part.operand = op.expect_absent ? kAbsent : values.id(op.expect);
      if (!effect) {
        // A mismatch reply: the value differed from the expected one (for NX: the key existed).
        part.require = Require::kNotEqual;
        return part;
      }
      // An unknown cas that did not match had no effect: the same as never having happened,
      // which the search already allows, so only its matching form is needed.
      part.require = Require::kEqual;
      part.writes = true;
      part.written = values.id(op.new_value);
      return part;
    case OpKind::kTxn:
      break;
  }
  return std::nullopt;
}

// Translates one record into a Step, or nullopt when it constrains nothing. `slot_of` gives each
// key's index in the group.
std::optional<Step> to_step(const Operation& op, const std::map<std::string, int32_t>& slot_of,
                            Values& values) {
  if (op.error) return std::nullopt;  // a definite failure, whatever the kind
  Step step;
  step.unknown = op.outcome_unknown();
  step.call_ns = op.call_ns;
  step.return_ns = op.return_ns.value_or(0);
  if (op.kind != OpKind::kTxn) {
    std::optional<Part> part = to_part(op, op.ok, step.unknown, slot_of.at(op.key), values);
    if (!part) return std::nullopt;
    step.parts.push_back(*part);
    return step;
  }
  const bool mismatch = !step.unknown && !op.ok;
  for (const Operation& p : op.parts) {
    // A txn that did not match wrote nothing; its one cas part says what it found.
    if (mismatch && p.kind != OpKind::kCas) continue;
    std::optional<Part> part = to_part(p, op.ok, step.unknown, slot_of.at(p.key), values);
    if (part) step.parts.push_back(*part);
  }
  if (step.parts.empty()) return std::nullopt;
  return step;
}

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

enum class SearchResult { kLinearizable, kNotLinearizable, kTimedOut, kTooManyStates };

// Lowe's just-in-time linearization over a doubly linked list of call and return events.
// Linearizing an operation lifts its events out of the list; backtracking puts them back
// (dancing links), so the list always holds exactly the operations not yet placed.
class KeySearch {
 public:
  KeySearch(const std::vector<Step>& steps, States& states, const Limits& limits,
            Clock::time_point deadline)
      : steps_(steps),
        states_(states),
        limits_(limits),
        deadline_(deadline),
        words_((steps.size() + 63) / 64),
        linearized_(words_, 0),
        cache_(words_),
        finished_(known_mask(steps, words_)),
        any_unknown_(
            std::any_of(steps.begin(), steps.end(), [](const Step& s) { return s.unknown; })) {
    build_list();
  }

  SearchResult run();
  uint64_t states() const { return cache_.size(); }
  const std::vector<size_t>& longest_partial() const { return longest_partial_; }
  std::optional<size_t> stuck_step() const { return stuck_step_; }

 private:
  struct Node {
    int32_t step = -1;
    bool is_return = false;
    int32_t match = -1;  // a call's return node, -1 for unknown outcomes
    int32_t prev = -1;
    int32_t next = -1;
  };
  struct Placed {
    int32_t call_node;
    int32_t value_before;
  };

  static std::vector<uint64_t> known_mask(const std::vector<Step>& steps, size_t words) {
    std::vector<uint64_t> mask(words, 0);
    for (size_t i = 0; i < steps.size(); ++i)
      if (!steps[i].unknown) mask[i / 64] |= uint64_t(1) << (i % 64);
    return mask;
  }
  void build_list();
  void lift(int32_t call);
  void unlift(int32_t call);
  void flip(int32_t step) {
    linearized_[size_t(step) / 64] ^= uint64_t(1) << (size_t(step) % 64);
    set_hash_ ^= mix64(uint64_t(step));
  }
  // Whether the last step placed is an unknown outcome. The search's choices depend on it (a
  // blind write does not follow one), so the memo records it with the value.
  bool last_unknown() const {
    return !placed_.empty() &&
           steps_[size_t(nodes_[size_t(placed_.back().call_node)].step)].unknown;
  }
  static int32_t memo_value(int32_t value, bool last_unknown) {
    return value * 2 + (last_unknown ? 1 : 0);
  }
  bool is_linearized(int32_t step) const {
    return (linearized_[size_t(step) / 64] >> (size_t(step) % 64)) & 1;
  }
  void note_dead_end(int32_t stuck);

  const std::vector<Step>& steps_;
  States& states_;
  const Limits& limits_;
  Clock::time_point deadline_;
  size_t words_;
  std::vector<uint64_t> linearized_;
  uint64_t set_hash_ = 0;
  StateCache cache_;
  FinishedStates finished_;  // only with unknown outcomes: otherwise cache_ says it all
  const bool any_unknown_;
  int unknowns_placed_ = 0;
  std::vector<Node> nodes_;  // nodes_[0] is the list head
  std::vector<Placed> placed_;
  std::vector<size_t> longest_partial_;
  std::optional<size_t> stuck_step_;
};

void KeySearch::build_list() {
  struct Event {
    int64_t time_ns;
    bool is_return;
    int32_t step;
  };
  std::vector<Event> events;
  for (size_t i = 0; i < steps_.size(); ++i) {
    events.push_back({steps_[i].call_ns, false, int32_t(i)});
    if (!steps_[i].unknown) events.push_back({steps_[i].return_ns, true, int32_t(i)});
  }
  // Intervals are closed: at equal times calls come first, so the operations overlap.
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.time_ns != b.time_ns) return a.time_ns < b.time_ns;
    if (a.is_return != b.is_return) return !a.is_return;
    return a.step < b.step;
  });
  nodes_.resize(events.size() + 1);
  std::vector<int32_t> call_node(steps_.size(), -1);
  for (size_t i = 0; i < events.size(); ++i) {
    Node& node = nodes_[i + 1];
    node.step = events[i].step;
    node.is_return = events[i].is_return;
    node.prev = int32_t(i);
    node.next = i + 1 < events.size() ? int32_t(i + 2) : -1;
    if (node.is_return) {
      nodes_[size_t(call_node[size_t(node.step)])].match = int32_t(i + 1);
    } else {
      call_node[size_t(node.step)] = int32_t(i + 1);
    }
  }
  nodes_[0].next = events.empty() ? -1 : 1;
}

void KeySearch::lift(int32_t call) {
  for (const int32_t n : {call, nodes_[size_t(call)].match}) {
    if (n < 0) continue;
    const Node& node = nodes_[size_t(n)];
    nodes_[size_t(node.prev)].next = node.next;
    if (node.next >= 0) nodes_[size_t(node.next)].prev = node.prev;
  }
}

void KeySearch::unlift(int32_t call) {
  for (const int32_t n : {nodes_[size_t(call)].match, call}) {  // reverse order of lift()
    if (n < 0) continue;
    const Node& node = nodes_[size_t(n)];
    nodes_[size_t(node.prev)].next = n;
    if (node.next >= 0) nodes_[size_t(node.next)].prev = n;
  }
}

void KeySearch::note_dead_end(int32_t stuck) {
  if (stuck_step_ && placed_.size() <= longest_partial_.size()) return;
  longest_partial_.clear();
  for (const Placed& p : placed_)
    longest_partial_.push_back(size_t(nodes_[size_t(p.call_node)].step));
  stuck_step_ = size_t(stuck);
}

SearchResult KeySearch::run() {
  size_t known_left =
      size_t(std::count_if(steps_.begin(), steps_.end(), [](const Step& s) { return !s.unknown; }));
  int32_t value = states_.initial();
  int32_t n = nodes_[0].next;
  uint64_t iterations = 0;
  // Each choice of what to place next is made among the calls before the list's first return.
  // Deferred steps (unknown outcomes that write only values nobody names) are tried after the
  // others: they are seldom needed (a later condition that wants the key missing, or any value
  // but some named one), and trying them first sent the search down every subset
  // of them before the order that leaves them out.
  bool deferred = false;
  // Unknown outcomes never force a backtrack and may be left out: done once every completed
  // operation has been placed.
  while (known_left > 0) {
    if ((++iterations & 1023) == 0 && limits_.timeout_seconds > 0 && Clock::now() > deadline_)
      return SearchResult::kTimedOut;
    SYNOD_ASSERT(n >= 0, "a completed operation's return must remain in the list");
    const Node& node = nodes_[size_t(n)];
    if (!node.is_return) {
      const Step& step = steps_[size_t(node.step)];
      if (step.deferred != deferred ||
          (step.placed_after >= 0 && !is_linearized(step.placed_after)) ||
          (step.blind_write && last_unknown())) {
        n = node.next;
        continue;
      }
      const std::optional<int32_t> next = states_.apply(step, value);
      if (next && !(step.unknown && *next == value)) {
        const int32_t after = *next;
        const int32_t memo = memo_value(after, step.unknown);
        flip(node.step);
        if (cache_.insert(linearized_.data(), memo, set_hash_ ^ mix64(uint64_t(memo) << 32)) &&
            !(any_unknown_ &&
              finished_.covers(linearized_.data(), memo, unknowns_placed_ + step.unknown))) {
          if (cache_.size() > limits_.max_states_per_key) return SearchResult::kTooManyStates;
          placed_.push_back({n, value});
          value = after;
          lift(n);
          if (!step.unknown) --known_left;
          unknowns_placed_ += step.unknown;
          n = nodes_[0].next;
          deferred = false;
          continue;
        }
        flip(node.step);
      }
      n = node.next;
      continue;
    }
    if (!deferred) {  // every other candidate tried: now the deferred ones
      deferred = true;
      n = nodes_[0].next;
      continue;
    }
    // A completed operation's return is reached before it was placed: the last choice was wrong.
    note_dead_end(node.step);
    if (placed_.empty()) return SearchResult::kNotLinearizable;
    if (any_unknown_)
      finished_.add(linearized_.data(), memo_value(value, last_unknown()), unknowns_placed_);
    const Placed last = placed_.back();
    placed_.pop_back();
    const int32_t undone = nodes_[size_t(last.call_node)].step;
    value = last.value_before;
    flip(undone);
    unlift(last.call_node);
    deferred = steps_[size_t(undone)].deferred;
    if (!steps_[size_t(undone)].unknown) ++known_left;
    unknowns_placed_ -= steps_[size_t(undone)].unknown;
    n = nodes_[size_t(last.call_node)].next;
  }
  return SearchResult::kLinearizable;
}

struct KeyOutcome {
  SearchResult result;
  uint64_t states = 0;
  size_t steps = 0;
  KeyReport report;
};

// An unknown write of a value that no completed operation could need is dominated by leaving
// it out: once the register holds that value, every later condition fails that would fail
// anyway, until some write replaces it. Precisely: if no condition requires value w (Equal w)
// and no condition is satisfied by w (NotEqual of another value), then register value w
// satisfies a subset of what any other value satisfies, so a linearization with the write in it
// stays one without it. Dropping such writes keeps the memo from growing with every subset of
// timed-out writes nobody observed (the common case when every write is a fresh value).
// Conditions on several registers are conjunctions of conditions on each, so the argument holds
// register by register: an unknown step is dropped when every value it writes is dominated on
// its register (its own conditions only make placing it harder).
void drop_dominated_unknown_writes(std::vector<Step>& steps, size_t keys) {
  std::vector<std::vector<int32_t>> required(keys), excluded(keys);
  for (const Step& s : steps) {
    for (const Part& p : s.parts) {
      if (p.require == Part::Require::kEqual) required[size_t(p.slot)].push_back(p.operand);
      if (p.require == Part::Require::kNotEqual && !s.unknown)
        excluded[size_t(p.slot)].push_back(p.operand);
    }
  }
  for (size_t k = 0; k < keys; ++k) {
    std::sort(required[k].begin(), required[k].end());
    std::sort(excluded[k].begin(), excluded[k].end());
    excluded[k].erase(std::unique(excluded[k].begin(), excluded[k].end()), excluded[k].end());
  }
  const auto dominated_write = [&](const Part& p) {
    const auto& req = required[size_t(p.slot)];
    const auto& exc = excluded[size_t(p.slot)];
    if (std::binary_search(req.begin(), req.end(), p.written)) return false;
    return exc.empty() || (exc.size() == 1 && exc[0] == p.written);
  };
  const auto dominated = [&](const Step& s) {
    if (!s.unknown) return false;
    bool writes = false;
    for (const Part& p : s.parts) {
      if (!p.writes) continue;
      writes = true;
      if (!dominated_write(p)) return false;
    }
    return writes;
  };
  steps.erase(std::remove_if(steps.begin(), steps.end(), dominated), steps.end());
}

// A value written but named by no condition (no get returned it, no cas expected it) is told
// apart from another such value by nothing the search checks: each satisfies every NotEqual and
// no Equal. So all of them become one value, kUnnamed. This is what lets
// order_interchangeable_unknowns see the usual timed-out writes, each of a fresh value, as alike.
void merge_unnamed_values(std::vector<Step>& steps, size_t keys) {
  std::vector<std::vector<int32_t>> named(keys);
  for (const Step& s : steps)
    for (const Part& p : s.parts)
      if (p.require != Part::Require::kAny) named[size_t(p.slot)].push_back(p.operand);
  for (auto& values : named) std::sort(values.begin(), values.end());
  for (Step& s : steps) {
    for (Part& p : s.parts) {
      const auto& values = named[size_t(p.slot)];
      if (p.writes && p.written != kAbsent &&
          !std::binary_search(values.begin(), values.end(), p.written))
        p.written = kUnnamed;
    }
  }
}

// Unknown steps with the same parts are interchangeable: each may be placed anywhere after its
// call, or left out, and each does the same. If a linearization places k of them, one also
// exists that places the k called first, in call order: the i-th placed position comes after
// i of the placed calls, so after the i-th earliest call of all. So the search places such a
// step only once the one called before it is placed, and the set of them it has placed is
// always a prefix: k+1 sets for k steps, not 2^k. Without this, a history with a few dozen
// timed-out writes on a key (every replica restarted at once) exhausts any state budget.
// `steps` are in call order.
void order_interchangeable_unknowns(std::vector<Step>& steps) {
  std::map<std::vector<Part>, int32_t> last;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!steps[i].unknown) continue;
    auto [it, inserted] = last.try_emplace(steps[i].parts, int32_t(i));
    if (!inserted) {
      steps[i].placed_after = it->second;
      it->second = int32_t(i);
    }
  }
}

// Checks one group of keys that no operation connects to any other key (a single key, unless
// txns tie keys together): its registers together are one object.
// `ops` as key `key` alone saw them: its own operations, and the txns' parts on it (a txn that
// did not match keeps its cas part only if that part is on `key`).
std::vector<Operation> project(const std::vector<Operation>& ops, const std::string& key) {
  std::vector<Operation> out;
  for (const Operation& op : ops) {
    if (op.kind != OpKind::kTxn) {
      if (op.key == key) out.push_back(op);
      continue;
    }
    Operation p = op;
    p.parts.clear();
    for (const Operation& part : op.parts)
      if (part.key == key) p.parts.push_back(part);
    if (!p.parts.empty()) out.push_back(std::move(p));
  }
  return out;
}

KeyOutcome search_group(const std::vector<std::string>& keys, std::vector<Operation> ops,
                        const Limits& limits, Clock::time_point deadline);

// A group of several keys is linearizable only if each key's projection is (the projection of
// a linearization is one), and those searches are far smaller than the group's, whose states
// multiply across its registers: each key alone first, then the group.
KeyOutcome check_group(const std::vector<std::string>& keys, std::vector<Operation> ops,
                       const Limits& limits, Clock::time_point deadline) {
  if (keys.size() == 1) return search_group(keys, std::move(ops), limits, deadline);
  uint64_t states = 0;
  for (const std::string& key : keys) {
    KeyOutcome alone = search_group({key}, project(ops, key), limits, deadline);
    states += alone.states;
    if (alone.result != SearchResult::kLinearizable) {
      alone.states = states;
      return alone;
    }
  }
  KeyOutcome outcome = search_group(keys, std::move(ops), limits, deadline);
  outcome.states += states;
  return outcome;
}

KeyOutcome search_group(const std::vector<std::string>& keys, std::vector<Operation> ops,
                        const Limits& limits, Clock::time_point deadline) {
  std::stable_sort(ops.begin(), ops.end(),
                   [](const Operation& a, const Operation& b) { return a.call_ns < b.call_ns; });
  std::map<std::string, int32_t> slot_of;
  for (const std::string& key : keys) slot_of.emplace(key, int32_t(slot_of.size()));
  Values values;
  std::vector<Step> steps;
  for (size_t i = 0; i < ops.size(); ++i) {
    std::optional<Step> step = to_step(ops[i], slot_of, values);
    if (!step) continue;
    step->record = i;
    steps.push_back(std::move(*step));
  }
  merge_unnamed_values(steps, keys.size());
  drop_dominated_unknown_writes(steps, keys.size());
  order_interchangeable_unknowns(steps);
  for (Step& step : steps) {
    step.deferred =
        step.unknown && std::none_of(step.parts.begin(), step.parts.end(), [](const Part& p) {
          return p.writes && p.written != kAbsent && p.written != kUnnamed;
        });
  }
  if (keys.size() == 1) {
    for (Step& step : steps) {
      step.blind_write =
          std::all_of(step.parts.begin(), step.parts.end(),
                      [](const Part& p) { return p.require == Part::Require::kAny; }) &&
          std::any_of(step.parts.begin(), step.parts.end(), [](const Part& p) { return p.writes; });
    }
  }
  States states(keys.size());
  KeySearch search(steps, states, limits, deadline);
  KeyOutcome outcome{search.run(), search.states(), steps.size(), {}};
  for (const std::string& key : keys)
    outcome.report.key += (outcome.report.key.empty() ? "" : "+") + key;
  outcome.report.ops = std::move(ops);
  for (const size_t s : search.longest_partial())
    outcome.report.longest_partial.push_back(steps[s].record);
  if (search.stuck_step()) outcome.report.stuck_op = steps[*search.stuck_step()].record;
  return outcome;
}

// Keys tied together by txns, as groups (union-find over every operation's keys), each with its
// operations: P-compositionality holds between groups, not within one.
struct Group {
  std::vector<std::string> keys;
  std::vector<Operation> ops;
};

std::vector<Group> group_by_keys(const History& history) {
  std::map<std::string, std::string> parent;
  const auto find = [&](std::string key) {
    while (parent[key] != key) key = parent[key] = parent[parent[key]];
    return key;
  };
  for (const Operation& op : history.ops) {
    const std::vector<std::string> keys = keys_of(op);
    for (const std::string& k : keys) parent.try_emplace(k, k);
    for (size_t i = 1; i < keys.size(); ++i) {
      const std::string a = find(keys[0]), b = find(keys[i]);
      if (a != b) parent[b] = a;
    }
  }
  std::map<std::string, Group> groups;  // by root
  for (const auto& entry : parent) groups[find(entry.first)].keys.push_back(entry.first);
  for (const Operation& op : history.ops) {
    const std::vector<std::string> keys = keys_of(op);
    if (!keys.empty()) groups[find(keys[0])].ops.push_back(op);
  }
  std::vector<Group> out;
  for (auto& [root, g] : groups) out.push_back(std::move(g));
  return out;
}

}  // namespace

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kLinearizable:
      return "LINEARIZABLE";
    case Outcome::kNotLinearizable:
      return "NOT LINEARIZABLE";
    case Outcome::kUndecided:
      return "UNDECIDED";
  }
  return "?";
}

Verdict check(const History& history, const Limits& limits) {
  const Clock::time_point started = Clock::now();
  const Clock::time_point deadline =
      started + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double>(std::max(limits.timeout_seconds, 0.0)));
  std::vector<Group> groups = group_by_keys(history);
  // Small groups first: a failure there is found before a large one can use up the time.
  std::stable_sort(groups.begin(), groups.end(),
                   [](const Group& a, const Group& b) { return a.ops.size() < b.ops.size(); });

  Verdict verdict;
  std::optional<KeyReport> undecided;
  // Once one group has failed the verdict cannot change, so the others get a small budget: their
  // failures are still counted when found cheaply, but a group whose search explodes (states
  // multiply across a group's registers) no longer holds up a verdict already reached.
  Limits after_failure = limits;
  after_failure.max_states_per_key = std::min<uint64_t>(limits.max_states_per_key, 100'000);
  for (Group& group : groups) {
    KeyOutcome key = check_group(group.keys, std::move(group.ops),
                                 verdict.keys_failed > 0 ? after_failure : limits, deadline);
    ++verdict.keys_checked;
    verdict.ops_checked += key.steps;
    verdict.states_explored += key.states;
    if (key.result == SearchResult::kNotLinearizable) {
      ++verdict.keys_failed;
      if (!verdict.report) verdict.report = std::move(key.report);  // fewest operations
    } else if (key.result != SearchResult::kLinearizable && !undecided) {
      verdict.reason =
          key.result == SearchResult::kTimedOut
              ? fmt::format("timed out after {} s", limits.timeout_seconds)
              : fmt::format("more than {} states for one key", limits.max_states_per_key);
      undecided = std::move(key.report);
      if (key.result == SearchResult::kTimedOut) break;
    }
  }
  if (verdict.keys_failed > 0) {
    verdict.outcome = Outcome::kNotLinearizable;
  } else if (undecided) {
    verdict.outcome = Outcome::kUndecided;
    verdict.report = std::move(undecided);
  }
  verdict.elapsed_s = std::chrono::duration<double>(Clock::now() - started).count();
  return verdict;
}

std::string format_verdict(const Verdict& v) {
  std::string out = std::string(outcome_name(v.outcome));
  if (v.outcome == Outcome::kUndecided) out += ": " + v.reason;
  out += fmt::format(" (keys: {}, operations: {}, states: {}, {:.3f} ms)\n", v.keys_checked,
                     v.ops_checked, v.states_explored, v.elapsed_s * 1e3);
  if (!v.report) return out;
  const KeyReport& r = *v.report;
  if (v.outcome == Outcome::kNotLinearizable) {
    out += fmt::format(
        "key \"{}\" is not linearizable ({} of {} keys failed; this one has the "
        "fewest operations):\n",
        r.key, v.keys_failed, v.keys_checked);
  } else {
    out += fmt::format("key \"{}\" was not decided:\n", r.key);
  }
  for (const Operation& op : r.ops) out += "  " + describe(op) + "\n";
  if (v.outcome != Outcome::kNotLinearizable || !r.stuck_op) return out;
  out +=
      fmt::format("longest linearizable order found ({} operations):\n", r.longest_partial.size());
  for (const size_t i : r.longest_partial) out += "  " + describe(r.ops[i]) + "\n";
  out += "after it, no order can fit this completed operation in before it returned:\n";
  out += "  " + describe(r.ops[*r.stuck_op]) + "\n";
  return out;
}

}  // namespace synod::lincheck
