// What the log holds: commands from clients, batched into one value per slot.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "paxos/membership.h"

namespace synod::paxos {

// Identifies one client request across retries and forwarding: the state machine applies a
// command id at most once, so a command chosen in two slots takes effect once.
struct CommandId {
  uint64_t client = 0;
  uint64_t seq = 0;

  auto operator<=>(const CommandId&) const = default;
};

struct Command {
  CommandId id;
  std::string payload;

  bool operator==(const Command&) const = default;
};

// The value of one slot: a batch of commands, or a configuration change. An empty batch is a
// no-op, which a new leader proposes to fill a slot that no promise reported a value for. A
// configuration change (`membership` set) holds the whole next configuration and one command:
// the id of the request that asked for it (its payload is the request, for the driver's
// records; the state machine applies nothing for it).
struct Value {
  std::vector<Command> commands;
  MembershipRef membership = nullptr;

  bool is_noop() const { return commands.empty() && !membership; }
  bool operator==(const Value& o) const {
    return commands == o.commands && (membership == o.membership ||
                                      (membership && o.membership && *membership == *o.membership));
  }
};

inline Value noop() {
  return Value{};
}

// Encoded sizes (the coding of codec.h, shared by the log and the wire), for byte bounds.
inline constexpr size_t kCommandOverheadBytes = 20;  // client u64, seq u64, payload length u32
inline size_t encoded_bytes(const Command& command) {
  return kCommandOverheadBytes + command.payload.size();
}
size_t encoded_bytes(const Membership& membership);
inline size_t encoded_bytes(const Value& value) {
  size_t bytes = 4;                                                     // command count u32
  if (value.membership) bytes += 4 + encoded_bytes(*value.membership);  // and the marker
  for (const Command& command : value.commands) bytes += encoded_bytes(command);
  return bytes;
}

// A short, stable rendering for traces: "noop" or "[c1.1,c2.7]".
std::string to_string(const Value& value);

}  // namespace synod::paxos
