#include "kv/commands.h"

namespace synod::kv {

std::vector<CommandSpec> list_commands() {
  return {};
}

}  // namespace synod::kv
