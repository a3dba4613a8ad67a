#include "sim/options.h"

#include <algorithm>
#include <charconv>

namespace synod::sim {

bool Options::apply_fault_mix(std::string_view mix) {
  return sim::apply_fault_mix(mix, *this);
}

Options Options::swarmed(Rng& rng) const {
  Options out = *this;
  if (!swarm) return out;
  static constexpr double kFactors[] = {0, 0.5, 1, 2, 4};
  auto scale = [&](double& knob) { knob = std::min(1.0, knob * kFactors[rng.below(5)]); };
  scale(out.loss);
  scale(out.duplicate);
  scale(out.long_delay);
  scale(out.crash_after_sync);
  scale(out.crash_after_promise);
  // The nemesis strikes between 4x more and 2x less often than the knobs say.
  const uint64_t divisor = 1 + rng.below(4);
  out.nemesis_interval_min_us = nemesis_interval_min_us * 2 / divisor;
  out.nemesis_interval_max_us = nemesis_interval_max_us * 2 / divisor;
  out.clients = 1 + int(rng.below(uint64_t(clients) * 2));
  // Snapshots: never, rarely, or often.
  static constexpr uint64_t kSnapshotFactors[] = {0, 1, 4};
  out.snapshot_every = snapshot_every / 2 * kSnapshotFactors[rng.below(3)];
  // Around production's pipeline: its window and batches most of the time, sometimes narrow
  // (a window of 1 is the textbook one slot at a time; small batches split the load).
  static constexpr size_t kWindows[] = {0, 0, 8, 1};
  if (const size_t w = kWindows[rng.below(4)]; w != 0) out.max_inflight_slots = w;
  if (rng.chance(0.3)) out.max_batch_commands = 4;
  return out;
}

std::optional<std::pair<uint64_t, uint64_t>> parse_seed_range(std::string_view text) {
  auto parse = [](std::string_view s) -> std::optional<uint64_t> {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
  };
  const size_t dash = text.find('-');
  auto lo = parse(text.substr(0, dash));
  auto hi = dash == std::string_view::npos ? lo : parse(text.substr(dash + 1));
  if (!lo || !hi || *lo > *hi) return std::nullopt;
  return std::make_pair(*lo, *hi);
}

}  // namespace synod::sim
