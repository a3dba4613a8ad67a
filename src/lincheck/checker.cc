#include "lincheck/checker.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "base/assert.h"
#include "lincheck/state_cache.h"

namespace synod::lincheck {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kAbsent = -1;  // the register value of a missing key

// One operation as the register model sees it: a condition on the value it finds, and
// optionally a value it leaves (kAbsent for a delete).
struct Step {
  enum class Require { kAny, kEqual, kNotEqual };
  Require require = Require::kAny;
  int32_t operand = kAbsent;
  bool writes = false;
  int32_t written = kAbsent;
  bool unknown = false;  // no return: may take effect at any time after its call, or never
  int64_t call_ns = 0;
  int64_t return_ns = 0;  // meaningless when unknown
  size_t record = 0;      // index into the key's KeyReport::ops

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

// Registers' values, interned per key so that the search compares integers.
class Values {
 public:
  int32_t id(const std::string& value) {
    auto [it, inserted] = ids_.try_emplace(value, int32_t(ids_.size()));
    return it->second;
  }

 private:
  std::map<std::string, int32_t> ids_;
};

// Translates one record into a Step, or nullopt when it constrains nothing (HISTORY-FORMAT.md).
std::optional<Step> to_step(const Operation& op, Values& values) {
  using Require = Step::Require;
  Step step;
  step.unknown = op.outcome_unknown();
  step.call_ns = op.call_ns;
  step.return_ns = op.return_ns.value_or(0);
  if (op.error) return std::nullopt;  // a definite failure, whatever the kind
  const bool effect = op.ok || step.unknown;
  switch (op.kind) {
    case OpKind::kGet:
      if (!op.ok || step.unknown) return std::nullopt;  // a read nobody saw tells nothing
      step.require = Require::kEqual;
      step.operand = op.found == false ? kAbsent : values.id(op.output);
      return step;
    case OpKind::kPut:
      if (!effect) return std::nullopt;
      step.writes = true;
      step.written = values.id(op.value);
      return step;
    case OpKind::kDel:
      if (!effect) return std::nullopt;
      if (!step.unknown && op.found) {
        step.require = *op.found ? Require::kNotEqual : Require::kEqual;
        step.operand = kAbsent;
      }
      step.writes = true;
      step.written = kAbsent;
      return step;
    case OpKind::kCas:
      step.operand = op.expect_absent ? kAbsent : values.id(op.expect);
      if (!effect) {
        // A mismatch reply: the value differed from the expected one (for NX: the key existed).
        step.require = Require::kNotEqual;
        return step;
      }
      // An unknown cas that did not match had no effect: the same as never having happened,
      // which the search already allows, so only its matching form is needed.
      step.require = Require::kEqual;
      step.writes = true;
      step.written = values.id(op.new_value);
      return step;
  }
  return std::nullopt;
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
  KeySearch(const std::vector<Step>& steps, const Limits& limits, Clock::time_point deadline)
      : steps_(steps),
        limits_(limits),
        deadline_(deadline),
        words_((steps.size() + 63) / 64),
        linearized_(words_, 0),
        cache_(words_) {
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

  void build_list();
  void lift(int32_t call);
  void unlift(int32_t call);
  void flip(int32_t step) {
    linearized_[size_t(step) / 64] ^= uint64_t(1) << (size_t(step) % 64);
    set_hash_ ^= mix64(uint64_t(step));
  }
  void note_dead_end(int32_t stuck);

  const std::vector<Step>& steps_;
  const Limits& limits_;
  Clock::time_point deadline_;
  size_t words_;
  std::vector<uint64_t> linearized_;
  uint64_t set_hash_ = 0;
  StateCache cache_;
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
  int32_t value = kAbsent;
  int32_t n = nodes_[0].next;
  uint64_t iterations = 0;
  // Unknown outcomes never force a backtrack and may be left out: done once every completed
  // operation has been placed.
  while (known_left > 0) {
    if ((++iterations & 1023) == 0 && limits_.timeout_seconds > 0 && Clock::now() > deadline_)
      return SearchResult::kTimedOut;
    SYNOD_ASSERT(n >= 0, "a completed operation's return must remain in the list");
    const Node& node = nodes_[size_t(n)];
    if (!node.is_return) {
      const Step& step = steps_[size_t(node.step)];
      if (step.allows(value)) {
        const int32_t after = step.writes ? step.written : value;
        flip(node.step);
        if (cache_.insert(linearized_.data(), after, set_hash_ ^ mix64(uint64_t(after) << 32))) {
          if (cache_.size() > limits_.max_states_per_key) return SearchResult::kTooManyStates;
          placed_.push_back({n, value});
          value = after;
          lift(n);
          if (!step.unknown) --known_left;
          n = nodes_[0].next;
          continue;
        }
        flip(node.step);
      }
      n = node.next;
      continue;
    }
    // A completed operation's return is reached before it was placed: the last choice was wrong.
    note_dead_end(node.step);
    if (placed_.empty()) return SearchResult::kNotLinearizable;
    const Placed last = placed_.back();
    placed_.pop_back();
    const int32_t undone = nodes_[size_t(last.call_node)].step;
    value = last.value_before;
    flip(undone);
    unlift(last.call_node);
    if (!steps_[size_t(undone)].unknown) ++known_left;
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
void drop_dominated_unknown_writes(std::vector<Step>& steps) {
  std::vector<int32_t> required;
  std::vector<int32_t> excluded;
  for (const Step& s : steps) {
    if (s.require == Step::Require::kEqual) required.push_back(s.operand);
    if (s.require == Step::Require::kNotEqual && !s.unknown) excluded.push_back(s.operand);
  }
  std::sort(required.begin(), required.end());
  std::sort(excluded.begin(), excluded.end());
  excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
  const auto dominated = [&](const Step& s) {
    if (!s.unknown || !s.writes) return false;
    if (std::binary_search(required.begin(), required.end(), s.written)) return false;
    return excluded.empty() || (excluded.size() == 1 && excluded[0] == s.written);
  };
  steps.erase(std::remove_if(steps.begin(), steps.end(), dominated), steps.end());
}

KeyOutcome check_key(const std::string& key, std::vector<Operation> ops, const Limits& limits,
                     Clock::time_point deadline) {
  std::stable_sort(ops.begin(), ops.end(),
                   [](const Operation& a, const Operation& b) { return a.call_ns < b.call_ns; });
  Values values;
  std::vector<Step> steps;
  for (size_t i = 0; i < ops.size(); ++i) {
    std::optional<Step> step = to_step(ops[i], values);
    if (!step) continue;
    step->record = i;
    steps.push_back(*step);
  }
  drop_dominated_unknown_writes(steps);
  KeySearch search(steps, limits, deadline);
  KeyOutcome outcome{search.run(), search.states(), steps.size(), {}};
  outcome.report.key = key;
  outcome.report.ops = std::move(ops);
  for (const size_t s : search.longest_partial())
    outcome.report.longest_partial.push_back(steps[s].record);
  if (search.stuck_step()) outcome.report.stuck_op = steps[*search.stuck_step()].record;
  return outcome;
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
  std::map<std::string, std::vector<Operation>> by_key;
  for (const Operation& op : history.ops) by_key[op.key].push_back(op);
  // Small keys first: a failure there is found before a large key can use up the time.
  std::vector<std::map<std::string, std::vector<Operation>>::iterator> order;
  for (auto it = by_key.begin(); it != by_key.end(); ++it) order.push_back(it);
  std::stable_sort(order.begin(), order.end(),
                   [](auto a, auto b) { return a->second.size() < b->second.size(); });

  Verdict verdict;
  std::optional<KeyReport> undecided;
  for (auto it : order) {
    KeyOutcome key = check_key(it->first, std::move(it->second), limits, deadline);
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
