#include "chaos/html_report.h"

#include <gtest/gtest.h>

namespace synod::chaos {
namespace {

// Each fault lasts from the nemesis note that injected it to the note that undid it; clock
// faults are instants; windows still open at the end close there.
TEST(HtmlReport, FaultWindowsPairEachFaultWithWhatUndidIt) {
  const std::string text =
      "{\"client\":1}\n"
      "# 1000 ns (+0.000 s): nemesis: kill n1,n3 (SIGKILL)\n"
      "# 1500 ns (+0.000 s): nemesis: pause n2 (SIGSTOP)\n"
      "# 2000 ns (+0.000 s): nemesis: restarted n1,n3\n"
      "# 2500 ns (+0.000 s): nemesis: clock n2: wall clock skewed to -3 s off\n"
      "# 3000 ns (+0.000 s): nemesis: partition halves: n1 | n2,n3\n"
      "# 3500 ns (+0.000 s): nemesis: resumed n2 (SIGCONT)\n"
      "# 4000 ns (+0.000 s): nemesis: partition healed\n"
      "# 5000 ns (+0.000 s): nemesis: kill n2 (SIGKILL)\n"
      "# 5200 ns (+0.000 s): client note that is not the nemesis's\n";
  const std::vector<FaultWindow> w = fault_windows(text, 9000);
  ASSERT_EQ(w.size(), 5u);
  EXPECT_EQ(w[0].kind, "kill");
  EXPECT_EQ(w[0].start_ns, 1000);
  EXPECT_EQ(w[0].end_ns, 2000);
  EXPECT_EQ(w[1].kind, "pause");
  EXPECT_EQ(w[1].end_ns, 3500);
  EXPECT_EQ(w[2].kind, "clock");
  EXPECT_EQ(w[2].start_ns, w[2].end_ns);
  EXPECT_EQ(w[3].kind, "partition");
  EXPECT_EQ(w[3].end_ns, 4000);
  EXPECT_EQ(w[4].kind, "kill");
  EXPECT_EQ(w[4].end_ns, 9000) << "a fault never undone lasts to the end";
}

// A replace is one window, from its first step to the swap (or its failure); its steps in between
// (kills, the careless restart, the new machine) open nothing of their own.
TEST(HtmlReport, AReplaceIsOneWindowFromItsFirstStepToTheSwap) {
  const std::string text =
      "# 100 ns (+0.000 s): nemesis: replace n2: SIGKILL n1, so that what is acknowledged ...\n"
      "# 200 ns (+0.000 s): nemesis: replace n2: SIGKILL n2,n3, wipe n2's data directory\n"
      "# 300 ns (+0.000 s): nemesis: replace n2: the wiped n2 was refused (exit status 1)\n"
      "# 400 ns (+0.000 s): nemesis: replaced n2 by n4: OK epoch 4 id 4\n"
      "# 500 ns (+0.000 s): nemesis: replace n4: SIGKILL n3, so that what is acknowledged ...\n"
      "# 600 ns (+0.000 s): nemesis: REPLACE FAILED: replace of n4 by n5 failed: ERR x\n";
  const std::vector<FaultWindow> w = fault_windows(text, 1000);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].kind, "replace");
  EXPECT_EQ(w[0].start_ns, 100);
  EXPECT_EQ(w[0].end_ns, 400);
  EXPECT_EQ(w[1].kind, "replace");
  EXPECT_EQ(w[1].start_ns, 500);
  EXPECT_EQ(w[1].end_ns, 600);
}

TEST(HtmlReport, HealedEndsEveryOpenFaultAndTextIsEscaped) {
  const std::string text =
      "# 10 ns (+0.000 s): nemesis: partition one-way: n1 drops all traffic with n2\n"
      "# 20 ns (+0.000 s): nemesis: pause n3 (SIGSTOP)\n"
      "# 30 ns (+0.000 s): nemesis: healed: every replica running, no link blocked\n";
  const std::vector<FaultWindow> w = fault_windows(text, 100);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].end_ns, 30);
  EXPECT_EQ(w[1].end_ns, 30);

  lincheck::History history;
  lincheck::Operation op;
  op.client = 1;
  op.kind = lincheck::OpKind::kPut;
  op.key = "<k>";
  op.value = "a&b";
  op.call_ns = 5;
  op.return_ns = 50;
  op.ok = true;
  history.ops.push_back(op);
  ReportInput in;
  in.title = "t <script>";
  in.history = &history;
  in.faults = w;
  const std::string html = render_html_report(in);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("t &lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_NE(html.find("partition one-way: n1 drops all traffic with n2"), std::string::npos);
}

}  // namespace
}  // namespace synod::chaos
