#include "check/replica_explorer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <ostream>
#include <unordered_set>

namespace synod::check {

namespace {

constexpr uint32_t kNoParent = UINT32_MAX;

struct Origin {
  uint32_t parent = kNoParent;
  WorldAction action;
};

struct Key {
  uint64_t a = 0;
  uint64_t b = 0;
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const { return size_t(k.a); }
};

uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Two independent 64-bit hashes of the bytes.
Key hash_of(const std::string& bytes) {
  uint64_t a = 0x243f6a8885a308d3ULL ^ bytes.size();
  uint64_t b = 0x13198a2e03707344ULL + bytes.size();
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    a = mix(a ^ w);
    b = mix(b + w * 0x9e3779b97f4a7c15ULL) ^ (b >> 17);
  }
  uint64_t w = 0;
  std::memcpy(&w, bytes.data() + i, bytes.size() - i);
  a = mix(a ^ w ^ 0xa4093822299f31d0ULL);
  b = mix(b + w * 0x9e3779b97f4a7c15ULL + 0x082efa98ec4e6c89ULL);
  return {a, b};
}

TraceStep replay_step(const ReplicaModel& model, World& world, const WorldAction& action) {
  TraceStep step;
  step.action = model.describe(world, action);
  const std::vector<std::string> before = model.describe(world);
  const auto network = world.network;
  model.step(world, action);
  const std::vector<std::string> after = model.describe(world);
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] != after[i]) step.changes.push_back(before[i] + "  =>  " + after[i]);
  }
  for (const auto& [encoded, copies] : world.network) {
    auto it = network.find(encoded);
    if (it == network.end() || it->second < copies) {
      step.sent.push_back(ReplicaModel::describe_envelope(encoded));
    }
  }
  return step;
}

}  // namespace

ReplicaExploreResult explore_replicas(const ReplicaModel& model, uint64_t max_states,
                                      std::ostream* progress) {
  const auto started = std::chrono::steady_clock::now();
  ReplicaExploreResult result;
  std::unordered_set<Key, KeyHash> seen;
  std::vector<Origin> origins;
  std::deque<std::pair<World, uint32_t>> frontier;

  World initial = model.initial();
  seen.insert(hash_of(model.encode(initial)));
  origins.push_back({});
  std::optional<uint32_t> bad;
  if (model.violation(initial)) {
    bad = 0;
  } else {
    frontier.emplace_back(std::move(initial), 0);
  }
  int depth = 0;
  while (!frontier.empty() && !bad && result.complete) {
    ++depth;
    if (progress) {
      *progress << "depth " << depth << ": " << seen.size() << " states, " << frontier.size()
                << " to expand, " << result.transitions << " transitions" << std::endl;
    }
    for (size_t n = frontier.size(); n > 0 && !bad && result.complete; --n) {
      auto [world, id] = std::move(frontier.front());
      frontier.pop_front();
      for (const WorldAction& action : model.actions(world)) {
        World next = world;
        model.step(next, action);
        ++result.transitions;
        if (!seen.insert(hash_of(model.encode(next))).second) continue;
        const auto next_id = uint32_t(origins.size());
        origins.push_back({id, action});
        result.max_depth = depth;
        if (model.violation(next)) {
          bad = next_id;
          break;
        }
        if (max_states != 0 && seen.size() >= max_states) {
          result.complete = false;
          break;
        }
        frontier.emplace_back(std::move(next), next_id);
      }
    }
  }
  result.states = seen.size();
  if (bad) {
    std::vector<WorldAction> path;
    for (uint32_t at = *bad; origins[at].parent != kNoParent; at = origins[at].parent) {
      path.push_back(origins[at].action);
    }
    std::reverse(path.begin(), path.end());
    World world = model.initial();
    for (const WorldAction& action : path) {
      result.trace.push_back(replay_step(model, world, action));
    }
    result.violation = model.violation(world);
    result.final_state = model.describe(world);
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace synod::check
