#include "paxos/value.h"

namespace synod::paxos {

size_t encoded_bytes(const Membership& membership) {
  size_t bytes = 8 + 4 + 8 + 8 + 4;  // epoch, next id, phase weights, member count
  for (const Member& m : membership.members) bytes += 4 + 1 + 4 + 8 + 4 + m.address.size();
  return bytes;
}

std::string to_string(const Value& value) {
  if (value.is_noop()) return "noop";
  std::string out = value.membership ? "config " + std::to_string(value.membership->epoch) : "";
  out += "[";
  for (size_t i = 0; i < value.commands.size(); ++i) {
    if (i > 0) out += ',';
    const CommandId& id = value.commands[i].id;
    out += 'c' + std::to_string(id.client) + '.' + std::to_string(id.seq);
  }
  out += ']';
  return out;
}

}  // namespace synod::paxos
