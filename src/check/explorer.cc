#include "check/explorer.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <ostream>
#include <unordered_map>

namespace synod::check {

namespace {

constexpr uint32_t kNoParent = UINT32_MAX;

// How each state was first reached: enough to replay a path without keeping every state.
struct Origin {
  uint32_t parent = kNoParent;
  Action action;
};

TraceStep replay_step(const Model& model, State& state, const Action& action) {
  TraceStep step;
  step.action = model.describe(action);
  const std::vector<std::string> before = model.describe(state);
  const std::vector<Message> network = state.network;
  model.step(state, action);
  const std::vector<std::string> after = model.describe(state);
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] != after[i]) step.changes.push_back(before[i] + "  =>  " + after[i]);
  }
  for (const Message& m : state.network) {
    if (!std::binary_search(network.begin(), network.end(), m)) {
      step.sent.push_back(model.describe(m));
    }
  }
  return step;
}

void build_trace(const Model& model, const std::vector<Origin>& origins, uint32_t last,
                 ExploreResult& result) {
  std::vector<Action> path;
  for (uint32_t at = last; origins[at].parent != kNoParent; at = origins[at].parent) {
    path.push_back(origins[at].action);
  }
  std::reverse(path.begin(), path.end());
  State state = model.initial();
  for (const Action& action : path) result.trace.push_back(replay_step(model, state, action));
  result.final_state = model.describe(state);
}

}  // namespace

ExploreResult explore(const Model& model, std::ostream* progress) {
  const auto started = std::chrono::steady_clock::now();
  ExploreResult result;
  std::unordered_map<std::string, uint32_t> seen;
  std::vector<Origin> origins;
  // The frontier, one breadth-first level at a time.
  std::deque<std::pair<State, uint32_t>> frontier;

  State initial = model.initial();
  seen.emplace(model.encode(initial), 0);
  origins.push_back({});
  std::optional<uint32_t> bad;
  if (auto v = model.violation(initial)) {
    result.violation = v;
    bad = 0;
  } else {
    frontier.emplace_back(std::move(initial), 0);
  }
  int depth = 0;
  while (!frontier.empty() && !bad) {
    ++depth;
    if (progress) {
      *progress << "depth " << depth << ": " << seen.size() << " states, " << frontier.size()
                << " to expand, " << result.transitions << " transitions" << std::endl;
    }
    for (size_t n = frontier.size(); n > 0 && !bad; --n) {
      auto [state, id] = std::move(frontier.front());
      frontier.pop_front();
      for (const Action& action : model.actions(state)) {
        State next = state;
        model.step(next, action);
        ++result.transitions;
        auto [it, fresh] = seen.emplace(model.encode(next), uint32_t(origins.size()));
        if (!fresh) continue;
        origins.push_back({id, action});
        result.max_depth = depth;
        if (auto v = model.violation(next)) {
          result.violation = v;
          bad = it->second;
          break;
        }
        frontier.emplace_back(std::move(next), it->second);
      }
    }
  }
  result.states = seen.size();
  if (bad) build_trace(model, origins, *bad, result);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace synod::check
