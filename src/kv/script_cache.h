// The script cache of the key-value state machine: the bodies that EVALSHA can run, by their
// SHA-1. State-machine state like the keys (changed only by SCRIPT LOAD, EVAL and SCRIPT FLUSH
// applied from the log, and recorded in snapshots), so that EVALSHA finds a script on every
// replica once any replica applied its LOAD. Bounded: a full cache refuses SCRIPT LOAD and runs
// an EVAL without caching it, alike on every replica.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace synod::kv {

// The SHA-1 of `data` in lower-case hex (40 characters), as redis.sha1hex and EVALSHA name it.
std::string sha1_hex(std::string_view data);

class ScriptCache {
 public:
  // Part of the state machine's definition, like the key limits: equal on every replica.
  static constexpr size_t kMaxScripts = 10'000;
  static constexpr size_t kMaxBytes = 64u << 20;  // the sum of the cached bodies' bytes

  // The body cached under a lower-case hex SHA-1, or null.
  const std::string* find(std::string_view sha) const {
    auto it = scripts_.find(sha);
    return it == scripts_.end() ? nullptr : &it->second;
  }
  // Whether `body` fits (or is already cached).
  bool has_room_for(const std::string& sha, size_t body_bytes) const {
    return scripts_.count(sha) > 0 ||
           (scripts_.size() < kMaxScripts && bytes_ + body_bytes <= kMaxBytes);
  }
  // Caches `body` under its SHA-1 if there is room; false if there is not.
  bool add(const std::string& sha, std::string body) {
    if (!has_room_for(sha, body.size())) return false;
    if (scripts_.count(sha) > 0) return true;
    bytes_ += body.size();
    scripts_.emplace(sha, std::move(body));
    return true;
  }
  void clear() {
    scripts_.clear();
    bytes_ = 0;
  }
  // By SHA-1, the order snapshots record them in.
  const std::map<std::string, std::string, std::less<>>& scripts() const { return scripts_; }
  size_t bytes() const { return bytes_; }

 private:
  std::map<std::string, std::string, std::less<>> scripts_;  // sha -> body
  size_t bytes_ = 0;
};

}  // namespace synod::kv
