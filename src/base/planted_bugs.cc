#include "base/planted_bugs.h"

namespace synod {

const std::vector<PlantedBugInfo>& planted_bugs() {
  static const std::vector<PlantedBugInfo> bugs = {
      // The protocol core.
      {"minority-quorum", BugLayer::kProtocol,
       "quorums of floor(N/2): two of them need not intersect",
       "sim, sim --protocol, check, check --replica"},
      {"ignore-promised-value", BugLayer::kProtocol,
       "a new leader proposes its own value over one a promise reported",
       "sim, sim --protocol, check, check --replica"},
      {"no-persist-promise", BugLayer::kProtocol, "an acceptor's promise is not made durable",
       "sim, sim --protocol, check, check --replica"},
      {"accept-lower-ballot", BugLayer::kProtocol, "an acceptor accepts a ballot below its promise",
       "sim --protocol, check, check --replica, sim (now and then)"},
      {"leader-skip-phase1", BugLayer::kProtocol, "a new leader goes straight to phase 2",
       "sim, sim --protocol, check, check --replica"},
      {"ack-before-sync", BugLayer::kProtocol,
       "the driver answers before the sync that the answer vouches for",
       "sim, sim --protocol --disk-faults, check, check --replica"},
      {"skip-fdatasync", BugLayer::kProtocol, "the log reports a sync without calling fdatasync",
       "sim, sim --protocol"},
      {"promise-hides-snapshot", BugLayer::kProtocol,
       "a promise does not say which slots its acceptor compacted",
       "sim, sim --protocol, check --replica --compactions 1 (10-step trace)"},
      {"read-without-quorum", BugLayer::kProtocol,
       "a leader serves reads without confirming that it still leads",
       "sim --protocol, sim, check --replica --reads 1 (11-step trace)"},
      {"leader-learns-from-catchup", BugLayer::kProtocol,
       "a leader learns slots from catch-up replies and announces them in its own ballot "
       "(review finding 1)",
       "the leader-learning check of check --replica (11-step trace) and of sim --protocol (2 of "
       "200 seeds, `synod sim --protocol "
       "--replicas 5 --bug leader-learns-from-catchup --seeds 1-200 --keep-going`) and of sim "
       "(5 of 1,000 with --replicas 5); its agreement violation only a hand-built schedule "
       "(replica_test.cc): 0 of 5,000 seeds"},
      {"time-of-any-ballot", BugLayer::kProtocol,
       "cluster time is the highest any acceptor saw in any ballot: a cut-off leader's clock "
       "lifts its successor's, and keys expire early",
       "sim (5 replicas, frequent partitions)"},
      {"time-carried-into-new-ballot", BugLayer::kProtocol,
       "a new leader's first Accepts carry the time of its previous leadership, and acceptors "
       "take 'no time' as the new ballot's",
       "sim (5 replicas, 1 seed in 3,000), a hand-built schedule (replica_test.cc)"},
      {"absurd-rounds-taken", BugLayer::kProtocol,
       "acceptors take any round, however far above the rounds they know: one forged Prepare "
       "at the top round ends all elections (review)",
       "sim, sim --protocol (the hostile peer; a liveness violation)"},
      {"reconfig-without-overlap", BugLayer::kProtocol,
       "a leader proposes past a configuration change that is not chosen yet, under the new "
       "configuration's quorums: a slot can be chosen by quorums of two configurations that miss "
       "each other",
       "sim --protocol --reconfig"},
      {"learner-votes", BugLayer::kProtocol,
       "a learner's answers count in quorums, though it was never asked in phase 1",
       "sim --protocol --reconfig"},
      {"wiped-replica-votes", BugLayer::kProtocol,
       "a replica restarted on a wiped data directory votes under its old node id, forgetting its "
       "promises and acceptances: its peers' servers take any incarnation in its Hello (no PEERS "
       "pin), and their cores count a member's messages whatever incarnation sent them (no "
       "binding)",
       "sim --protocol --reconfig (which wipes replicas); the identity e2e tests (IdentityE2E: the "
       "wiped replica rejoins instead of being refused, and counts in a quorum)"},
      {"removed-member-disrupts", BugLayer::kProtocol,
       "a replica whose election timer fires starts phase 1 without a PreVote round, and followers "
       "answer Prepares while they still hear a healthy leader: a replica cut off (or removed) "
       "deposes the leader when it comes back",
       "the disruption check of sim and sim --protocol (a follower isolated from a stable leader, "
       "then healed)"},
      {"silent-learner", BugLayer::kProtocol,
       "a replica that may not campaign and hears no leader waits instead of asking a peer what "
       "is chosen: when the leader that removed itself announced a change that made another "
       "replica the only voter, and the announcement was lost, nobody ever leads",
       "sim --protocol --reconfig (liveness)"},
      {"catchup-from-members-only", BugLayer::kProtocol,
       "catch-up answers from a sender that this replica's configuration does not list are "
       "dropped: a learner behind the change that added its leader never catches up",
       "sim --protocol --reconfig (liveness)"},
      {"transfer-skips-phase1", BugLayer::kProtocol,
       "the target of a leader transfer takes over in a new ballot without phase 1, trusting "
       "that it accepted everything the old leader proposed: a TimeoutNow that arrives late, "
       "after the old leader gave up the transfer and went on, or after another leader, "
       "overwrites chosen slots",
       "sim --protocol --transfer; check --replica --transfers 1"},
      {"transfer-unmarked", BugLayer::kProtocol,
       "the target of a leader transfer does not mark its Prepares as a transfer: followers that "
       "still hear the old leader ignore them, the old leader steps down, and nobody leads until "
       "an election timeout passes",
       "the transfer probe of sim --protocol --transfer (a handover to a healthy voter, once "
       "calm)"},
      {"catchup-retry-storm", BugLayer::kProtocol,
       "a laggard re-sends an unanswered catch-up request every retransmit interval however long "
       "the answer takes: over a slow link each large reply is asked for again and again, the "
       "copies queue ahead of everything else, and the laggard never catches up (on two cores, "
       "two replicas sat at 100% CPU building 4 MiB replies)",
       "sim --protocol --link-bytes-per-ms (liveness)"},
      {"silent-without-snapshot", BugLayer::kProtocol,
       "a peer asked for the rest of a snapshot when it has taken none answers nothing: a "
       "laggard that began another peer's snapshot asks the next leader for it again and again, "
       "and never catches up (found by sim --core, 5 replicas with disk faults, once replicas "
       "stopped snapshotting at the same slots)",
       "sim --core --replicas 5 --disk-faults (liveness)"},
      {"deaf-to-askers", BugLayer::kProtocol,
       "a replica asked for the slots after another's chosen prefix, above its own, does not ask "
       "back: a spare made the only voter and restarted knowing no configuration has no peer to "
       "ask, the others wait for it to lead, and nobody ever does",
       "sim --protocol --reconfig (liveness; seed 5471)"},
      {"unbound-replica-votes", BugLayer::kProtocol,
       "a replica on a new data directory (added at run time, or wiped and back under its old id "
       "with --join) promises and accepts before a configuration it knows binds its incarnation: "
       "a founding voter that never heard of the binding (down since the start) counts the wiped "
       "replica's empty promise, and chooses another value where the binding was chosen",
       "check --replica --wipes 1 --absent; sim --protocol --reconfig (seeds 15159, 17810)"},
      {"catchup-asks-silent-leader", BugLayer::kProtocol,
       "a replica asks the last leader it heard of for what is chosen however long that leader "
       "has been silent: a voter behind the configuration that would let it vote asked a wiped "
       "leader, whose answers its pin refused, for the rest of a snapshot, and without it no "
       "quorum could elect anyone",
       "sim --protocol --reconfig (liveness; seed 13100)"},
      {"read-during-change", BugLayer::kProtocol,
       "a leader fixes a read's index while a configuration change it proposed is in flight: "
       "once the change is chosen, a value an earlier leader's Accepts left with a quorum of the "
       "new voters is chosen in the slot after it, and the read is served below it",
       "sim --protocol --reconfig (the reads check; seed 17055)"},
      {"promise-below-binding", BugLayer::kProtocol,
       "a replica on a wiped directory, bound under its old id before any configuration bound "
       "its old incarnation, promises with empty state for the slots below the binding, and "
       "votes there: the old incarnation's vote there is lost, and a voter that never met it "
       "counts the new one's promise (or a stale leader its Accepted) and chooses over a chosen "
       "value",
       "no checker yet (membership_test.cc; a review found it)"},
      {"known-compaction-steps-down", BugLayer::kProtocol,
       "a leader steps down and catches up for a promise whose sender compacted only slots the "
       "leader knows chosen: a leader that asked new voters for promises after a change, from "
       "where its phase 1 began, gave up its office for nothing (a needless election)",
       "sim --protocol --reconfig --replicas 5 (the disruption check; seed 7836)"},
      {"promise-hides-released", BugLayer::kProtocol,
       "a promise does not say which slots its acceptor let go of the chosen values of (to read "
       "them back from its log), and reports nothing it accepted there: a candidate proposes "
       "over a chosen value",
       "sim --protocol (seed 9 of 1,000 with --replicas 5), sim (seed 100), check --replica "
       "--release (12-step trace)"},
      {"lease-from-confirmation", BugLayer::kProtocol,
       "a leader's read lease runs from when it saw a round answered instead of from when it "
       "sent the round: answers that took long to arrive stretch it past the time the "
       "acceptors that gave them keep other candidates out, and the leader serves a read by "
       "lease after another leader got a write chosen",
       "check --replica --lease-periods 1 (the reads check; 18 steps)"},
      {"lease-forgotten-on-restart", BugLayer::kProtocol,
       "an acceptor that restarts promises other candidates at once, though it may have "
       "answered a lease's round just before it crashed: a new leader is elected while the old "
       "one still serves reads by lease",
       "check --replica --lease-periods 1 --crashes 1 (the reads check; 16 steps)"},
      {"lease-promised-by-accept", BugLayer::kProtocol,
       "with lease reads, an acceptor that keeps candidates out takes an Accept of a higher "
       "ballot from another node, which promises that ballot: a leader of a configuration the "
       "acceptor has left behind, elected without it, re-proposes the change and so gets its "
       "promise in the new configuration, and has a write chosen while the lease still holds "
       "(found by review)",
       "sim --protocol --lease --reconfig (the disruption check; seed 968 of 15,000)"},
      {"lease-stale-leader-heard", BugLayer::kProtocol,
       "an acceptor that accepts an Accept below a ballot it noted earlier without promising it "
       "(a joiner that heard a stale leader before it could vote) keeps that ballot's node as "
       "the leader it hears: after it answers the lease holder's round, the stale leader's "
       "Prepare passes its stickiness and a write is chosen under the lease (found by review)",
       "no checker yet (lease_test.cc builds the review's schedule)"},
      // What the server adds around the core.
      {"early-undurable-ballot", BugLayer::kReplica,
       "requests leave before their ballot is durable", "sim"},
      {"unsynced-checkpoint", BugLayer::kReplica,
       "a new segment's promise is left to the next sync", "sim --disk-faults"},
      {"self-answers-early", BugLayer::kReplica,
       "a replica's acceptor answers its own proposer before the sync", "sim"},
      {"ack-on-propose", BugLayer::kReplica, "a write is answered OK once queued, not once chosen",
       "sim"},
      {"compact-before-snapshot-durable", BugLayer::kReplica,
       "the log is compacted when a snapshot starts (in a forked child, off the loop), before its "
       "file is durable: a crash meanwhile forgets accepted entries",
       "sim (vouching)"},
      {"marker-in-payload", BugLayer::kReplica,
       "recovery trusts any checksummed marker, which a value can forge (review finding 9)",
       "sim --disk-faults"},
      {"wall-clock-expiry", BugLayer::kReplica,
       "commands are stamped with the leader's wall clock (review finding 3)", "sim"},
      {"reads-at-local-clock", BugLayer::kReplica,
       "reads are served at the serving replica's wall clock (review finding 2)", "sim"},
      {"time-told-before-ready", BugLayer::kReplica,
       "a leader waiting out a recovered time horizon already stamps its Accepts with its clock, "
       "which may be below times served in lower ballots",
       "sim --disk-faults (2 of 50,000 seeds with 3 replicas, 1 of 40,000 with 5), a hand-built "
       "schedule (ServerCore tests)"},
      {"sessions-evicted-by-clock", BugLayer::kReplica,
       "client sessions idle for a while of log time are forgotten, so a retry stamped by a "
       "leader whose clock runs ahead applies twice (review finding 4)",
       "sim with wall-clock-expiry, whose leaders make log time leap (counters or lincheck); "
       "ServerCore tests"},
      {"exec-ignores-watch", BugLayer::kReplica,
       "EXEC applies its commands even when a key it watched was modified after the WATCH, so "
       "WATCH/MULTI/EXEC retry loops lose updates",
       "the transactions e2e test (concurrent WATCH incrementers end short); "
       "Transaction.PlantedBugExecIgnoresWatchLosesAnUpdate; chaos --workload bank (bad sums)"},
      // The request router.
      {"stale-follower-reads", BugLayer::kServer,
       "a follower answers reads from its own state machine",
       "sim (reads, 960 of 1,000 seeds); chaos"},
      {"ack-before-chosen", BugLayer::kServer,
       "the leader acknowledges a write as soon as it proposes it",
       "sim (a mistyped reply or durability, every seed); chaos"},
      {"follower-read-before-apply", BugLayer::kServer,
       "a follower serves a read once it has a read index, before applying through it",
       "sim (reads, 573 of 1,000 seeds); chaos"},
      {"duplicate-forwards-run", BugLayer::kServer,
       "a copy of a forwarded command that the leader already took is run again, so a write "
       "whose first copy was refused (TRYAGAIN: not applied) is applied after all (with the "
       "follower trusting that refusal, as forward-refusal-trusted: the lie needs both)",
       "sim --disk-faults (linearizable; 2 of 50,000 seeds with 3 replicas)"},
      {"forward-refusal-trusted", BugLayer::kServer,
       "a forwarded write refused by the replica it reached is reported not applied, though "
       "another copy of the forward reached that replica before it restarted and was proposed",
       "sim --disk-faults (linearizable; seed 40640 of 50,000 with 3 replicas)"},
      {"forward-retry-new-id", BugLayer::kServer,
       "a forwarded write whose outcome is unknown is sent again under a new command id, so it "
       "can apply twice",
       "sim (counters or lincheck, 222 of 1,000 seeds)"},
      {"multi-split", BugLayer::kServer,
       "EXEC proposes each of its queued commands as a log entry of its own, so other clients' "
       "commands come between them and a failover can apply half a transaction",
       "chaos --workload bank (bad sums)"},
  };
  return bugs;
}

const PlantedBugInfo* find_planted_bug(std::string_view name) {
  for (const PlantedBugInfo& bug : planted_bugs())
    if (bug.name == name) return &bug;
  return nullptr;
}

std::vector<std::string> planted_bug_names(BugLayer layer) {
  std::vector<std::string> out;
  for (const PlantedBugInfo& bug : planted_bugs())
    if (bug.layer == layer) out.emplace_back(bug.name);
  return out;
}

std::string planted_bug_list(BugLayer layer) {
  std::string out;
  for (const std::string& name : planted_bug_names(layer)) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace synod
