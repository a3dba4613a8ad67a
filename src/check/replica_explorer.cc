#include "check/replica_explorer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ostream>
#include <unordered_set>

#include "base/assert.h"

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

// The actions from the initial world to state `id`, in order.
std::vector<WorldAction> path_to(const std::vector<Origin>& origins, uint32_t id) {
  std::vector<WorldAction> path;
  for (uint32_t at = id; origins[at].parent != kNoParent; at = origins[at].parent) {
    path.push_back(origins[at].action);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

// The world reached by state `id`, replayed from the initial world along its origins.
World replay(const ReplicaModel& model, const World& initial, const std::vector<Origin>& origins,
             uint32_t id) {
  World world = initial;
  for (const WorldAction& action : path_to(origins, id)) model.step(world, action);
  return world;
}

}  // namespace

ReplicaExploreResult explore_replicas(const ReplicaModel& model, uint64_t max_states,
                                      std::ostream* progress) {
  const auto started = std::chrono::steady_clock::now();
  ReplicaExploreResult result;
  std::unordered_set<Key, KeyHash> seen;
  // Every state reached, by id in breadth-first order: its parent and the action from it. The
  // frontier is not kept as worlds (a World holds N replicas with their logs and buffers, tens of
  // kilobytes, and the frontier of the default bounds outgrew memory that way): a level is a
  // range of ids, and each world is rebuilt from its parent's, which is replayed from the initial
  // world once for all of its children (they are consecutive ids).
  std::vector<Origin> origins;

  // Built once: the warm start's election (and its descriptions for traces) was a fifth of a
  // search when every replay began with it.
  const World initial = model.initial();
  seen.insert(hash_of(model.encode(initial)));
  origins.push_back({});
  std::optional<uint32_t> bad;
  if (model.violation(initial)) bad = 0;
  uint32_t level_begin = 0;
  uint32_t level_end = bad ? 0 : 1;
  int depth = 0;
  // The world of the state whose children are being expanded, and of its parent: consecutive
  // ids share a parent, and consecutive parents mostly share theirs (breadth-first order), so a
  // parent's world is its parent's stepped once, and a replay from the initial world along every
  // origin (a step per level) is needed only when the grandparent changes.
  std::optional<World> parent_world;
  uint32_t parent_id = kNoParent;
  std::optional<World> grand_world;
  uint32_t grand_id = kNoParent;
  while (level_begin < level_end && !bad && result.complete) {
    ++depth;
    if (progress) {
      *progress << "depth " << depth << ": " << seen.size() << " states, "
                << (level_end - level_begin) << " to expand, " << result.transitions
                << " transitions" << std::endl;
    }
    for (uint32_t id = level_begin; id < level_end && !bad && result.complete; ++id) {
      if (id != 0 && origins[id].parent != parent_id) {
        parent_id = origins[id].parent;
        if (parent_id == 0) {
          parent_world.emplace(initial);
        } else {
          if (origins[parent_id].parent != grand_id) {
            grand_id = origins[parent_id].parent;
            grand_world.emplace(replay(model, initial, origins, grand_id));
          }
          parent_world.emplace(*grand_world);
          model.step(*parent_world, origins[parent_id].action);
        }
      }
      World world = id == 0 ? initial : *parent_world;
      if (id != 0) model.step(world, origins[id].action);
      for (const WorldAction& action : model.actions(world)) {
        World next = world;
        model.step(next, action);
        ++result.transitions;
        // A violation is a ghost the encoding leaves out (a read served below its floor leaves
        // no trace once answered), so a violating world is reported even if its encoding was
        // seen: served in the other order, the same read was fine, and reached that state first.
        const bool violating = model.violation(next).has_value();
        if (!seen.insert(hash_of(model.encode(next))).second && !violating) continue;
        SYNOD_ASSERT(origins.size() < kNoParent, "more states than ids");
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
      }
    }
    level_begin = level_end;
    level_end = uint32_t(origins.size());
  }
  result.states = seen.size();
  if (bad) {
    World world = model.initial();
    for (const WorldAction& action : path_to(origins, *bad)) {
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
