// The replicated key-value state machine. Deterministic: the same commands, applied in the same
// slot order with the same log times, give every replica the same state and the same replies.
//
// Time. The leader writes its clock into every command it proposes (`log_time_ms`); the store's
// clock is the highest log time applied so far, so it never goes backwards across leaders with
// skewed clocks, and every replica expires the same keys at the same slot.
//
// Exactly once. A command carries its client's id and sequence number; the store remembers, per
// client, the sequence numbers it applied recently and their replies, and answers a retried
// command (forwarded twice, or retried after an unknown outcome) with the first reply instead of
// applying it again.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace synod::kv {

// A reply, independent of the wire protocol (the server encodes it as RESP2 or RESP3).
struct Reply {
  enum class Kind { kSimple, kError, kInteger, kBulk, kNull, kArray };
  Kind kind = Kind::kNull;
  std::string text;  // kSimple, kError, kBulk
  int64_t integer = 0;
  std::vector<Reply> elements;

  static Reply ok() { return simple("OK"); }
  static Reply simple(std::string s) { return {Kind::kSimple, std::move(s), 0, {}}; }
  static Reply error(std::string s) { return {Kind::kError, std::move(s), 0, {}}; }
  static Reply integer_of(int64_t v) { return {Kind::kInteger, {}, v, {}}; }
  static Reply bulk(std::string s) { return {Kind::kBulk, std::move(s), 0, {}}; }
  static Reply null() { return {}; }
  static Reply array(std::vector<Reply> e) { return {Kind::kArray, {}, 0, std::move(e)}; }
  bool operator==(const Reply&) const = default;
};

// The byte coding of a Reply, shared by snapshots (exactly-once sessions) and the peer wire
// (replies to forwarded commands): kind u8, text (u32 length + bytes), integer u64, element count
// u32, then each element the same way (nested at most 4 deep).
void encode_reply(std::string& out, const Reply& reply);
Result<Reply> decode_reply(std::string_view bytes);

// Redis glob matching (SCAN MATCH, CONFIG GET): * ? [abc] [^a-z] and \ escapes.
bool glob_match(std::string_view pattern, std::string_view text);

// How a command name is served: by the log (it writes, or must be ordered with writes) or as a
// linearizable read without the log. Unknown names are neither.
enum class CommandClass { kWrite, kRead, kUnknown };
CommandClass classify(std::string_view name);

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

class Store {
 public:
  // Applies a write (or any command) from the log.
  Reply apply(const KvCommand& command);
  // Serves a read at the store's current state, as of `now_ms` for expiry (at least the log
  // clock). Reads never change the state.
  Reply read(const std::vector<std::string>& args, uint64_t now_ms) const;

  uint64_t clock_ms() const { return clock_ms_; }
  size_t size() const { return data_.size(); }  // including expired keys not yet removed
  // A digest of the whole state, for tests and the simulator.
  uint64_t digest() const;

  std::string snapshot() const;
  static Result<Store> restore(std::string_view bytes);

  // How many recent replies are kept per client for exactly-once answers.
  static constexpr size_t kRepliesPerClient = 64;
  // A client whose last command is older than this (log time) is forgotten.
  static constexpr uint64_t kSessionTtlMs = 3'600'000;

 private:
  struct Entry {
    std::string value;
    uint64_t expire_at_ms = 0;  // 0: no expiry
  };
  struct Session {
    uint64_t last_active_ms = 0;
    // (seq, reply) by ascending seq, the newest kRepliesPerClient: a client's commands arrive in
    // seq order, so a new one goes at the back and the oldest leaves at the front.
    std::deque<std::pair<uint64_t, Reply>> replies;
  };

  Reply execute(const std::vector<std::string>& args);
  const Entry* find(const std::string& key, uint64_t now_ms) const;
  Entry* find_live(const std::string& key);
  void set_expiry(const std::string& key, Entry& e, uint64_t at_ms);
  void erase(const std::string& key);
  void expire_due();
  void forget_idle_sessions();

  std::map<std::string, Entry> data_;  // ordered: SCAN cursors are keys
  std::set<std::pair<uint64_t, std::string>> expiries_;
  std::map<uint64_t, Session> sessions_;
  uint64_t clock_ms_ = 0;
};

}  // namespace synod::kv
