#include "kv/store.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "base/coding.h"
#include "base/hash.h"

namespace synod::kv {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_i64(std::string_view s, int64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

Reply arity_error(std::string_view name) {
  return Reply::error("ERR wrong number of arguments for '" + lower(name) + "' command");
}
Reply syntax_error() {
  return Reply::error("ERR syntax error");
}
Reply not_integer() {
  return Reply::error("ERR value is not an integer or out of range");
}

uint64_t scan_hash(std::string_view key) {
  Digest d;
  d.add(key);
  return d.value() | 1;  // never 0, which is the cursor of a finished scan
}

bool decode_reply(Reader& in, Reply& r, int depth = 0) {
  uint8_t kind = 0;
  uint64_t integer = 0;
  uint32_t n = 0;
  if (depth > 4 || !in.u8(kind) || kind > static_cast<uint8_t>(Reply::Kind::kArray) ||
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
  static const std::set<std::string, std::less<>> writes = {
      "set",    "del",    "delifeq", "incr",   "incrby",  "decr",
      "decrby", "append", "mset",    "expire", "pexpire", "persist"};
  static const std::set<std::string, std::less<>> reads = {"get", "mget", "exists", "strlen",
                                                           "ttl", "pttl", "dbsize", "scan"};
  const std::string n = lower(name);
  if (writes.count(n)) return CommandClass::kWrite;
  if (reads.count(n)) return CommandClass::kRead;
  return CommandClass::kUnknown;
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

const Store::Entry* Store::find(const std::string& key, uint64_t now_ms) const {
  auto it = data_.find(key);
  if (it == data_.end()) return nullptr;
  if (it->second.expire_at_ms != 0 && it->second.expire_at_ms <= now_ms) return nullptr;
  return &it->second;
}

Store::Entry* Store::find_live(const std::string& key) {
  return const_cast<Entry*>(find(key, clock_ms_));
}

void Store::set_expiry(const std::string& key, Entry& e, uint64_t at_ms) {
  if (e.expire_at_ms != 0) expiries_.erase({e.expire_at_ms, key});
  e.expire_at_ms = at_ms;
  if (at_ms != 0) expiries_.insert({at_ms, key});
}

void Store::erase(const std::string& key) {
  auto it = data_.find(key);
  if (it == data_.end()) return;
  if (it->second.expire_at_ms != 0) expiries_.erase({it->second.expire_at_ms, key});
  data_.erase(it);
}

void Store::expire_due() {
  while (!expiries_.empty() && expiries_.begin()->first <= clock_ms_) {
    const std::string key = expiries_.begin()->second;
    erase(key);
  }
}

Store::Store(Options options) : options_(options) {
  SYNOD_ASSERT(options_.max_sessions >= 1, "a store needs room for at least one session");
}

// The planted bug sessions-evicted-by-clock: sessions idle for an hour of log time leave, and
// without raising expired_through_seq_, so their clients' retries look brand new.
void Store::forget_idle_sessions() {
  std::erase_if(sessions_, [&](const auto& kv) {
    if (kv.second.last_active_ms + kSessionTtlMs >= clock_ms_) return false;
    lru_.erase(kv.second.last_used);
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
  const auto oldest = lru_.begin();
  const auto it = sessions_.find(oldest->second);
  SYNOD_ASSERT(it != sessions_.end(), "the LRU order names a missing session");
  const Session& s = it->second;
  // Every seq this session applied is remembered or at most its floor.
  const uint64_t highest = s.replies.empty() ? s.floor_seq : s.replies.back().first;
  expired_through_seq_ = std::max({expired_through_seq_, s.floor_seq, highest});
  sessions_.erase(it);
  lru_.erase(oldest);
  ++evictions_;
}

Store::Session& Store::open_session(uint64_t client) {
  while (sessions_.size() >= options_.max_sessions) evict_least_recently_used();
  Session& s = sessions_[client];
  // Seqs up to the watermark may have been applied in an earlier session of this client.
  s.floor_seq = expired_through_seq_;
  return s;
}

Reply Store::apply(const KvCommand& command) {
  ++applied_commands_;
  const uint64_t before = clock_ms_;
  clock_ms_ = std::max(clock_ms_, command.log_time_ms);
  expire_due();
  if (options_.bug_sessions_evicted_by_clock && clock_ms_ / 60'000 != before / 60'000)
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
  lru_.erase(session.last_used);
  session.last_used = applied_commands_;
  session.last_active_ms = clock_ms_;
  lru_.emplace(session.last_used, command.client);
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
  const std::string name = lower(args[0]);
  const size_t argc = args.size();
  if (classify(name) == CommandClass::kRead) return read(args, clock_ms_);

  if (name == "set") {
    if (argc < 3) return arity_error(name);
    bool nx = false, xx = false, get = false, keepttl = false;
    std::optional<std::string> ifeq;
    std::optional<uint64_t> expire_at;
    for (size_t i = 3; i < argc; ++i) {
      const std::string opt = lower(args[i]);
      const bool has_next = i + 1 < argc;
      if (opt == "nx" && !xx && !ifeq) {
        nx = true;
      } else if (opt == "xx" && !nx && !ifeq) {
        xx = true;
      } else if (opt == "ifeq" && has_next && !nx && !xx && !ifeq) {
        ifeq = args[++i];
      } else if (opt == "get") {
        get = true;
      } else if (opt == "keepttl" && !expire_at) {
        keepttl = true;
      } else if ((opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat") && has_next &&
                 !expire_at && !keepttl) {
        int64_t v = 0;
        if (!parse_i64(args[++i], v)) return not_integer();
        const bool seconds = opt == "ex" || opt == "exat";
        if (v <= 0 || (seconds && v > std::numeric_limits<int64_t>::max() / 1000))
          return Reply::error("ERR invalid expire time in 'set' command");
        uint64_t ms = static_cast<uint64_t>(v) * (seconds ? 1000 : 1);
        const bool relative = opt == "ex" || opt == "px";
        if (relative && ms > std::numeric_limits<uint64_t>::max() - clock_ms_)
          return Reply::error("ERR invalid expire time in 'set' command");
        expire_at = relative ? clock_ms_ + ms : ms;
      } else {
        return syntax_error();
      }
    }
    Entry* e = find_live(args[1]);
    Reply old = get && e ? Reply::bulk(e->value) : Reply::null();  // only SET ... GET returns it
    const bool allowed = (!nx || !e) && (!xx || e) && (!ifeq || (e && e->value == *ifeq));
    if (!allowed) return get ? old : Reply::null();
    if (!e) {
      erase(args[1]);  // an expired leftover
      e = &data_[args[1]];
    }
    e->value = args[2];
    if (!keepttl) set_expiry(args[1], *e, 0);
    if (expire_at) {
      if (*expire_at <= clock_ms_) {
        erase(args[1]);  // already in the past: set and expired at once
      } else {
        set_expiry(args[1], *e, *expire_at);
      }
    }
    return get ? old : Reply::ok();
  }
  if (name == "del") {
    if (argc < 2) return arity_error(name);
    int64_t n = 0;
    for (size_t i = 1; i < argc; ++i) {
      if (find_live(args[i])) ++n;
      erase(args[i]);
    }
    return Reply::integer_of(n);
  }
  if (name == "delifeq") {
    if (argc != 3) return arity_error(name);
    Entry* e = find_live(args[1]);
    if (!e || e->value != args[2]) return Reply::integer_of(0);
    erase(args[1]);
    return Reply::integer_of(1);
  }
  if (name == "incr" || name == "decr" || name == "incrby" || name == "decrby") {
    const bool by = name == "incrby" || name == "decrby";
    if (argc != (by ? 3u : 2u)) return arity_error(name);
    int64_t delta = 1;
    if (by && !parse_i64(args[2], delta)) return not_integer();
    if (name[0] == 'd') {
      if (delta == std::numeric_limits<int64_t>::min())
        return Reply::error("ERR decrement would overflow");
      delta = -delta;
    }
    Entry* e = find_live(args[1]);
    int64_t current = 0;
    if (e && !parse_i64(e->value, current)) return not_integer();
    if ((delta > 0 && current > std::numeric_limits<int64_t>::max() - delta) ||
        (delta < 0 && current < std::numeric_limits<int64_t>::min() - delta))
      return Reply::error("ERR increment or decrement would overflow");
    if (!e) {
      erase(args[1]);
      e = &data_[args[1]];
    }
    e->value = std::to_string(current + delta);
    return Reply::integer_of(current + delta);
  }
  if (name == "append") {
    if (argc != 3) return arity_error(name);
    Entry* e = find_live(args[1]);
    if (!e) {
      erase(args[1]);
      e = &data_[args[1]];
    }
    e->value += args[2];
    return Reply::integer_of(static_cast<int64_t>(e->value.size()));
  }
  if (name == "mset") {
    if (argc < 3 || argc % 2 == 0) return arity_error(name);
    for (size_t i = 1; i + 1 < argc; i += 2) {
      erase(args[i]);
      data_[args[i]].value = args[i + 1];
    }
    return Reply::ok();
  }
  if (name == "expire" || name == "pexpire") {
    if (argc < 3) return arity_error(name);
    int64_t v = 0;
    if (!parse_i64(args[2], v)) return not_integer();
    bool nx = false, xx = false, gt = false, lt = false;
    for (size_t i = 3; i < argc; ++i) {
      const std::string opt = lower(args[i]);
      if (opt == "nx")
        nx = true;
      else if (opt == "xx")
        xx = true;
      else if (opt == "gt")
        gt = true;
      else if (opt == "lt")
        lt = true;
      else
        return Reply::error("ERR Unsupported option " + args[i]);
    }
    if ((nx && (xx || gt || lt)) || (gt && lt))
      return Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible");
    const bool seconds = name == "expire";
    if (seconds && (v > std::numeric_limits<int64_t>::max() / 1000 ||
                    v < std::numeric_limits<int64_t>::min() / 1000))
      return Reply::error("ERR invalid expire time in '" + name + "' command");
    const int64_t ms = v * (seconds ? 1000 : 1);
    Entry* e = find_live(args[1]);
    if (!e) return Reply::integer_of(0);
    const uint64_t current = e->expire_at_ms;  // 0: none (an infinite TTL)
    const int64_t now = static_cast<int64_t>(clock_ms_);
    if (ms > 0 && now > std::numeric_limits<int64_t>::max() - ms)
      return Reply::error("ERR invalid expire time in '" + name + "' command");
    const int64_t at = now + ms;
    if ((nx && current != 0) || (xx && current == 0) ||
        (gt && (current == 0 || at <= static_cast<int64_t>(current))) ||
        (lt && current != 0 && at >= static_cast<int64_t>(current)))
      return Reply::integer_of(0);
    if (at <= now) {
      erase(args[1]);
    } else {
      set_expiry(args[1], *e, static_cast<uint64_t>(at));
    }
    return Reply::integer_of(1);
  }
  if (name == "persist") {
    if (argc != 2) return arity_error(name);
    Entry* e = find_live(args[1]);
    if (!e || e->expire_at_ms == 0) return Reply::integer_of(0);
    set_expiry(args[1], *e, 0);
    return Reply::integer_of(1);
  }
  std::string msg = "ERR unknown command '" + args[0] + "', with args beginning with: ";
  for (size_t i = 1; i < argc && i < 4; ++i) msg += "'" + args[i] + "' ";
  return Reply::error(msg);
}

Reply Store::read(const std::vector<std::string>& args, uint64_t now_ms) const {
  if (args.empty()) return Reply::error("ERR empty command");
  now_ms = std::max(now_ms, clock_ms_);
  const std::string name = lower(args[0]);
  const size_t argc = args.size();
  if (name == "get") {
    if (argc != 2) return arity_error(name);
    const Entry* e = find(args[1], now_ms);
    return e ? Reply::bulk(e->value) : Reply::null();
  }
  if (name == "mget") {
    if (argc < 2) return arity_error(name);
    std::vector<Reply> out;
    for (size_t i = 1; i < argc; ++i) {
      const Entry* e = find(args[i], now_ms);
      out.push_back(e ? Reply::bulk(e->value) : Reply::null());
    }
    return Reply::array(std::move(out));
  }
  if (name == "exists") {
    if (argc < 2) return arity_error(name);
    int64_t n = 0;
    for (size_t i = 1; i < argc; ++i) n += find(args[i], now_ms) ? 1 : 0;
    return Reply::integer_of(n);
  }
  if (name == "strlen") {
    if (argc != 2) return arity_error(name);
    const Entry* e = find(args[1], now_ms);
    return Reply::integer_of(e ? static_cast<int64_t>(e->value.size()) : 0);
  }
  if (name == "ttl" || name == "pttl") {
    if (argc != 2) return arity_error(name);
    const Entry* e = find(args[1], now_ms);
    if (!e) return Reply::integer_of(-2);
    if (e->expire_at_ms == 0) return Reply::integer_of(-1);
    const auto left = static_cast<int64_t>(e->expire_at_ms - now_ms);
    return Reply::integer_of(name == "ttl" ? (left + 500) / 1000 : left);
  }
  if (name == "dbsize") {
    if (argc != 1) return arity_error(name);
    int64_t expired = 0;
    for (auto it = expiries_.begin(); it != expiries_.end() && it->first <= now_ms; ++it) ++expired;
    return Reply::integer_of(static_cast<int64_t>(data_.size()) - expired);
  }
  if (name == "scan") {
    if (argc < 2) return arity_error(name);
    uint64_t cursor = 0;
    {
      auto [end, ec] = std::from_chars(args[1].data(), args[1].data() + args[1].size(), cursor);
      if (ec != std::errc() || end != args[1].data() + args[1].size())
        return Reply::error("ERR invalid cursor");
    }
    std::optional<std::string> match;
    int64_t count = 10;
    for (size_t i = 2; i < argc; ++i) {
      const std::string opt = lower(args[i]);
      if (opt == "match" && i + 1 < argc) {
        match = args[++i];
      } else if (opt == "count" && i + 1 < argc) {
        if (!parse_i64(args[++i], count)) return not_integer();
        if (count < 1) return syntax_error();
      } else if (opt == "type" && i + 1 < argc) {
        if (lower(args[++i]) != "string") match = std::string("\x01\x02no-such-key\x03");
      } else {
        return syntax_error();
      }
    }
    // Keys in the order of a stable hash: the cursor is the hash to resume at, so every key that
    // exists for the whole iteration is returned (rehashing never reorders anything).
    std::vector<std::pair<uint64_t, const std::string*>> order;
    order.reserve(data_.size());
    for (const auto& [key, entry] : data_) {
      const uint64_t h = scan_hash(key);
      if (h >= cursor) order.emplace_back(h, &key);
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && *a.second < *b.second);
    });
    std::vector<Reply> keys;
    uint64_t next = 0;
    int64_t visited = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      if (visited >= count && order[i].first != order[i - 1].first) {
        next = order[i].first;
        break;
      }
      ++visited;
      const std::string& key = *order[i].second;
      if (!find(key, now_ms)) continue;
      if (match && !glob_match(*match, key)) continue;
      keys.push_back(Reply::bulk(key));
    }
    return Reply::array({Reply::bulk(std::to_string(next)), Reply::array(std::move(keys))});
  }
  return Reply::error("ERR '" + lower(args[0]) + "' is not a read");
}

namespace {
constexpr std::string_view kSnapshotMagic = "SYNODKVS";
constexpr uint32_t kSnapshotVersion = 2;
}  // namespace

std::string Store::snapshot() const {
  std::string out(kSnapshotMagic);
  put_u32(out, kSnapshotVersion);
  put_u64(out, clock_ms_);
  put_u64(out, applied_commands_);
  put_u64(out, expired_through_seq_);
  put_u64(out, evictions_);
  put_u64(out, options_.max_sessions);
  put_u64(out, data_.size());
  for (const auto& [key, e] : data_) {
    put_bytes(out, key);
    put_bytes(out, e.value);
    put_u64(out, e.expire_at_ms);
  }
  put_u64(out, sessions_.size());
  for (const auto& [client, s] : sessions_) {
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

}  // namespace

bool Store::read_entries(Reader& in) {
  uint64_t n = 0;
  if (!in.u64(n) || n > in.remaining() / 16) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string key;
    Entry e;
    if (!in.bytes(key) || !in.bytes(e.value) || !in.u64(e.expire_at_ms) || data_.count(key))
      return false;
    if (e.expire_at_ms != 0) expiries_.insert({e.expire_at_ms, key});
    data_.emplace(std::move(key), std::move(e));
  }
  return true;
}

Status Store::index_sessions() {
  lru_.clear();
  for (const auto& [client, s] : sessions_) {
    if (s.last_used == 0 || s.last_used > applied_commands_ ||
        !lru_.emplace(s.last_used, client).second)
      return Status::corruption("session order out of range in a key-value snapshot");
  }
  return Status::ok();
}

Result<Store> Store::restore(std::string_view bytes, Options options) {
  if (bytes.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) return restore_v1(bytes, options);
  Reader in(bytes.substr(kSnapshotMagic.size()));
  Store s(options);
  uint32_t version = 0;
  uint64_t max_sessions = 0, n = 0;
  if (!in.u32(version) || version != kSnapshotVersion)
    return Status::corruption("unknown key-value snapshot version");
  if (!in.u64(s.clock_ms_) || !in.u64(s.applied_commands_) || !in.u64(s.expired_through_seq_) ||
      !in.u64(s.evictions_) || !in.u64(max_sessions))
    return Status::corruption("undecodable key-value snapshot");
  if (max_sessions != options.max_sessions) {
    return Status::invalid_argument(
        "the key-value snapshot was made with --max-sessions " + std::to_string(max_sessions) +
        ", this replica has " + std::to_string(options.max_sessions) +
        ": it must be the same on every replica, for the cluster's whole life");
  }
  if (!s.read_entries(in)) return Status::corruption("undecodable key-value snapshot");
  if (!in.u64(n) || n > max_sessions || n > in.remaining() / 36)
    return Status::corruption("undecodable sessions");
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t client = 0;
    Session session;
    if (!in.u64(client) || !in.u64(session.last_used) || !in.u64(session.last_active_ms) ||
        !in.u64(session.floor_seq) || !read_replies(in, session.replies) ||
        !s.sessions_.emplace(client, std::move(session)).second)
      return Status::corruption("undecodable sessions");
  }
  if (!in.done()) return Status::corruption("trailing bytes in a key-value snapshot");
  SYNOD_RETURN_IF_ERROR(s.index_sessions());
  return s;
}

// Version 1 (no magic): clock, keys, then sessions as (client, last active log time, replies),
// evicted by log time. Their log-order places follow that time; nothing was evicted by count.
Result<Store> Store::restore_v1(std::string_view bytes, Options options) {
  Reader in(bytes);
  Store s(options);
  uint64_t n = 0;
  if (!in.u64(s.clock_ms_) || !s.read_entries(in))
    return Status::corruption("undecodable key-value snapshot");
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
  return s;
}

uint64_t Store::digest() const {
  Digest d;
  d.add(snapshot());
  return d.value();
}

}  // namespace synod::kv
