// The registry of planted bugs (src/base/planted_bugs.h) and the switches of each layer cover
// exactly the same names: a bug cannot exist in one place only.
#include "base/planted_bugs.h"

#include <gtest/gtest.h>

#include <set>

#include "node/server.h"
#include "node/server_core.h"
#include "paxos/bugs.h"

namespace synod {
namespace {

TEST(PlantedBugs, NamesAreUniqueAndDescribed) {
  std::set<std::string_view> names;
  for (const PlantedBugInfo& bug : planted_bugs()) {
    EXPECT_TRUE(names.insert(bug.name).second) << "twice: " << bug.name;
    EXPECT_FALSE(bug.what.empty()) << bug.name;
    EXPECT_FALSE(bug.found_by.empty()) << bug.name;
    EXPECT_EQ(find_planted_bug(bug.name), &bug);
  }
  EXPECT_EQ(find_planted_bug("no-such-bug"), nullptr);
  EXPECT_EQ(node::Server::planted_bug_names().size(), planted_bugs().size());
}

TEST(PlantedBugs, EveryLayerHasASwitchForExactlyItsOwnBugs) {
  for (const PlantedBugInfo& bug : planted_bugs()) {
    SCOPED_TRACE(std::string(bug.name));
    paxos::Bugs bugs;
    node::ServerCore::Options core;
    const bool protocol = paxos::enable_bug(bug.name, bugs);
    const bool replica = node::ServerCore::plant_bug(bug.name, core);
    const bool router = node::Server::router_bug(bug.name) != node::Server::PlantedBug::kNone;
    EXPECT_EQ(protocol, bug.layer == BugLayer::kProtocol);
    EXPECT_EQ(protocol, bugs.any());
    EXPECT_EQ(replica, bug.layer != BugLayer::kServer)
        << "the replica takes its own and the core's";
    EXPECT_EQ(router, bug.layer == BugLayer::kServer);
  }
  EXPECT_EQ(paxos::bug_names(), planted_bug_names(BugLayer::kProtocol));
}

}  // namespace
}  // namespace synod
