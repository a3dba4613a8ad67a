// The protocol's vocabulary: node ids, ballots and slots.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace synod {

// A replica's identity within one cluster. Ids start at 1; 0 means "none".
struct NodeId {
  uint32_t value = 0;

  constexpr bool valid() const { return value != 0; }
  constexpr auto operator<=>(const NodeId&) const = default;
};

inline constexpr NodeId kNoNode{0};

// A position in the replicated log. Slots start at 1; 0 means "before the first slot".
using Slot = uint64_t;

// A ballot (round, node) is totally ordered and unique per proposer: two proposers never share a
// ballot because the node id breaks ties. The zero ballot is below every ballot a proposer uses.
struct Ballot {
  uint64_t round = 0;
  NodeId node;

  constexpr bool is_zero() const { return round == 0 && !node.valid(); }
  constexpr auto operator<=>(const Ballot&) const = default;
};

inline std::string to_string(NodeId id) {
  return "n" + std::to_string(id.value);
}
inline std::string to_string(const Ballot& b) {
  return std::to_string(b.round) + "." + std::to_string(b.node.value);
}

}  // namespace synod

template <>
struct std::hash<synod::NodeId> {
  size_t operator()(synod::NodeId id) const noexcept { return std::hash<uint32_t>{}(id.value); }
};
