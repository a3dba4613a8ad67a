#include "kv/commands.h"

namespace synod::kv {

std::vector<CommandSpec> set_commands() {
  return {};
}

}  // namespace synod::kv
