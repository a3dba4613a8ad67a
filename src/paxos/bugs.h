// Deliberately planted protocol bugs. They are compiled in and off unless a test or the
// simulator asks for one by name; each must be caught by the simulator's checks, which is how we
// know the checks can fail. Production code paths never turn them on.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace synod::paxos {

struct Bugs {
  bool minority_quorum = false;         // quorums of floor(N/2): two of them need not intersect
  bool ignore_promised_value = false;   // a new leader proposes its own value over a reported one
  bool no_persist_promise = false;      // an acceptor's promise is not made durable
  bool accept_lower_ballot = false;     // an acceptor accepts a ballot below its promise
  bool leader_skip_phase1 = false;      // a new leader goes straight to phase 2
  bool ack_before_sync = false;         // the driver (sim, ServerCore) answers before the sync
  bool skip_fdatasync = false;          // the log reports a sync without calling fdatasync
  bool promise_hides_snapshot = false;  // a promise does not say which slots were compacted
  bool promise_hides_released = false;  // ... nor which chosen values were let go of (read back
                                        // from the log: Config::log_memory_bytes)
  bool read_without_quorum = false;     // a leader serves reads without confirming leadership,
                                        // and keeps leading when no quorum answers it
  bool leader_learns_from_catchup = false;  // a leader learns chosen slots from catch-up replies
                                            // and snapshots, and announces them in its ballot
  bool time_of_any_ballot = false;          // cluster time is the highest seen in any ballot, so a
                                    // cut-off leader's clock lifts its successor's (early expiry)
  bool absurd_rounds_taken = false;  // acceptors take any round, however far above every one
                                     // they know (review: one forged Prepare ended all elections)
  bool time_carried_into_new_ballot = false;  // a new leader's first Accepts carry the time of
                                              // its previous leadership (or 0, which acceptors
                                              // then take as the new ballot's time)
  bool reconfig_without_overlap = false;  // a leader proposes past a configuration change that is
                                          // not chosen yet, counting the new configuration's
                                          // quorums there (docs/core.md, "Membership")
  bool learner_votes = false;             // a learner's answers count in quorums
  bool wiped_replica_votes = false;       // a member's messages count whatever incarnation sent
                                          // them, so a wiped replica votes under its old id
  bool removed_member_disrupts = false;   // no PreVote and no leader stickiness: a replica back
                                          // from a partition (or removed) deposes a healthy leader
  bool silent_learner = false;  // a replica that may not campaign and hears no leader waits
                                // instead of asking what is chosen, though a change it missed
                                // may have made it the only voter
  bool catchup_from_members_only = false;  // catch-up answers from a sender this replica's
                                           // configuration does not list are dropped
  bool transfer_skips_phase1 = false;      // the target of a leader transfer leads in a new ballot
                                           // without phase 1, trusting that it is caught up
  bool transfer_unmarked = false;    // the target of a leader transfer does not mark its Prepares
                                     // `transfer`: followers still hearing the old leader ignore
                                     // them, and the handover waits for an election timeout
  bool catchup_retry_storm = false;  // an unanswered catch-up request is re-sent every retransmit
                                     // interval however long the answer takes to arrive
  bool deaf_to_askers = false;  // a replica asked for slots above its own chosen prefix does not
                                // ask the asker back, though it may know of no other peer
  bool silent_without_snapshot = false;     // a peer asked for a snapshot when it has none says
                                            // nothing: the asker asks again, forever
  bool catchup_asks_silent_leader = false;  // catch-up asks the last leader heard of however
                                            // long it has been silent (down, or wiped and
                                            // refused), instead of another peer
  bool read_during_change = false;     // a leader fixes a read's index while a configuration change
                                       // it proposed is in flight (the change may make a value an
                                       // earlier leader left with the new voters chosen above it)
  bool unbound_replica_votes = false;  // a replica on a new directory promises and accepts before
                                       // a configuration binds its incarnation (and one that a
                                       // configuration disowns still does)
  bool known_compaction_steps_down = false;  // a leader steps down for a promise whose sender
                                             // compacted only slots it knows chosen
  bool promise_below_binding = false;        // a replica bound after its wiped directory's old
                                             // incarnation voted promises and votes in the slots
                                             // below the binding, which it never saw
  bool lease_from_confirmation = false;      // a leader's read lease runs from when it saw a round
                                             // confirmed, not from when it sent the round: answers
                                             // that took long to come stretch it past the
                                             // acceptors' stickiness
  bool lease_forgotten_on_restart = false;   // a restarted acceptor promises at once, though it
                                             // may have answered a lease's round just before
  bool lease_promised_by_accept = false;     // with leases, a sticky acceptor takes an Accept of a
                                             // higher ballot from another node (which promises it)
  bool lease_stale_leader_heard = false;     // an acceptor that accepts a lower ballot than one it
                                          // noted earlier (as a non-voter) keeps the higher one's
                                          // node as its leader, whose Prepares pass stickiness

  bool any() const {
    return minority_quorum || ignore_promised_value || no_persist_promise || accept_lower_ballot ||
           leader_skip_phase1 || ack_before_sync || skip_fdatasync || promise_hides_snapshot ||
           read_without_quorum || leader_learns_from_catchup || time_of_any_ballot ||
           time_carried_into_new_ballot || absurd_rounds_taken || reconfig_without_overlap ||
           learner_votes || wiped_replica_votes || removed_member_disrupts || silent_learner ||
           catchup_from_members_only || transfer_skips_phase1 || transfer_unmarked ||
           catchup_retry_storm || silent_without_snapshot || deaf_to_askers ||
           unbound_replica_votes || catchup_asks_silent_leader || read_during_change ||
           lease_from_confirmation || lease_forgotten_on_restart || lease_promised_by_accept ||
           lease_stale_leader_heard || promise_below_binding || known_compaction_steps_down ||
           promise_hides_released;
  }
};

// The names accepted by `--bug`, in a stable order.
const std::vector<std::string>& bug_names();

// Sets the bug called `name` in `bugs`; false if there is no such bug.
bool enable_bug(std::string_view name, Bugs& bugs);

}  // namespace synod::paxos
