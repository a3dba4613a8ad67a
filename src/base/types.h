// The protocol's vocabulary: node ids, ballots and slots.
#pragma once

#include <algorithm>
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
// Node ids are never reused (a replaced machine gets a new one), so they may grow large over a
// cluster's life; this bound only keeps them printable and far from the u32 coding's end.
inline constexpr uint32_t kMaxNodeIdValue = uint32_t{1} << 30;

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

// Rounds are bounded so that ballot arithmetic never wraps. An honest proposer's round is one
// above the highest it has seen, so rounds grow by one per election: 2^62 of them would take
// 10^11 years at one election per millisecond. An acceptor also refuses a round more than
// kMaxRoundStep above any round it knows of — 2^32 elections, decades of a replica campaigning
// alone — so that one absurd ballot from a peer cannot push every acceptor to the ceiling (it would
// take 2^30 of them in a row; keeping out peers that are not members is authentication's job).
inline constexpr uint64_t kMaxBallotRound = uint64_t{1} << 62;
inline constexpr uint64_t kMaxRoundStep = uint64_t{1} << 32;

// A round that a replica whose highest known round is `known_round` (its promise, or a higher
// round it has taken seriously before) may take seriously (see above).
constexpr bool plausible_round(uint64_t known_round, const Ballot& ballot) {
  return ballot.round <= kMaxBallotRound &&
         ballot.round <= std::min(known_round, kMaxBallotRound) + kMaxRoundStep;
}

inline std::string to_string(NodeId id) {
  // Appended, not "n" + ...: GCC 12 at -O3 warns falsely (-Wrestrict) on that form once inlined.
  std::string out(1, 'n');
  out += std::to_string(id.value);
  return out;
}
inline std::string to_string(const Ballot& b) {
  return std::to_string(b.round) + "." + std::to_string(b.node.value);
}

}  // namespace synod

template <>
struct std::hash<synod::NodeId> {
  size_t operator()(synod::NodeId id) const noexcept { return std::hash<uint32_t>{}(id.value); }
};
