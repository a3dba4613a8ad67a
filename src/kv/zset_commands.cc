#include "kv/commands.h"

namespace synod::kv {

std::vector<CommandSpec> zset_commands() {
  return {};
}

}  // namespace synod::kv
