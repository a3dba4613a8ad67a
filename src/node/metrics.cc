#include "node/metrics.h"

#include <fmt/format.h>

#include "base/assert.h"

namespace synod::node {

Histogram::Histogram(std::initializer_list<uint64_t> bounds, double divisor) : divisor_(divisor) {
  SYNOD_ASSERT(bounds.size() <= kMaxBuckets, "too many histogram buckets");
  for (uint64_t b : bounds) {
    SYNOD_ASSERT(bounds_count_ == 0 || b > bounds_[bounds_count_ - 1],
                 "histogram bounds must increase");
    bounds_[bounds_count_++] = b;
  }
}

Histogram latency_histogram() {
  return Histogram({50, 100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000,
                    250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000},
                   1e6);
}

Histogram batch_histogram() {
  return Histogram({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}, 1);
}

Histogram bytes_histogram() {
  return Histogram({1 << 10, 16 << 10, 256 << 10, 1 << 20, 16 << 20, 256 << 20, uint64_t{1} << 30,
                    uint64_t{4} << 30},
                   1);
}

namespace {

// A label value as the format wants it: backslash, double quote and newline escaped.
void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// A float as the format wants it (Go's ParseFloat reads it; "+Inf" for infinity).
std::string number(double value) {
  return fmt::format("{}", value);
}

}  // namespace

void MetricsText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += fmt::format("# HELP {} ", name);
  // HELP text escapes backslash and newline.
  for (char c : help) {
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += fmt::format("\n# TYPE {} {}\n", name, type);
}

void MetricsText::series(std::string_view name, std::string_view suffix, Labels labels,
                         std::pair<std::string_view, std::string_view> extra) {
  out_.append(name);
  out_.append(suffix);
  if (labels.size() == 0 && extra.first.empty()) return;
  out_ += '{';
  bool first = true;
  auto add = [&](std::string_view key, std::string_view value) {
    if (!first) out_ += ',';
    first = false;
    out_.append(key);
    out_ += "=\"";
    append_escaped(out_, value);
    out_ += '"';
  };
  for (const auto& [key, value] : labels) add(key, value);
  if (!extra.first.empty()) add(extra.first, extra.second);
  out_ += '}';
}

void MetricsText::sample(std::string_view name, uint64_t value, Labels labels) {
  series(name, "", labels);
  out_ += fmt::format(" {}\n", value);
}

void MetricsText::sample_double(std::string_view name, double value, Labels labels) {
  series(name, "", labels);
  out_ += " " + number(value) + "\n";
}

void MetricsText::histogram(std::string_view name, const Histogram& h, Labels labels) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds_count_; ++i) {
    cumulative += h.counts_[i];
    const std::string le = number(static_cast<double>(h.bounds_[i]) / h.divisor_);
    series(name, "_bucket", labels, {"le", le});
    out_ += fmt::format(" {}\n", cumulative);
  }
  series(name, "_bucket", labels, {"le", "+Inf"});
  out_ += fmt::format(" {}\n", h.count_);
  series(name, "_sum", labels);
  out_ += " " + number(static_cast<double>(h.sum_) / h.divisor_) + "\n";
  series(name, "_count", labels);
  out_ += fmt::format(" {}\n", h.count_);
}

}  // namespace synod::node
