// Prometheus metrics of one replica: histograms that the event loop fills as things happen, and
// the text exposition format 0.0.4 that /metrics serves (docs/operations.md, "Metrics", lists
// every metric). Counters the server already keeps for INFO are read from where they are when a
// scrape comes, not counted twice.
//
// Everything here belongs to the server's loop thread: plain integers, no locks, no atomics.
// Recording costs one bucket search over at most kMaxBuckets bounds and three additions.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace synod::node {

// A histogram of integer observations (microseconds, or a count) with fixed upper bounds.
class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 24;
  // `bounds`: increasing upper bounds, in the unit observed; exported divided by `divisor` (1e6
  // for microseconds exported as seconds, as Prometheus wants).
  Histogram(std::initializer_list<uint64_t> bounds, double divisor);

  void observe(uint64_t value) {
    size_t i = 0;
    while (i < bounds_count_ && value > bounds_[i]) ++i;
    ++counts_[i];  // counts_[bounds_count_]: above every bound (only in +Inf)
    sum_ += value;
    ++count_;
  }
  uint64_t count() const { return count_; }
  uint64_t sum() const { return sum_; }

 private:
  friend class MetricsText;
  std::array<uint64_t, kMaxBuckets> bounds_{};
  size_t bounds_count_ = 0;
  std::array<uint64_t, kMaxBuckets + 1> counts_{};
  uint64_t sum_ = 0;
  uint64_t count_ = 0;
  double divisor_ = 1;
};

// Request latency, in microseconds: 50 us .. 10 s.
Histogram latency_histogram();
// Group-commit batch sizes, in records: 1 .. 4096.
Histogram batch_histogram();
// Sizes in bytes: 1 KiB .. 4 GiB.
Histogram bytes_histogram();

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Writes the text exposition format, version 0.0.4: per family one HELP and one TYPE line, then
// its samples. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; label values are escaped here.
class MetricsText {
 public:
  // type: "counter", "gauge" or "histogram". Counters' names end in _total.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, uint64_t value, Labels labels = {});
  void sample_double(std::string_view name, double value, Labels labels = {});
  // The _bucket (cumulative, with le="+Inf"), _sum and _count samples of `name`.
  void histogram(std::string_view name, const Histogram& h, Labels labels = {});

  // Shorthands for a family with one unlabelled sample.
  void counter(std::string_view name, std::string_view help, uint64_t value) {
    family(name, "counter", help);
    sample(name, value);
  }
  void gauge(std::string_view name, std::string_view help, uint64_t value) {
    family(name, "gauge", help);
    sample(name, value);
  }

  std::string take() { return std::move(out_); }

 private:
  void series(std::string_view name, std::string_view suffix, Labels labels,
              std::pair<std::string_view, std::string_view> extra = {});
  std::string out_;
};

// The content type of the format above.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace synod::node
