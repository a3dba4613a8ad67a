#include "kv/commands.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>

#include "base/assert.h"
#include "base/hash.h"
#include "base/rng.h"

namespace synod::kv {
namespace {

using Table = std::map<std::string_view, CommandSpec, std::less<>>;

// Redis 7.0's command flags (COMMAND INFO names them in this order).
constexpr std::string_view kFlagNames[] = {"write",
                                           "readonly",
                                           "denyoom",
                                           "admin",
                                           "pubsub",
                                           "noscript",
                                           "blocking",
                                           "loading",
                                           "stale",
                                           "skip_monitor",
                                           "skip_slowlog",
                                           "asking",
                                           "fast",
                                           "no_auth",
                                           "may_replicate",
                                           "no_mandatory_keys",
                                           "no_async_loading",
                                           "no_multi",
                                           "allow_busy",
                                           "movablekeys"};

void check_flags(const CommandSpec& spec) {
  std::string_view rest = spec.flags;
  while (!rest.empty()) {
    const size_t space = rest.find(' ');
    const std::string_view flag = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    SYNOD_ASSERT(
        std::find(std::begin(kFlagNames), std::end(kFlagNames), flag) != std::end(kFlagNames),
        "a command flag Redis does not have");
  }
  SYNOD_ASSERT(spec.has_flag("movablekeys") == (spec.keys.numkeys != 0),
               "movable keys are counted by an argument");
}

Table build_table() {
  Table table;
  struct Family {
    std::vector<CommandSpec> (*specs)();
    uint32_t categories;  // every command of the family is in these
    bool read_or_write;   // and in @read or @write by its handler
  };
  const Family families[] = {
      {string_commands, kString, true},     {keyspace_commands, kKeyspace, true},
      {hash_commands, kHash, true},         {list_commands, kList, true},
      {blocking_commands, 0, false},        {set_commands, kSet, true},
      {zset_commands, kSortedSet, true},    {transaction_commands, kTransaction, false},
      {script_commands, kScripting, false}, {server_commands, 0, false},
  };
  for (const Family& family : families)
    for (CommandSpec spec : family.specs()) {
      SYNOD_ASSERT(spec.write == nullptr || spec.read == nullptr, "one handler per command");
      SYNOD_ASSERT((spec.write || spec.read) == (family.specs != server_commands),
                   "the server's commands have no handler here, the state machine's have one");
      check_flags(spec);
      for (const CommandSpec& sub : spec.subcommands) check_flags(sub);
      // A container is in no category, as in Redis: its subcommands are.
      if (spec.subcommands.empty()) spec.categories |= family.categories;
      // An entry that names @read or @write itself (a refused blocking command) keeps it.
      if (family.read_or_write && !(spec.categories & (kRead | kWrite)))
        spec.categories |= spec.write ? kWrite : kRead;
      SYNOD_ASSERT(table.emplace(spec.name, spec).second, "a command is in the table twice");
    }
  return table;
}

const Table& table() {
  static const Table table = build_table();
  return table;
}

}  // namespace

bool CommandSpec::has_flag(std::string_view flag) const {
  std::string_view rest = flags;
  while (!rest.empty()) {
    const size_t space = rest.find(' ');
    if (rest.substr(0, space) == flag) return true;
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  return false;
}

const std::vector<std::string_view>& command_flag_names() {
  static const std::vector<std::string_view> names(std::begin(kFlagNames), std::end(kFlagNames));
  return names;
}

const CommandSpec* describe_command(std::string_view lower_name) {
  auto it = table().find(lower_name);
  return it == table().end() ? nullptr : &it->second;
}

const CommandSpec* find_command(std::string_view lower_name) {
  const CommandSpec* spec = describe_command(lower_name);
  return spec && (spec->write || spec->read) ? spec : nullptr;
}

const CommandSpec* find_subcommand(const CommandSpec& container, std::string_view lower_sub) {
  for (const CommandSpec& sub : container.subcommands)
    if (sub.name == lower_sub) return &sub;
  return nullptr;
}

bool is_internal_command(std::string_view lower_name) {
  return lower_name == "synod.eval";
}

void for_each_command(const std::function<void(const CommandSpec&)>& visit) {
  for (const auto& [name, spec] : table()) visit(spec);
}

bool arity_ok(const CommandSpec& spec, size_t argc) {
  const auto n = static_cast<int64_t>(argc);
  return spec.arity >= 0 ? n == spec.arity : n >= -spec.arity;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_i64(std::string_view s, int64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  if (s[0] == '+') return false;  // Redis's string2ll takes no sign but '-'
  // Nor leading zeros ("01", "-0"): only "0" itself starts with one.
  const size_t digits = s[0] == '-' ? 1 : 0;
  if (s.size() > digits && s[digits] == '0' && s.size() > 1) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

bool parse_double(std::string_view s, double& v) {
  if (s.empty() || s.size() > 5 * 1024 || std::isspace(static_cast<unsigned char>(s[0])))
    return false;
  const std::string text(s);  // strtod needs a terminator
  char* end = nullptr;
  errno = 0;
  v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || std::isnan(v)) return false;
  return !(errno == ERANGE && (std::isinf(v) || v == 0));
}

bool parse_long_double(std::string_view s, long double& v) {
  if (s.empty() || s.size() > 5 * 1024 || std::isspace(static_cast<unsigned char>(s[0])))
    return false;
  const std::string text(s);
  char* end = nullptr;
  errno = 0;
  v = std::strtold(text.c_str(), &end);
  if (end != text.c_str() + text.size() || std::isnan(v)) return false;
  return !(errno == ERANGE && (std::isinf(v) || v == 0));
}

std::string format_double(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const int n = std::snprintf(buf, sizeof(buf), "%.17g", v);
  return std::string(buf, static_cast<size_t>(n));
}

std::string format_long_double(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Up to 4933 digits before the point for the largest long double.
  std::string buf(5200, '\0');
  const int n = std::snprintf(buf.data(), buf.size(), "%.17Lf", v);
  buf.resize(static_cast<size_t>(n));
  if (buf.find('.') != std::string::npos) {
    while (buf.back() == '0') buf.pop_back();
    if (buf.back() == '.') buf.pop_back();
  }
  if (buf == "-0") buf = "0";
  return buf;
}

Reply wrong_type() {
  return Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value");
}
Reply syntax_error() {
  return Reply::error("ERR syntax error");
}
Reply not_integer() {
  return Reply::error("ERR value is not an integer or out of range");
}
Reply not_float() {
  return Reply::error("ERR value is not a valid float");
}
Reply arity_error(std::string_view name) {
  return Reply::error("ERR wrong number of arguments for '" + lower(name) + "' command");
}
Reply unknown_command(const Args& args) {
  // Redis's rule: arguments while fewer than 128 characters are shown, each cut to what is left.
  std::string shown;
  for (size_t i = 1; i < args.size() && shown.size() < 128; ++i)
    shown += "'" + args[i].substr(0, 128 - shown.size()) + "' ";
  return Reply::error("ERR unknown command '" + args[0].substr(0, 128) +
                      "', with args beginning with: " + shown);
}
Reply bulks(const std::vector<std::string>& items) {
  std::vector<Reply> out;
  out.reserve(items.size());
  for (const auto& item : items) out.push_back(Reply::bulk(item));
  return Reply::array(std::move(out));
}

uint64_t draw_seed(const Keyspace& ks, std::string_view key) {
  Digest d;
  const uint64_t seed = ks.seed();
  d.add(std::string_view(reinterpret_cast<const char*>(&seed), sizeof(seed)));
  d.add(key);
  return d.value();
}

std::vector<size_t> random_picks(uint64_t seed, size_t n, int64_t count) {
  Rng rng(seed);
  std::vector<size_t> picks;
  if (n == 0) return picks;
  if (count < 0) {
    SYNOD_ASSERT(count > std::numeric_limits<int64_t>::min(), "the caller bounds the count");
    const auto want = static_cast<uint64_t>(-count);
    for (uint64_t i = 0; i < want; ++i) picks.push_back(rng.below(n));
    return picks;
  }
  // Distinct: a partial Fisher-Yates shuffle of the indices.
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  const size_t want = std::min<uint64_t>(static_cast<uint64_t>(count), n);
  for (size_t i = 0; i < want; ++i) std::swap(all[i], all[i + rng.below(n - i)]);
  all.resize(want);
  return all;
}

std::optional<Reply> parse_scan(const Args& args, size_t first, bool allow_type, ScanRequest& out) {
  const std::string& c = args[first];
  auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), out.cursor);
  if (c.empty() || ec != std::errc() || end != c.data() + c.size())
    return Reply::error("ERR invalid cursor");
  for (size_t i = first + 1; i < args.size(); ++i) {
    const std::string opt = lower(args[i]);
    if (opt == "match" && i + 1 < args.size()) {
      out.match = args[++i];
    } else if (opt == "count" && i + 1 < args.size()) {
      if (!parse_i64(args[++i], out.count)) return not_integer();
      if (out.count < 1) return syntax_error();
    } else if (allow_type && opt == "type" && i + 1 < args.size()) {
      out.type = lower(args[++i]);
    } else {
      return syntax_error();
    }
  }
  return std::nullopt;
}

uint64_t scan_hash(std::string_view name) {
  Digest d;
  d.add(name);
  return d.value() | 1;  // never 0, which is the cursor of a finished scan
}

}  // namespace synod::kv
