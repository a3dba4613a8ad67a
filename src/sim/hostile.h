// The hostile peer both simulators run (the protocol simulator, sim/cluster.cc, and the
// whole-replica one, sim/core_sim.cc): well-formed but absurd protocol messages in a member's
// name, as a peer that got past authentication (or a buggy one) would send them.
//
// What it sends: Prepares of rounds just above the highest any replica knows, implausibly far
// above it, at the ceiling or at 2^64 - 1; heartbeats (empty Accepts) of implausible rounds with
// commits and read rounds far ahead; Rejects naming absurd promises; catch-up and snapshot
// requests for slots and offsets far beyond the log. A Prepare of a plausible round is harmless
// (a promise is always safe); an implausible one must be refused by every replica. An Accept's
// round is always implausible: a heartbeat of a round the real owner may use later could
// announce as chosen what that owner's acceptors accepted but never chose.
//
// What it never sends: a value (a forged Accept with entries, a Promise or an Accepted is a
// Byzantine peer, which Paxos does not survive and authentication keeps out), and a round
// plausible to some replicas and not to others (about kMaxRoundStep above the highest known),
// which splits the acceptors between those that take it and those that never take the rounds
// above it — tried: 3-6 liveness failures in 1,500 seeds. Plausible rounds stay within 1,000 of
// the highest known and implausible ones start half a step further than plausible, so that no
// chain of hostile messages makes a round plausible to one replica and not to the others.
// Impersonating a member is outside the fault model; authenticating peers keeps it out
// (docs/simulator.md). So is a plausible Prepare in the name of a replica that leads: only that
// leader could send it, and it would be the leader starting a new ballot, which ends its own
// leadership and which its followers cannot tell from a real campaign. (Sent, it made the
// disruption check blame a healthy cluster: sim --protocol --lease --reconfig --replicas 5,
// seed 2102.) In a leader's name the hostile peer sends only implausible Prepares.
#pragma once

#include <cstdint>

#include "base/rng.h"
#include "base/types.h"
#include "paxos/messages.h"

namespace synod::sim {

// A hostile message in `from`'s name; `known_round` is the highest round any live replica has
// promised or seen; `from_leads`: `from` is up and leads.
paxos::Message hostile_message(Rng& rng, NodeId from, uint64_t known_round, bool from_leads);

}  // namespace synod::sim
