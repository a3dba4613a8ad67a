#include "paxos/value.h"

namespace synod::paxos {

std::string to_string(const Value& value) {
  if (value.is_noop()) return "noop";
  std::string out = "[";
  for (size_t i = 0; i < value.commands.size(); ++i) {
    if (i > 0) out += ',';
    const CommandId& id = value.commands[i].id;
    out += 'c' + std::to_string(id.client) + '.' + std::to_string(id.seq);
  }
  out += ']';
  return out;
}

}  // namespace synod::paxos
