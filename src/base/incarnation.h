// The incarnation of a replica's data directory: 128 random bits drawn when the directory is
// initialized (storage/identity.h). A node id names a member of the configuration; the
// incarnation tells one life of its disk from another. A replica whose directory was wiped or
// replaced comes back with the same node id and a new incarnation, and its peers can tell that it
// forgot what it promised and accepted (docs/storage-format.md, docs/wire-format.md).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace synod {

struct Incarnation {
  uint64_t hi = 0;
  uint64_t lo = 0;

  // The zero incarnation is no incarnation (a directory always draws a non-zero one).
  constexpr bool valid() const { return hi != 0 || lo != 0; }
  constexpr auto operator<=>(const Incarnation&) const = default;
};

// The 64 bits the protocol core compares (paxos::Config::incarnation, Envelope::incarnation,
// Member::incarnation, where 0 means "not known"): hi ^ lo, and 1 for a valid incarnation whose
// fold is 0, so that a known incarnation never reads as unknown; 0 for the zero incarnation. Two
// incarnations that fold alike are told apart only by the server's pins (a chance of 2^-64).
constexpr uint64_t fold64(const Incarnation& incarnation) {
  if (!incarnation.valid()) return 0;
  const uint64_t folded = incarnation.hi ^ incarnation.lo;
  return folded == 0 ? 1 : folded;
}

// 32 lowercase hexadecimal digits, hi first.
std::string to_string(const Incarnation& incarnation);
// The inverse of to_string (exactly 32 hex digits, either case).
std::optional<Incarnation> parse_incarnation(std::string_view text);
// A fresh incarnation from the operating system's random source (getrandom); never zero.
Incarnation random_incarnation();

}  // namespace synod
