#include "chaos/nemesis.h"

#include <fmt/core.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
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

// The members not in `side`.
std::vector<int> others_of(const std::vector<int>& members, const std::vector<int>& side) {
  std::vector<int> out;
  for (int id : members)
    if (std::find(side.begin(), side.end(), id) == side.end()) out.push_back(id);
  return out;
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
    case FaultKind::kReplace:
      return "replace";
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
      return Status::invalid_argument(
          "unknown fault '" + std::string(name) +
          "'; choose from kill,pause,partition,restart-all,clock,replace");
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

std::vector<std::string> Nemesis::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
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
    case FaultKind::kReplace:
      return replace_fault();
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
  const std::vector<int> members = cluster_.members();
  const int mode = partition_modes_[next_partition_++ % partition_modes_.size()];
  const int leader = cluster_.leader();
  std::vector<int> side;  // cut off from everyone else (symmetric modes)
  if (mode == kOneWay) {
    const int a = leader ? leader : members[rng_.below(members.size())];
    std::vector<int> others;
    for (int id : members)
      if (id != a) others.push_back(id);
    const int b = others[rng_.below(others.size())];
    event("partition one-way: n" + std::to_string(a) + " drops all traffic with n" +
          std::to_string(b) + ", n" + std::to_string(b) + " blocks nothing");
    set_filter(a, {b});
  } else {
    if (mode == kIsolateLeader && leader) {
      side = {leader};
    } else if (mode == kIsolateFollower) {
      std::vector<int> followers;
      for (int id : members)
        if (id != leader) followers.push_back(id);
      side = {followers[rng_.below(followers.size())]};
    } else {
      std::vector<int> all = members;
      for (size_t i = all.size() - 1; i > 0; --i) std::swap(all[i], all[rng_.below(i + 1)]);
      side.assign(all.begin(), all.begin() + static_cast<long>(minority_count()));
      std::sort(side.begin(), side.end());
    }
    static constexpr const char* kNames[] = {"leader isolated", "minority split",
                                             "follower isolated"};
    event(fmt::format("partition {}: {} | {}", kNames[mode], ids_text(side),
                      ids_text(others_of(members, side))));
    cut_off(side);
  }
  hold();
  for (int id : members) set_filter(id, {});
  event("partition healed");
}

void Nemesis::cut_off(const std::vector<int>& side) {
  const std::vector<int> rest = others_of(cluster_.members(), side);
  for (int id : side) set_filter(id, rest);
  for (int id : rest) set_filter(id, side);
}

void Nemesis::restart_all_fault() {
  event("restart-all: SIGKILL every replica");
  for (int id : cluster_.members()) cluster_.kill(id, SIGKILL);
  sleep_ms(rng_.between(200, 800));
  for (int id : cluster_.members()) start(id);
  event("restart-all: every replica started");
}

std::vector<int> Nemesis::pick_targets(size_t count) {
  const std::vector<int>& members = cluster_.members();
  std::vector<int> out;
  if (rng_.chance(0.5))
    if (int leader = cluster_.leader()) out.push_back(leader);
  while (out.size() < count) {
    const int id = members[rng_.below(members.size())];
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

bool Nemesis::start(int id, const std::vector<std::string>& extra_args) {
  if (Status s = cluster_.start(id, extra_args); !s.is_ok()) {
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
  for (int id : cluster_.members()) {
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

void Nemesis::replace_fault() {
  const int target = pick_targets(1)[0];
  lose_machine(target);
  std::filesystem::remove_all(cluster_.data_dir(target));  // what the careless restart made
  replace_machine(target);
}

void Nemesis::lose_machine(int target) {
  const std::vector<int> members = cluster_.members();
  const size_t f = (members.size() - 1) / 2;
  const int leader = cluster_.leader();
  // The lagging side: f members other than the target, followers before the leader, so that the
  // writes go on meanwhile through a leader on the other side. They are killed rather than cut
  // off: a client whose request waits on a cut-off replica is stuck until its timeout, and with
  // every client soon stuck so, hardly a write went through the other side (seed 12: 18 in
  // 1.4 s); refused connections send the clients to the other side at once.
  std::vector<int> others = others_of(members, {target});
  for (size_t i = others.size() - 1; i > 0; --i) std::swap(others[i], others[rng_.below(i + 1)]);
  std::stable_partition(others.begin(), others.end(), [&](int id) { return id != leader; });
  std::vector<int> lagging(others.begin(), others.begin() + static_cast<long>(f));
  std::vector<int> holders(others.begin() + static_cast<long>(f), others.end());
  std::sort(lagging.begin(), lagging.end());
  holders.push_back(target);
  std::sort(holders.begin(), holders.end());
  event(fmt::format("replace n{}: SIGKILL {}, so that what is acknowledged meanwhile is on {} only",
                    target, ids_text(lagging), ids_text(holders)));
  for (int id : lagging) cluster_.kill(id, SIGKILL);
  hold();
  event(fmt::format("replace n{}: SIGKILL {}, wipe n{}'s data directory, restart {}", target,
                    ids_text(holders), target, ids_text(lagging)));
  for (int id : holders) cluster_.kill(id, SIGKILL);
  std::filesystem::remove_all(cluster_.data_dir(target));
  for (int id : lagging) start(id);
  if (options_.careless_operator) careless_restart(target, members, lagging);
  for (const int id : holders)
    if (id != target) start(id);
  event(fmt::format("replace n{}: restarted {}", target, ids_text(others_of(holders, {target}))));
}

void Nemesis::careless_restart(int target, const std::vector<int>& members,
                               const std::vector<int>& lagging) {
  event(fmt::format(
      "replace n{}: careless operator restarts n{} under its old id with an empty data directory "
      "(--initial-cluster-state new); with {} it would be a majority without those writes, so it "
      "must be refused",
      target, target, ids_text(lagging)));
  // Its --peers names the members as they are now, as an operator copying them would.
  if (Status s = cluster_.start(
          target, {"--initial-cluster-state", "new", "--peers", cluster_.peers_of(members)});
      !s.is_ok())
    event(fmt::format("replace n{}: the careless restart failed: {}", target, s.to_string()));
  // Correct code refuses it within moments (its peers pinned its old incarnation); else it runs
  // on, counting in no quorum (the configuration binds its old incarnation) — or, with the planted
  // bug, voting.
  const auto give_up = Clock::now() + std::chrono::seconds(4);
  while (Clock::now() < give_up && !cluster_.exited(target)) sleep_ms(20);
  if (const int status = reap_crashed(target); status >= 0) {
    event(fmt::format("replace n{}: the wiped n{} was refused (exit status {})", target, target,
                      status));
  } else {
    event(fmt::format("replace n{}: the wiped n{} still runs after 4 s; SIGKILL", target, target));
    cluster_.kill(target, SIGKILL);
  }
}

void Nemesis::replace_machine(int old_id) {
  const std::vector<int> contacts = others_of(cluster_.members(), {old_id});
  auto added = cluster_.add_machine(contacts);
  if (!added.is_ok())
    return replace_failed(
        fmt::format("replace of n{} failed: {}", old_id, added.status().to_string()));
  const int id = *added;
  const std::string address = "127.0.0.1:" + std::to_string(cluster_.peer_port(id));
  event(
      fmt::format("replace n{}: new machine n{} (clients 127.0.0.1:{}, peers {}): MEMBER "
                  "ADD-LEARNER, start with --join, MEMBER REPLACE",
                  old_id, id, cluster_.client_port(id), address));
  auto reply = admin({"MEMBER", "ADD-LEARNER", address, std::to_string(id)}, old_id, 30000, 5000);
  if (!reply.is_ok() || reply->kind != kv::Reply::Kind::kInteger)
    return replace_failed(fmt::format("replace of n{}: MEMBER ADD-LEARNER {} {} answered {}",
                                      old_id, address, id,
                                      reply.is_ok() ? reply->text : reply.status().to_string()));
  if (!clocks_.empty())  // a new machine's clock is as wrong as any
    clocks_[id] =
        ClockState{random_offset_ms(rng_), random_drift_ppm(rng_, options_.max_drift_ppm)};
  if (!start(id, {"--join"}))
    return replace_failed(fmt::format("replace of n{}: n{} did not start", old_id, id));
  reply =
      admin({"MEMBER", "REPLACE", std::to_string(old_id), address, "30000"}, old_id, 45000, 35000);
  clocks_.erase(old_id);
  // The new machine, started, takes the place whatever the answer: the old one's directory is
  // gone, and it can never come back.
  const auto& members = cluster_.members();
  const size_t place =
      static_cast<size_t>(std::find(members.begin(), members.end(), old_id) - members.begin());
  cluster_.replace_member(old_id, id);
  if (options_.on_replace) options_.on_replace(place, id);
  if (reply.is_ok() && reply->kind == kv::Reply::Kind::kSimple) {
    event(fmt::format("replaced n{} by n{}: {}", old_id, id, reply->text));
    return;
  }
  replace_failed(fmt::format("replace of n{} by n{} failed: {}", old_id, id,
                             reply.is_ok() ? reply->text : reply.status().to_string()));
}

void Nemesis::replace_failed(const std::string& text) {
  event("REPLACE FAILED: " + text);
  std::lock_guard lock(mu_);
  failures_.push_back(text);
}

Result<kv::Reply> Nemesis::admin(const std::vector<std::string>& command, int except,
                                 uint32_t budget_ms, uint32_t reply_timeout_ms) {
  const auto give_up = Clock::now() + std::chrono::milliseconds(budget_ms);
  Result<kv::Reply> last = Status::io_error("no member answered");
  for (size_t attempt = 0; Clock::now() < give_up; ++attempt) {
    const std::vector<int> contacts = others_of(cluster_.members(), {except});
    const int via = contacts[attempt % contacts.size()];
    auto c = client::RespClient::connect("127.0.0.1", cluster_.client_port(via), 500);
    if (c.is_ok()) {
      c->set_timeout_ms(reply_timeout_ms);
      last = c->call(command);
      // TRYAGAIN (no leader yet, another change in progress) and UNKNOWN: asking again is safe
      // (an add or replace already made answers the same).
      if (last.is_ok() &&
          !(last->kind == kv::Reply::Kind::kError &&
            (last->text.rfind("TRYAGAIN", 0) == 0 || last->text.rfind("UNKNOWN", 0) == 0)))
        return last;
    } else {
      last = c.status();
    }
    sleep_ms(100);
  }
  return last;
}

void Nemesis::heal_all() {
  for (int id : cluster_.members()) {
    if (cluster_.running(id))
      cluster_.kill(id, SIGCONT);
    else
      start(id);
  }
  for (int id : cluster_.members()) set_filter(id, {});
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

int Nemesis::reap_crashed(int expected) {
  int expected_status = -1;
  for (int id : cluster_.reap()) {
    if (id == expected) {
      expected_status = cluster_.exit_code(id);
      continue;
    }
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
  return expected_status;
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
