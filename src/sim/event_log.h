// A simulation's trace: every event as one line stamped with the simulated time, written to an
// optional stream, folded into a digest (two runs of one seed must give the same one), and the
// last few kept to show what led up to a violation.
#pragma once

#include <cstdint>
#include <deque>
#include <ostream>
#include <string>
#include <vector>

#include "base/hash.h"

namespace synod::sim {

class EventLog {
 public:
  EventLog(std::ostream* trace, size_t keep) : trace_(trace), keep_(keep) {}

  void add(uint64_t now_us, const std::string& line) {
    std::string stamped = "t=" + std::to_string(now_us) + " " + line;
    digest_.add(stamped);
    digest_.add("\n");
    if (trace_) *trace_ << stamped << '\n';
    recent_.push_back(std::move(stamped));
    if (recent_.size() > keep_) recent_.pop_front();
  }
  uint64_t digest() const { return digest_.value(); }
  std::vector<std::string> recent() const { return {recent_.begin(), recent_.end()}; }

 private:
  std::ostream* trace_;
  size_t keep_;
  std::deque<std::string> recent_;
  Digest digest_;
};

}  // namespace synod::sim
