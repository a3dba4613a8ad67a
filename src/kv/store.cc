#include "kv/store.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "base/coding.h"
#include "base/hash.h"
#include "kv/commands.h"
#include "kv/scripting.h"

namespace synod::kv {
namespace {

bool decode_reply(Reader& in, Reply& r, int depth = 0) {
  uint8_t kind = 0;
  uint64_t integer = 0;
  uint32_t n = 0;
  if (depth > 4 || !in.u8(kind) || kind > static_cast<uint8_t>(Reply::Kind::kNullArray) ||
      !in.bytes(r.text) || !in.u64(integer) || !in.u32(n) || n > in.remaining() / 17)
    return false;
  r.kind = static_cast<Reply::Kind>(kind);
  r.integer = static_cast<int64_t>(integer);
  r.elements.resize(n);
  for (auto& e : r.elements)
    if (!decode_reply(in, e, depth + 1)) return false;
  return true;
}

}  // namespace

bool glob_match(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
      continue;
    }
    if (pi < p.size()) {
      bool match = false;
      size_t next = pi + 1;
      if (p[pi] == '?') {
        match = true;
      } else if (p[pi] == '[') {
        size_t j = pi + 1;
        bool negate = j < p.size() && p[j] == '^';
        if (negate) ++j;
        bool in = false;
        while (j < p.size() && p[j] != ']') {
          if (p[j] == '\\' && j + 1 < p.size()) {
            in |= p[j + 1] == s[si];
            j += 2;
          } else if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
            char lo = std::min(p[j], p[j + 2]), hi = std::max(p[j], p[j + 2]);
            in |= s[si] >= lo && s[si] <= hi;
            j += 3;
          } else {
            in |= p[j] == s[si];
            ++j;
          }
        }
        match = in != negate;
        next = j < p.size() ? j + 1 : j;
      } else if (p[pi] == '\\' && pi + 1 < p.size()) {
        match = p[pi + 1] == s[si];
        next = pi + 2;
      } else {
        match = p[pi] == s[si];
      }
      if (match) {
        pi = next;
        ++si;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

void encode_reply(std::string& out, const Reply& r) {
  put_u8(out, static_cast<uint8_t>(r.kind));
  put_bytes(out, r.text);
  put_u64(out, static_cast<uint64_t>(r.integer));
  put_u32(out, static_cast<uint32_t>(r.elements.size()));
  for (const auto& e : r.elements) encode_reply(out, e);
}

Result<Reply> decode_reply(std::string_view bytes) {
  Reader in(bytes);
  Reply reply;
  if (!decode_reply(in, reply) || !in.done()) return Status::corruption("malformed reply");
  return reply;
}

CommandClass classify(std::string_view name) {
  const CommandSpec* spec = find_command(lower(name));
  if (!spec) return CommandClass::kUnknown;
  return spec->write ? CommandClass::kWrite : CommandClass::kRead;
}

CommandClass classify_command(const std::vector<std::string>& args) {
  if (args.empty()) return CommandClass::kUnknown;
  return is_script_read(args) ? CommandClass::kRead : classify(args[0]);
}

std::string encode_command(const KvCommand& c) {
  std::string out;
  put_u64(out, c.client);
  put_u64(out, c.seq);
  put_u64(out, c.log_time_ms);
  put_u32(out, static_cast<uint32_t>(c.args.size()));
  for (const auto& a : c.args) put_bytes(out, a);
  return out;
}

size_t encoded_command_bytes(const std::vector<std::string>& args) {
  size_t bytes = 8 + 8 + 8 + 4;  // client, seq, log time, argument count
  for (const auto& a : args) bytes += 4 + a.size();
  return bytes;
}

Result<KvCommand> decode_command(std::string_view bytes) {
  Reader in(bytes);
  KvCommand c;
  uint32_t n = 0;
  if (!in.u64(c.client) || !in.u64(c.seq) || !in.u64(c.log_time_ms) || !in.u32(n) ||
      n > in.remaining() / 4)
    return Status::corruption("undecodable key-value command");
  c.args.resize(n);
  for (auto& a : c.args)
    if (!in.bytes(a)) return Status::corruption("undecodable key-value command");
  if (!in.done()) return Status::corruption("trailing bytes after a key-value command");
  return c;
}

Store::Store(Options options) : options_(options), ks_(options.key_limits) {
  ks_.bug_exec_ignores_watch = options.bug_exec_ignores_watch;
  SYNOD_ASSERT(options_.max_sessions >= 1, "a store needs room for at least one session");
}

// The planted bug sessions-evicted-by-clock: sessions idle for an hour of log time leave, and
// without raising expired_through_seq_, so their clients' retries look brand new.
void Store::forget_idle_sessions() {
  std::erase_if(sessions_, [&](const auto& kv) {
    if (kv.second.last_active_ms + kSessionTtlMs >= ks_.clock_ms()) return false;
    lru_.erase(kv.second.lru);
    return true;
  });
}

std::optional<Reply> Store::remembered_reply(uint64_t client, uint64_t seq) const {
  auto session = sessions_.find(client);
  if (session == sessions_.end()) return std::nullopt;
  for (const auto& [remembered_seq, reply] : session->second.replies) {
    if (remembered_seq == seq) return reply;
  }
  return std::nullopt;
}

void Store::evict_least_recently_used() {
  SYNOD_ASSERT(!lru_.empty(), "evicting from an empty session table");
  const auto it = sessions_.find(lru_.front());
  SYNOD_ASSERT(it != sessions_.end(), "the LRU order names a missing session");
  const Session& s = it->second;
  // Every seq this session applied is remembered or at most its floor.
  const uint64_t highest = s.replies.empty() ? s.floor_seq : s.replies.back().first;
  expired_through_seq_ = std::max({expired_through_seq_, s.floor_seq, highest});
  sessions_.erase(it);
  lru_.pop_front();
  ++evictions_;
}

Store::Session& Store::open_session(uint64_t client) {
  while (sessions_.size() >= options_.max_sessions) evict_least_recently_used();
  Session& s = sessions_[client];
  // Seqs up to the watermark may have been applied in an earlier session of this client.
  s.floor_seq = expired_through_seq_;
  s.lru = lru_.insert(lru_.end(), client);
  return s;
}

Reply Store::apply(const KvCommand& command) {
  ++applied_commands_;
  const uint64_t before = ks_.clock_ms();
  ks_.set_clock_ms(std::max(before, command.log_time_ms));
  ks_.set_seed(applied_commands_);
  ks_.expire_due();
  if (options_.bug_sessions_evicted_by_clock && ks_.clock_ms() / 60'000 != before / 60'000)
    forget_idle_sessions();
  if (command.client == 0) return execute(command.args);
  return apply_in_session(command);
}

Reply Store::apply_in_session(const KvCommand& command) {
  auto found = sessions_.find(command.client);
  if (found == sessions_.end() && command.seq <= expired_through_seq_) {
    return Reply::error(
        "SESSIONEXPIRED this client's exactly-once session was evicted (the session table is "
        "full); the command was not applied now, and whether an earlier attempt was is unknown");
  }
  // The session is found or opened before anything else is evicted: never this one.
  Session& session = found != sessions_.end() ? found->second : open_session(command.client);
  lru_.splice(lru_.end(), lru_, session.lru);  // the most recently used now
  session.last_used = applied_commands_;
  session.last_active_ms = ks_.clock_ms();
  auto& replies = session.replies;
  const auto by_seq = [](const std::pair<uint64_t, Reply>& r, uint64_t seq) {
    return r.first < seq;
  };
  const bool newest = replies.empty() || replies.back().first < command.seq;
  if (!newest) {
    auto it = std::lower_bound(replies.begin(), replies.end(), command.seq, by_seq);
    if (it != replies.end() && it->first == command.seq) return it->second;
  }
  if (command.seq <= session.floor_seq) {
    // Older than anything remembered: it may have been applied. Never apply it twice.
    return Reply::error("ERR command too old: its outcome is no longer known");
  }
  Reply reply = execute(command.args);
  if (newest) {
    replies.emplace_back(command.seq, reply);
  } else {
    replies.emplace(std::lower_bound(replies.begin(), replies.end(), command.seq, by_seq),
                    command.seq, reply);
  }
  while (replies.size() > kRepliesPerClient) {
    session.floor_seq = std::max(session.floor_seq, replies.front().first);
    replies.pop_front();
  }
  return reply;
}

Reply Store::execute(const std::vector<std::string>& args) {
  if (args.empty()) return Reply::error("ERR empty command");
  const CommandSpec* spec = find_command(lower(args[0]));
  if (!spec) return unknown_command(args);
  if (!arity_ok(*spec, args.size())) return arity_error(args[0]);
  // A read applied from the log is served at the log clock.
  return spec->write ? spec->write(ks_, args) : spec->read(ks_, args, ks_.clock_ms());
}

Reply Store::read(const std::vector<std::string>& args, uint64_t now_ms) const {
  if (args.empty()) return Reply::error("ERR empty command");
  if (is_script_read(args)) return script_exists(ks_, args);
  const std::string name = lower(args[0]);
  if (name == "eval_ro" || name == "evalsha_ro")
    return read_only_script(ks_, args, std::max(now_ms, ks_.clock_ms()));
  const CommandSpec* spec = find_command(lower(args[0]));
  if (!spec || !spec->read) return Reply::error("ERR '" + lower(args[0]) + "' is not a read");
  if (!arity_ok(*spec, args.size())) return arity_error(args[0]);
  return spec->read(ks_, args, std::max(now_ms, ks_.clock_ms()));
}

bool Store::serves_as_read(const std::vector<std::string>& args) const {
  return classify_command(args) == CommandClass::kRead || is_cached_read_only_script(ks_, args);
}

namespace {
constexpr std::string_view kSnapshotMagic = "SYNODKVS";
constexpr uint32_t kSnapshotVersion = 4;  // 3: no WATCH versions or script cache; 2: strings only
}  // namespace

std::string Store::snapshot() const {
  std::string out(kSnapshotMagic);
  put_u32(out, kSnapshotVersion);
  put_u64(out, ks_.clock_ms());
  put_u64(out, applied_commands_);
  put_u64(out, expired_through_seq_);
  put_u64(out, evictions_);
  put_u64(out, options_.max_sessions);
  put_u64(out, options_.key_limits.max_elements);
  put_u64(out, options_.key_limits.max_value_bytes);
  ks_.encode(out);
  put_u64(out, sessions_.size());
  // By client id, so that equal states encode (and digest) alike.
  std::vector<std::pair<uint64_t, const Session*>> by_client;
  by_client.reserve(sessions_.size());
  for (const auto& [client, s] : sessions_) by_client.emplace_back(client, &s);
  std::sort(by_client.begin(), by_client.end());
  for (const auto& [client, session] : by_client) {
    const Session& s = *session;
    put_u64(out, client);
    put_u64(out, s.last_used);
    put_u64(out, s.last_active_ms);
    put_u64(out, s.floor_seq);
    put_u32(out, static_cast<uint32_t>(s.replies.size()));
    for (const auto& [seq, reply] : s.replies) {
      put_u64(out, seq);
      encode_reply(out, reply);
    }
  }
  put_u64(out, ks_.scripts().scripts().size());
  for (const auto& [sha, body] : ks_.scripts().scripts()) put_bytes(out, body);
  return out;
}

namespace {

bool read_replies(Reader& in, std::deque<std::pair<uint64_t, Reply>>& replies) {
  uint32_t n = 0;
  if (!in.u32(n) || n > Store::kRepliesPerClient) return false;
  for (uint32_t r = 0; r < n; ++r) {
    uint64_t seq = 0;
    Reply reply;
    if (!in.u64(seq) || !decode_reply(in, reply)) return false;
    if (!replies.empty() && replies.back().first >= seq) return false;  // out of order
    replies.emplace_back(seq, std::move(reply));
  }
  return true;
}

// The script cache: count, then each body (its SHA-1 is recomputed), within the cache's bounds.
bool read_scripts(Reader& in, ScriptCache& scripts) {
  uint64_t n = 0;
  if (!in.u64(n) || n > ScriptCache::kMaxScripts || n > in.remaining() / 4) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string body;
    if (!in.bytes(body)) return false;
    const std::string sha = sha1_hex(body);
    if (scripts.find(sha) || !scripts.add(sha, std::move(body))) return false;
  }
  return true;
}

}  // namespace

Status Store::index_sessions() {
  lru_.clear();
  std::vector<std::pair<uint64_t, uint64_t>> by_use;  // (last used, client)
  by_use.reserve(sessions_.size());
  for (const auto& [client, s] : sessions_) {
    if (s.last_used == 0 || s.last_used > applied_commands_)
      return Status::corruption("session order out of range in a key-value snapshot");
    by_use.emplace_back(s.last_used, client);
  }
  std::sort(by_use.begin(), by_use.end());
  for (size_t i = 0; i < by_use.size(); ++i) {
    if (i > 0 && by_use[i].first == by_use[i - 1].first)
      return Status::corruption("session order out of range in a key-value snapshot");
    sessions_.at(by_use[i].second).lru = lru_.insert(lru_.end(), by_use[i].second);
  }
  return Status::ok();
}

bool Store::read_sessions(Reader& in, uint64_t max_sessions) {
  uint64_t n = 0;
  if (!in.u64(n) || n > max_sessions || n > in.remaining() / 36) return false;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t client = 0;
    Session session;
    if (!in.u64(client) || !in.u64(session.last_used) || !in.u64(session.last_active_ms) ||
        !in.u64(session.floor_seq) || !read_replies(in, session.replies) ||
        !sessions_.emplace(client, std::move(session)).second)
      return false;
  }
  return true;
}

Result<Store> Store::restore(std::string_view bytes, Options options) {
  if (bytes.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) return restore_v1(bytes, options);
  Reader in(bytes.substr(kSnapshotMagic.size()));
  Store s(options);
  uint32_t version = 0;
  uint64_t clock_ms = 0, max_sessions = 0, max_elements = 0, max_value_bytes = 0;
  if (!in.u32(version) || version < 2 || version > kSnapshotVersion)
    return Status::corruption("unknown key-value snapshot version");
  if (!in.u64(clock_ms) || !in.u64(s.applied_commands_) || !in.u64(s.expired_through_seq_) ||
      !in.u64(s.evictions_) || !in.u64(max_sessions))
    return Status::corruption("undecodable key-value snapshot");
  if (max_sessions != options.max_sessions) {
    return Status::invalid_argument(
        "the key-value snapshot was made with --max-sessions " + std::to_string(max_sessions) +
        ", this replica has " + std::to_string(options.max_sessions) +
        ": it must be the same on every replica, for the cluster's whole life");
  }
  s.ks_.set_clock_ms(clock_ms);
  s.ks_.set_seed(s.applied_commands_);
  if (version == 2) {
    // Strings only, made under no key limits: the default limits are far above what version 2's
    // commands (at most --max-command-bytes) could build, except by APPEND; keep what it holds.
    if (!s.ks_.decode_strings(in)) return Status::corruption("undecodable key-value snapshot");
  } else {
    if (!in.u64(max_elements) || !in.u64(max_value_bytes))
      return Status::corruption("undecodable key-value snapshot");
    if (max_elements != options.key_limits.max_elements ||
        max_value_bytes != options.key_limits.max_value_bytes) {
      return Status::invalid_argument(
          "the key-value snapshot was made with other per-key limits (" +
          std::to_string(max_elements) + " elements, " + std::to_string(max_value_bytes) +
          " bytes): they must be the same on every replica, for the cluster's whole life");
    }
    if (!s.ks_.decode(in, version >= 4))
      return Status::corruption("undecodable key-value snapshot");
  }
  if (!s.read_sessions(in, max_sessions)) return Status::corruption("undecodable sessions");
  if (version >= 4 && !read_scripts(in, s.ks_.scripts()))
    return Status::corruption("undecodable script cache");
  if (!in.done()) return Status::corruption("trailing bytes in a key-value snapshot");
  SYNOD_RETURN_IF_ERROR(s.index_sessions());
  return s;
}

// Version 1 (no magic): clock, keys, then sessions as (client, last active log time, replies),
// evicted by log time. Their log-order places follow that time; nothing was evicted by count.
Result<Store> Store::restore_v1(std::string_view bytes, Options options) {
  Reader in(bytes);
  Store s(options);
  uint64_t n = 0, clock_ms = 0;
  if (!in.u64(clock_ms) || !s.ks_.decode_strings(in))
    return Status::corruption("undecodable key-value snapshot");
  s.ks_.set_clock_ms(clock_ms);
  if (!in.u64(n) || n > in.remaining() / 20) return Status::corruption("undecodable sessions");
  std::vector<std::pair<uint64_t, uint64_t>> by_time;  // (last active, client)
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t client = 0;
    Session session;
    if (!in.u64(client) || !in.u64(session.last_active_ms) || !read_replies(in, session.replies))
      return Status::corruption("undecodable sessions");
    // Version 1 refused a seq below the oldest of a full window of replies.
    if (session.replies.size() >= kRepliesPerClient)
      session.floor_seq = session.replies.front().first - 1;
    by_time.emplace_back(session.last_active_ms, client);
    if (!s.sessions_.emplace(client, std::move(session)).second)
      return Status::corruption("undecodable sessions");
  }
  if (!in.done()) return Status::corruption("trailing bytes in a key-value snapshot");
  std::sort(by_time.begin(), by_time.end());
  for (const auto& [at_ms, client] : by_time) s.sessions_[client].last_used = ++s.applied_commands_;
  SYNOD_RETURN_IF_ERROR(s.index_sessions());
  while (s.sessions_.size() > options.max_sessions) s.evict_least_recently_used();
  s.ks_.set_seed(s.applied_commands_);
  return s;
}

uint64_t Store::digest() const {
  Digest d;
  d.add(snapshot());
  return d.value();
}

}  // namespace synod::kv
