// The keyspace of the key-value state machine: a typed value (string, hash, list, set or sorted
// set) under each key, expiry on the log clock, and the per-key bounds. Owned by kv::Store, which
// adds exactly-once sessions; the commands (kv/*_commands.cc) read and change it.
//
// Everything here is deterministic: ordered containers only, so that iteration order (HGETALL,
// SMEMBERS, KEYS, snapshots) is the same on every replica, and "random" choices (SPOP,
// SRANDMEMBER, RANDOMKEY, ...) are drawn from seed(), which is a function of the log position.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/status.h"
#include "kv/script_cache.h"

namespace synod {
class Reader;
}

namespace synod::kv {

// The order is the snapshot's type byte (docs/wal-format.md) and std::variant's index.
enum class Type : uint8_t { kString = 0, kHash = 1, kList = 2, kSet = 3, kZset = 4 };
std::string_view type_name(Type type);  // as TYPE answers: "string", "hash", ...

// Each collection keeps its element count (the container's size) and its bytes (the sum of its
// elements' bytes: field + value, item, member, member + 8 for a score), which the bounds check.
struct Hash {
  std::map<std::string, std::string, std::less<>> fields;
  size_t bytes = 0;
  size_t size() const { return fields.size(); }
};
struct List {
  std::deque<std::string> items;
  size_t bytes = 0;
  size_t size() const { return items.size(); }
};
struct Set {
  std::set<std::string, std::less<>> members;
  size_t bytes = 0;
  size_t size() const { return members.size(); }
};
struct ZSet {
  std::map<std::string, double, std::less<>> scores;  // member -> score
  std::set<std::pair<double, std::string>> order;     // (score, member): Redis's order
  size_t bytes = 0;
  size_t size() const { return scores.size(); }
  // Adds or moves a member; no bound check (the caller did it).
  void put(const std::string& member, double score);
  bool remove(std::string_view member);
};

// A collection held by pointer: a key's value is as small as a string's (a std::map or deque
// inline made every key's node 128 bytes larger, strings included, and most keys are strings).
// Copying copies the collection.
template <class T>
class Boxed {
 public:
  Boxed() : p_(std::make_unique<T>()) {}
  explicit Boxed(T value) : p_(std::make_unique<T>(std::move(value))) {}
  Boxed(const Boxed& o) : p_(std::make_unique<T>(*o.p_)) {}
  Boxed& operator=(const Boxed& o) {
    p_ = std::make_unique<T>(*o.p_);
    return *this;
  }
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(Boxed&&) noexcept = default;
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  // False once moved from (RENAME moves a value out before it erases the old key).
  bool holds() const { return p_ != nullptr; }

 private:
  std::unique_ptr<T> p_;
};

// How a value of type T is held in Value::data: a string inline, a collection boxed.
template <class T>
using Stored = std::conditional_t<std::is_same_v<T, std::string>, std::string, Boxed<T>>;
// The value itself, whichever way it is held (const if `stored` is).
template <class S>
auto& unbox(S& stored) {
  if constexpr (std::is_same_v<std::remove_const_t<S>, std::string>) {
    return stored;
  } else {
    return *stored;
  }
}

struct Value {
  std::variant<std::string, Boxed<Hash>, Boxed<List>, Boxed<Set>, Boxed<ZSet>> data;
  uint64_t expire_at_ms = 0;  // 0: no expiry
  // The log position (Keyspace::position()) of the command that last modified the key, for WATCH.
  uint64_t version = 0;
  Type type() const { return static_cast<Type>(data.index()); }
};

// Bounds on one key's value, part of the state machine's definition (a snapshot records them and
// restore refuses others): replicas with different bounds would refuse different writes.
struct KeyLimits {
  size_t max_elements = 1'000'000;     // elements of one hash, list, set or sorted set
  size_t max_value_bytes = 64u << 20;  // a string's bytes, or a collection's element bytes
};

class Keyspace {
 public:
  using Map = std::map<std::string, Value, std::less<>>;

  explicit Keyspace(KeyLimits limits) : limits_(limits) {}

  const KeyLimits& limits() const { return limits_; }
  uint64_t clock_ms() const { return clock_ms_; }
  void set_clock_ms(uint64_t ms) { clock_ms_ = ms; }
  // The source of deterministic "randomness": the number of commands applied, which the Store
  // sets before each command. Equal on every replica at the same log position.
  uint64_t seed() const { return seed_; }
  void set_seed(uint64_t seed) { seed_ = seed; }
  // The same number as the log position that WATCH versions are measured in: every command of a
  // transaction shares its entry's position.
  uint64_t position() const { return seed_; }

  // WATCH. The log position of the last modification of `key` (a write, an expiry set or
  // cleared, a deletion, the key expiring): the key's own version while it exists, else its
  // tombstone, else the tombstone floor. The floor is at least every tombstone let go, so a
  // deleted key never looks older than its deletion; at worst a transaction aborts that Redis
  // would have run (docs/operations.md, "Transactions").
  uint64_t modified_at(std::string_view key) const;
  // Tombstones kept at most (the oldest leave first, raising the floor). Part of the state
  // machine's definition, like the snapshot format: replicas must agree on it.
  static constexpr size_t kMaxTombstones = 100'000;
  // Planted bug "exec-ignores-watch" (never in production): EXEC runs whatever WATCH saw.
  bool bug_exec_ignores_watch = false;
  // Where large frees go: FLUSHALL's whole keyspace, and a collection of at least
  // kDisposeElements elements that is deleted or overwritten. The server frees them on another
  // thread (FLUSHALL of 632k keys held every replica's loop for 190 ms, near an election
  // timeout); unset, they are freed in place. What is freed, and when, changes no state.
  using Disposer = std::function<void(std::shared_ptr<void>)>;
  void set_disposer(Disposer dispose) { dispose_ = std::move(dispose); }
  static constexpr size_t kDisposeElements = 10'000;
  size_t tombstones() const { return tombstones_.size(); }
  uint64_t tombstone_floor() const { return tombstone_floor_; }
  // The scripts EVALSHA can run (kv/scripting.h). Not keys: FLUSHALL keeps them, as in Redis.
  ScriptCache& scripts() { return scripts_; }
  const ScriptCache& scripts() const { return scripts_; }

  // The live value of a key as of now_ms (an expired one not yet removed is absent).
  const Value* find(std::string_view key, uint64_t now_ms) const;
  // The live value at the log clock, for writes. It counts as a modification for WATCH: a write
  // command asks for it to change the value (when it only looks, a transaction watching the key
  // aborts where Redis's would run, which is safe).
  Value* find_live(std::string_view key);

  // A key's value of type T: null if absent; `wrong` is set if it holds another type.
  template <class T>
  const T* read_as(std::string_view key, uint64_t now_ms, bool& wrong) const {
    const Value* v = find(key, now_ms);
    wrong = v && !std::holds_alternative<Stored<T>>(v->data);
    return v && !wrong ? &unbox(std::get<Stored<T>>(v->data)) : nullptr;
  }
  template <class T>
  T* write_as(std::string_view key, bool& wrong) {
    Value* v = find_live(key);
    wrong = v && !std::holds_alternative<Stored<T>>(v->data);
    return v && !wrong ? &unbox(std::get<Stored<T>>(v->data)) : nullptr;
  }
  // An empty value of type T under `key`, replacing whatever was there (expired or not), with
  // no expiry. A collection left empty must be dropped again (drop_if_empty).
  template <class T>
  T& create(const std::string& key) {
    return unbox(std::get<Stored<T>>(put(key, Value{Stored<T>{}, 0}).data));
  }
  // Replaces the key's value (and its expiry) with `value`.
  Value& put(const std::string& key, Value value);
  // Redis deletes a collection once its last element goes.
  void drop_if_empty(std::string_view key);
  bool erase(std::string_view key);  // true if it existed (expired or not)
  void set_expiry(std::string_view key, Value& value, uint64_t at_ms);
  void expire_due();  // removes every key whose expiry is at or before the clock
  void clear();

  const Map& data() const { return data_; }
  size_t size() const { return data_.size(); }  // including expired keys not yet removed
  size_t live_count(uint64_t now_ms) const;
  // INFO's keyspace line: how many keys have an expiry, and their mean time to live from
  // `now_ms` (0 if none), over every such key: O(keys with an expiry), for INFO only.
  struct ExpiryStats {
    size_t expires = 0;
    uint64_t avg_ttl_ms = 0;
  };
  ExpiryStats expiry_stats(uint64_t now_ms) const;

  // Whether a collection may grow to `elements` elements of `bytes` bytes: the error to answer
  // if not.
  std::optional<std::string> check_collection(size_t elements, size_t bytes) const;
  // Whether a string may grow to `bytes` bytes.
  std::optional<std::string> check_string(size_t bytes) const;

  // The keys of a version 4 snapshot (docs/wal-format.md): count, then per key in key order
  // (with its version), then the tombstone floor and the tombstones. decode(in, false) reads a
  // version 3 snapshot's keys, which carry no versions: every key counts as modified at the
  // snapshot's position (a cluster runs transactions only once every replica knows them).
  void encode(std::string& out) const;
  [[nodiscard]] bool decode(Reader& in, bool with_versions = true);
  // Version 1 and 2: strings only (key, value, expire_at_ms).
  [[nodiscard]] bool decode_strings(Reader& in);

 private:
  KeyLimits limits_;
  Map data_;
  std::set<std::pair<uint64_t, std::string>> expiries_;  // (expire_at_ms, key)
  // The sum of every expire_at_ms in expiries_, kept as they come and go, so that INFO's mean TTL
  // costs no walk over them (which took 90 ms of the loop at 632k keys). 128 bits: millions of
  // Unix-millisecond deadlines overflow 64.
  __extension__ using ExpirySum = unsigned __int128;
  ExpirySum expiry_sum_ = 0;
  Disposer dispose_;
  void discard(Value&& value);  // frees a large collection through dispose_
  void add_expiry(uint64_t at_ms, std::string key);
  void drop_expiry(uint64_t at_ms, const std::string& key);
  // Deleted keys' deletion positions, and the same by position (oldest first) for the bound.
  std::map<std::string, uint64_t, std::less<>> tombstones_;
  std::set<std::pair<uint64_t, std::string>> tombstone_order_;
  uint64_t tombstone_floor_ = 0;
  bool remove(std::string_view key);  // erase without a tombstone
  void bury(std::string_view key);    // records a deletion at position()
  void unbury(std::string_view key);
  uint64_t clock_ms_ = 0;
  uint64_t seed_ = 0;
  ScriptCache scripts_;
};

}  // namespace synod::kv
