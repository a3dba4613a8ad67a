// The replicated key-value state machine. Deterministic: the same commands, applied in the same
// slot order with the same log times, give every replica the same state and the same replies.
//
// Time. The leader writes its clock into every command it proposes (`log_time_ms`); the store's
// clock is the highest log time applied so far, so it never goes backwards across leaders with
// skewed clocks, and every replica expires the same keys at the same slot.
//
// Exactly once. A command carries its client's id and sequence number; the store remembers, per
// client (a session), the sequence numbers it applied recently and their replies, and answers a
// retried command (forwarded twice, or retried after an unknown outcome) with the first reply
// instead of applying it again.
//
// Sessions are bounded by count (Options::max_sessions). When a new client needs a session and the
// table is full, the session used least recently in log order leaves — log order, not time, so
// every replica evicts the same session at the same command whatever the leaders' clocks say, and
// the session of the command being applied is never the one evicted. A command of a client whose
// session left must not be applied again, yet a brand-new client must be served; the store tells
// them apart by sequence numbers (Raft dissertation §6.3 solves the same problem with sessions
// registered through the log):
//   - evicting a session raises `expired_through_seq`, the highest seq that session applied;
//   - a client numbers its commands with increasing seqs, each no higher than first_seq() read
//     from some replica's store when the command is first sent (any replica's: a store lags the
//     log, so the command is applied at a position at least that high) — the server's
//     connections take max(previous + 1, first_seq());
//   - so a command of an unknown client whose seq is at most `expired_through_seq` may belong to
//     an evicted session: it is refused with SESSIONEXPIRED (not applied; whether an earlier
//     attempt was is unknown). A higher seq cannot have been applied before (its session would
//     still exist, or its eviction would have raised the watermark past it): a new session opens.
// A new client is refused by mistake only if max_sessions other clients ran commands between the
// moment it read first_seq() and the command's apply (a replica lagging that far behind the log):
// the refusal is definite, and the server retries such a command with a fresh seq.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "kv/keyspace.h"
#include "kv/reply.h"

namespace synod {
class Reader;
}

namespace synod::kv {

// Redis glob matching (SCAN MATCH, CONFIG GET): * ? [abc] [^a-z] and \ escapes.
bool glob_match(std::string_view pattern, std::string_view text);

// How a command name is served: by the log (it writes, or must be ordered with writes) or as a
// linearizable read without the log. Unknown names are neither.
enum class CommandClass { kWrite, kRead, kUnknown };
CommandClass classify(std::string_view name);
// The same for a whole command, where a subcommand decides (SCRIPT EXISTS is a read, SCRIPT LOAD
// a write).
CommandClass classify_command(const std::vector<std::string>& args);

// One command as the log carries it.
struct KvCommand {
  uint64_t client = 0;  // 0: no exactly-once tracking
  uint64_t seq = 0;
  uint64_t log_time_ms = 0;
  std::vector<std::string> args;  // as the client sent them: name first
};
std::string encode_command(const KvCommand& command);
Result<KvCommand> decode_command(std::string_view bytes);
// The size of encode_command's output for these arguments, without encoding them: a command's
// size as the log stores it, which --max-command-bytes bounds (28 bytes, plus each argument's
// bytes and 4).
size_t encoded_command_bytes(const std::vector<std::string>& args);

// The default bound on sessions: every live connection of a cluster (10,000 clients per replica
// by default, up to 5 replicas) twice over, so that churn of short connections does not push out
// a live client's session within a retry's lifetime. About 0.7 KiB each with one small reply.
inline constexpr size_t kDefaultMaxSessions = 100'000;

// How a Store keeps exactly-once sessions (see the top of this file).
struct StoreOptions {
  // Sessions kept at most (at least 1). Part of the replicated state machine's definition: it
  // must be equal on every replica of a cluster for its whole life (a snapshot records it, and
  // restore() refuses a different one), or replicas would evict differently and diverge.
  size_t max_sessions = kDefaultMaxSessions;
  // Planted bug "sessions-evicted-by-clock" (never in production): the old behaviour, sessions
  // idle for kSessionTtlMs of log time forgotten before the lookup, so that a retry stamped by
  // a leader whose clock runs ahead is applied a second time.
  bool bug_sessions_evicted_by_clock = false;
  // Planted bug "exec-ignores-watch" (never in production): EXEC applies its commands even when
  // a key it watched was modified after the WATCH.
  bool bug_exec_ignores_watch = false;
  // Bounds on one key's value (elements and bytes). Like max_sessions, part of the state
  // machine's definition: equal on every replica, recorded in snapshots.
  KeyLimits key_limits;
};

class Store {
 public:
  using Options = StoreOptions;

  Store() : Store(Options{}) {}
  explicit Store(Options options);
  // Moved, never copied: a session's place in the LRU order points into this store's list.
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  Store(Store&&) = default;
  Store& operator=(Store&&) = default;

  // Applies a write (or any command) from the log.
  Reply apply(const KvCommand& command);
  // Serves a read at the store's current state, as of `now_ms` for expiry (at least the log
  // clock). Reads never change the state.
  Reply read(const std::vector<std::string>& args, uint64_t now_ms) const;
  // Whether `args` may be served by read() rather than the log: a read (classify_command), or
  // EVAL_RO / EVALSHA_RO whose script this store has cached (kv/scripting.h).
  bool serves_as_read(const std::vector<std::string>& args) const;

  // The reply remembered for a client's command, if it was applied and is still remembered: for
  // a command applied as part of a snapshot rather than one by one.
  std::optional<Reply> remembered_reply(uint64_t client, uint64_t seq) const;

  uint64_t clock_ms() const { return ks_.clock_ms(); }
  size_t size() const { return ks_.size(); }  // including expired keys not yet removed
  Keyspace::ExpiryStats expiry_stats() const { return ks_.expiry_stats(ks_.clock_ms()); }
  // A digest of the whole state, for tests and the simulator.
  uint64_t digest() const;
  // Where large frees go (Keyspace::set_disposer).
  void set_disposer(Keyspace::Disposer dispose) { ks_.set_disposer(std::move(dispose)); }

  // The encoding is docs/wal-format.md's "Key-value state" (version 4); restore() also reads
  // versions 1 to 3. It refuses a snapshot made with another Options::max_sessions or
  // Options::key_limits.
  std::string snapshot() const;
  static Result<Store> restore(std::string_view bytes, Options options = {});

  // The lowest sequence number a client may give its next command (see the top of this file).
  uint64_t first_seq() const { return applied_commands_ + 1; }
  size_t sessions() const { return sessions_.size(); }
  uint64_t session_evictions() const { return evictions_; }

  // How many recent replies are kept per client for exactly-once answers.
  static constexpr size_t kRepliesPerClient = 64;
  // Only for the planted bug: a client idle this long (log time) is forgotten.
  static constexpr uint64_t kSessionTtlMs = 3'600'000;

 private:
  struct Session {
    uint64_t last_used = 0;  // applied_commands_ when it last had a command (snapshotted)
    std::list<uint64_t>::iterator lru;  // its place in lru_
    uint64_t last_active_ms = 0;        // the log time then (only the planted bug reads it)
    uint64_t floor_seq = 0;             // the outcomes of seqs up to this one are no longer known
    // (seq, reply) by ascending seq, the newest kRepliesPerClient: a client's commands arrive in
    // seq order, so a new one goes at the back and the oldest leaves at the front.
    std::deque<std::pair<uint64_t, Reply>> replies;
  };

  Reply execute(const std::vector<std::string>& args);
  Reply apply_in_session(const KvCommand& command);
  Session& open_session(uint64_t client);
  void evict_least_recently_used();
  void forget_idle_sessions();  // the planted bug only
  static Result<Store> restore_v1(std::string_view bytes, Options options);
  [[nodiscard]] bool read_sessions(Reader& in, uint64_t max_sessions);
  Status index_sessions();  // builds lru_ from sessions_ after a restore

  Options options_;
  Keyspace ks_;  // the keys, their values and expiries, the log clock
  // By client id. Every applied command finds its session and moves it to the back of lru_: a
  // hash table and a list, where two ordered trees (one node freed and one allocated per
  // command) made each apply 15-30% dearer (`synod bench apply`).
  std::unordered_map<uint64_t, Session> sessions_;
  std::list<uint64_t> lru_;           // client ids by Session::last_used, oldest first
  uint64_t applied_commands_ = 0;     // commands applied: the log-order clock of sessions
  uint64_t expired_through_seq_ = 0;  // the highest seq any evicted session applied
  uint64_t evictions_ = 0;
};

}  // namespace synod::kv
