// A picture of a chaos run, for people who would rather look than read: one self-contained HTML
// file (inline SVG, no scripts, no network) written beside the history. Throughput and latency
// over time with each fault's window shaded; for a history that is not linearizable, the failing
// key's operations drawn as a timeline (one row per client, a bar from call to return, the
// operation no order could place marked), as Jepsen and Porcupine draw them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lincheck/checker.h"
#include "lincheck/history.h"

namespace synod::chaos {

// A fault as the nemesis noted it in the history (`# <ns> ns (+<s> s): nemesis: <text>`), with
// the note that ended it (0: never ended; instantaneous faults such as clock steps end where
// they start).
struct FaultWindow {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  std::string kind;  // kill, pause, partition, restart-all, clock, other
  std::string text;
};

// The fault windows that the nemesis's notes in `history_text` describe: a kill lasts until its
// replica is restarted, a pause until resumed, a partition until healed, a restart-all until
// every replica started; a clock fault is an instant. `end_ns` closes windows left open.
std::vector<FaultWindow> fault_windows(std::string_view history_text, int64_t end_ns);

struct ReportInput {
  std::string title;                 // e.g. "synod chaos, seed 12"
  std::vector<std::string> summary;  // the run's closing lines, shown as they were printed
  const lincheck::History* history = nullptr;
  const lincheck::Verdict* verdict = nullptr;
  std::vector<FaultWindow> faults;
};

// The whole HTML document.
std::string render_html_report(const ReportInput& input);

}  // namespace synod::chaos
