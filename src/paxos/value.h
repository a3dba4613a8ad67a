// What the log holds: commands from clients, batched into one value per slot.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
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

// The commands of one value. Copies share one vector: a value is copied from the batch into the
// Accept messages, the acceptor's record, the learner's and the state machine's hands, and each
// copy is a reference, not a second copy of every payload (a replica holds each slot's value
// once, not once as accepted and again as chosen). Changing a shared list copies it first, so a
// copy never sees another's change.
class Commands {
 public:
  Commands() = default;
  Commands(std::initializer_list<Command> commands) : Commands(std::vector<Command>(commands)) {}
  Commands(std::vector<Command> commands)  // NOLINT: a vector is a list of commands
      : list_(commands.empty() ? nullptr
                               : std::make_shared<std::vector<Command>>(std::move(commands))) {}

  size_t size() const { return list_ ? list_->size() : 0; }
  bool empty() const { return size() == 0; }
  const Command& operator[](size_t i) const { return (*list_)[i]; }
  const Command* begin() const { return list_ ? list_->data() : nullptr; }
  const Command* end() const { return list_ ? list_->data() + list_->size() : nullptr; }

  // The list to change, copied first if another value shares it.
  std::vector<Command>& edit() {
    if (!list_) {
      list_ = std::make_shared<std::vector<Command>>();
    } else if (list_.use_count() > 1) {
      list_ = std::make_shared<std::vector<Command>>(*list_);
    }
    return *list_;
  }
  void push_back(Command command) { edit().push_back(std::move(command)); }

  bool operator==(const Commands& o) const {
    return list_ == o.list_ || std::equal(begin(), end(), o.begin(), o.end());
  }

 private:
  std::shared_ptr<std::vector<Command>> list_;  // null: none
};

// The value of one slot: a batch of commands, or a configuration change. An empty batch is a
// no-op, which a new leader proposes to fill a slot that no promise reported a value for. A
// configuration change (`membership` set) holds the whole next configuration and one command:
// the id of the request that asked for it (its payload is the request, for the driver's
// records; the state machine applies nothing for it).
struct Value {
  Commands commands;
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
