// Hashes, as Redis 7 has them. Fields are kept in byte order, so HGETALL, HKEYS and HVALS list
// them alike on every replica (Redis lists them in an order of its own).
#include <cmath>
#include <limits>
#include <map>

#include "kv/commands.h"

namespace synod::kv {
namespace {

Reply hash_not_integer() {
  return Reply::error("ERR hash value is not an integer");
}

// Sets the fields of args[first..] (field value pairs, the last of a field winning), within the
// bounds; returns how many fields are new, or the error.
Reply set_fields(Keyspace& ks, const Args& args, size_t first) {
  bool wrong = false;
  Hash* h = ks.write_as<Hash>(args[1], wrong);
  if (wrong) return wrong_type();
  std::map<std::string_view, std::string_view> wanted;
  for (size_t i = first; i + 1 < args.size(); i += 2) wanted[args[i]] = args[i + 1];
  size_t elements = h ? h->size() : 0, bytes = h ? h->bytes : 0;
  int64_t added = 0;
  for (const auto& [f, v] : wanted) {
    auto it = h ? h->fields.find(f) : decltype(h->fields.end()){};
    if (h && it != h->fields.end()) {
      bytes = bytes - it->second.size() + v.size();
    } else {
      ++elements;
      ++added;
      bytes += f.size() + v.size();
    }
  }
  if (auto e = ks.check_collection(elements, bytes)) return Reply::error(*e);
  if (!h) h = &ks.create<Hash>(args[1]);
  for (const auto& [f, v] : wanted) h->fields[std::string(f)] = std::string(v);
  h->bytes = bytes;
  return Reply::integer_of(added);
}

Reply cmd_hset(Keyspace& ks, const Args& args) {
  if (args.size() % 2 != 0) return arity_error(args[0]);
  return set_fields(ks, args, 2);
}

Reply cmd_hmset(Keyspace& ks, const Args& args) {
  if (args.size() % 2 != 0) return arity_error(args[0]);
  const Reply r = set_fields(ks, args, 2);
  return r.kind == Reply::Kind::kError ? r : Reply::ok();
}

Reply cmd_hsetnx(Keyspace& ks, const Args& args) {
  bool wrong = false;
  const Hash* h = ks.write_as<Hash>(args[1], wrong);
  if (wrong) return wrong_type();
  if (h && h->fields.count(args[2])) return Reply::integer_of(0);
  return set_fields(ks, args, 2);
}

Reply cmd_hdel(Keyspace& ks, const Args& args) {
  bool wrong = false;
  Hash* h = ks.write_as<Hash>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!h) return Reply::integer_of(0);
  int64_t n = 0;
  for (size_t i = 2; i < args.size(); ++i) {
    auto it = h->fields.find(args[i]);
    if (it == h->fields.end()) continue;
    h->bytes -= it->first.size() + it->second.size();
    h->fields.erase(it);
    ++n;
  }
  ks.drop_if_empty(args[1]);
  return Reply::integer_of(n);
}

// Sets one field to `value` (already computed from the old one), within the bounds.
Reply set_one(Keyspace& ks, const std::string& key, const std::string& field,
              const std::string& value, Reply ok) {
  const Args args = {"hset", key, field, value};
  const Reply r = set_fields(ks, args, 2);
  return r.kind == Reply::Kind::kError ? r : ok;
}

Reply cmd_hincrby(Keyspace& ks, const Args& args) {
  int64_t delta = 0;
  if (!parse_i64(args[3], delta)) return not_integer();
  bool wrong = false;
  const Hash* h = ks.write_as<Hash>(args[1], wrong);
  if (wrong) return wrong_type();
  int64_t current = 0;
  if (h) {
    auto it = h->fields.find(args[2]);
    if (it != h->fields.end() && !parse_i64(it->second, current)) return hash_not_integer();
  }
  if ((delta > 0 && current > std::numeric_limits<int64_t>::max() - delta) ||
      (delta < 0 && current < std::numeric_limits<int64_t>::min() - delta))
    return Reply::error("ERR increment or decrement would overflow");
  return set_one(ks, args[1], args[2], std::to_string(current + delta),
                 Reply::integer_of(current + delta));
}

Reply cmd_hincrbyfloat(Keyspace& ks, const Args& args) {
  long double delta = 0;
  if (!parse_long_double(args[3], delta)) return not_float();
  if (std::isinf(delta)) return Reply::error("ERR value is NaN or Infinity");
  bool wrong = false;
  const Hash* h = ks.write_as<Hash>(args[1], wrong);
  if (wrong) return wrong_type();
  long double current = 0;
  if (h) {
    auto it = h->fields.find(args[2]);
    if (it != h->fields.end() && !parse_long_double(it->second, current))
      return Reply::error("ERR hash value is not a float");
  }
  const long double sum = current + delta;
  if (std::isnan(sum) || std::isinf(sum))
    return Reply::error("ERR increment would produce NaN or Infinity");
  const std::string text = format_long_double(sum);
  return set_one(ks, args[1], args[2], text, Reply::bulk(text));
}

// --- Reads ---

// The hash under args[1] for a read: null if absent; `error` set to WRONGTYPE if another type.
const Hash* hash_for_read(const Keyspace& ks, const Args& args, uint64_t now_ms,
                          std::optional<Reply>& error) {
  bool wrong = false;
  const Hash* h = ks.read_as<Hash>(args[1], now_ms, wrong);
  if (wrong) error = wrong_type();
  return h;
}

#define SYNOD_HASH_OR_RETURN(h)                            \
  std::optional<Reply> error_;                             \
  const Hash* h = hash_for_read(ks, args, now_ms, error_); \
  if (error_) return *error_

Reply read_hget(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  SYNOD_HASH_OR_RETURN(h);
  if (!h) return Reply::null();
  auto it = h->fields.find(args[2]);
  return it == h->fields.end() ? Reply::null() : Reply::bulk(it->second);
}

Reply read_hmget(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  SYNOD_HASH_OR_RETURN(h);
  std::vector<Reply> out;
  for (size_t i = 2; i < args.size(); ++i) {
    auto it = h ? h->fields.find(args[i]) : decltype(h->fields.end()){};
    out.push_back(h && it != h->fields.end() ? Reply::bulk(it->second) : Reply::null());
  }
  return Reply::array(std::move(out));
}

// HGETALL, HKEYS, HVALS.
Reply read_hgetall(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  SYNOD_HASH_OR_RETURN(h);
  const std::string name = lower(args[0]);
  std::vector<Reply> out;
  if (h) {
    for (const auto& [f, v] : h->fields) {
      if (name != "hvals") out.push_back(Reply::bulk(f));
      if (name != "hkeys") out.push_back(Reply::bulk(v));
    }
  }
  return Reply::array(std::move(out));
}

Reply read_hlen(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  SYNOD_HASH_OR_RETURN(h);
  return Reply::integer_of(h ? static_cast<int64_t>(h->size()) : 0);
}

Reply read_hexists(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  SYNOD_HASH_OR_RETURN(h);
  return Reply::integer_of(h && h->fields.count(args[2]) ? 1 : 0);
}

Reply read_hstrlen(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  SYNOD_HASH_OR_RETURN(h);
  if (!h) return Reply::integer_of(0);
  auto it = h->fields.find(args[2]);
  return Reply::integer_of(it == h->fields.end() ? 0 : static_cast<int64_t>(it->second.size()));
}

// HRANDFIELD key [count [WITHVALUES]]: deterministic, the same for every replica at one log
// position (draw_seed), so repeated calls between writes answer alike.
Reply read_hrandfield(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  if (args.size() > 4) return syntax_error();
  int64_t count = 1;
  const bool with_count = args.size() >= 3;
  if (with_count && !parse_i64(args[2], count)) return not_integer();
  const bool with_values = args.size() == 4;
  if (with_values && lower(args[3]) != "withvalues") return syntax_error();
  if (count < -static_cast<int64_t>(ks.limits().max_elements))
    return Reply::error("ERR value is out of range");
  SYNOD_HASH_OR_RETURN(h);
  if (!h) return with_count ? Reply::array({}) : Reply::null();
  std::vector<const std::pair<const std::string, std::string>*> items;
  for (const auto& kv : h->fields) items.push_back(&kv);
  const auto picks = random_picks(draw_seed(ks, args[1]), items.size(), count);
  if (!with_count) return Reply::bulk(items[picks[0]]->first);
  std::vector<Reply> out;
  for (size_t p : picks) {
    out.push_back(Reply::bulk(items[p]->first));
    if (with_values) out.push_back(Reply::bulk(items[p]->second));
  }
  return Reply::array(std::move(out));
}

Reply read_hscan(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  ScanRequest req;
  if (auto e = parse_scan(args, 2, false, req)) return *e;
  SYNOD_HASH_OR_RETURN(h);
  std::vector<std::string_view> names;
  std::vector<const std::string*> values;
  if (h) {
    for (const auto& [f, v] : h->fields) {
      names.push_back(f);
      values.push_back(&v);
    }
  }
  std::vector<Reply> out;
  const uint64_t next = scan_names(names, req, [&](size_t i) {
    out.push_back(Reply::bulk(std::string(names[i])));
    out.push_back(Reply::bulk(*values[i]));
  });
  return Reply::array({Reply::bulk(std::to_string(next)), Reply::array(std::move(out))});
}

}  // namespace

std::vector<CommandSpec> hash_commands() {
  return {
      {"hset", -4, "write denyoom fast", {1, 1, 1}, cmd_hset},
      {"hmset", -4, "write denyoom fast", {1, 1, 1}, cmd_hmset},
      {"hsetnx", 4, "write denyoom fast", {1, 1, 1}, cmd_hsetnx},
      {"hdel", -3, "write fast", {1, 1, 1}, cmd_hdel},
      {"hincrby", 4, "write denyoom fast", {1, 1, 1}, cmd_hincrby},
      {"hincrbyfloat", 4, "write denyoom fast", {1, 1, 1}, cmd_hincrbyfloat},
      {"hget", 3, "readonly fast", {1, 1, 1}, nullptr, read_hget},
      {"hmget", -3, "readonly fast", {1, 1, 1}, nullptr, read_hmget},
      {"hgetall", 2, "readonly", {1, 1, 1}, nullptr, read_hgetall},
      {"hkeys", 2, "readonly", {1, 1, 1}, nullptr, read_hgetall},
      {"hvals", 2, "readonly", {1, 1, 1}, nullptr, read_hgetall},
      {"hlen", 2, "readonly fast", {1, 1, 1}, nullptr, read_hlen},
      {"hexists", 3, "readonly fast", {1, 1, 1}, nullptr, read_hexists},
      {"hstrlen", 3, "readonly fast", {1, 1, 1}, nullptr, read_hstrlen},
      {"hrandfield", -2, "readonly", {1, 1, 1}, nullptr, read_hrandfield},
      {"hscan", -3, "readonly", {1, 1, 1}, nullptr, read_hscan},
  };
}

}  // namespace synod::kv
