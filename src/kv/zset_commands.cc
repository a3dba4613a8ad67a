// Sorted sets, as Redis 7.0 has them: members ordered by (score, member bytes), scores replied as
// Redis 7.0 formats them ("%.17g"). Ranks are found by walking the order (O(n), within the
// per-key element bound). ZRANDMEMBER draws from the log position, like SRANDMEMBER.
#include <cmath>
#include <limits>

#include "kv/commands.h"

namespace synod::kv {
namespace {

using Item = std::pair<double, std::string>;

Reply min_max_not_float() {
  return Reply::error("ERR min or max is not a float");
}

struct ScoreRange {
  double min = 0, max = 0;
  bool min_open = false, max_open = false;
  bool above_min(double s) const { return min_open ? s > min : s >= min; }
  bool below_max(double s) const { return max_open ? s < max : s <= max; }
  bool contains(double s) const { return above_min(s) && below_max(s); }
};

bool parse_bound(std::string_view s, double& v, bool& open) {
  open = !s.empty() && s[0] == '(';
  if (open) s.remove_prefix(1);
  return parse_double(s, v);
}

bool parse_score_range(const std::string& min, const std::string& max, ScoreRange& r) {
  return parse_bound(min, r.min, r.min_open) && parse_bound(max, r.max, r.max_open);
}

// A lex bound: "-" and "+" are the ends, "[x" includes x, "(x" excludes it.
struct LexBound {
  enum Kind { kMinusInf, kPlusInf, kValue } kind = kValue;
  std::string value;
  bool open = false;
};
struct LexRange {
  LexBound min, max;
  bool above_min(const std::string& m) const {
    if (min.kind == LexBound::kMinusInf) return true;
    if (min.kind == LexBound::kPlusInf) return false;
    return min.open ? m > min.value : m >= min.value;
  }
  bool below_max(const std::string& m) const {
    if (max.kind == LexBound::kPlusInf) return true;
    if (max.kind == LexBound::kMinusInf) return false;
    return max.open ? m < max.value : m <= max.value;
  }
  bool contains(const std::string& m) const { return above_min(m) && below_max(m); }
};

bool parse_lex(const std::string& s, LexBound& b) {
  if (s == "-") {
    b.kind = LexBound::kMinusInf;
  } else if (s == "+") {
    b.kind = LexBound::kPlusInf;
  } else if (!s.empty() && (s[0] == '[' || s[0] == '(')) {
    b.open = s[0] == '(';
    b.value = s.substr(1);
  } else {
    return false;
  }
  return true;
}

bool parse_lex_range(const std::string& min, const std::string& max, LexRange& r) {
  return parse_lex(min, r.min) && parse_lex(max, r.max);
}

Reply not_lex() {
  return Reply::error("ERR min or max not valid string range item");
}

const ZSet* zset_for_read(const Keyspace& ks, const std::string& key, uint64_t now_ms,
                          std::optional<Reply>& error) {
  bool wrong = false;
  const ZSet* z = ks.read_as<ZSet>(key, now_ms, wrong);
  if (wrong) error = wrong_type();
  return z;
}

// Items with scores in `r`, ascending.
std::vector<const Item*> by_score(const ZSet& z, const ScoreRange& r) {
  std::vector<const Item*> out;
  for (auto it = z.order.lower_bound({r.min, std::string()}); it != z.order.end(); ++it) {
    if (!r.below_max(it->first)) break;
    if (r.above_min(it->first)) out.push_back(&*it);
  }
  return out;
}

std::vector<const Item*> by_lex(const ZSet& z, const LexRange& r) {
  std::vector<const Item*> out;
  for (const Item& item : z.order)
    if (r.contains(item.second)) out.push_back(&item);
  return out;
}

// Items at ranks [start, stop] (Redis's inclusive, negative-from-the-end indices), ascending or
// from the highest when `rev`.
std::vector<const Item*> by_rank(const ZSet& z, int64_t start, int64_t stop, bool rev) {
  const auto len = static_cast<int64_t>(z.size());
  if (start < 0) start += len;
  if (stop < 0) stop += len;
  if (start < 0) start = 0;
  std::vector<const Item*> out;
  if (start > stop || start >= len) return out;
  if (stop >= len) stop = len - 1;
  int64_t rank = 0;
  auto visit = [&](const Item& item) {
    if (rank >= start && rank <= stop) out.push_back(&item);
    ++rank;
  };
  if (rev) {
    for (auto it = z.order.rbegin(); it != z.order.rend() && rank <= stop; ++it) visit(*it);
  } else {
    for (auto it = z.order.begin(); it != z.order.end() && rank <= stop; ++it) visit(*it);
  }
  return out;
}

Reply items_reply(const std::vector<const Item*>& items, bool with_scores) {
  std::vector<Reply> out;
  for (const Item* item : items) {
    out.push_back(Reply::bulk(item->second));
    if (with_scores) out.push_back(Reply::bulk(format_double(item->first)));
  }
  return Reply::array(std::move(out));
}

// LIMIT offset count: a negative offset selects nothing, a negative count everything after it.
std::vector<const Item*> limit(std::vector<const Item*> items, int64_t offset, int64_t count) {
  if (offset < 0) return {};
  if (offset >= static_cast<int64_t>(items.size())) return {};
  items.erase(items.begin(), items.begin() + offset);
  if (count >= 0 && count < static_cast<int64_t>(items.size())) items.resize(count);
  return items;
}

// The shared engine of ZRANGE and its older forms: `by` is 'r' (rank), 's' (score) or 'l' (lex);
// `from` and `to` are as the client gave them (for REV by score or lex: max, then min).
struct RangeQuery {
  char by = 'r';
  bool rev = false, with_scores = false, has_limit = false;
  int64_t offset = 0, count = -1;
};

Reply run_range(const Keyspace& ks, const std::string& key, const std::string& from,
                const std::string& to, const RangeQuery& q, uint64_t now_ms) {
  ScoreRange sr;
  LexRange lr;
  int64_t start = 0, stop = 0;
  if (q.by == 's' && !parse_score_range(q.rev ? to : from, q.rev ? from : to, sr))
    return min_max_not_float();
  if (q.by == 'l' && !parse_lex_range(q.rev ? to : from, q.rev ? from : to, lr)) return not_lex();
  if (q.by == 'r' && (!parse_i64(from, start) || !parse_i64(to, stop))) return not_integer();
  std::optional<Reply> error;
  const ZSet* z = zset_for_read(ks, key, now_ms, error);
  if (error) return *error;
  if (!z) return Reply::array({});
  std::vector<const Item*> items;
  if (q.by == 'r') {
    items = by_rank(*z, start, stop, q.rev);
  } else {
    items = q.by == 's' ? by_score(*z, sr) : by_lex(*z, lr);
    if (q.rev) std::reverse(items.begin(), items.end());
    if (q.has_limit) items = limit(std::move(items), q.offset, q.count);
  }
  return items_reply(items, q.with_scores);
}

// Parses WITHSCORES and LIMIT (and, for ZRANGE, BYSCORE, BYLEX and REV) from args[first..].
std::optional<Reply> parse_range_options(const Args& args, size_t first, bool zrange,
                                         RangeQuery& q) {
  for (size_t i = first; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    if (opt == "withscores") {
      q.with_scores = true;
    } else if (opt == "limit" && i + 2 < args.size()) {
      if (!parse_i64(args[i + 1], q.offset) || !parse_i64(args[i + 2], q.count))
        return not_integer();
      q.has_limit = q.offset != 0 || q.count != -1;  // LIMIT 0 -1 is no limit at all
      i += 2;
    } else if (zrange && opt == "byscore") {
      q.by = 's';
    } else if (zrange && opt == "bylex") {
      q.by = 'l';
    } else if (zrange && opt == "rev") {
      q.rev = true;
    } else {
      return syntax_error();
    }
  }
  if (q.has_limit && q.by == 'r')
    return Reply::error(
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
  if (q.with_scores && q.by == 'l')
    return Reply::error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
  return std::nullopt;
}

Reply read_zrange(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  const std::string name = lower(args[0]);
  RangeQuery q;
  if (name == "zrange") {
    if (auto e = parse_range_options(args, 4, true, q)) return *e;
  } else {
    q.by = name.find("bylex") != std::string::npos     ? 'l'
           : name.find("byscore") != std::string::npos ? 's'
                                                       : 'r';
    q.rev = name.rfind("zrev", 0) == 0;
    if (auto e = parse_range_options(args, 4, false, q)) return *e;
  }
  return run_range(ks, args[1], args[2], args[3], q, now_ms);
}

// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
Reply cmd_zadd(Keyspace& ks, const Args& args) {
  bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = false;
  size_t i = 2;
  for (; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    if (opt == "nx") {
      nx = true;
    } else if (opt == "xx") {
      xx = true;
    } else if (opt == "gt") {
      gt = true;
    } else if (opt == "lt") {
      lt = true;
    } else if (opt == "ch") {
      ch = true;
    } else if (opt == "incr") {
      incr = true;
    } else {
      break;
    }
  }
  const size_t pairs_words = args.size() - i;
  if (pairs_words == 0 || pairs_words % 2 != 0) return syntax_error();
  if (nx && xx) return Reply::error("ERR XX and NX options at the same time are not compatible");
  if ((gt && nx) || (lt && nx) || (gt && lt))
    return Reply::error("ERR GT, LT, and/or NX options at the same time are not compatible");
  if (incr && pairs_words > 2)
    return Reply::error("ERR INCR option supports a single increment-element pair");
  std::vector<std::pair<double, const std::string*>> pairs;
  for (size_t j = i; j + 1 < args.size(); j += 2) {
    double score = 0;
    if (!parse_double(args[j], score)) return not_float();
    pairs.emplace_back(score, &args[j + 1]);
  }
  bool wrong = false;
  ZSet* z = ks.write_as<ZSet>(args[1], wrong);
  if (wrong) return wrong_type();
  // The bound, on the members this command would add.
  std::set<std::string_view> fresh;
  size_t bytes = z ? z->bytes : 0;
  for (const auto& [score, member] : pairs) {
    if (xx || (z && z->scores.count(*member)) || !fresh.insert(*member).second) continue;
    bytes += member->size() + 8;
  }
  if (auto e = ks.check_collection((z ? z->size() : 0) + fresh.size(), bytes))
    return Reply::error(*e);
  int64_t added = 0, changed = 0;
  std::optional<double> incr_result;
  for (const auto& [score_in, member] : pairs) {
    double score = score_in;
    const auto found = z ? z->scores.find(*member) : decltype(z->scores.end()){};
    const bool exists = z && found != z->scores.end();
    if ((nx && exists) || (xx && !exists)) continue;
    if (exists) {
      const double current = found->second;
      if (incr) {
        score = current + score;
        if (std::isnan(score)) return Reply::error("ERR resulting score is not a number (NaN)");
      }
      if ((gt && score <= current) || (lt && score >= current)) continue;
      incr_result = score;
      if (score != current) {
        z->put(*member, score);
        ++changed;
      }
    } else {
      if (!z) z = &ks.create<ZSet>(args[1]);
      z->put(*member, score);
      incr_result = score;
      ++added;
    }
  }
  if (incr) return incr_result ? Reply::bulk(format_double(*incr_result)) : Reply::null();
  return Reply::integer_of(ch ? added + changed : added);
}

Reply cmd_zincrby(Keyspace& ks, const Args& args) {
  double delta = 0;
  if (!parse_double(args[2], delta)) return not_float();
  bool wrong = false;
  ZSet* z = ks.write_as<ZSet>(args[1], wrong);
  if (wrong) return wrong_type();
  const auto found = z ? z->scores.find(args[3]) : decltype(z->scores.end()){};
  const bool exists = z && found != z->scores.end();
  const double score = exists ? found->second + delta : delta;
  if (std::isnan(score)) return Reply::error("ERR resulting score is not a number (NaN)");
  if (!exists) {
    if (auto e =
            ks.check_collection((z ? z->size() : 0) + 1, (z ? z->bytes : 0) + args[3].size() + 8))
      return Reply::error(*e);
    if (!z) z = &ks.create<ZSet>(args[1]);
  }
  z->put(args[3], score);
  return Reply::bulk(format_double(score));
}

Reply cmd_zrem(Keyspace& ks, const Args& args) {
  bool wrong = false;
  ZSet* z = ks.write_as<ZSet>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!z) return Reply::integer_of(0);
  int64_t n = 0;
  for (size_t i = 2; i < args.size(); ++i) n += z->remove(args[i]) ? 1 : 0;
  ks.drop_if_empty(args[1]);
  return Reply::integer_of(n);
}

// ZPOPMIN, ZPOPMAX key [count]
Reply cmd_zpop(Keyspace& ks, const Args& args) {
  if (args.size() > 3) return syntax_error();
  const bool max = lower(args[0]) == "zpopmax";
  int64_t count = 1;
  if (args.size() == 3 && (!parse_i64(args[2], count) || count < 0))
    return Reply::error("ERR value is out of range, must be positive");
  bool wrong = false;
  ZSet* z = ks.write_as<ZSet>(args[1], wrong);
  if (wrong) return wrong_type();
  std::vector<Reply> out;
  while (z && count-- > 0 && z->size() > 0) {
    const Item item = max ? *z->order.rbegin() : *z->order.begin();
    out.push_back(Reply::bulk(item.second));
    out.push_back(Reply::bulk(format_double(item.first)));
    z->remove(item.second);
  }
  if (z) ks.drop_if_empty(args[1]);
  return Reply::array(std::move(out));
}

// ZREMRANGEBYSCORE, ZREMRANGEBYRANK, ZREMRANGEBYLEX key min max
Reply cmd_zremrange(Keyspace& ks, const Args& args) {
  const std::string name = lower(args[0]);
  RangeQuery q;
  q.by = name == "zremrangebyscore" ? 's' : name == "zremrangebylex" ? 'l' : 'r';
  const Reply selected = run_range(ks, args[1], args[2], args[3], q, ks.clock_ms());
  if (selected.kind == Reply::Kind::kError) return selected;
  bool wrong = false;
  ZSet* z = ks.write_as<ZSet>(args[1], wrong);
  if (!z) return Reply::integer_of(0);
  for (const Reply& member : selected.elements) z->remove(member.text);
  ks.drop_if_empty(args[1]);
  return Reply::integer_of(static_cast<int64_t>(selected.elements.size()));
}

// --- Reads ---

Reply read_zscore(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const ZSet* z = zset_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  if (!z) return Reply::null();
  auto it = z->scores.find(args[2]);
  return it == z->scores.end() ? Reply::null() : Reply::bulk(format_double(it->second));
}

Reply read_zmscore(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const ZSet* z = zset_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  std::vector<Reply> out;
  for (size_t i = 2; i < args.size(); ++i) {
    auto it = z ? z->scores.find(args[i]) : decltype(z->scores.end()){};
    out.push_back(z && it != z->scores.end() ? Reply::bulk(format_double(it->second))
                                             : Reply::null());
  }
  return Reply::array(std::move(out));
}

Reply read_zcard(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const ZSet* z = zset_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  return Reply::integer_of(z ? static_cast<int64_t>(z->size()) : 0);
}

// ZCOUNT and ZLEXCOUNT key min max
Reply read_zcount(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  RangeQuery q;
  q.by = lower(args[0]) == "zcount" ? 's' : 'l';
  const Reply r = run_range(ks, args[1], args[2], args[3], q, now_ms);
  if (r.kind == Reply::Kind::kError) return r;
  return Reply::integer_of(static_cast<int64_t>(r.elements.size()));
}

Reply read_zrank(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const ZSet* z = zset_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  if (!z) return Reply::null();
  auto it = z->scores.find(args[2]);
  if (it == z->scores.end()) return Reply::null();
  const auto rank = std::distance(z->order.begin(), z->order.find({it->second, it->first}));
  const bool rev = lower(args[0]) == "zrevrank";
  return Reply::integer_of(rev ? static_cast<int64_t>(z->size()) - 1 - rank : rank);
}

// ZRANDMEMBER key [count [WITHSCORES]]: deterministic for a log position.
Reply read_zrandmember(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  if (args.size() > 4) return syntax_error();
  int64_t count = 1;
  const bool with_count = args.size() >= 3;
  if (with_count && !parse_i64(args[2], count)) return not_integer();
  const bool with_scores = args.size() == 4;
  if (with_scores && lower(args[3]) != "withscores") return syntax_error();
  if (count < -static_cast<int64_t>(ks.limits().max_elements))
    return Reply::error("ERR value is out of range");
  std::optional<Reply> error;
  const ZSet* z = zset_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  if (!z) return with_count ? Reply::array({}) : Reply::null();
  std::vector<const Item*> items;
  for (const Item& item : z->order) items.push_back(&item);
  const auto picks = random_picks(draw_seed(ks, args[1]), items.size(), count);
  if (!with_count) return Reply::bulk(items[picks[0]]->second);
  std::vector<const Item*> chosen;
  for (size_t p : picks) chosen.push_back(items[p]);
  return items_reply(chosen, with_scores);
}

Reply read_zscan(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  ScanRequest req;
  if (auto e = parse_scan(args, 2, false, req)) return *e;
  std::optional<Reply> error;
  const ZSet* z = zset_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  std::vector<std::string_view> names;
  std::vector<double> scores;
  if (z) {
    for (const auto& [m, s] : z->scores) {
      names.push_back(m);
      scores.push_back(s);
    }
  }
  std::vector<Reply> out;
  const uint64_t next = scan_names(names, req, [&](size_t i) {
    out.push_back(Reply::bulk(std::string(names[i])));
    out.push_back(Reply::bulk(format_double(scores[i])));
  });
  return Reply::array({Reply::bulk(std::to_string(next)), Reply::array(std::move(out))});
}

}  // namespace

std::vector<CommandSpec> zset_commands() {
  return {
      {"zadd", -4, "write denyoom fast", {1, 1, 1}, cmd_zadd},
      {"zincrby", 4, "write denyoom fast", {1, 1, 1}, cmd_zincrby},
      {"zrem", -3, "write fast", {1, 1, 1}, cmd_zrem},
      {"zpopmin", -2, "write fast", {1, 1, 1}, cmd_zpop},
      {"zpopmax", -2, "write fast", {1, 1, 1}, cmd_zpop},
      {"zremrangebyscore", 4, "write", {1, 1, 1}, cmd_zremrange},
      {"zremrangebyrank", 4, "write", {1, 1, 1}, cmd_zremrange},
      {"zremrangebylex", 4, "write", {1, 1, 1}, cmd_zremrange},
      {"zscore", 3, "readonly fast", {1, 1, 1}, nullptr, read_zscore},
      {"zmscore", -3, "readonly fast", {1, 1, 1}, nullptr, read_zmscore},
      {"zcard", 2, "readonly fast", {1, 1, 1}, nullptr, read_zcard},
      {"zcount", 4, "readonly fast", {1, 1, 1}, nullptr, read_zcount},
      {"zlexcount", 4, "readonly fast", {1, 1, 1}, nullptr, read_zcount},
      {"zrank", 3, "readonly fast", {1, 1, 1}, nullptr, read_zrank},
      {"zrevrank", 3, "readonly fast", {1, 1, 1}, nullptr, read_zrank},
      {"zrange", -4, "readonly", {1, 1, 1}, nullptr, read_zrange},
      {"zrangebyscore", -4, "readonly", {1, 1, 1}, nullptr, read_zrange},
      {"zrevrangebyscore", -4, "readonly", {1, 1, 1}, nullptr, read_zrange},
      {"zrangebylex", -4, "readonly", {1, 1, 1}, nullptr, read_zrange},
      {"zrevrangebylex", -4, "readonly", {1, 1, 1}, nullptr, read_zrange},
      {"zrevrange", -4, "readonly", {1, 1, 1}, nullptr, read_zrange},
      {"zrandmember", -2, "readonly", {1, 1, 1}, nullptr, read_zrandmember},
      {"zscan", -3, "readonly", {1, 1, 1}, nullptr, read_zscan},
  };
}

}  // namespace synod::kv
