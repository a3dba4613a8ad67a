#include "chaos/bank_checker.h"

#include <gtest/gtest.h>

namespace synod::chaos {
namespace {

BankRead read_of(std::vector<std::optional<int64_t>> balances) {
  BankRead r;
  r.how = "mget";
  r.call_ns = 1'000'000'000;
  r.return_ns = 1'500'000'000;
  r.balances = std::move(balances);
  return r;
}

TEST(BankChecker, ReadsThatSumToTheTotalPass) {
  const BankReport r = check_bank({read_of({100, 100, 100}), read_of({0, 150, 150})}, 300);
  EXPECT_EQ(r.reads, 2u);
  EXPECT_EQ(r.bad_sums_total, 0u);
  EXPECT_EQ(r.negative_total, 0u);
  EXPECT_TRUE(r.bad.empty());
}

TEST(BankChecker, HalfATransferIsABadSum) {
  // 30 left account 0 and never reached account 1.
  const BankReport r = check_bank({read_of({100, 100, 100}), read_of({70, 100, 100})}, 300);
  EXPECT_EQ(r.bad_sums_total, 1u);
  EXPECT_EQ(r.negative_total, 0u);
  ASSERT_EQ(r.bad.size(), 1u);
  EXPECT_NE(r.bad[0].find("saw [70 100 100]: sum 270 of 300"), std::string::npos) << r.bad[0];
}

TEST(BankChecker, ANegativeBalanceIsCaughtEvenWhenTheSumIsRight) {
  const BankReport r = check_bank({read_of({-10, 160, 150})}, 300);
  EXPECT_EQ(r.bad_sums_total, 0u);
  EXPECT_EQ(r.negative_total, 1u);
  EXPECT_EQ(r.bad.size(), 1u);
}

TEST(BankChecker, AMissingAccountIsABadSum) {
  const BankReport r = check_bank({read_of({100, std::nullopt, 200})}, 300);
  EXPECT_EQ(r.bad_sums_total, 1u);
  ASSERT_EQ(r.bad.size(), 1u);
  EXPECT_NE(r.bad[0].find("[100 nil 200]"), std::string::npos) << r.bad[0];
}

TEST(BankChecker, ReportsAtMostTwentyButCountsAll) {
  std::vector<BankRead> reads(25, read_of({1, 2}));
  const BankReport r = check_bank(reads, 300);
  EXPECT_EQ(r.bad_sums_total, 25u);
  EXPECT_EQ(r.bad.size(), 20u);
}

}  // namespace
}  // namespace synod::chaos
