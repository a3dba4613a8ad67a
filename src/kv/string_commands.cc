// Strings and the commands on whole keys (expiry, renames, SCAN, TYPE, ...), as Redis 7 has them.
#include <charconv>
#include <cmath>
#include <limits>

#include "kv/commands.h"

namespace synod::kv {
namespace {

constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

// A string key for writing: null if absent; `wrong` if it holds another type.
std::string* str_for_write(Keyspace& ks, const std::string& key, bool& wrong) {
  return ks.write_as<std::string>(key, wrong);
}

// Sets a string, replacing any value and its expiry.
std::string& put_string(Keyspace& ks, const std::string& key, std::string value) {
  return std::get<std::string>(ks.put(key, Value{std::move(value), 0}).data);
}

Reply invalid_expire(std::string_view name) {
  return Reply::error("ERR invalid expire time in '" + lower(name) + "' command");
}

// An expiry option's argument (EX/PX/EXAT/PXAT) as an absolute log time in ms, or an error.
std::optional<Reply> expire_at(const Keyspace& ks, std::string_view name, std::string_view opt,
                               std::string_view arg, uint64_t& at_ms) {
  int64_t v = 0;
  if (!parse_i64(arg, v)) return not_integer();
  const bool seconds = opt == "ex" || opt == "exat";
  if (v <= 0 || (seconds && v > kMaxI64 / 1000)) return invalid_expire(name);
  const uint64_t ms = static_cast<uint64_t>(v) * (seconds ? 1000 : 1);
  const bool relative = opt == "ex" || opt == "px";
  if (relative && ms > static_cast<uint64_t>(kMaxI64) - ks.clock_ms()) return invalid_expire(name);
  at_ms = relative ? ks.clock_ms() + ms : ms;
  return std::nullopt;
}

// Gives `key` the expiry at_ms, or removes it at once if that is already past.
void expire_or_erase(Keyspace& ks, const std::string& key, Value& v, uint64_t at_ms) {
  if (at_ms <= ks.clock_ms()) {
    ks.erase(key);
  } else {
    ks.set_expiry(key, v, at_ms);
  }
}

Reply cmd_set(Keyspace& ks, const Args& args) {
  bool nx = false, xx = false, get = false, keepttl = false;
  std::optional<std::string> ifeq;
  std::optional<uint64_t> at;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    const bool has_next = i + 1 < args.size();
    if (opt == "nx" && !xx && !ifeq) {
      nx = true;
    } else if (opt == "xx" && !nx && !ifeq) {
      xx = true;
    } else if (opt == "ifeq" && has_next && !nx && !xx && !ifeq) {
      ifeq = args[++i];
    } else if (opt == "get") {
      get = true;
    } else if (opt == "keepttl" && !at) {
      keepttl = true;
    } else if ((opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat") && has_next && !at &&
               !keepttl) {
      uint64_t at_ms = 0;
      if (auto e = expire_at(ks, "set", opt, args[++i], at_ms)) return *e;
      at = at_ms;
    } else {
      return syntax_error();
    }
  }
  if (auto e = ks.check_string(args[2].size())) return Reply::error(*e);
  Value* v = ks.find_live(args[1]);
  const std::string* old = v ? std::get_if<std::string>(&v->data) : nullptr;
  if (v && !old && (get || ifeq)) return wrong_type();
  Reply reply = get ? (old ? Reply::bulk(*old) : Reply::null()) : Reply::ok();
  const bool allowed = (!nx || !v) && (!xx || v) && (!ifeq || (old && *old == *ifeq));
  if (!allowed) return get ? reply : Reply::null();
  const uint64_t kept = keepttl && v ? v->expire_at_ms : 0;
  Value& nv = ks.put(args[1], Value{args[2], 0});
  if (kept) ks.set_expiry(args[1], nv, kept);
  if (at) expire_or_erase(ks, args[1], nv, *at);
  return reply;
}

Reply cmd_setnx(Keyspace& ks, const Args& args) {
  if (ks.find_live(args[1])) return Reply::integer_of(0);
  if (auto e = ks.check_string(args[2].size())) return Reply::error(*e);
  put_string(ks, args[1], args[2]);
  return Reply::integer_of(1);
}

// SETEX key seconds value, PSETEX key milliseconds value.
Reply cmd_setex(Keyspace& ks, const Args& args) {
  const std::string name = lower(args[0]);
  uint64_t at_ms = 0;
  if (auto e = expire_at(ks, name, name == "setex" ? "ex" : "px", args[2], at_ms)) return *e;
  if (auto e = ks.check_string(args[3].size())) return Reply::error(*e);
  Value& v = ks.put(args[1], Value{args[3], 0});
  ks.set_expiry(args[1], v, at_ms);
  return Reply::ok();
}

Reply cmd_getset(Keyspace& ks, const Args& args) {
  bool wrong = false;
  const std::string* old = str_for_write(ks, args[1], wrong);
  if (wrong) return wrong_type();
  if (auto e = ks.check_string(args[2].size())) return Reply::error(*e);
  Reply reply = old ? Reply::bulk(*old) : Reply::null();
  put_string(ks, args[1], args[2]);
  return reply;
}

Reply cmd_getdel(Keyspace& ks, const Args& args) {
  bool wrong = false;
  const std::string* old = str_for_write(ks, args[1], wrong);
  if (wrong) return wrong_type();
  if (!old) return Reply::null();
  Reply reply = Reply::bulk(*old);
  ks.erase(args[1]);
  return reply;
}

// GETEX key [EX seconds | PX ms | EXAT unix-s | PXAT unix-ms | PERSIST]
Reply cmd_getex(Keyspace& ks, const Args& args) {
  std::optional<uint64_t> at;
  bool persist = false;
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    if ((opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat") && i + 1 < args.size() &&
        !at && !persist) {
      uint64_t at_ms = 0;
      if (auto e = expire_at(ks, "getex", opt, args[++i], at_ms)) return *e;
      at = at_ms;
    } else if (opt == "persist" && !at && !persist) {
      persist = true;
    } else {
      return syntax_error();
    }
  }
  bool wrong = false;
  const std::string* s = str_for_write(ks, args[1], wrong);
  if (wrong) return wrong_type();
  if (!s) return Reply::null();
  Reply reply = Reply::bulk(*s);
  Value* v = ks.find_live(args[1]);
  if (at) expire_or_erase(ks, args[1], *v, *at);
  if (persist) ks.set_expiry(args[1], *v, 0);
  return reply;
}

Reply cmd_mset(Keyspace& ks, const Args& args) {
  if (args.size() % 2 == 0) return arity_error(args[0]);
  for (size_t i = 2; i < args.size(); i += 2)
    if (auto e = ks.check_string(args[i].size())) return Reply::error(*e);
  for (size_t i = 1; i + 1 < args.size(); i += 2) put_string(ks, args[i], args[i + 1]);
  return Reply::ok();
}

Reply cmd_msetnx(Keyspace& ks, const Args& args) {
  if (args.size() % 2 == 0) return arity_error(args[0]);
  for (size_t i = 1; i + 1 < args.size(); i += 2)
    if (ks.find_live(args[i])) return Reply::integer_of(0);
  const Reply r = cmd_mset(ks, args);
  return r.kind == Reply::Kind::kError ? r : Reply::integer_of(1);
}

Reply cmd_del(Keyspace& ks, const Args& args) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    if (ks.find_live(args[i])) ++n;
    ks.erase(args[i]);
  }
  return Reply::integer_of(n);
}

Reply cmd_delifeq(Keyspace& ks, const Args& args) {
  bool wrong = false;
  const std::string* s = str_for_write(ks, args[1], wrong);
  if (wrong) return wrong_type();
  if (!s || *s != args[2]) return Reply::integer_of(0);
  ks.erase(args[1]);
  return Reply::integer_of(1);
}

// INCR, DECR, INCRBY, DECRBY: the key keeps its expiry.
Reply cmd_incr(Keyspace& ks, const Args& args) {
  const std::string name = lower(args[0]);
  int64_t delta = 1;
  if (args.size() == 3 && !parse_i64(args[2], delta)) return not_integer();
  if (name[0] == 'd') {
    if (delta == std::numeric_limits<int64_t>::min())
      return Reply::error("ERR decrement would overflow");
    delta = -delta;
  }
  bool wrong = false;
  std::string* s = str_for_write(ks, args[1], wrong);
  if (wrong) return wrong_type();
  int64_t current = 0;
  if (s && !parse_i64(*s, current)) return not_integer();
  if ((delta > 0 && current > kMaxI64 - delta) ||
      (delta < 0 && current < std::numeric_limits<int64_t>::min() - delta))
    return Reply::error("ERR increment or decrement would overflow");
  if (!s) s = &put_string(ks, args[1], "");
  *s = std::to_string(current + delta);
  return Reply::integer_of(current + delta);
}

Reply cmd_incrbyfloat(Keyspace& ks, const Args& args) {
  bool wrong = false;
  std::string* s = str_for_write(ks, args[1], wrong);
  if (wrong) return wrong_type();
  long double current = 0, delta = 0;
  if ((s && !parse_long_double(*s, current)) || !parse_long_double(args[2], delta))
    return not_float();
  const long double sum = current + delta;
  if (std::isnan(sum) || std::isinf(sum))
    return Reply::error("ERR increment would produce NaN or Infinity");
  if (!s) s = &put_string(ks, args[1], "");
  *s = format_long_double(sum);
  return Reply::bulk(*s);
}

Reply cmd_append(Keyspace& ks, const Args& args) {
  bool wrong = false;
  std::string* s = str_for_write(ks, args[1], wrong);
  if (wrong) return wrong_type();
  if (auto e = ks.check_string((s ? s->size() : 0) + args[2].size())) return Reply::error(*e);
  if (!s) s = &put_string(ks, args[1], "");
  *s += args[2];
  return Reply::integer_of(static_cast<int64_t>(s->size()));
}

Reply cmd_setrange(Keyspace& ks, const Args& args) {
  int64_t offset = 0;
  if (!parse_i64(args[2], offset)) return not_integer();
  if (offset < 0) return Reply::error("ERR offset is out of range");
  bool wrong = false;
  std::string* s = str_for_write(ks, args[1], wrong);
  if (wrong) return wrong_type();
  const std::string& part = args[3];
  if (part.empty()) return Reply::integer_of(s ? static_cast<int64_t>(s->size()) : 0);
  const auto end = static_cast<uint64_t>(offset) + part.size();
  if (auto e = ks.check_string(end)) return Reply::error(*e);
  if (!s) s = &put_string(ks, args[1], "");
  if (s->size() < end) s->resize(end, '\0');
  s->replace(static_cast<size_t>(offset), part.size(), part);
  return Reply::integer_of(static_cast<int64_t>(s->size()));
}

// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX | XX | GT | LT]
Reply cmd_expire(Keyspace& ks, const Args& args) {
  const std::string name = lower(args[0]);
  int64_t v = 0;
  if (!parse_i64(args[2], v)) return not_integer();
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    if (opt == "nx") {
      nx = true;
    } else if (opt == "xx") {
      xx = true;
    } else if (opt == "gt") {
      gt = true;
    } else if (opt == "lt") {
      lt = true;
    } else {
      return Reply::error("ERR Unsupported option " + args[i]);
    }
  }
  if ((nx && (xx || gt || lt)) || (gt && lt))
    return Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible");
  const bool seconds = name == "expire" || name == "expireat";
  const bool absolute = name == "expireat" || name == "pexpireat";
  if (seconds && (v > kMaxI64 / 1000 || v < std::numeric_limits<int64_t>::min() / 1000))
    return invalid_expire(name);
  const int64_t ms = v * (seconds ? 1000 : 1);
  const auto now = static_cast<int64_t>(ks.clock_ms());
  if (!absolute && ms > 0 && now > kMaxI64 - ms) return invalid_expire(name);
  const int64_t at = absolute ? ms : now + ms;
  Value* e = ks.find_live(args[1]);
  if (!e) return Reply::integer_of(0);
  const uint64_t current = e->expire_at_ms;  // 0: none (an infinite TTL)
  if ((nx && current != 0) || (xx && current == 0) ||
      (gt && (current == 0 || at <= static_cast<int64_t>(current))) ||
      (lt && current != 0 && at >= static_cast<int64_t>(current)))
    return Reply::integer_of(0);
  if (at <= now) {
    ks.erase(args[1]);
  } else {
    ks.set_expiry(args[1], *e, static_cast<uint64_t>(at));
  }
  return Reply::integer_of(1);
}

Reply cmd_persist(Keyspace& ks, const Args& args) {
  Value* e = ks.find_live(args[1]);
  if (!e || e->expire_at_ms == 0) return Reply::integer_of(0);
  ks.set_expiry(args[1], *e, 0);
  return Reply::integer_of(1);
}

// RENAME and RENAMENX: the value moves with its expiry.
Reply cmd_rename(Keyspace& ks, const Args& args) {
  const bool nx = lower(args[0]) == "renamenx";
  Value* src = ks.find_live(args[1]);
  if (!src) return Reply::error("ERR no such key");
  if (args[1] == args[2]) return nx ? Reply::integer_of(0) : Reply::ok();
  if (nx && ks.find_live(args[2])) return Reply::integer_of(0);
  Value moved = std::move(*src);
  ks.erase(args[1]);
  ks.put(args[2], std::move(moved));
  return nx ? Reply::integer_of(1) : Reply::ok();
}

// COPY source destination [DB 0] [REPLACE]
Reply cmd_copy(Keyspace& ks, const Args& args) {
  bool replace = false;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    if (opt == "replace") {
      replace = true;
    } else if (opt == "db" && i + 1 < args.size()) {
      int64_t db = 0;
      if (!parse_i64(args[++i], db)) return not_integer();
      if (db != 0) return Reply::error("ERR DB index is out of range");
    } else {
      return syntax_error();
    }
  }
  if (args[1] == args[2]) return Reply::error("ERR source and destination objects are the same");
  const Value* src = ks.find_live(args[1]);
  if (!src) return Reply::integer_of(0);
  if (ks.find_live(args[2]) && !replace) return Reply::integer_of(0);
  ks.put(args[2], *src);
  return Reply::integer_of(1);
}

Reply cmd_flush(Keyspace& ks, const Args& args) {
  if (args.size() > 2) return syntax_error();
  if (args.size() == 2 && lower(args[1]) != "async" && lower(args[1]) != "sync")
    return syntax_error();
  ks.clear();
  return Reply::ok();
}

// --- Reads ---

Reply read_get(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  bool wrong = false;
  const std::string* s = ks.read_as<std::string>(args[1], now_ms, wrong);
  if (wrong) return wrong_type();
  return s ? Reply::bulk(*s) : Reply::null();
}

Reply read_mget(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::vector<Reply> out;
  for (size_t i = 1; i < args.size(); ++i) {
    bool wrong = false;
    const std::string* s = ks.read_as<std::string>(args[i], now_ms, wrong);
    out.push_back(s ? Reply::bulk(*s) : Reply::null());  // another type reads as nil
  }
  return Reply::array(std::move(out));
}

// EXISTS and TOUCH (which only counts: Synod keeps no access times).
Reply read_exists(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); ++i) n += ks.find(args[i], now_ms) ? 1 : 0;
  return Reply::integer_of(n);
}

Reply read_strlen(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  bool wrong = false;
  const std::string* s = ks.read_as<std::string>(args[1], now_ms, wrong);
  if (wrong) return wrong_type();
  return Reply::integer_of(s ? static_cast<int64_t>(s->size()) : 0);
}

Reply read_getrange(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  int64_t start = 0, end = 0;
  if (!parse_i64(args[2], start) || !parse_i64(args[3], end)) return not_integer();
  bool wrong = false;
  const std::string* s = ks.read_as<std::string>(args[1], now_ms, wrong);
  if (wrong) return wrong_type();
  if (!s) return Reply::bulk("");
  const auto len = static_cast<int64_t>(s->size());
  if (start < 0 && end < 0 && start > end) return Reply::bulk("");
  if (start < 0) start = std::max<int64_t>(0, len + start);
  if (end < 0) end = std::max<int64_t>(0, len + end);
  if (end >= len) end = len - 1;
  if (start > end || len == 0) return Reply::bulk("");
  return Reply::bulk(s->substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
Reply read_ttl(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  const std::string name = lower(args[0]);
  const Value* v = ks.find(args[1], now_ms);
  if (!v) return Reply::integer_of(-2);
  if (v->expire_at_ms == 0) return Reply::integer_of(-1);
  const auto at = static_cast<int64_t>(v->expire_at_ms);
  if (name == "expiretime") return Reply::integer_of(at / 1000);
  if (name == "pexpiretime") return Reply::integer_of(at);
  const auto left = static_cast<int64_t>(v->expire_at_ms - now_ms);
  return Reply::integer_of(name == "ttl" ? (left + 500) / 1000 : left);
}

Reply read_dbsize(const Keyspace& ks, const Args&, uint64_t now_ms) {
  return Reply::integer_of(static_cast<int64_t>(ks.live_count(now_ms)));
}

Reply read_type(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  const Value* v = ks.find(args[1], now_ms);
  return Reply::simple(v ? std::string(type_name(v->type())) : "none");
}

Reply read_scan(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  ScanRequest req;
  if (auto e = parse_scan(args, 1, true, req)) return *e;
  std::vector<std::string_view> names;
  std::vector<const Value*> values;
  names.reserve(ks.size());
  for (const auto& [key, value] : ks.data()) {
    names.push_back(key);
    values.push_back(&value);
  }
  std::vector<Reply> keys;
  const uint64_t next = scan_names(names, req, [&](size_t i) {
    const Value* v = values[i];
    if (v->expire_at_ms != 0 && v->expire_at_ms <= now_ms) return;
    if (req.type && *req.type != type_name(v->type())) return;
    keys.push_back(Reply::bulk(std::string(names[i])));
  });
  return Reply::array({Reply::bulk(std::to_string(next)), Reply::array(std::move(keys))});
}

Reply read_keys(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::vector<Reply> keys;
  for (const auto& [key, value] : ks.data()) {
    if (value.expire_at_ms != 0 && value.expire_at_ms <= now_ms) continue;
    if (glob_match(args[1], key)) keys.push_back(Reply::bulk(key));
  }
  return Reply::array(std::move(keys));
}

// Deterministic: the same key for every replica at the same log position (see draw_seed).
Reply read_randomkey(const Keyspace& ks, const Args&, uint64_t now_ms) {
  std::vector<const std::string*> live;
  for (const auto& [key, value] : ks.data())
    if (value.expire_at_ms == 0 || value.expire_at_ms > now_ms) live.push_back(&key);
  if (live.empty()) return Reply::null();
  return Reply::bulk(*live[random_picks(draw_seed(ks, ""), live.size(), 1)[0]]);
}

// The cluster's clock: the time the read is served at (the log time when applied).
Reply read_time(const Keyspace&, const Args&, uint64_t now_ms) {
  return Reply::array({Reply::bulk(std::to_string(now_ms / 1000)),
                       Reply::bulk(std::to_string(now_ms % 1000 * 1000))});
}

}  // namespace

std::vector<CommandSpec> string_commands() {
  return {
      {"set", -3, "write denyoom", {1, 1, 1}, cmd_set},
      {"setnx", 3, "write denyoom fast", {1, 1, 1}, cmd_setnx},
      {"setex", 4, "write denyoom", {1, 1, 1}, cmd_setex},
      {"psetex", 4, "write denyoom", {1, 1, 1}, cmd_setex},
      {"getset", 3, "write denyoom fast", {1, 1, 1}, cmd_getset},
      {"getdel", 2, "write fast", {1, 1, 1}, cmd_getdel},
      {"getex", -2, "write fast", {1, 1, 1}, cmd_getex},
      {"mset", -3, "write denyoom", {1, -1, 2}, cmd_mset},
      {"msetnx", -3, "write denyoom", {1, -1, 2}, cmd_msetnx},
      {"delifeq", 3, "write fast", {1, 1, 1}, cmd_delifeq},
      {"incr", 2, "write denyoom fast", {1, 1, 1}, cmd_incr},
      {"decr", 2, "write denyoom fast", {1, 1, 1}, cmd_incr},
      {"incrby", 3, "write denyoom fast", {1, 1, 1}, cmd_incr},
      {"decrby", 3, "write denyoom fast", {1, 1, 1}, cmd_incr},
      {"incrbyfloat", 3, "write denyoom fast", {1, 1, 1}, cmd_incrbyfloat},
      {"append", 3, "write denyoom fast", {1, 1, 1}, cmd_append},
      {"setrange", 4, "write denyoom", {1, 1, 1}, cmd_setrange},
      {"get", 2, "readonly fast", {1, 1, 1}, nullptr, read_get},
      {"mget", -2, "readonly fast", {1, -1, 1}, nullptr, read_mget},
      {"strlen", 2, "readonly fast", {1, 1, 1}, nullptr, read_strlen},
      {"getrange", 4, "readonly", {1, 1, 1}, nullptr, read_getrange},
      {"substr", 4, "readonly", {1, 1, 1}, nullptr, read_getrange},
      {"time", 1, "loading stale fast", {0, 0, 0}, nullptr, read_time},
  };
}

// Commands on keys of any type (Redis's @keyspace).
std::vector<CommandSpec> keyspace_commands() {
  return {
      {"del", -2, "write", {1, -1, 1}, cmd_del},
      {"unlink", -2, "write fast", {1, -1, 1}, cmd_del},
      {"expire", -3, "write fast", {1, 1, 1}, cmd_expire},
      {"pexpire", -3, "write fast", {1, 1, 1}, cmd_expire},
      {"expireat", -3, "write fast", {1, 1, 1}, cmd_expire},
      {"pexpireat", -3, "write fast", {1, 1, 1}, cmd_expire},
      {"persist", 2, "write fast", {1, 1, 1}, cmd_persist},
      {"rename", 3, "write", {1, 2, 1}, cmd_rename},
      {"renamenx", 3, "write fast", {1, 2, 1}, cmd_rename},
      {"copy", -3, "write denyoom", {1, 2, 1}, cmd_copy},
      {"flushdb", -1, "write", {0, 0, 0}, cmd_flush, nullptr, kDangerous},
      {"flushall", -1, "write", {0, 0, 0}, cmd_flush, nullptr, kDangerous},
      {"exists", -2, "readonly fast", {1, -1, 1}, nullptr, read_exists},
      {"touch", -2, "readonly fast", {1, -1, 1}, nullptr, read_exists},
      {"ttl", 2, "readonly fast", {1, 1, 1}, nullptr, read_ttl},
      {"pttl", 2, "readonly fast", {1, 1, 1}, nullptr, read_ttl},
      {"expiretime", 2, "readonly fast", {1, 1, 1}, nullptr, read_ttl},
      {"pexpiretime", 2, "readonly fast", {1, 1, 1}, nullptr, read_ttl},
      {"dbsize", 1, "readonly fast", {0, 0, 0}, nullptr, read_dbsize},
      {"type", 2, "readonly fast", {1, 1, 1}, nullptr, read_type},
      {"scan", -2, "readonly", {0, 0, 0}, nullptr, read_scan},
      {"keys", 2, "readonly", {0, 0, 0}, nullptr, read_keys, kDangerous},
      {"randomkey", 1, "readonly", {0, 0, 0}, nullptr, read_randomkey},
  };
}

}  // namespace synod::kv
