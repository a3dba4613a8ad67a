#include "node/clock_faults.h"

#include <gtest/gtest.h>

#include "node/server_core.h"

namespace synod::node {
namespace {

Status run(ClockFaults& c, std::vector<std::string> tail, uint64_t raw_monotonic_ms = 0) {
  std::vector<std::string> args = {"SYNOD.FAULT", "CLOCK"};
  args.insert(args.end(), tail.begin(), tail.end());
  return c.command(args, raw_monotonic_ms);
}

TEST(ClockFaults, WithoutFaultsBothClocksAreTheRealOnes) {
  ClockFaults c;
  EXPECT_EQ(c.monotonic_ms(1000), 1000u);
  EXPECT_EQ(c.monotonic_ms(5000), 5000u);
  EXPECT_EQ(c.wall_ms(1'700'000'000'000), 1'700'000'000'000u);
}

TEST(ClockFaults, SkewSetsAndStepMovesTheWallClockEitherWay) {
  ClockFaults c;
  ASSERT_TRUE(run(c, {"SKEW", "-3600000"}).is_ok());
  EXPECT_EQ(c.wall_ms(10'000'000), 6'400'000u);
  ASSERT_TRUE(run(c, {"STEP", "+7200000"}).is_ok());
  EXPECT_EQ(c.wall_ms(10'000'000), 13'600'000u);
  ASSERT_TRUE(run(c, {"skew", "0"}).is_ok());
  EXPECT_EQ(c.wall_ms(10'000'000), 10'000'000u);
  EXPECT_EQ(c.wall_ms(5), 5u);
  ASSERT_TRUE(run(c, {"SKEW", "-10"}).is_ok());
  EXPECT_EQ(c.wall_ms(5), 0u);  // never below the epoch
  // The wall clock never moves the monotonic one.
  EXPECT_EQ(c.monotonic_ms(777), 777u);
}

TEST(ClockFaults, DriftRunsTheMonotonicClockFastOrSlowWithoutAJump) {
  ClockFaults c;
  EXPECT_EQ(c.monotonic_ms(10'000), 10'000u);
  ASSERT_TRUE(run(c, {"DRIFT", "1000"}, 10'000).is_ok());
  EXPECT_EQ(c.monotonic_ms(10'000), 10'000u);  // no jump at the change
  EXPECT_EQ(c.monotonic_ms(20'000), 20'010u);  // 10 s at +1000 ppm
  ASSERT_TRUE(run(c, {"DRIFT", "-1000"}, 20'000).is_ok());
  EXPECT_EQ(c.monotonic_ms(20'000), 20'010u);
  EXPECT_EQ(c.monotonic_ms(30'000), 30'000u);  // 10 s at -1000 ppm: 9,990 ms
  EXPECT_EQ(c.monotonic_offset_ms(), 0);
  // Reset stops the drift, and keeps what it gathered (taking it back would be a jump).
  ASSERT_TRUE(run(c, {"DRIFT", "500"}, 30'000).is_ok());
  EXPECT_EQ(c.monotonic_ms(40'000), 40'005u);
  ASSERT_TRUE(run(c, {"RESET"}, 40'000).is_ok());
  EXPECT_EQ(c.monotonic_ms(50'000), 50'005u);
  EXPECT_EQ(c.monotonic_offset_ms(), 5);
}

TEST(ClockFaults, TheSlowMonotonicClockNeverGoesBackwards) {
  ClockFaults c;
  ASSERT_TRUE(run(c, {"DRIFT", "-1000"}, 0).is_ok());
  uint64_t last = 0;
  for (uint64_t raw = 0; raw < 5000; ++raw) {
    const uint64_t now = c.monotonic_ms(raw);
    ASSERT_GE(now, last) << "at raw " << raw;
    last = now;
  }
  EXPECT_EQ(last, 4995u);
}

TEST(ClockFaults, DriftBeyondTheBoundProductionAssumesIsRefused) {
  ClockFaults c;
  EXPECT_EQ(ClockFaults::max_drift_ppm(), static_cast<int64_t>(kClockDriftBound * 1e6));
  EXPECT_FALSE(run(c, {"DRIFT", std::to_string(ClockFaults::max_drift_ppm() + 1)}).is_ok());
  EXPECT_FALSE(run(c, {"DRIFT", std::to_string(-ClockFaults::max_drift_ppm() - 1)}).is_ok());
  EXPECT_EQ(c.drift_ppm(), 0);
}

TEST(ClockFaults, BadArgumentsAreRefusedAndChangeNothing) {
  ClockFaults c;
  EXPECT_FALSE(run(c, {}).is_ok());
  EXPECT_FALSE(run(c, {"SKEW"}).is_ok());
  EXPECT_FALSE(run(c, {"SKEW", "12x"}).is_ok());
  EXPECT_FALSE(run(c, {"SKEW", ""}).is_ok());
  EXPECT_FALSE(run(c, {"JUMP", "5"}).is_ok());
  EXPECT_FALSE(run(c, {"SKEW", "86400001"}).is_ok());
  ASSERT_TRUE(run(c, {"SKEW", "86400000"}).is_ok());
  EXPECT_FALSE(run(c, {"STEP", "1"}).is_ok());  // past a day in total
  EXPECT_EQ(c.wall_offset_ms(), 86'400'000);
  EXPECT_EQ(c.describe(), "wall_offset_ms=86400000,drift_ppm=0,monotonic_offset_ms=0");
}

}  // namespace
}  // namespace synod::node
