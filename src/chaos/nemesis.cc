#include "chaos/nemesis.h"

#include <fmt/core.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <thread>

#include "client/resp_client.h"

namespace synod::chaos {

namespace {

using Clock = std::chrono::steady_clock;

enum PartitionMode { kIsolateLeader, kSplit, kIsolateFollower, kOneWay, kPartitionModes };

std::string ids_text(const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "n" : ",n") + std::to_string(id);
  return out;
}

void sleep_ms(uint64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

std::string_view fault_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKill:
      return "kill";
    case FaultKind::kPause:
      return "pause";
    case FaultKind::kPartition:
      return "partition";
    case FaultKind::kRestartAll:
      return "restart-all";
    case FaultKind::kClock:
      return "clock";
  }
  return "?";
}

Result<std::vector<FaultKind>> parse_fault_list(std::string_view list) {
  std::vector<FaultKind> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view name = list.substr(start, comma - start);
    start = comma + 1;
    auto it = std::find_if(std::begin(kAllFaults), std::end(kAllFaults),
                           [&](FaultKind k) { return fault_name(k) == name; });
    if (it == std::end(kAllFaults))
      return Status::invalid_argument("unknown fault '" + std::string(name) +
                                      "'; choose from kill,pause,partition,restart-all,clock");
    if (std::find(out.begin(), out.end(), *it) == out.end()) out.push_back(*it);
  }
  return out;
}

Nemesis::Nemesis(process::LocalCluster& cluster, NemesisOptions options, HistoryRecorder& recorder)
    : cluster_(cluster), options_(std::move(options)), recorder_(recorder), rng_(options_.seed) {
  for (int m = 0; m < kPartitionModes; ++m) partition_modes_.push_back(m);
  for (size_t i = partition_modes_.size() - 1; i > 0; --i)
    std::swap(partition_modes_[i], partition_modes_[rng_.below(i + 1)]);
}

void Nemesis::run(Clock::time_point inject_until, const std::atomic<bool>& stop) {
  auto calm = [&] { return stop.load() || Clock::now() >= inject_until; };
  while (!calm() && !options_.faults.empty()) {
    const auto gap_end = Clock::now() + std::chrono::milliseconds(
                                            rng_.between(options_.gap_ms_min, options_.gap_ms_max));
    while (!calm() && Clock::now() < gap_end) sleep_ms(20);
    if (calm()) break;
    reap_crashed();
    inject(options_.faults[rng_.below(options_.faults.size())]);
  }
  heal_all();
  reap_crashed();
}

std::map<FaultKind, int> Nemesis::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

std::vector<std::string> Nemesis::crashes() const {
  std::lock_guard lock(mu_);
  return crashes_;
}

void Nemesis::inject(FaultKind kind) {
  {
    std::lock_guard lock(mu_);
    ++counts_[kind];
  }
  switch (kind) {
    case FaultKind::kKill:
      return kill_fault();
    case FaultKind::kPause:
      return pause_fault();
    case FaultKind::kPartition:
      return partition_fault();
    case FaultKind::kRestartAll:
      return restart_all_fault();
    case FaultKind::kClock:
      return clock_fault();
  }
}

void Nemesis::kill_fault() {
  const auto targets = pick_targets(minority_count());
  event("kill " + ids_text(targets) + " (SIGKILL)");
  for (int id : targets) cluster_.kill(id, SIGKILL);
  hold();
  for (int id : targets) start(id);
  event("restarted " + ids_text(targets));
}

void Nemesis::pause_fault() {
  const auto targets = pick_targets(minority_count());
  event("pause " + ids_text(targets) + " (SIGSTOP)");
  for (int id : targets) cluster_.kill(id, SIGSTOP);
  hold();
  for (int id : targets) cluster_.kill(id, SIGCONT);
  event("resumed " + ids_text(targets) + " (SIGCONT)");
}

void Nemesis::partition_fault() {
  const int n = cluster_.replicas();
  const int mode = partition_modes_[next_partition_++ % partition_modes_.size()];
  const int leader = cluster_.leader();
  std::vector<int> side;  // cut off from everyone else (symmetric modes)
  if (mode == kOneWay) {
    const int a = leader ? leader : static_cast<int>(rng_.between(1, static_cast<uint64_t>(n)));
    int b = static_cast<int>(rng_.between(1, static_cast<uint64_t>(n - 1)));
    if (b >= a) ++b;
    event("partition one-way: n" + std::to_string(a) + " drops all traffic with n" +
          std::to_string(b) + ", n" + std::to_string(b) + " blocks nothing");
    set_filter(a, {b});
  } else {
    if (mode == kIsolateLeader && leader) {
      side = {leader};
    } else if (mode == kIsolateFollower) {
      std::vector<int> followers;
      for (int i = 1; i <= n; ++i)
        if (i != leader) followers.push_back(i);
      side = {followers[rng_.below(followers.size())]};
    } else {
      std::vector<int> all;
      for (int i = 1; i <= n; ++i) all.push_back(i);
      for (size_t i = all.size() - 1; i > 0; --i) std::swap(all[i], all[rng_.below(i + 1)]);
      side.assign(all.begin(), all.begin() + static_cast<long>(minority_count()));
      std::sort(side.begin(), side.end());
    }
    std::vector<int> rest;
    for (int i = 1; i <= n; ++i)
      if (std::find(side.begin(), side.end(), i) == side.end()) rest.push_back(i);
    static constexpr const char* kNames[] = {"leader isolated", "minority split",
                                             "follower isolated"};
    event(fmt::format("partition {}: {} | {}", kNames[mode], ids_text(side), ids_text(rest)));
    for (int id : side) set_filter(id, rest);
    for (int id : rest) set_filter(id, side);
  }
  hold();
  for (int i = 1; i <= n; ++i) set_filter(i, {});
  event("partition healed");
}

void Nemesis::restart_all_fault() {
  event("restart-all: SIGKILL every replica");
  for (int i = 1; i <= cluster_.replicas(); ++i) cluster_.kill(i, SIGKILL);
  sleep_ms(rng_.between(200, 800));
  for (int i = 1; i <= cluster_.replicas(); ++i) start(i);
  event("restart-all: every replica started");
}

std::vector<int> Nemesis::pick_targets(size_t count) {
  const int n = cluster_.replicas();
  std::vector<int> out;
  if (rng_.chance(0.5))
    if (int leader = cluster_.leader()) out.push_back(leader);
  while (out.size() < count) {
    const int id = static_cast<int>(rng_.between(1, static_cast<uint64_t>(n)));
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

size_t Nemesis::minority_count() {
  const size_t f = static_cast<size_t>((cluster_.replicas() - 1) / 2);
  return f >= 2 && rng_.chance(0.4) ? 2 : 1;
}

void Nemesis::set_filter(int id, const std::vector<int>& blocked) {
  std::vector<std::string> args = {blocked.empty() ? "CLEAR" : "BLOCK"};
  for (int b : blocked) args.push_back(std::to_string(b));
  fault_command(id, args);
}

bool Nemesis::fault_command(int id, const std::vector<std::string>& args) {
  std::vector<std::string> command = {"SYNOD.FAULT"};
  command.insert(command.end(), args.begin(), args.end());
  // A replica restarted a moment ago may not listen yet: try for about 5 s.
  std::string refusal = "no answer";
  for (int attempt = 0; attempt < 25; ++attempt) {
    auto c = client::RespClient::connect("127.0.0.1", cluster_.client_port(id), 500);
    if (c.is_ok()) {
      c->set_timeout_ms(1000);
      auto r = c->call(command);
      if (r.is_ok() && r->kind == kv::Reply::Kind::kSimple) return true;
      if (r.is_ok() && r->kind == kv::Reply::Kind::kError) {
        refusal = r->text;  // a refusal is final: retrying cannot help
        break;
      }
    }
    sleep_ms(200);
  }
  std::string shown;
  for (const auto& a : command) shown += (shown.empty() ? "" : " ") + a;
  event(shown + " on n" + std::to_string(id) + " failed: " + refusal);
  return false;
}

bool Nemesis::start(int id) {
  if (Status s = cluster_.start(id); !s.is_ok()) {
    event("restart of n" + std::to_string(id) + " failed: " + s.to_string());
    return false;
  }
  // The machine's clock is as wrong as before the restart.
  if (clocks_.count(id)) apply_clock(id);
  return true;
}

void Nemesis::apply_clock(int id) {
  const ClockState& c = clocks_[id];
  fault_command(id, {"CLOCK", "SKEW", std::to_string(c.wall_offset_ms)});
  fault_command(id, {"CLOCK", "DRIFT", std::to_string(c.drift_ppm)});
}

namespace {

// 1 s to an hour, evenly on a log scale (as many jumps of seconds as of minutes or of an hour),
// either way.
int64_t random_offset_ms(Rng& rng) {
  const double unit = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
  const auto ms = static_cast<int64_t>(std::exp(std::log(1000.0) + unit * std::log(3600.0)));
  return rng.chance(0.5) ? ms : -ms;
}

// Up to the bound either way; a third of the time exactly at it.
int64_t random_drift_ppm(Rng& rng, int64_t max_ppm) {
  const int64_t ppm = rng.chance(1.0 / 3)
                          ? max_ppm
                          : static_cast<int64_t>(rng.below(static_cast<uint64_t>(max_ppm) + 1));
  return rng.chance(0.5) ? ppm : -ppm;
}

std::string signed_ms(int64_t ms) {
  return fmt::format("{}{:.3f} s", ms >= 0 ? "+" : "-", static_cast<double>(std::llabs(ms)) / 1e3);
}

}  // namespace

void Nemesis::start_clocks() {
  if (std::find(options_.faults.begin(), options_.faults.end(), FaultKind::kClock) ==
      options_.faults.end())
    return;
  for (int id = 1; id <= cluster_.replicas(); ++id) {
    ClockState& c = clocks_[id];
    c.wall_offset_ms = random_offset_ms(rng_);
    c.drift_ppm = random_drift_ppm(rng_, options_.max_drift_ppm);
    event(fmt::format("clock n{}: wall clock {} off, monotonic clock {:+} ppm", id,
                      signed_ms(c.wall_offset_ms), c.drift_ppm));
    apply_clock(id);
    // Each replica's clock set wrong is a clock fault injected, counted as one: a run whose
    // nemesis then happens to pick only other faults (fewer turns on a slow machine) still ran
    // with every clock off.
    std::lock_guard lock(mu_);
    ++counts_[FaultKind::kClock];
  }
}

void Nemesis::clock_fault() {
  // Mostly the leader: its clock is the one that stamps and serves (a follower's matters once it
  // leads, which kill and partition bring about).
  const int leader = cluster_.leader();
  const int id = leader && rng_.chance(0.75) ? leader : pick_targets(1)[0];
  ClockState& c = clocks_[id];
  const uint64_t mode = rng_.below(3);
  if (mode == 0) {
    c.wall_offset_ms = random_offset_ms(rng_);
    event(fmt::format("clock n{}: wall clock skewed to {} off", id, signed_ms(c.wall_offset_ms)));
    fault_command(id, {"CLOCK", "SKEW", std::to_string(c.wall_offset_ms)});
  } else if (mode == 1) {
    // A step away from the real time when the clock is already far off, so offsets stay within
    // the day the server accepts.
    // Half the time NTP steps a clock that is off back to the true time; else a random jump (the
    // other way when the clock is already more than an hour off, so offsets stay within the day
    // the server accepts).
    int64_t delta = random_offset_ms(rng_);
    if (c.wall_offset_ms != 0 && rng_.chance(0.5)) {
      delta = -c.wall_offset_ms;
    } else if ((c.wall_offset_ms > 0) == (delta > 0) && std::llabs(c.wall_offset_ms) > 3'600'000) {
      delta = -delta;
    }
    c.wall_offset_ms += delta;
    event(fmt::format("clock n{}: wall clock stepped {} (now {} off)", id, signed_ms(delta),
                      signed_ms(c.wall_offset_ms)));
    fault_command(id, {"CLOCK", "STEP", std::to_string(delta)});
  } else {
    c.drift_ppm = random_drift_ppm(rng_, options_.max_drift_ppm);
    event(fmt::format("clock n{}: monotonic clock drifts {:+} ppm", id, c.drift_ppm));
    fault_command(id, {"CLOCK", "DRIFT", std::to_string(c.drift_ppm)});
  }
  hold();
}

void Nemesis::heal_all() {
  for (int i = 1; i <= cluster_.replicas(); ++i) {
    if (cluster_.running(i))
      cluster_.kill(i, SIGCONT);
    else
      start(i);
  }
  for (int i = 1; i <= cluster_.replicas(); ++i) set_filter(i, {});
  // The clocks are put right too: a wall clock stepped back to the real time, drift stopped.
  for (auto& [id, c] : clocks_) {
    c = ClockState{};
    fault_command(id, {"CLOCK", "RESET"});
  }
  event(clocks_.empty() ? "healed: every replica running, no link blocked"
                        : "healed: every replica running, no link blocked, no clock off");
}

bool port_was_taken(const std::string& log_path) {
  std::ifstream in(log_path);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last.find("Address already in use") != std::string::npos;
}

void Nemesis::reap_crashed() {
  for (int id : cluster_.reap()) {
    if (port_was_taken(cluster_.log_path(id))) {
      event("n" + std::to_string(id) + " could not bind its port (taken by another socket); " +
            "starting it again");
      sleep_ms(200);
      (void)start(id);
      continue;
    }
    const std::string text =
        "n" + std::to_string(id) + " exited on its own (see " + cluster_.log_path(id) + ")";
    event("CRASH: " + text + "; restarting it");
    {
      std::lock_guard lock(mu_);
      crashes_.push_back(text);
    }
    (void)start(id);
  }
}

void Nemesis::hold() {
  sleep_ms(rng_.between(options_.hold_ms_min, options_.hold_ms_max));
}

void Nemesis::event(const std::string& text) {
  const double t = static_cast<double>(recorder_.now_ns()) / 1e9;
  fmt::print("nemesis +{:.3f}s: {}\n", t, text);
  std::fflush(stdout);
  recorder_.note("nemesis: " + text);
}

}  // namespace synod::chaos
