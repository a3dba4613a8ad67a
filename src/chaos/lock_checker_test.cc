// The lock and TTL checks of the chaos run (lock_checker.h), on hand-made histories.
#include "chaos/lock_checker.h"

#include <gtest/gtest.h>

namespace synod::chaos {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr double kRho = 1e-3;

LockAttempt acquired(const std::string& token, int64_t call_ms, int64_t reply_ms, int64_t ttl_ms,
                     std::optional<int64_t> release_ms = std::nullopt) {
  LockAttempt a;
  a.lock = "lock0";
  a.token = token;
  a.ttl_ms = ttl_ms;
  a.call_ns = call_ms * kMs;
  a.reply_ns = reply_ms * kMs;
  a.acquired = true;
  if (release_ms) {
    a.release_call_ns = *release_ms * kMs;
    a.released = 1;
  }
  return a;
}

TEST(LockChecker, TheWindowRunsFromTheReplyToTheEarliestExpiryOrTheRelease) {
  // Invoked at 1000 ms, PX 1000: the earliest expiry is 1000 + 999 - 2 = 1997 ms.
  Window w = validity(acquired("a", 1000, 1100, 1000), kRho);
  EXPECT_EQ(w.start_ns, 1100 * kMs);
  EXPECT_EQ(w.end_ns, 1997 * kMs);
  w = validity(acquired("a", 1000, 1100, 1000, 1500), kRho);
  EXPECT_EQ(w.end_ns, 1500 * kMs);
  // An OK that arrives after the validity ran out gives nothing to hold.
  w = validity(acquired("a", 1000, 2500, 1000), kRho);
  EXPECT_GE(w.start_ns, w.end_ns);
}

TEST(LockChecker, OverlappingHoldersAreAViolation) {
  const LockReport r =
      check_locks({acquired("a", 1000, 1010, 1000), acquired("b", 1500, 1510, 1000)}, kRho);
  EXPECT_EQ(r.held, 2u);
  EXPECT_EQ(r.two_holders_total, 1u);
  ASSERT_EQ(r.two_holders.size(), 1u);
  EXPECT_NE(r.two_holders[0].find("token a"), std::string::npos) << r.two_holders[0];
}

TEST(LockChecker, HandoversByReleaseOrByExpiryAreFine) {
  // b is answered after a's DELIFEQ was sent.
  EXPECT_EQ(
      check_locks({acquired("a", 1000, 1010, 1000, 1200), acquired("b", 1100, 1250, 1000)}, kRho)
          .two_holders_total,
      0u);
  // b is answered after a's earliest expiry (1997 ms), though it was sent long before.
  EXPECT_EQ(check_locks({acquired("a", 1000, 1010, 1000), acquired("b", 1300, 1998, 1000)}, kRho)
                .two_holders_total,
            0u);
  // One millisecond earlier, a may still be working: two holders.
  EXPECT_EQ(check_locks({acquired("a", 1000, 1010, 1000), acquired("b", 1300, 1996, 1000)}, kRho)
                .two_holders_total,
            1u);
}

TEST(LockChecker, OnlyAcquisitionsCountAndLocksAreSeparate) {
  LockAttempt refused = acquired("b", 1100, 1110, 1000);
  refused.acquired = false;
  LockAttempt unknown = acquired("c", 1100, 1110, 1000);
  unknown.reply_ns.reset();
  LockAttempt other = acquired("d", 1100, 1110, 1000);
  other.lock = "lock1";
  const LockReport r =
      check_locks({acquired("a", 1000, 1010, 1000), refused, unknown, other}, kRho);
  EXPECT_EQ(r.attempts, 4u);
  EXPECT_EQ(r.acquired, 3u);  // the unknown one was never believed held
  EXPECT_EQ(r.held, 2u);
  EXPECT_EQ(r.two_holders_total, 0u);
}

TEST(LockChecker, AHolderOverlappingAnEarlierOneThatReachedFurtherIsFound) {
  // b's window lies inside a's; c's overlaps a's but not b's: both are violations.
  const LockReport r = check_locks({acquired("a", 1000, 1010, 1000), acquired("b", 1100, 1110, 100),
                                    acquired("c", 1400, 1410, 1000)},
                                   kRho);
  EXPECT_EQ(r.two_holders_total, 2u);
}

TtlOp set(const std::string& value, int64_t call_ms, std::optional<int64_t> return_ms,
          int64_t ttl_ms) {
  TtlOp op;
  op.key = "t0";
  op.write = true;
  op.value = value;
  op.ttl_ms = ttl_ms;
  op.call_ns = call_ms * kMs;
  if (return_ms) op.return_ns = *return_ms * kMs;
  return op;
}

TtlOp get(std::optional<std::string> output, int64_t call_ms, int64_t return_ms) {
  TtlOp op;
  op.key = "t0";
  op.output = std::move(output);
  op.call_ns = call_ms * kMs;
  op.return_ns = return_ms * kMs;
  return op;
}

TEST(TtlChecker, AKeyThatExpiresStaysExpired) {
  const TtlReport fine = check_ttl({set("v", 0, 10, 100), get("v", 20, 30),
                                    get(std::nullopt, 200, 210), get(std::nullopt, 300, 310)},
                                   kRho);
  EXPECT_EQ(fine.reappeared_total + fine.expired_early_total, 0u);
  EXPECT_EQ(fine.reads_missing, 2u);
  const TtlReport back =
      check_ttl({set("v", 0, 10, 100), get(std::nullopt, 200, 210), get("v", 300, 310)}, kRho);
  EXPECT_EQ(back.reappeared_total, 1u);
  ASSERT_EQ(back.reappeared.size(), 1u);
  EXPECT_NE(back.reappeared[0].find("'v'"), std::string::npos) << back.reappeared[0];
}

TEST(TtlChecker, AReadOverlappingTheWriteOrEachOtherMayMissIt) {
  // The first read began before the write was acknowledged: it may precede it.
  EXPECT_EQ(check_ttl({set("v", 0, 50, 1000), get(std::nullopt, 40, 60), get("v", 100, 110)}, kRho)
                .reappeared_total,
            0u);
  // The reads overlap: no order between them.
  EXPECT_EQ(
      check_ttl({set("v", 0, 10, 1000), get(std::nullopt, 900, 1200), get("v", 1100, 1150)}, kRho)
          .reappeared_total,
      0u);
}

TEST(TtlChecker, AKeyGoneBeforeItsTtlCouldRunOutIsExpiredEarly) {
  const TtlReport early = check_ttl({set("v", 0, 10, 1000), get(std::nullopt, 500, 510)}, kRho);
  EXPECT_EQ(early.expired_early_total, 1u);
  // After the earliest expiry (997 ms) a miss is fine.
  EXPECT_EQ(
      check_ttl({set("v", 0, 10, 1000), get(std::nullopt, 990, 998)}, kRho).expired_early_total,
      0u);
  // A later write with a short TTL, which may have expired by then, explains the miss...
  EXPECT_EQ(check_ttl({set("v", 0, 10, 1000), set("w", 100, std::nullopt, 100),
                       get(std::nullopt, 500, 510)},
                      kRho)
                .expired_early_total,
            0u);
  // ... but not one that cannot have expired yet, nor one acknowledged before v was sent.
  EXPECT_EQ(
      check_ttl({set("v", 0, 10, 1000), set("w", 100, 110, 1000), get(std::nullopt, 500, 510)},
                kRho)
          .expired_early_total,
      1u);
  EXPECT_EQ(
      check_ttl({set("w", -300, -200, 100), set("v", 0, 10, 1000), get(std::nullopt, 500, 510)},
                kRho)
          .expired_early_total,
      1u);
  // A read of a later write's value is explained by that write.
  EXPECT_EQ(check_ttl({set("v", 0, 10, 1000), set("w", 100, 110, 1000), get("w", 500, 510)}, kRho)
                .expired_early_total,
            0u);
}

}  // namespace
}  // namespace synod::chaos
