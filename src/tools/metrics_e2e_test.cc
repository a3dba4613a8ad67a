// Metrics and logs of a real 3-replica cluster as an operator watches them: Debian's promtool
// accepts every replica's /metrics, a real Prometheus server scrapes all three (every target
// up, exactly one leader, applied slots rising after writes), and after the leader is killed a
// survivor's JSON log has election_won and leader_changed lines (src/tools/metrics_e2e.py).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

namespace synod::tools {
namespace {

TEST(MetricsE2E, PrometheusScrapesAClusterAndLogsShowTheFailover) {
  ASSERT_EQ(std::system("command -v prometheus >/dev/null && command -v promtool >/dev/null"), 0)
      << "Debian's prometheus package is missing: scripts/setup installs it";
  const std::string cmd =
      "/usr/bin/python3 " SYNOD_SOURCE_DIR "/src/tools/metrics_e2e.py " SYNOD_BINARY;
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace synod::tools
