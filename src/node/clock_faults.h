// Injected clock faults for one replica (tests only: `synod server --fault-injection`, command
// `SYNOD.FAULT CLOCK`, driven by `synod chaos --faults clock`). ServerCore reads both of its
// clocks through this object, so a fault moves every time the replica uses: the cluster clock it
// leads with, and the wall clock it reads at the cluster's birth (and under planted bugs).
//
// The faults stay inside what production clocks do (docs/core.md, "Time"):
//   - the wall clock may be off by any amount and jump either way (skew: a fixed offset; step: a
//     jump by a signed amount), as an NTP step or a mis-set machine makes it;
//   - the monotonic clock never jumps and never runs backwards; it may only run fast or slow, by
//     a rate within kClockDriftBound of the underlying clock (drift). Changing the rate
//     re-anchors it, so the faulted clock is continuous and never decreases.
// Not thread-safe: the replica's event loop owns it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace synod::node {

class ClockFaults {
 public:
  // The largest drift accepted, in parts per million: kClockDriftBound (server_core.h).
  static int64_t max_drift_ppm();

  // The faulted clocks, given the real ones (`raw_*_ms`, as the replica's Clock reads them).
  uint64_t monotonic_ms(uint64_t raw_monotonic_ms);
  uint64_t wall_ms(uint64_t raw_wall_ms) const;

  void skew_wall(int64_t offset_ms) { wall_offset_ms_ = offset_ms; }
  void step_wall(int64_t delta_ms) { wall_offset_ms_ += delta_ms; }
  // Runs the monotonic clock `ppm` parts per million fast (negative: slow) from the raw reading
  // `raw_monotonic_ms` on. Refused beyond max_drift_ppm(): production assumes no faster drift.
  [[nodiscard]] Status drift(int64_t ppm, uint64_t raw_monotonic_ms);
  // Wall offset and drift back to 0. The monotonic clock keeps the lead or lag it gathered, as a
  // clock that stops drifting does: taking it back would be a jump.
  void reset(uint64_t raw_monotonic_ms);

  int64_t wall_offset_ms() const { return wall_offset_ms_; }
  int64_t drift_ppm() const { return drift_ppm_; }
  // The faulted monotonic clock's lead over the raw one (negative: lag), as of the last reading.
  int64_t monotonic_offset_ms() const { return monotonic_offset_ms_; }
  // "wall_offset_ms=..,drift_ppm=..,monotonic_offset_ms=.." (for INFO).
  std::string describe() const;

  // Runs `SYNOD.FAULT CLOCK ...` (args[0] is "SYNOD.FAULT", args[1] "CLOCK"):
  //   SKEW <ms>    the wall clock runs <ms> (signed) off the real one from now on
  //   STEP <ms>    the wall clock jumps by <ms> (signed), on top of its current offset
  //   DRIFT <ppm>  the monotonic clock runs <ppm> (signed, |ppm| <= max_drift_ppm()) fast
  //   RESET        no wall offset, no drift
  // Offsets are bounded by a day. An error Status says what was wrong with the arguments.
  [[nodiscard]] Status command(const std::vector<std::string>& args, uint64_t raw_monotonic_ms);

 private:
  int64_t wall_offset_ms_ = 0;
  int64_t drift_ppm_ = 0;
  // The faulted monotonic clock is anchor_faulted + elapsed * (1 + drift), elapsed counted from
  // anchor_raw; it starts equal to the raw clock.
  bool anchored_ = false;
  uint64_t anchor_raw_ms_ = 0;
  uint64_t anchor_faulted_ms_ = 0;
  uint64_t last_ms_ = 0;  // the highest reading given out: never less
  int64_t monotonic_offset_ms_ = 0;
};

}  // namespace synod::node
