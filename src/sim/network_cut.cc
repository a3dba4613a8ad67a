#include "sim/network_cut.h"

#include <vector>

namespace synod::sim {

namespace {

// A lossy link's chance of dropping a message: most, but not all, so that some news gets through.
double lossy(Rng& rng) {
  return 0.5 + 0.1 * double(rng.below(5));
}

}  // namespace

NetworkCut choose_cut(Rng& rng, int n, int leader_index, const std::vector<std::string>& names) {
  NetworkCut cut;
  if (n < 2) return cut;
  const int leader = leader_index >= 0 ? leader_index : int(rng.below(uint64_t(n)));
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  for (int i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(uint64_t(i) + 1)]);
  // side[i]: which side of a two-sided cut replica i is on; a bridge (side 2) talks to both.
  std::vector<int> side(n, 0);
  bool one_way_out = false;  // side 1 can hear but not send
  bool one_way_in = false;   // side 1 can send but not hear
  std::string members;
  switch (rng.below(8)) {
    case 0:
      cut.kind = "leader isolated";
      side[leader] = 1;
      break;
    case 1:
      cut.kind = "majority/minority";
      for (int i = 0; i < n / 2; ++i) side[order[i]] = 1;
      break;
    case 2:
      cut.kind = "random split";
      for (int i = 0; i < n; ++i) side[i] = rng.chance(0.5) ? 1 : 0;
      break;
    case 3:
      // Each half may build a quorum around the bridge, which must keep them from choosing
      // different values.
      cut.kind = "bridge";
      side[order[0]] = 2;
      for (int i = 1; i < n; ++i) side[order[i]] = i <= (n - 1) / 2 ? 1 : 0;
      break;
    case 4:
      cut.kind = "one-way: leader cannot send";
      side[leader] = 1;
      one_way_out = true;
      break;
    case 5:
      cut.kind = "one-way: leader cannot hear";
      side[leader] = 1;
      one_way_in = true;
      break;
    case 6: {
      // The leader hears one follower and no other; what it sends reaches the others only now
      // and then (each link its own rate), so they may or may not time out.
      cut.kind = "leader hears one";
      int heard = int(rng.below(uint64_t(n - 1)));
      if (heard >= leader) ++heard;
      for (int i = 0; i < n; ++i) {
        if (i == leader || i == heard) continue;
        cut.loss[{i, leader}] = 1;
        cut.loss[{leader, i}] = lossy(rng);
      }
      members = " " + names[leader] + " hears " + names[heard];
      break;
    }
    default:
      cut.kind = "random links";
      for (int a = 0; a < n; ++a) {
        for (int b = 0; b < n; ++b) {
          if (a == b) continue;
          const uint64_t how = rng.below(10);
          if (how < 2) cut.loss[{a, b}] = 1;
          if (how >= 2 && how < 4) cut.loss[{a, b}] = lossy(rng);
          if (how < 4) members += " " + names[a] + "->" + names[b];
        }
      }
      break;
  }
  for (int a = 0; a < n; ++a) {
    if (side[a] == 1) members += " " + names[a];
    if (side[a] == 2) members += " bridge " + names[a];
    for (int b = 0; b < n; ++b) {
      if (side[a] != 1 || side[b] != 0) continue;
      if (!one_way_in) cut.loss[{a, b}] = 1;
      if (!one_way_out) cut.loss[{b, a}] = 1;
    }
  }
  if (cut.empty()) return cut;
  const bool mixed = cut.kind == "leader hears one" || cut.kind == "random links";
  std::string how = "partition";
  if (!mixed) {
    // A two-sided cut fails one way on every link: cut, lossy or clogged.
    const uint64_t choice = rng.below(10);
    cut.clogged = choice < 4;
    if (choice >= 7) {
      const double p = lossy(rng);
      for (auto& [link, loss] : cut.loss) loss = p;
    }
    how = cut.clogged ? "clog" : choice >= 7 ? "lossy cut" : "partition";
  }
  cut.description = how + " (" + cut.kind + "):" + members;
  return cut;
}

}  // namespace synod::sim
