#include "chaos/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

namespace synod::chaos {
namespace {

// Operations drawn in the failing key's excerpt (a person reads a screenful, not thousands).
constexpr size_t kExcerptOps = 24;
constexpr int kBins = 120;
constexpr double kWidth = 1000;  // the plot area, in SVG units
constexpr double kLeft = 60;     // room for the y axis labels
constexpr double kChartH = 180;

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string kind_of(std::string_view text) {
  for (const char* k : {"restart-all", "kill", "pause", "partition", "clock", "replace"}) {
    if (text.rfind(k, 0) == 0) return k;
  }
  return "other";
}

const char* color_of(const std::string& kind) {
  if (kind == "kill") return "#e4572e";
  if (kind == "pause") return "#f3a712";
  if (kind == "partition") return "#4c78a8";
  if (kind == "restart-all") return "#9c27b0";
  if (kind == "clock") return "#2a9d8f";
  if (kind == "replace") return "#6d4c41";
  return "#888888";
}

// The replicas a note names ("kill n1,n3 (SIGKILL)" -> {"n1", "n3"}).
std::vector<std::string> replicas_in(std::string_view text) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] == 'n' && std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
        (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1])))) {
      size_t j = i + 1;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      out.emplace_back(text.substr(i, j - i));
      i = j;
    }
  }
  return out;
}

struct Scale {
  double t0 = 0, t1 = 1;  // seconds
  double x(double t) const { return kLeft + (t - t0) / std::max(t1 - t0, 1e-9) * kWidth; }
};

void shade_faults(std::string& svg, const std::vector<FaultWindow>& faults, const Scale& s,
                  double top, double height) {
  for (const FaultWindow& f : faults) {
    const double x0 = s.x(double(f.start_ns) / 1e9);
    const double x1 = s.x(double(f.end_ns) / 1e9);
    if (x1 - x0 < 2) {  // an instant (a clock set): a line
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\" "
          "stroke-width=\"2\" stroke-opacity=\"0.7\"><title>{4}</title></line>\n",
          x0, top, top + height, color_of(f.kind), escape(f.text));
      continue;
    }
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
        "fill-opacity=\"0.18\"><title>{}</title></rect>\n",
        x0, top, x1 - x0, height, color_of(f.kind), escape(f.text));
  }
}

void axes(std::string& svg, const Scale& s, double top, double y_max, const std::string& unit) {
  const double bottom = top + kChartH;
  svg += fmt::format(
      "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>"
      "<line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"#333\"/>\n",
      kLeft, top, bottom, kLeft + kWidth);
  for (int i = 0; i <= 4; ++i) {
    const double v = y_max * i / 4;
    const double y = bottom - kChartH * i / 4;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"end\">{:.4g}</text>\n",
        kLeft - 4, y + 3, v);
  }
  svg +=
      fmt::format("<text x=\"4\" y=\"{:.1f}\" font-size=\"11\">{}</text>\n", top - 4, escape(unit));
  for (int i = 0; i <= 10; ++i) {
    const double t = s.t0 + (s.t1 - s.t0) * i / 10;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"middle\">{:.1f}s</text>\n",
        s.x(t), bottom + 12, t);
  }
}

void polyline(std::string& svg, const std::vector<double>& values, const Scale& s, double top,
              double y_max, const char* color, const std::string& label) {
  std::string points;
  const double bin_s = (s.t1 - s.t0) / kBins;
  for (size_t i = 0; i < values.size(); ++i) {
    const double t = s.t0 + (double(i) + 0.5) * bin_s;
    const double y = top + kChartH - std::min(values[i], y_max) / std::max(y_max, 1e-9) * kChartH;
    points += fmt::format("{:.1f},{:.1f} ", s.x(t), y);
  }
  svg += fmt::format(
      "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"><title>{}"
      "</title></polyline>\n",
      color, points, escape(label));
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, size_t(p * double(v.size())));
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  return v[k];
}

std::string charts(const lincheck::History& h, const std::vector<FaultWindow>& faults,
                   const Scale& s) {
  const double bin_s = (s.t1 - s.t0) / kBins;
  std::vector<double> ok(kBins, 0), failed(kBins, 0), unknown(kBins, 0);
  std::vector<std::vector<double>> latency(kBins);
  auto bin = [&](int64_t ns) {
    return std::clamp(int((double(ns) / 1e9 - s.t0) / bin_s), 0, kBins - 1);
  };
  for (const lincheck::Operation& op : h.ops) {
    if (op.outcome_unknown()) {
      unknown[size_t(bin(op.call_ns))] += 1 / bin_s;
    } else if (op.error) {
      failed[size_t(bin(*op.return_ns))] += 1 / bin_s;
    } else {
      const size_t b = size_t(bin(*op.return_ns));
      ok[b] += 1 / bin_s;
      latency[b].push_back(double(*op.return_ns - op.call_ns) / 1e6);
    }
  }
  std::vector<double> p50(kBins, 0), p99(kBins, 0);
  for (int i = 0; i < kBins; ++i) {
    p50[size_t(i)] = percentile(latency[size_t(i)], 0.5);
    p99[size_t(i)] = percentile(latency[size_t(i)], 0.99);
  }
  const double ops_max = std::max({1.0, *std::max_element(ok.begin(), ok.end()),
                                   *std::max_element(failed.begin(), failed.end()),
                                   *std::max_element(unknown.begin(), unknown.end())});
  const double lat_max = std::max(1.0, *std::max_element(p99.begin(), p99.end()));
  const double height = 2 * kChartH + 100;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "font-family=\"sans-serif\">\n",
      kLeft + kWidth + 20, height);
  const double top1 = 30, top2 = kChartH + 80;
  shade_faults(svg, faults, s, top1, kChartH);
  shade_faults(svg, faults, s, top2, kChartH);
  axes(svg, s, top1, ops_max, "operations/s: ok (green), failed (orange), unknown (grey)");
  polyline(svg, ok, s, top1, ops_max, "#2e7d32", "acknowledged operations per second");
  polyline(svg, failed, s, top1, ops_max, "#ef6c00", "failed (definite) per second");
  polyline(svg, unknown, s, top1, ops_max, "#9e9e9e", "unknown outcomes per second, at call");
  axes(svg, s, top2, lat_max, "latency ms: p50 (blue), p99 (red)");
  polyline(svg, p50, s, top2, lat_max, "#1565c0", "p50 latency (ms) of acknowledged operations");
  polyline(svg, p99, s, top2, lat_max, "#c62828", "p99 latency (ms) of acknowledged operations");
  svg += "</svg>\n";
  return svg;
}

std::string op_label(const lincheck::Operation& op) {
  std::string text = lincheck::describe(op);
  if (text.size() > 64) text = text.substr(0, 61) + "...";
  return text;
}

// The failing key's operations, as an excerpt a person can read: the operation no order could
// place and the kExcerptOps operations called just before it returned, one row each in call
// order (label left, bar from call to return right), on the excerpt's own time axis.
std::string timeline(const lincheck::KeyReport& report, const std::vector<FaultWindow>& faults) {
  if (report.ops.empty()) return "";
  std::vector<size_t> by_call(report.ops.size());
  for (size_t i = 0; i < by_call.size(); ++i) by_call[i] = i;
  std::stable_sort(by_call.begin(), by_call.end(), [&](size_t a, size_t b) {
    return report.ops[a].call_ns < report.ops[b].call_ns;
  });
  const size_t stuck = report.stuck_op.value_or(by_call.back());
  const lincheck::Operation& s_op = report.ops[stuck];
  const int64_t horizon = s_op.return_ns.value_or(s_op.call_ns);
  std::vector<size_t> shown;
  for (size_t i : by_call) {
    if (report.ops[i].call_ns <= horizon || i == stuck) shown.push_back(i);
  }
  if (shown.size() > kExcerptOps) shown.erase(shown.begin(), shown.end() - long(kExcerptOps));
  if (std::find(shown.begin(), shown.end(), stuck) == shown.end()) shown.push_back(stuck);
  int64_t lo = INT64_MAX, hi = horizon;
  for (size_t i : shown) {
    lo = std::min(lo, report.ops[i].call_ns);
    if (report.ops[i].return_ns) hi = std::max(hi, *report.ops[i].return_ns);
  }
  // Unknown outcomes reach past the end: they may take effect any time later.
  const int64_t open_end = hi + std::max<int64_t>((hi - lo) / 10, 1);
  std::map<size_t, size_t> order;  // op index -> position in the longest partial order
  for (size_t k = 0; k < report.longest_partial.size(); ++k) order[report.longest_partial[k]] = k;
  constexpr double kLabelW = 380, kBarsW = 620, kRowH = 20;
  const double x_left = kLabelW;
  auto x = [&](int64_t ns) {
    return x_left + double(ns - lo) / double(std::max<int64_t>(open_end - lo, 1)) * kBarsW;
  };
  const double height = 40 + kRowH * double(shown.size());
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "font-family=\"monospace\">\n",
      kLabelW + kBarsW + 20, height);
  for (const FaultWindow& f : faults) {
    if (f.end_ns < lo || f.start_ns > open_end) continue;
    const double x0 = x(std::max(f.start_ns, lo)), x1 = x(std::min(f.end_ns, open_end));
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"4\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
        "fill-opacity=\"0.18\"><title>{}</title></rect>\n",
        x0, std::max(2.0, x1 - x0), kRowH * double(shown.size()), color_of(f.kind), escape(f.text));
  }
  for (size_t row = 0; row < shown.size(); ++row) {
    const size_t i = shown[row];
    const lincheck::Operation& op = report.ops[i];
    const double y = 4 + kRowH * double(row);
    const bool is_stuck = report.stuck_op && *report.stuck_op == i;
    const char* fill = is_stuck               ? "#c62828"
                       : op.outcome_unknown() ? "#bdbdbd"
                       : op.error             ? "#ffcc80"
                       : order.count(i)       ? "#a5d6a7"
                                              : "#90caf9";
    std::string label = op_label(op);
    if (auto it = order.find(i); it != order.end())
      label = fmt::format("#{} {}", it->second + 1, label);
    if (is_stuck) label = "CANNOT BE PLACED: " + label;
    const double x0 = x(op.call_ns);
    const double x1 = std::max(x0 + 2, x(op.return_ns.value_or(open_end)));
    svg += fmt::format(
        "<text x=\"2\" y=\"{:.1f}\" font-size=\"10\"{}>{}</text>\n"
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
        "stroke=\"{}\"{}><title>{}</title></rect>\n",
        y + 13, is_stuck ? " fill=\"#c62828\" font-weight=\"bold\"" : "", escape(label), x0, y + 2,
        x1 - x0, kRowH - 5, fill, is_stuck ? "#000" : "#555",
        op.outcome_unknown() ? " stroke-dasharray=\"4 2\"" : "", escape(label));
  }
  const double axis_y = 4 + kRowH * double(shown.size()) + 14;
  for (int k = 0; k <= 4; ++k) {
    const int64_t t = lo + (open_end - lo) * k / 4;
    if (open_end - lo < 1'000'000) {  // a history with logical times (tests, other tools)
      svg += fmt::format(
          "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n",
          x(t), axis_y, t);
      continue;
    }
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"middle\">+{:.3f}s"
        "</text>\n",
        x(t), axis_y, double(t) / 1e9);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace

std::vector<FaultWindow> fault_windows(std::string_view history_text, int64_t end_ns) {
  std::vector<FaultWindow> done;
  std::vector<FaultWindow> open;
  size_t pos = 0;
  while (pos < history_text.size()) {
    const size_t nl = std::min(history_text.find('\n', pos), history_text.size());
    const std::string_view line = history_text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("# ", 0) != 0) continue;
    int64_t ns = 0;
    const auto [end, ec] = std::from_chars(line.data() + 2, line.data() + line.size(), ns);
    const size_t at = line.find("nemesis: ");
    if (ec != std::errc() || at == std::string_view::npos) continue;
    const std::string_view text = line.substr(at + 9);
    const bool heals_all = text.rfind("healed", 0) == 0;
    auto close = [&](auto pred) {
      for (auto it = open.begin(); it != open.end();) {
        if (pred(*it)) {
          it->end_ns = ns;
          done.push_back(std::move(*it));
          it = open.erase(it);
        } else {
          ++it;
        }
      }
    };
    if (heals_all) {
      close([](const FaultWindow&) { return true; });
      continue;
    }
    if (text == "partition healed") {
      close([](const FaultWindow& f) { return f.kind == "partition"; });
      continue;
    }
    if (text.rfind("restart-all: every replica started", 0) == 0) {
      close([](const FaultWindow& f) { return f.kind == "restart-all"; });
      continue;
    }
    // A replace is one window, from its first step to the new member's swap (or its failure).
    if (text.rfind("replaced ", 0) == 0 || text.rfind("REPLACE FAILED", 0) == 0) {
      close([](const FaultWindow& f) { return f.kind == "replace"; });
      continue;
    }
    if (text.rfind("replace ", 0) == 0 &&
        std::any_of(open.begin(), open.end(),
                    [](const FaultWindow& f) { return f.kind == "replace"; }))
      continue;  // a later step of the open replace
    const bool restarted = text.rfind("restarted ", 0) == 0;
    const bool resumed = text.rfind("resumed ", 0) == 0;
    if (restarted || resumed) {
      const std::vector<std::string> names = replicas_in(text);
      close([&](const FaultWindow& f) {
        if (f.kind != (restarted ? "kill" : "pause")) return false;
        for (const std::string& n : replicas_in(f.text))
          if (std::find(names.begin(), names.end(), n) != names.end()) return true;
        return false;
      });
      continue;
    }
    FaultWindow w{ns, ns, kind_of(text), std::string(text)};
    if (w.kind == "clock" || w.kind == "other") {
      done.push_back(std::move(w));  // an instant: a clock set, a refusal, a crash noticed
    } else {
      open.push_back(std::move(w));
    }
  }
  for (FaultWindow& w : open) {
    w.end_ns = std::max(end_ns, w.start_ns);
    done.push_back(std::move(w));
  }
  std::sort(done.begin(), done.end(),
            [](const FaultWindow& a, const FaultWindow& b) { return a.start_ns < b.start_ns; });
  return done;
}

std::string render_html_report(const ReportInput& in) {
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + escape(in.title) +
      "</title>\n<style>body{font-family:sans-serif;margin:20px;max-width:1120px}"
      "pre{background:#f5f5f5;padding:8px;overflow-x:auto}"
      ".legend span{display:inline-block;padding:2px 8px;margin-right:6px;color:#fff}"
      "</style></head><body>\n<h1>" +
      escape(in.title) + "</h1>\n<pre>";
  for (const std::string& line : in.summary) html += escape(line) + "\n";
  html += "</pre>\n<p class=\"legend\">Fault windows: ";
  for (const char* k : {"kill", "pause", "partition", "restart-all", "clock"}) {
    html += fmt::format("<span style=\"background:{}\">{}</span>", color_of(k), k);
  }
  html += " (hover a window or a line for its details)</p>\n";
  int64_t end_ns = 1;
  if (in.history != nullptr) {
    for (const lincheck::Operation& op : in.history->ops)
      end_ns = std::max(end_ns, op.return_ns.value_or(op.call_ns));
  }
  for (const FaultWindow& f : in.faults) end_ns = std::max(end_ns, f.end_ns);
  const Scale whole{0, double(end_ns) / 1e9};
  html += "<h2>Throughput and latency</h2>\n";
  if (in.history != nullptr) html += charts(*in.history, in.faults, whole);
  if (in.verdict != nullptr && in.verdict->outcome == lincheck::Outcome::kNotLinearizable &&
      in.verdict->report) {
    const lincheck::KeyReport& r = *in.verdict->report;
    html += fmt::format(
        "<h2>Not linearizable: key {}</h2>\n<p>The key with the fewest operations among those "
        "that fail ({} operations); drawn: the operation no order could place "
        "(<b style=\"color:#c62828\">red</b>) and the {} called just before it returned, in call "
        "order. Each bar runs from a call to its return (dashed grey: the outcome is unknown, so "
        "it may take effect any time later); green bars, numbered, belong to the longest order "
        "the checker found that explains a prefix of the history. The whole key follows as "
        "text.</p>\n",
        escape(r.key), r.ops.size(), kExcerptOps);
    html += timeline(r, in.faults);
    html += "<pre>" + escape(lincheck::format_verdict(*in.verdict)) + "</pre>\n";
  }
  html += "<h2>Faults</h2>\n<pre>";
  for (const FaultWindow& f : in.faults) {
    html += fmt::format("+{:8.3f} s .. +{:8.3f} s  {}\n", double(f.start_ns) / 1e9,
                        double(f.end_ns) / 1e9, escape(f.text));
  }
  html += "</pre>\n</body></html>\n";
  return html;
}

}  // namespace synod::chaos
