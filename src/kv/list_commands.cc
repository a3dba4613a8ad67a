// Lists, as Redis 7 has them. The blocking commands (BLPOP, BLMOVE, ...) are refused: a client
// blocked on a follower or a deposed leader would have to be woken by a push that the log orders
// after its wait began, across leader changes, and no part of Synod tracks that yet; a refusal
// says so instead of answering at once as if the wait had timed out.
#include <limits>

#include "kv/commands.h"

namespace synod::kv {
namespace {

const List* list_for_read(const Keyspace& ks, const std::string& key, uint64_t now_ms,
                          std::optional<Reply>& error) {
  bool wrong = false;
  const List* l = ks.read_as<List>(key, now_ms, wrong);
  if (wrong) error = wrong_type();
  return l;
}

// Normalizes Redis's inclusive [start, stop] with negative indices from the end; false if empty.
bool clamp_range(int64_t len, int64_t& start, int64_t& stop) {
  if (start < 0) start += len;
  if (stop < 0) stop += len;
  if (start < 0) start = 0;
  if (start > stop || start >= len) return false;
  if (stop >= len) stop = len - 1;
  return true;
}

// LPUSH, RPUSH, LPUSHX, RPUSHX.
Reply cmd_push(Keyspace& ks, const Args& args) {
  const std::string name = lower(args[0]);
  const bool left = name[0] == 'l', only_existing = name.back() == 'x';
  bool wrong = false;
  List* l = ks.write_as<List>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!l && only_existing) return Reply::integer_of(0);
  size_t bytes = l ? l->bytes : 0;
  for (size_t i = 2; i < args.size(); ++i) bytes += args[i].size();
  if (auto e = ks.check_collection((l ? l->size() : 0) + args.size() - 2, bytes))
    return Reply::error(*e);
  if (!l) l = &ks.create<List>(args[1]);
  for (size_t i = 2; i < args.size(); ++i) {
    if (left) {
      l->items.push_front(args[i]);
    } else {
      l->items.push_back(args[i]);
    }
  }
  l->bytes = bytes;
  return Reply::integer_of(static_cast<int64_t>(l->size()));
}

std::string pop(List& l, bool left) {
  std::string item = std::move(left ? l.items.front() : l.items.back());
  if (left) {
    l.items.pop_front();
  } else {
    l.items.pop_back();
  }
  l.bytes -= item.size();
  return item;
}

// LPOP key [count], RPOP key [count].
Reply cmd_pop(Keyspace& ks, const Args& args) {
  if (args.size() > 3) return arity_error(args[0]);
  const bool left = lower(args[0])[0] == 'l';
  int64_t count = 1;
  const bool with_count = args.size() == 3;
  if (with_count && (!parse_i64(args[2], count) || count < 0))
    return Reply::error("ERR value is out of range, must be positive");
  bool wrong = false;
  List* l = ks.write_as<List>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!l) return with_count ? Reply::null_array() : Reply::null();
  if (!with_count) {
    Reply r = Reply::bulk(pop(*l, left));
    ks.drop_if_empty(args[1]);
    return r;
  }
  std::vector<Reply> out;
  while (count-- > 0 && l->size() > 0) out.push_back(Reply::bulk(pop(*l, left)));
  ks.drop_if_empty(args[1]);
  return Reply::array(std::move(out));
}

Reply cmd_lset(Keyspace& ks, const Args& args) {
  int64_t index = 0;
  if (!parse_i64(args[2], index)) return not_integer();
  bool wrong = false;
  List* l = ks.write_as<List>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!l) return Reply::error("ERR no such key");
  const auto len = static_cast<int64_t>(l->size());
  if (index < 0) index += len;
  if (index < 0 || index >= len) return Reply::error("ERR index out of range");
  std::string& item = l->items[static_cast<size_t>(index)];
  const size_t bytes = l->bytes - item.size() + args[3].size();
  if (auto e = ks.check_collection(l->size(), bytes)) return Reply::error(*e);
  item = args[3];
  l->bytes = bytes;
  return Reply::ok();
}

Reply cmd_lrem(Keyspace& ks, const Args& args) {
  int64_t count = 0;
  if (!parse_i64(args[2], count)) return not_integer();
  bool wrong = false;
  List* l = ks.write_as<List>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!l) return Reply::integer_of(0);
  int64_t removed = 0;
  const bool all = count == 0;
  const uint64_t limit =
      count < 0 ? 0 - static_cast<uint64_t>(count) : static_cast<uint64_t>(count);
  std::deque<std::string> kept;
  auto visit = [&](std::string& item, auto add) {
    if (item == args[3] && (all || static_cast<uint64_t>(removed) < limit)) {
      ++removed;
      l->bytes -= item.size();
    } else {
      add(std::move(item));
    }
  };
  if (count >= 0) {
    for (auto& item : l->items) visit(item, [&](std::string s) { kept.push_back(std::move(s)); });
  } else {
    for (auto it = l->items.rbegin(); it != l->items.rend(); ++it)
      visit(*it, [&](std::string s) { kept.push_front(std::move(s)); });
  }
  l->items = std::move(kept);
  ks.drop_if_empty(args[1]);
  return Reply::integer_of(removed);
}

Reply cmd_ltrim(Keyspace& ks, const Args& args) {
  int64_t start = 0, stop = 0;
  if (!parse_i64(args[2], start) || !parse_i64(args[3], stop)) return not_integer();
  bool wrong = false;
  List* l = ks.write_as<List>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!l) return Reply::ok();
  if (!clamp_range(static_cast<int64_t>(l->size()), start, stop)) {
    ks.erase(args[1]);
    return Reply::ok();
  }
  while (static_cast<int64_t>(l->size()) > stop + 1) pop(*l, false);
  for (int64_t i = 0; i < start; ++i) pop(*l, true);
  return Reply::ok();
}

Reply cmd_linsert(Keyspace& ks, const Args& args) {
  const std::string where = lower(args[2]);
  if (where != "before" && where != "after") return syntax_error();
  bool wrong = false;
  List* l = ks.write_as<List>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!l) return Reply::integer_of(0);
  auto it = std::find(l->items.begin(), l->items.end(), args[3]);
  if (it == l->items.end()) return Reply::integer_of(-1);
  if (auto e = ks.check_collection(l->size() + 1, l->bytes + args[4].size()))
    return Reply::error(*e);
  l->items.insert(where == "after" ? it + 1 : it, args[4]);
  l->bytes += args[4].size();
  return Reply::integer_of(static_cast<int64_t>(l->size()));
}

// Moves one item from src (its `from` end) to dst (its `to` end): LMOVE and RPOPLPUSH.
Reply move_item(Keyspace& ks, const Args& args, bool from_left, bool to_left) {
  bool wrong = false;
  List* src = ks.write_as<List>(args[1], wrong);
  if (wrong) return wrong_type();
  if (!src) return Reply::null();
  List* dst = ks.write_as<List>(args[2], wrong);
  if (wrong) return wrong_type();
  const std::string& item = from_left ? src->items.front() : src->items.back();
  if (dst != src) {
    const size_t n = dst ? dst->size() : 0, bytes = dst ? dst->bytes : 0;
    if (auto e = ks.check_collection(n + 1, bytes + item.size())) return Reply::error(*e);
  }
  std::string moved = pop(*src, from_left);
  if (dst == src && src->size() == 0) dst = nullptr;  // its only item: the list goes and returns
  ks.drop_if_empty(args[1]);
  if (!dst) dst = &ks.create<List>(args[2]);
  dst->bytes += moved.size();
  if (to_left) {
    dst->items.push_front(moved);
  } else {
    dst->items.push_back(moved);
  }
  return Reply::bulk(std::move(moved));
}

Reply cmd_lmove(Keyspace& ks, const Args& args) {
  const std::string from = lower(args[3]), to = lower(args[4]);
  if ((from != "left" && from != "right") || (to != "left" && to != "right")) return syntax_error();
  return move_item(ks, args, from == "left", to == "left");
}

Reply cmd_rpoplpush(Keyspace& ks, const Args& args) {
  return move_item(ks, args, false, true);
}

// --- Reads ---

Reply read_lrange(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  int64_t start = 0, stop = 0;
  if (!parse_i64(args[2], start) || !parse_i64(args[3], stop)) return not_integer();
  std::optional<Reply> error;
  const List* l = list_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  std::vector<Reply> out;
  if (l && clamp_range(static_cast<int64_t>(l->size()), start, stop)) {
    for (int64_t i = start; i <= stop; ++i)
      out.push_back(Reply::bulk(l->items[static_cast<size_t>(i)]));
  }
  return Reply::array(std::move(out));
}

Reply read_llen(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  std::optional<Reply> error;
  const List* l = list_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  return Reply::integer_of(l ? static_cast<int64_t>(l->size()) : 0);
}

Reply read_lindex(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  int64_t index = 0;
  if (!parse_i64(args[2], index)) return not_integer();
  std::optional<Reply> error;
  const List* l = list_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  if (!l) return Reply::null();
  const auto len = static_cast<int64_t>(l->size());
  if (index < 0) index += len;
  if (index < 0 || index >= len) return Reply::null();
  return Reply::bulk(l->items[static_cast<size_t>(index)]);
}

// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
Reply read_lpos(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  int64_t rank = 1, count = -1, maxlen = 0;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    if (i + 1 == args.size()) return syntax_error();
    if (opt == "rank") {
      if (!parse_i64(args[++i], rank)) return not_integer();
      if (rank == 0)
        return Reply::error(
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
            "or use negative to start from the end of the list");
      if (rank == std::numeric_limits<int64_t>::min())
        return Reply::error("ERR value is out of range");
    } else if (opt == "count") {
      if (!parse_i64(args[++i], count)) return not_integer();
      if (count < 0) return Reply::error("ERR COUNT can't be negative");
    } else if (opt == "maxlen") {
      if (!parse_i64(args[++i], maxlen)) return not_integer();
      if (maxlen < 0) return Reply::error("ERR MAXLEN can't be negative");
    } else {
      return syntax_error();
    }
  }
  std::optional<Reply> error;
  const List* l = list_for_read(ks, args[1], now_ms, error);
  if (error) return *error;
  const bool with_count = count >= 0;
  std::vector<Reply> found;
  if (l) {
    const auto len = static_cast<int64_t>(l->size());
    int64_t skip = (rank > 0 ? rank : -rank) - 1;
    for (int64_t n = 0; n < len && (maxlen == 0 || n < maxlen); ++n) {
      const int64_t index = rank > 0 ? n : len - 1 - n;
      if (l->items[static_cast<size_t>(index)] != args[2]) continue;
      if (skip > 0) {
        --skip;
        continue;
      }
      found.push_back(Reply::integer_of(index));
      if (!with_count || (count > 0 && static_cast<int64_t>(found.size()) == count)) break;
    }
  }
  if (with_count) return Reply::array(std::move(found));
  return found.empty() ? Reply::null() : found[0];
}

Reply refuse_blocking(const Keyspace&, const Args& args, uint64_t) {
  return Reply::error("ERR " + lower(args[0]) +
                      " is not supported: a blocked client could not be woken linearizably across "
                      "a leader change; poll with the non-blocking command instead");
}

}  // namespace

std::vector<CommandSpec> list_commands() {
  std::vector<CommandSpec> specs = {
      {"lpush", -3, "write denyoom fast", {1, 1, 1}, cmd_push},
      {"rpush", -3, "write denyoom fast", {1, 1, 1}, cmd_push},
      {"lpushx", -3, "write denyoom fast", {1, 1, 1}, cmd_push},
      {"rpushx", -3, "write denyoom fast", {1, 1, 1}, cmd_push},
      {"lpop", -2, "write fast", {1, 1, 1}, cmd_pop},
      {"rpop", -2, "write fast", {1, 1, 1}, cmd_pop},
      {"lset", 4, "write denyoom", {1, 1, 1}, cmd_lset},
      {"lrem", 4, "write", {1, 1, 1}, cmd_lrem},
      {"ltrim", 4, "write", {1, 1, 1}, cmd_ltrim},
      {"linsert", 5, "write denyoom", {1, 1, 1}, cmd_linsert},
      {"lmove", 5, "write denyoom", {1, 2, 1}, cmd_lmove},
      {"rpoplpush", 3, "write denyoom", {1, 2, 1}, cmd_rpoplpush},
      {"lrange", 4, "readonly", {1, 1, 1}, nullptr, read_lrange},
      {"llen", 2, "readonly fast", {1, 1, 1}, nullptr, read_llen},
      {"lindex", 3, "readonly", {1, 1, 1}, nullptr, read_lindex},
      {"lpos", -3, "readonly", {1, 1, 1}, nullptr, read_lpos},
  };
  return specs;
}

// Refused (refuse_blocking says why), but described as Redis describes them, in @write as in
// Redis rather than in @read by their handler.
std::vector<CommandSpec> blocking_commands() {
  std::vector<CommandSpec> specs = {
      {"blpop", -3, "write noscript blocking", {1, -2, 1}},
      {"brpop", -3, "write noscript blocking", {1, -2, 1}},
      {"blmove", 6, "write denyoom noscript blocking", {1, 2, 1}},
      {"brpoplpush", 4, "write denyoom noscript blocking", {1, 2, 1}},
      {"blmpop", -5, "write blocking movablekeys", {0, 0, 0, 2}},
      {"bzpopmin", -3, "write noscript blocking fast", {1, -2, 1}},
      {"bzpopmax", -3, "write noscript blocking fast", {1, -2, 1}},
      {"bzmpop", -5, "write blocking movablekeys", {0, 0, 0, 2}},
  };
  for (CommandSpec& spec : specs) {
    spec.read = refuse_blocking;
    spec.categories = kWrite | kBlocking | (spec.name[1] == 'z' ? kSortedSet : kList);
  }
  return specs;
}

}  // namespace synod::kv
