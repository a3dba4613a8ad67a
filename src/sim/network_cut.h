// The network faults both simulators make (the protocol simulator, sim/cluster.cc, and the
// whole-replica one, sim/core_sim.cc): one chooser, so that they cut the network the same ways.
//
// A cut is a set of directed links (from, to), each with how it fails: a link that is *cut*
// drops every message, a *lossy* one drops each with its own probability, and a *clogged* one
// holds every message until the heal and then delivers them all, late. The kinds:
//   leader isolated, majority/minority, random split   two sides, both directions
//   bridge                     two halves that cannot talk, one replica that talks to both
//   one-way: leader cannot send / cannot hear
//   leader hears one           the leader hears one follower and no other, while its own
//                              messages reach the others only now and then: it can keep a
//                              quorum's worth of news flowing one way and none the other
//   random links               every directed link independently cut, lossy or fine
// The links of one cut fail the same way (all cut, all lossy, or all clogged), except in "leader
// hears one" and "random links", whose links are lossy at their own rates.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/rng.h"

namespace synod::sim {

struct NetworkCut {
  std::string kind;         // e.g. "bridge", for the log
  std::string description;  // "clog (bridge): 2 bridge 3", for the log
  // Directed links (from index, to index) and each one's chance of dropping a message; 1 drops
  // every one. Empty: the chosen split put every replica on one side.
  std::map<std::pair<int, int>, double> loss;
  bool clogged = false;  // the links hold messages until the heal instead of dropping them

  bool empty() const { return loss.empty(); }
  // Whether a message on from -> to is stopped (held if clogged, else dropped), drawing from rng
  // for lossy links.
  bool stops(Rng& rng, int from, int to) const {
    auto it = loss.find({from, to});
    return it != loss.end() && (it->second >= 1 || rng.chance(it->second));
  }
};

// Chooses a cut of n replicas (indices 0..n-1); leader_index is the current leader's, or -1.
// `names[i]` names replica i in the description.
NetworkCut choose_cut(Rng& rng, int n, int leader_index, const std::vector<std::string>& names);

}  // namespace synod::sim
