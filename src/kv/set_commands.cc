// Sets, as Redis 7 has them. Members are kept in byte order (SMEMBERS lists them so on every
// replica); SPOP and SRANDMEMBER choose from the log position (draw_seed), not from a clock or a
// replica's own generator, so replicas pop the same members and a read answers alike on each.
#include <limits>

#include "kv/commands.h"

namespace synod::kv {
namespace {

Reply out_of_range_positive() {
  return Reply::error("ERR value is out of range, must be positive");
}

Reply cmd_sadd(Keyspace& ks, const Args& args) {
  bool wrong = false;
  Set* s = ks.write_as<Set>(args[1], wrong);
  if (wrong) return wrong_type();
  std::set<std::string_view> added;
  size_t bytes = s ? s->bytes : 0;
  for (size_t i = 2; i < args.size(); ++i) {
    if ((s && s->members.count(args[i])) || !added.insert(args[i]).second) continue;
    bytes += args[i].size();
  }
  if (auto e = ks.check_collection((s ? s->size() : 0) + added.size(), bytes))
    return Reply::error(*e);
  if (added.empty()) return Reply::integer_of(0);
  if (!s) s = &ks.create<Set>(args[1]);
  for (std::string_view m : added) s->members.emplace(m);
  s->bytes = bytes;
  return Reply::integer_of(static_cast<int64_t>(added.size()));
}

Reply cmd_srem(Keyspace& ks, const Args& args) {
  bool wrong = false;
  Set* s = ks.write_as<Set>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!s) return Reply::integer_of(0);
  int64_t n = 0;
  for (size_t i = 2; i < args.size(); ++i) {
    auto it = s->members.find(args[i]);
    if (it == s->members.end()) continue;
    s->bytes -= it->size();
    s->members.erase(it);
    ++n;
  }
  ks.drop_if_empty(args[1]);
  return Reply::integer_of(n);
}

// SPOP key [count]: the members at positions drawn from the log position.
Reply cmd_spop(Keyspace& ks, const Args& args) {
  if (args.size() > 3) return syntax_error();
  int64_t count = 1;
  const bool with_count = args.size() == 3;
  if (with_count && (!parse_i64(args[2], count) || count < 0)) return out_of_range_positive();
  bool wrong = false;
  Set* s = ks.write_as<Set>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!s) return with_count ? Reply::array({}) : Reply::null();
  std::vector<std::set<std::string, std::less<>>::iterator> members;
  for (auto it = s->members.begin(); it != s->members.end(); ++it) members.push_back(it);
  const auto picks = random_picks(draw_seed(ks, args[1]), members.size(), count);
  std::vector<Reply> out;
  for (size_t p : picks) {
    out.push_back(Reply::bulk(*members[p]));
    s->bytes -= members[p]->size();
    s->members.erase(members[p]);
  }
  ks.drop_if_empty(args[1]);
  if (!with_count) return out[0];
  return Reply::array(std::move(out));
}

Reply cmd_smove(Keyspace& ks, const Args& args) {
  bool wrong = false;
  Set* src = ks.write_as<Set>(args[1], wrong);
  if (wrong) return wrong_type();
  // As Redis: a missing source answers 0 whatever the destination holds.
  if (!src) return Reply::integer_of(0);
  Set* dst = ks.write_as<Set>(args[2], wrong);
  if (wrong) return wrong_type();
  if (!src->members.count(args[3])) return Reply::integer_of(0);
  if (src == dst) return Reply::integer_of(1);
  const bool present = dst && dst->members.count(args[3]);
  if (!present) {
    if (auto e = ks.check_collection((dst ? dst->size() : 0) + 1,
                                     (dst ? dst->bytes : 0) + args[3].size()))
      return Reply::error(*e);
  }
  src->members.erase(args[3]);
  src->bytes -= args[3].size();
  ks.drop_if_empty(args[1]);
  if (!present) {
    if (!dst) dst = &ks.create<Set>(args[2]);
    dst->members.insert(args[3]);
    dst->bytes += args[3].size();
  }
  return Reply::integer_of(1);
}

// SINTER, SUNION, SDIFF over args[first..]: the members, or WRONGTYPE.
std::optional<Reply> combine(const Keyspace& ks, const Args& args, size_t first, char op,
                             uint64_t now_ms, std::set<std::string, std::less<>>& out) {
  std::vector<const Set*> sets;
  for (size_t i = first; i < args.size(); ++i) {
    bool wrong = false;
    sets.push_back(ks.read_as<Set>(args[i], now_ms, wrong));
    if (wrong) return wrong_type();
  }
  if (op == 'i') {
    for (const Set* s : sets)
      if (!s) return std::nullopt;  // a missing key is an empty set
    for (const auto& m : sets[0]->members) {
      bool everywhere = true;
      for (size_t j = 1; j < sets.size() && everywhere; ++j) everywhere = sets[j]->members.count(m);
      if (everywhere) out.insert(m);
    }
  } else if (op == 'u') {
    for (const Set* s : sets)
      if (s) out.insert(s->members.begin(), s->members.end());
  } else {
    if (!sets[0]) return std::nullopt;
    for (const auto& m : sets[0]->members) {
      bool elsewhere = false;
      for (size_t j = 1; j < sets.size() && !elsewhere; ++j)
        elsewhere = sets[j] && sets[j]->members.count(m);
      if (!elsewhere) out.insert(m);
    }
  }
  return std::nullopt;
}

char op_of(const std::string& name) {
  return name[1];  // s[i]nter, s[u]nion, s[d]iff
}

// SINTERSTORE, SUNIONSTORE, SDIFFSTORE destination key [key ...]
Reply cmd_store(Keyspace& ks, const Args& args) {
  std::set<std::string, std::less<>> result;
  if (auto e = combine(ks, args, 2, op_of(lower(args[0])), ks.clock_ms(), result)) return *e;
  size_t bytes = 0;
  for (const auto& m : result) bytes += m.size();
  if (auto e = ks.check_collection(result.size(), bytes)) return Reply::error(*e);
  const auto n = static_cast<int64_t>(result.size());
  if (result.empty()) {
    ks.erase(args[1]);
  } else {
    Set& s = ks.create<Set>(args[1]);
    s.members = std::move(result);
    s.bytes = bytes;
  }
  return Reply::integer_of(n);
}

// --- Reads ---

Reply read_combine(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::set<std::string, std::less<>> result;
  if (auto e = combine(ks, args, 1, op_of(lower(args[0])), now_ms, result)) return *e;
  std::vector<Reply> out;
  for (const auto& m : result) out.push_back(Reply::bulk(m));
  return Reply::array(std::move(out));
}

// SINTERCARD numkeys key [key ...] [LIMIT limit]
Reply read_sintercard(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  int64_t numkeys = 0, limit = 0;
  if (!parse_i64(args[1], numkeys) || numkeys <= 0)
    return Reply::error("ERR numkeys should be greater than 0");
  if (numkeys > static_cast<int64_t>(args.size()) - 2)
    return Reply::error("ERR Number of keys can't be greater than number of args");
  const size_t end = 2 + static_cast<size_t>(numkeys);
  for (size_t i = end; i < args.size(); ++i) {
    if (lower(args[i]) == "limit" && i + 1 < args.size()) {
      if (!parse_i64(args[++i], limit)) return not_integer();
      if (limit < 0) return Reply::error("ERR LIMIT can't be negative");
    } else {
      return syntax_error();
    }
  }
  Args keys(args.begin(), args.begin() + static_cast<ptrdiff_t>(end));
  std::set<std::string, std::less<>> result;
  if (auto e = combine(ks, keys, 2, 'i', now_ms, result)) return *e;
  auto n = static_cast<int64_t>(result.size());
  return Reply::integer_of(limit > 0 ? std::min(n, limit) : n);
}

const Set* set_for_read(const Keyspace& ks, const std::string& key, uint64_t now_ms,
                        std::optional<Reply>& error) {
  bool wrong = false;
  const Set* s = ks.read_as<Set>(key, now_ms, wrong);
  if (wrong) error = wrong_type();
  return s;
}

Reply read_smembers(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const Set* s = set_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  std::vector<Reply> out;
  if (s)
    for (const auto& m : s->members) out.push_back(Reply::bulk(m));
  return Reply::array(std::move(out));
}

Reply read_sismember(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const Set* s = set_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  return Reply::integer_of(s && s->members.count(args[2]) ? 1 : 0);
}

Reply read_smismember(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const Set* s = set_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  std::vector<Reply> out;
  for (size_t i = 2; i < args.size(); ++i)
    out.push_back(Reply::integer_of(s && s->members.count(args[i]) ? 1 : 0));
  return Reply::array(std::move(out));
}

Reply read_scard(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const Set* s = set_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  return Reply::integer_of(s ? static_cast<int64_t>(s->size()) : 0);
}

// SRANDMEMBER key [count]: deterministic for a log position (see the top of this file).
Reply read_srandmember(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  if (args.size() > 3) return syntax_error();
  int64_t count = 1;
  const bool with_count = args.size() == 3;
  if (with_count && !parse_i64(args[2], count)) return not_integer();
  if (count < -static_cast<int64_t>(ks.limits().max_elements))
    return Reply::error("ERR value is out of range");
  std::optional<Reply> error;
  const Set* s = set_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  if (!s) return with_count ? Reply::array({}) : Reply::null();
  std::vector<const std::string*> members;
  for (const auto& m : s->members) members.push_back(&m);
  const auto picks = random_picks(draw_seed(ks, args[1]), members.size(), count);
  if (!with_count) return Reply::bulk(*members[picks[0]]);
  std::vector<Reply> out;
  for (size_t p : picks) out.push_back(Reply::bulk(*members[p]));
  return Reply::array(std::move(out));
}

Reply read_sscan(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  ScanRequest req;
  if (auto e = parse_scan(args, 2, false, req)) return *e;
  std::optional<Reply> error;
  const Set* s = set_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  std::vector<std::string_view> names;
  if (s) names.assign(s->members.begin(), s->members.end());
  std::vector<Reply> out;
  const uint64_t next =
      scan_names(names, req, [&](size_t i) { out.push_back(Reply::bulk(std::string(names[i]))); });
  return Reply::array({Reply::bulk(std::to_string(next)), Reply::array(std::move(out))});
}

}  // namespace

std::vector<CommandSpec> set_commands() {
  return {
      {"sadd", -3, "write denyoom fast", {1, 1, 1}, cmd_sadd},
      {"srem", -3, "write fast", {1, 1, 1}, cmd_srem},
      {"spop", -2, "write fast", {1, 1, 1}, cmd_spop},
      {"smove", 4, "write fast", {1, 2, 1}, cmd_smove},
      {"sinterstore", -3, "write denyoom", {1, -1, 1}, cmd_store},
      {"sunionstore", -3, "write denyoom", {1, -1, 1}, cmd_store},
      {"sdiffstore", -3, "write denyoom", {1, -1, 1}, cmd_store},
      {"sinter", -2, "readonly", {1, -1, 1}, nullptr, read_combine},
      {"sunion", -2, "readonly", {1, -1, 1}, nullptr, read_combine},
      {"sdiff", -2, "readonly", {1, -1, 1}, nullptr, read_combine},
      {"sintercard", -3, "readonly movablekeys", {0, 0, 0, 1}, nullptr, read_sintercard},
      {"smembers", 2, "readonly", {1, 1, 1}, nullptr, read_smembers},
      {"sismember", 3, "readonly fast", {1, 1, 1}, nullptr, read_sismember},
      {"smismember", -3, "readonly fast", {1, 1, 1}, nullptr, read_smismember},
      {"scard", 2, "readonly fast", {1, 1, 1}, nullptr, read_scard},
      {"srandmember", -2, "readonly", {1, 1, 1}, nullptr, read_srandmember},
      {"sscan", -3, "readonly", {1, 1, 1}, nullptr, read_sscan},
  };
}

}  // namespace synod::kv
