// Every planted bug, in one registry. A planted bug is a deliberate defect, compiled in and off
// unless a test or a checker asks for it by name, that restores a bug once found (or a plausible
// one); the checker named by `found_by` must find it on its own, which is how we know that the
// checks can fail. Production never turns one on.
//
// Each layer maps the names of its bugs to its own switches (paxos::Bugs, node::ServerCore and
// sim::CoreOptions flags, node::Server::PlantedBug); every `--bug` / `--planted-bug` flag, its
// help text and the tests that sweep the bugs read their names from here, and a test checks that
// each layer's switches cover exactly its names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace synod {

enum class BugLayer {
  kProtocol,  // the protocol core (paxos::Bugs): `synod sim`, `synod sim --core`, `synod check`
  kReplica,   // what the server adds around the core (node::ServerCore, storage, the store):
              // `synod sim --core`
  kServer,  // the request router (node::Router): `synod sim` (every replica runs it), `synod chaos`
};

struct PlantedBugInfo {
  std::string_view name;
  BugLayer layer;
  std::string_view what;      // the defect, in one line
  std::string_view found_by;  // the checker that finds it on its own, and how often
};

// In a stable order.
const std::vector<PlantedBugInfo>& planted_bugs();
// nullptr if there is no such bug.
const PlantedBugInfo* find_planted_bug(std::string_view name);
// The names of one layer's bugs, in registry order.
std::vector<std::string> planted_bug_names(BugLayer layer);
// "name, name, ..." of one layer (for help texts and errors).
std::string planted_bug_list(BugLayer layer);

}  // namespace synod
