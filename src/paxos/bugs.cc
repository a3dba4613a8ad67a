#include "paxos/bugs.h"

#include "base/planted_bugs.h"

namespace synod::paxos {

namespace {
struct BugEntry {
  const char* name;
  bool Bugs::*flag;
};
constexpr BugEntry kBugs[] = {
    {"minority-quorum", &Bugs::minority_quorum},
    {"ignore-promised-value", &Bugs::ignore_promised_value},
    {"no-persist-promise", &Bugs::no_persist_promise},
    {"accept-lower-ballot", &Bugs::accept_lower_ballot},
    {"leader-skip-phase1", &Bugs::leader_skip_phase1},
    {"ack-before-sync", &Bugs::ack_before_sync},
    {"skip-fdatasync", &Bugs::skip_fdatasync},
    {"promise-hides-snapshot", &Bugs::promise_hides_snapshot},
    {"read-without-quorum", &Bugs::read_without_quorum},
    {"leader-learns-from-catchup", &Bugs::leader_learns_from_catchup},
    {"time-of-any-ballot", &Bugs::time_of_any_ballot},
    {"time-carried-into-new-ballot", &Bugs::time_carried_into_new_ballot},
    {"absurd-rounds-taken", &Bugs::absurd_rounds_taken},
    {"reconfig-without-overlap", &Bugs::reconfig_without_overlap},
    {"learner-votes", &Bugs::learner_votes},
    {"wiped-replica-votes", &Bugs::wiped_replica_votes},
    {"removed-member-disrupts", &Bugs::removed_member_disrupts},
    {"silent-learner", &Bugs::silent_learner},
    {"catchup-from-members-only", &Bugs::catchup_from_members_only},
    {"transfer-skips-phase1", &Bugs::transfer_skips_phase1},
    {"transfer-unmarked", &Bugs::transfer_unmarked},
    {"catchup-retry-storm", &Bugs::catchup_retry_storm},
    {"silent-without-snapshot", &Bugs::silent_without_snapshot},
    {"deaf-to-askers", &Bugs::deaf_to_askers},
    {"unbound-replica-votes", &Bugs::unbound_replica_votes},
    {"catchup-asks-silent-leader", &Bugs::catchup_asks_silent_leader},
    {"read-during-change", &Bugs::read_during_change},
    {"promise-below-binding", &Bugs::promise_below_binding},
    {"known-compaction-steps-down", &Bugs::known_compaction_steps_down},
    {"promise-hides-released", &Bugs::promise_hides_released},
    {"lease-from-confirmation", &Bugs::lease_from_confirmation},
    {"lease-forgotten-on-restart", &Bugs::lease_forgotten_on_restart},
    {"lease-promised-by-accept", &Bugs::lease_promised_by_accept},
    {"lease-stale-leader-heard", &Bugs::lease_stale_leader_heard},
};
}  // namespace

const std::vector<std::string>& bug_names() {
  static const std::vector<std::string> names = planted_bug_names(BugLayer::kProtocol);
  return names;
}

bool enable_bug(std::string_view name, Bugs& bugs) {
  const PlantedBugInfo* info = find_planted_bug(name);
  if (info == nullptr || info->layer != BugLayer::kProtocol) return false;
  for (const BugEntry& entry : kBugs) {
    if (name == entry.name) {
      bugs.*entry.flag = true;
      return true;
    }
  }
  return false;
}

}  // namespace synod::paxos
