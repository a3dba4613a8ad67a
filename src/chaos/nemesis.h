// The chaos run's nemesis: one thread that injects faults into a LocalCluster of real server
// processes, one fault at a time, each held for a while and then healed. Every fault and heal is
// printed and noted in the history (as a comment line). Only 127.0.0.1 is ever addressed.
//
//   kill         SIGKILL the leader or a random replica (two at once with 5 replicas, sometimes),
//                restart it after the hold
//   pause        SIGSTOP the leader or a random replica, SIGCONT after the hold
//   partition    SYNOD.FAULT BLOCK on each replica, cycling through: the leader isolated, a
//                minority split from the majority, one follower cut off, and one-way (only one
//                side of a link blocks it); SYNOD.FAULT CLEAR everywhere after the hold
//   restart-all  SIGKILL every replica, then start them all
//   clock        SYNOD.FAULT CLOCK on the leader or a random replica: skew its wall clock (a new
//                fixed offset, 1 s to an hour either way), step it (a jump forward or back by 1 s
//                to an hour), or make its monotonic clock drift (fast or slow, up to the bound
//                production assumes, kClockDriftBound); see node/clock_faults.h
//   replace      a machine lost for good, and its replacement (docs/operations.md, "Replace a
//                failed machine"), in three acts:
//                1. the careless operator's setup: f members other than the target (the lagging
//                   side; followers where it can) are SIGKILLed for a hold, so that the writes
//                   acknowledged meanwhile are on the target and the other f members only; then
//                   the target (the leader half the time) and those f are SIGKILLed, the
//                   target's data directory is wiped, and the lagging side is restarted;
//                2. the careless operator restarts the target under its OLD id with an empty
//                   directory (--initial-cluster-state new). With the lagging side it would be a
//                   majority that never saw those writes: correct code refuses it (its peers
//                   pinned its old incarnation, the configuration binds it; it exits or never
//                   counts), the planted bug wiped-replica-votes lets it vote, and the writes
//                   are lost. It is stopped after at most 4 s, and the other f restarted;
//                3. the proper replacement while clients run: a new machine under a NEW id
//                   (ids are never reused), new ports and an empty directory, MEMBER ADD-LEARNER
//                   with that id, started with --join, then MEMBER REPLACE old-id (waits until
//                   it caught up, swaps it in). The LocalCluster's member list, and the clients'
//                   ports (on_replace), follow it; later faults and the final reads address it.
//                Without the careless operator (careless_operator false, chaos
//                --careful-operator) act 2 is skipped: the same kills and wipe, no restart under
//                the old id; with it skipped wiped-replica-votes is not caught, which shows that
//                act 2 is what catches it.
//
// Clock faults are not healed after the hold: a machine's clock stays wrong. When `clock` is among
// the faults, every replica starts the run with a random skew and drift, and keeps its clock's
// faults across restarts (the nemesis sets them again on every replica it starts). Expiry and
// locks run on the cluster clock (docs/core.md, "Time"); the clock fault shows that they do.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/rng.h"
#include "base/status.h"
#include "chaos/history_recorder.h"
#include "kv/reply.h"
#include "process/local_cluster.h"

namespace synod::chaos {

enum class FaultKind { kKill, kPause, kPartition, kRestartAll, kClock, kReplace };
inline constexpr FaultKind kAllFaults[] = {FaultKind::kKill,      FaultKind::kPause,
                                           FaultKind::kPartition, FaultKind::kRestartAll,
                                           FaultKind::kClock,     FaultKind::kReplace};

// "kill", "pause", "partition", "restart-all", "clock", "replace"
std::string_view fault_name(FaultKind kind);

// Parses "kill,pause,partition,restart-all,clock,replace" (any non-empty subset, any order).
Result<std::vector<FaultKind>> parse_fault_list(std::string_view list);

// True if a replica's log ends with a failure to bind its port. LocalCluster's ports lie inside the
// kernel's ephemeral range, so while a replica is down another socket (a peer's reconnect) can
// take its port; such an exit is the test machine's doing, not a crash of the server.
bool port_was_taken(const std::string& log_path);

struct NemesisOptions {
  std::vector<FaultKind> faults;
  uint64_t seed = 1;
  uint32_t gap_ms_min = 500;  // calm between one fault's heal and the next fault
  uint32_t gap_ms_max = 2000;
  uint32_t hold_ms_min = 800;  // how long a fault lasts
  uint32_t hold_ms_max = 3000;
  int64_t max_drift_ppm = 1000;  // node::ClockFaults::max_drift_ppm(): never beyond
  // The replace fault's careless operator (act 2 above); off only to show that it is what catches
  // wiped-replica-votes.
  bool careless_operator = true;
  // Called (on the nemesis's thread) once machine `new_id` took the place `place` of
  // LocalCluster::members(): the clients' ports follow it.
  std::function<void(size_t place, int new_id)> on_replace;
};

class Nemesis {
 public:
  // `cluster` and `recorder` must outlive the Nemesis; while run() runs, nothing else may touch
  // `cluster` (LocalCluster is not thread-safe).
  Nemesis(process::LocalCluster& cluster, NemesisOptions options, HistoryRecorder& recorder);

  // Gives every replica its initial clock faults, if `clock` is among the faults (call once the
  // cluster runs, before the clients start).
  void start_clocks();
  // Injects faults until `inject_until` or until `stop` is set, then heals everything: on return
  // every replica runs, none is paused, no link is blocked and no clock is off.
  void run(std::chrono::steady_clock::time_point inject_until, const std::atomic<bool>& stop);

  // Faults injected, by kind.
  std::map<FaultKind, int> counts() const;
  // Replicas found to have exited without being killed: "n2 exited on its own (see LOG)".
  std::vector<std::string> crashes() const;
  // Replacements that did not complete: "replace of n2 by n5 failed: ...".
  std::vector<std::string> failures() const;

 private:
  void inject(FaultKind kind);
  void kill_fault();
  void pause_fault();
  void partition_fault();
  void restart_all_fault();
  void clock_fault();
  void replace_fault();
  // Act 1 of replace_fault (see above) on `target`, act 2 if careless_operator, and the other
  // killed members restarted.
  void lose_machine(int target);
  // Act 2: `target` restarted under its old id with an empty directory, beside `lagging` (of
  // `members`), and stopped once refused or after 4 s.
  void careless_restart(int target, const std::vector<int>& members,
                        const std::vector<int>& lagging);
  // Act 3: a new machine takes `old_id`'s place through MEMBER ADD-LEARNER and MEMBER REPLACE.
  void replace_machine(int old_id);
  // Notes a replacement that did not complete (the run fails).
  void replace_failed(const std::string& text);
  // Sends `command` to a running member other than `except` in turn until one gives an answer
  // that is neither TRYAGAIN nor UNKNOWN nor a lost connection, for at most `budget_ms`; that
  // answer, or the last error.
  Result<kv::Reply> admin(const std::vector<std::string>& command, int except, uint32_t budget_ms,
                          uint32_t reply_timeout_ms);
  // Starts replica `id` (its clock faults set again); false (an event printed) if it failed.
  bool start(int id, const std::vector<std::string>& extra_args = {});
  // Sends `SYNOD.FAULT <args>` to replica `id`, retrying for about 5 s; false if never answered OK.
  bool fault_command(int id, const std::vector<std::string>& args);
  // Sets replica `id`'s clock faults to what clocks_ says for it.
  void apply_clock(int id);
  // The leader with probability 1/2 (when there is one), else a random replica; `count` distinct.
  std::vector<int> pick_targets(size_t count);
  size_t minority_count();  // 1, or sometimes 2 with 5 replicas
  // Sets replica `id`'s fault filter to drop traffic with `blocked` (empty: clear it).
  void set_filter(int id, const std::vector<int>& blocked);
  // Cuts `side` off from every other member (both ways).
  void cut_off(const std::vector<int>& side);
  void heal_all();
  // Restarts replicas that exited on their own (noted as crashes), except `expected`; returns
  // `expected`'s exit status if it was among them, else -1.
  int reap_crashed(int expected = 0);
  void hold();
  void event(const std::string& text);

  process::LocalCluster& cluster_;
  const NemesisOptions options_;
  HistoryRecorder& recorder_;
  Rng rng_;
  std::vector<int> partition_modes_;  // a seeded shuffle, cycled through
  size_t next_partition_ = 0;
  struct ClockState {
    int64_t wall_offset_ms = 0;
    int64_t drift_ppm = 0;
  };
  std::map<int, ClockState> clocks_;  // by replica id; empty unless `clock` is among the faults
  mutable std::mutex mu_;             // guards what the accessors read
  std::map<FaultKind, int> counts_;
  std::vector<std::string> crashes_;
  std::vector<std::string> failures_;
};

}  // namespace synod::chaos
