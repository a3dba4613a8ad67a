// The refusal log's rate limit (net/refusal_log.h), on a clock driven by hand.
#include "net/refusal_log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace synod::net {
namespace {

using std::chrono::seconds;

struct Fixture {
  RefusalLog::Clock::time_point now{};  // the fake clock
  std::vector<std::string> lines;
  RefusalLog log{{.interval = seconds(10), .max_sources = 4},
                 [this](const std::string& line) { lines.push_back(line); }};
  bool refuse(const std::string& source, const std::string& reason) {
    return log.refused(source, reason, source + ": " + reason, now);
  }
};

TEST(RefusalLog, AFloodFromOneAddressIsOneLinePerIntervalWithTheCountLeftOut) {
  Fixture f;
  EXPECT_TRUE(f.refuse("10.0.0.9", "frame of 81 bytes exceeds the limit"));
  for (int i = 0; i < 41; ++i) {
    f.now += std::chrono::milliseconds(100);  // 4.1 s in all: within the interval
    EXPECT_FALSE(f.refuse("10.0.0.9", "frame of " + std::to_string(100 + i) +
                                          " bytes exceeds"
                                          " the limit"));
  }
  EXPECT_EQ(f.lines.size(), 1u);
  EXPECT_EQ(f.log.suppressed(), 41u);
  f.now += seconds(6);  // 10.1 s after the first line
  EXPECT_TRUE(f.refuse("10.0.0.9", "frame of 7 bytes exceeds the limit"));
  ASSERT_EQ(f.lines.size(), 2u);
  EXPECT_EQ(f.lines[1],
            "10.0.0.9: frame of 7 bytes exceeds the limit (and 41 more like it from 10.0.0.9 in "
            "the last 10 s, not logged)");
  // Quiet afterwards: the next line has nothing to add.
  f.now += seconds(30);
  EXPECT_TRUE(f.refuse("10.0.0.9", "frame of 7 bytes exceeds the limit"));
  EXPECT_EQ(f.lines.back(), "10.0.0.9: frame of 7 bytes exceeds the limit");
}

TEST(RefusalLog, EachAddressAndEachKindOfRefusalIsSeen) {
  Fixture f;
  EXPECT_TRUE(f.refuse("10.0.0.9", "plaintext on the TLS peer port (refused)"));
  EXPECT_TRUE(f.refuse("10.0.0.9", "TLS handshake: certificate verify failed"));
  EXPECT_TRUE(f.refuse("10.0.0.8", "TLS handshake: certificate verify failed"));
  EXPECT_FALSE(f.refuse("10.0.0.8", "TLS handshake: certificate verify failed"));
  EXPECT_EQ(f.lines.size(), 3u);
}

TEST(RefusalLog, KindsBlankOutNumbers) {
  EXPECT_EQ(RefusalLog::kind("frame of 81 bytes exceeds the limit of 16777216"),
            "frame of # bytes exceeds the limit of #");
  EXPECT_EQ(RefusalLog::kind("it claims n3 but its certificate names n2"),
            "it claims n# but its certificate names n#");
}

TEST(RefusalLog, ManySourcesShareOneKeyBeyondTheBound) {
  Fixture f;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(f.refuse("10.0.1." + std::to_string(i), "garbage"));
  // The table is full and nothing in it has expired: new sources share one key.
  EXPECT_TRUE(f.refuse("10.0.2.1", "garbage"));
  for (int i = 2; i < 50; ++i) EXPECT_FALSE(f.refuse("10.0.2." + std::to_string(i), "garbage"));
  EXPECT_EQ(f.lines.size(), 5u);
  f.now += seconds(11);
  // Expired keys are forgotten to make room again.
  EXPECT_TRUE(f.refuse("10.0.3.1", "garbage"));
  EXPECT_EQ(f.lines.back(), "10.0.3.1: garbage");
}

}  // namespace
}  // namespace synod::net
