#include "node/clock_faults.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "node/server_core.h"

namespace synod::node {

namespace {

constexpr int64_t kMaxWallOffsetMs = 86'400'000;  // a day, either way

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

Result<int64_t> parse_signed(const std::string& text, const char* what) {
  int64_t v = 0;
  const char* begin = text.data() + (!text.empty() && text[0] == '+' ? 1 : 0);
  auto [end, ec] = std::from_chars(begin, text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || begin == end)
    return Status::invalid_argument(std::string(what) + " '" + text.substr(0, 32) +
                                    "' is not a signed integer");
  return v;
}

}  // namespace

int64_t ClockFaults::max_drift_ppm() {
  return static_cast<int64_t>(std::floor(kClockDriftBound * 1e6));
}

uint64_t ClockFaults::monotonic_ms(uint64_t raw_monotonic_ms) {
  if (!anchored_) {
    anchored_ = true;
    anchor_raw_ms_ = anchor_faulted_ms_ = last_ms_ = raw_monotonic_ms;
  }
  const int64_t elapsed =
      static_cast<int64_t>(std::max(raw_monotonic_ms, anchor_raw_ms_) - anchor_raw_ms_);
  // |drift| < 1, so each raw millisecond moves the extra term by less than one: never decreasing.
  const int64_t extra = elapsed * drift_ppm_ / 1'000'000;
  const uint64_t faulted = anchor_faulted_ms_ + static_cast<uint64_t>(elapsed + extra);
  last_ms_ = std::max(last_ms_, faulted);
  monotonic_offset_ms_ = static_cast<int64_t>(last_ms_) - static_cast<int64_t>(raw_monotonic_ms);
  return last_ms_;
}

uint64_t ClockFaults::wall_ms(uint64_t raw_wall_ms) const {
  if (wall_offset_ms_ < 0 && raw_wall_ms < static_cast<uint64_t>(-wall_offset_ms_)) return 0;
  return raw_wall_ms + static_cast<uint64_t>(wall_offset_ms_);
}

Status ClockFaults::drift(int64_t ppm, uint64_t raw_monotonic_ms) {
  if (ppm < -max_drift_ppm() || ppm > max_drift_ppm())
    return Status::invalid_argument("a drift of " + std::to_string(ppm) +
                                    " ppm exceeds the bound production assumes (" +
                                    std::to_string(max_drift_ppm()) + " ppm, kClockDriftBound)");
  // Re-anchor where the clock is now, so the new rate starts from the current reading.
  anchor_faulted_ms_ = monotonic_ms(raw_monotonic_ms);
  anchor_raw_ms_ = raw_monotonic_ms;
  drift_ppm_ = ppm;
  return Status::ok();
}

void ClockFaults::reset(uint64_t raw_monotonic_ms) {
  wall_offset_ms_ = 0;
  (void)drift(0, raw_monotonic_ms);
}

std::string ClockFaults::describe() const {
  return "wall_offset_ms=" + std::to_string(wall_offset_ms_) +
         ",drift_ppm=" + std::to_string(drift_ppm_) +
         ",monotonic_offset_ms=" + std::to_string(monotonic_offset_ms_);
}

Status ClockFaults::command(const std::vector<std::string>& args, uint64_t raw_monotonic_ms) {
  const std::string mode = args.size() >= 3 ? upper(args[2]) : "";
  if (mode == "RESET" && args.size() == 3) {
    reset(raw_monotonic_ms);
    return Status::ok();
  }
  if (args.size() != 4 || (mode != "SKEW" && mode != "STEP" && mode != "DRIFT"))
    return Status::invalid_argument(
        "usage: SYNOD.FAULT CLOCK SKEW ms | STEP ms | DRIFT ppm | RESET");
  auto value = parse_signed(args[3], mode == "DRIFT" ? "ppm" : "ms");
  if (!value.is_ok()) return value.status();
  if (mode == "DRIFT") return drift(*value, raw_monotonic_ms);
  const int64_t offset = mode == "SKEW" ? *value : wall_offset_ms_ + *value;
  if (*value < -kMaxWallOffsetMs || *value > kMaxWallOffsetMs || offset < -kMaxWallOffsetMs ||
      offset > kMaxWallOffsetMs)
    return Status::invalid_argument("a wall clock offset beyond a day (" +
                                    std::to_string(kMaxWallOffsetMs) + " ms) is refused");
  wall_offset_ms_ = offset;
  return Status::ok();
}

}  // namespace synod::node
