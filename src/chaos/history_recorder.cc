#include "chaos/history_recorder.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

namespace synod::chaos {

namespace {

// The fields that say what `op` does: its kind, key and arguments (a txn: its parts).
void add_arguments(nlohmann::ordered_json& j, const lincheck::Operation& op) {
  j["op"] = std::string(lincheck::op_kind_name(op.kind));
  if (op.kind != lincheck::OpKind::kTxn) j["key"] = op.key;
  switch (op.kind) {
    case lincheck::OpKind::kPut:
      j["value"] = op.value;
      break;
    case lincheck::OpKind::kCas:
      if (op.expect_absent)
        j["expect_absent"] = true;
      else
        j["expect"] = op.expect;
      j["new"] = op.new_value;
      break;
    case lincheck::OpKind::kTxn:
      j["parts"] = nlohmann::ordered_json::array();
      for (const auto& part : op.parts) {
        nlohmann::ordered_json p;
        add_arguments(p, part);
        // A successful txn's reads: what each found.
        if (part.kind == lincheck::OpKind::kGet && op.ok && !op.outcome_unknown()) {
          if (part.found == false)
            p["found"] = false;
          else
            p["output"] = part.output;
        }
        j["parts"].push_back(std::move(p));
      }
      break;
    case lincheck::OpKind::kGet:
    case lincheck::OpKind::kDel:
      break;
  }
}

}  // namespace

std::string to_json_line(const lincheck::Operation& op) {
  nlohmann::ordered_json j;
  j["client"] = op.client;
  add_arguments(j, op);
  j["call"] = op.call_ns;
  if (op.return_ns)
    j["return"] = *op.return_ns;
  else
    j["return"] = nullptr;
  if (op.return_ns) j["ok"] = op.ok;
  if (op.found) j["found"] = *op.found;
  if (op.kind == lincheck::OpKind::kGet && op.ok && op.found != false) j["output"] = op.output;
  if (op.error) j["error"] = *op.error;
  // Replication traffic may carry any bytes; never fail on a value that is not UTF-8.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

OutcomeCounts count_outcomes(const lincheck::History& history) {
  OutcomeCounts c;
  for (const auto& op : history.ops) {
    ++c.total;
    if (op.outcome_unknown())
      ++c.unknown;
    else if (op.error)
      ++c.failed;
    else
      ++c.acknowledged;
  }
  return c;
}

int64_t HistoryRecorder::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              origin_)
      .count();
}

void HistoryRecorder::add(lincheck::Operation op) {
  std::lock_guard lock(mu_);
  ops_.push_back(std::move(op));
}

void HistoryRecorder::note(const std::string& text) {
  const int64_t t = now_ns();
  std::lock_guard lock(mu_);
  notes_.push_back(fmt::format("# {} ns (+{:.3f} s): {}", t, static_cast<double>(t) / 1e9, text));
}

lincheck::History HistoryRecorder::history() const {
  std::lock_guard lock(mu_);
  lincheck::History h{ops_};
  std::stable_sort(h.ops.begin(), h.ops.end(),
                   [](const auto& a, const auto& b) { return a.call_ns < b.call_ns; });
  return h;
}

Status HistoryRecorder::write(const std::string& path) const {
  const lincheck::History h = history();
  std::vector<std::string> notes;
  {
    std::lock_guard lock(mu_);
    notes = notes_;
  }
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) return Status::io_error("cannot write " + path);
  for (const auto& op : h.ops) fmt::print(f.get(), "{}\n", to_json_line(op));
  for (const auto& n : notes) fmt::print(f.get(), "{}\n", n);
  if (std::fflush(f.get()) != 0) return Status::io_error("cannot write " + path);
  return Status::ok();
}

}  // namespace synod::chaos
