// Logging of refused connections that a flood cannot turn into a flood of log lines.
//
// Every refusal (plaintext on a TLS port, a failed or timed-out TLS handshake, a bad Hello, a
// garbage frame) is one log line, but at most one per source address and kind of refusal per
// interval: the others in the interval are counted, and the next line logged for that address and
// kind says how many were not ("(and 41 more like it from 10.0.0.9 in the last 10 s, not logged)").
// The kind is the reason with its numbers blanked, so that "a frame of 81 bytes" and "a frame of
// 97 bytes" are one kind while "certificate verify failed" and "plaintext" stay two: an operator
// sees every distinct reason at least once per interval.
//
// The clock is passed in (`now`): tests drive it by hand. Memory is bounded: at most
// `max_sources` keys are tracked; beyond that refusals from new keys share one "other sources"
// key.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace synod::net {

class RefusalLog {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    Clock::duration interval = std::chrono::seconds(10);
    size_t max_sources = 1024;
  };

  RefusalLog(Options options, std::function<void(const std::string&)> sink)
      : options_(options), sink_(std::move(sink)) {}

  // Logs `line`, a refusal from `source` (an address without its port) for `reason`, unless one
  // of the same kind from there was logged less than an interval before `now`. True if logged.
  bool refused(const std::string& source, std::string_view reason, const std::string& line,
               Clock::time_point now);

  // Refusals not logged so far, all sources together.
  uint64_t suppressed() const { return suppressed_; }

  // `reason` with every run of digits replaced by '#': the kind of a refusal.
  static std::string kind(std::string_view reason);

 private:
  struct Entry {
    Clock::time_point logged;  // when its last line was written
    uint64_t suppressed = 0;   // refusals since, not logged
  };
  Options options_;
  std::function<void(const std::string&)> sink_;
  std::map<std::string, Entry> entries_;  // by source + " " + kind
  uint64_t suppressed_ = 0;
};

}  // namespace synod::net
