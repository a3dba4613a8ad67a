#include "kv/command_info.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "base/assert.h"
#include "kv/acl.h"
#include "kv/commands.h"
#include "kv/store.h"

namespace synod::kv {
namespace {

// What Redis 7.0.15 says of a command that Synod does not derive from its table: tips, key specs
// and (for a top-level command) COMMAND DOCS's entry, each as RESP2 bytes.
struct Recorded {
  std::string_view name;  // "get", "client|list"
  std::string_view tips;
  std::string_view key_specs;
  std::string_view docs;
};

constexpr Recorded kRecorded[] = {
    {"", "", "", ""},  // no command's: the generated file may be empty
#include "kv/redis_commands.inc"
};

const Recorded* recorded(std::string_view full_name) {
  for (const Recorded& r : kRecorded)
    if (r.name == full_name) return &r;
  return nullptr;
}

Reply parse_recorded(std::string_view bytes) {
  if (bytes.empty()) return Reply::array({});
  std::optional<Reply> reply = from_resp2(bytes);
  SYNOD_ASSERT(reply.has_value(), "redis_commands.inc holds RESP2");
  return *reply;
}

bool parse_resp(std::string_view& in, Reply& out, int depth) {
  const size_t eol = in.find("\r\n");
  if (eol == std::string_view::npos || eol == 0 || depth > 32) return false;
  const char type = in[0];
  const std::string_view line = in.substr(1, eol - 1);
  in.remove_prefix(eol + 2);
  int64_t n = 0;
  const bool counted = type == ':' || type == '$' || type == '*';
  if (counted) {
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
    if (ec != std::errc() || end != line.data() + line.size()) return false;
  }
  switch (type) {
    case '+':
      out = Reply::simple(std::string(line));
      return true;
    case '-':
      out = Reply::error(std::string(line));
      return true;
    case ':':
      out = Reply::integer_of(n);
      return true;
    case '$':
      if (n < 0) {
        out = Reply::null();
        return true;
      }
      if (in.size() < static_cast<size_t>(n) + 2 || in.substr(static_cast<size_t>(n), 2) != "\r\n")
        return false;
      out = Reply::bulk(std::string(in.substr(0, static_cast<size_t>(n))));
      in.remove_prefix(static_cast<size_t>(n) + 2);
      return true;
    case '*':
      if (n < 0) {
        out = Reply::null_array();
        return true;
      }
      out = Reply::array({});
      for (int64_t i = 0; i < n; ++i) {
        Reply e;
        if (!parse_resp(in, e, depth + 1)) return false;
        out.elements.push_back(std::move(e));
      }
      return true;
    default:
      return false;
  }
}

constexpr uint32_t kAdminOnly = kAdmin | kDangerous;
constexpr std::string_view kLocal = "loading stale";                   // CLIENT, CONFIG, ...
constexpr std::string_view kLocalNoScript = "noscript loading stale";  // ... their subcommands
constexpr std::string_view kAlways = "noscript loading stale fast no_auth allow_busy";
constexpr std::string_view kTx = "noscript loading stale fast allow_busy";

std::string full_name(const CommandSpec* container, const CommandSpec& spec) {
  return container ? std::string(container->name) + "|" + std::string(spec.name)
                   : std::string(spec.name);
}

// The client's arity: the table's EXEC is its log form (EXEC and the queued commands).
int client_arity(const CommandSpec& spec) {
  return spec.name == "exec" ? 1 : spec.arity;
}

// @fast or @slow by the fast flag, where Redis lists them: after @admin.
Reply categories_reply(const CommandSpec& spec) {
  std::vector<Reply> out;
  const bool fast = spec.has_flag("fast");
  for (const auto& [name, bit] : category_names()) {
    if (spec.categories & bit) out.push_back(Reply::simple("@" + std::string(name)));
    if (bit == kAdmin) out.push_back(Reply::simple(fast ? "@fast" : "@slow"));
  }
  return Reply::array(std::move(out));
}

Reply flags_reply(const CommandSpec& spec) {
  std::vector<Reply> out;
  for (std::string_view flag : command_flag_names())
    if (spec.has_flag(flag)) out.push_back(Reply::simple(std::string(flag)));
  return Reply::array(std::move(out));
}

// A key spec for a command Redis does not have (DELIFEQ), from its key positions.
Reply key_specs_from_positions(const CommandSpec& spec) {
  if (spec.keys.first <= 0) return Reply::array({});
  auto kv_pair = [](std::string k, Reply v) { return std::vector<Reply>{Reply::bulk(k), v}; };
  std::vector<Reply> flags = {Reply::simple(spec.write ? "RW" : "RO"),
                              Reply::simple(spec.write ? "delete" : "access")};
  std::vector<Reply> s;
  for (auto part :
       {kv_pair("flags", Reply::array(flags)),
        kv_pair("begin_search",
                Reply::array(
                    {Reply::bulk("type"), Reply::bulk("index"), Reply::bulk("spec"),
                     Reply::array({Reply::bulk("index"), Reply::integer_of(spec.keys.first)})})),
        kv_pair(
            "find_keys",
            Reply::array({Reply::bulk("type"), Reply::bulk("range"), Reply::bulk("spec"),
                          Reply::array({Reply::bulk("lastkey"),
                                        Reply::integer_of(spec.keys.last - spec.keys.first),
                                        Reply::bulk("keystep"), Reply::integer_of(spec.keys.step),
                                        Reply::bulk("limit"), Reply::integer_of(0)})}))})
    s.insert(s.end(), part.begin(), part.end());
  return Reply::array({Reply::array(std::move(s))});
}

Reply info_reply(const CommandSpec* container, const CommandSpec& spec) {
  const std::string name = full_name(container, spec);
  const Recorded* r = recorded(name);
  std::vector<Reply> subs;
  for (const CommandSpec& sub : spec.subcommands) subs.push_back(info_reply(&spec, sub));
  return Reply::array({
      Reply::bulk(name),
      Reply::integer_of(client_arity(spec)),
      flags_reply(spec),
      Reply::integer_of(spec.keys.first),
      Reply::integer_of(spec.keys.last),
      Reply::integer_of(spec.keys.step),
      categories_reply(spec),
      r ? parse_recorded(r->tips) : Reply::array({}),
      r ? parse_recorded(r->key_specs) : key_specs_from_positions(spec),
      Reply::array(std::move(subs)),
  });
}

// What Synod says of its own commands in COMMAND DOCS (with its subcommands', for a container
// of Synod's own: MEMBER).
Reply synod_docs(const CommandSpec& spec, const std::string& container = "") {
  std::string summary, group = "server";
  const std::string name =
      container.empty() ? std::string(spec.name) : container + "|" + std::string(spec.name);
  if (spec.name == "delifeq") {
    summary = "Deletes a key if its value equals the given one (Valkey's DELIFEQ)";
    group = "string";
  } else if (spec.name == "synod.fault") {
    summary = "Injects faults into this replica (only with --fault-injection)";
  } else if (name == "member") {
    summary =
        "Lists the cluster's members or changes them (add a learner, promote, remove, replace)";
  } else if (container == "member") {
    summary = "Membership: see docs/operations.md, \"Changing the members\"";
  } else {
    summary = "A Synod command";
  }
  std::vector<Reply> fields = {
      Reply::bulk("summary"), Reply::bulk(summary), Reply::bulk("since"),      Reply::bulk("1.0.0"),
      Reply::bulk("group"),   Reply::bulk(group),   Reply::bulk("complexity"), Reply::bulk("O(1)")};
  if (container.empty() && !spec.subcommands.empty()) {
    std::vector<Reply> subs;
    for (const CommandSpec& sub : spec.subcommands) {
      subs.push_back(Reply::bulk(name + "|" + std::string(sub.name)));
      subs.push_back(synod_docs(sub, name));
    }
    fields.push_back(Reply::bulk("subcommands"));
    fields.push_back(Reply::array(std::move(subs)));
  }
  return Reply::array(std::move(fields));
}

// Redis's docs of a command, its subcommands kept to those Synod has.
Reply docs_reply(const CommandSpec& spec) {
  const Recorded* r = recorded(spec.name);
  if (r == nullptr || r->docs.empty()) return synod_docs(spec);
  Reply docs = parse_recorded(r->docs);
  for (size_t i = 0; i + 1 < docs.elements.size(); i += 2) {
    if (docs.elements[i].text != "subcommands") continue;
    std::vector<Reply>& subs = docs.elements[i + 1].elements;
    std::vector<Reply> kept;
    for (size_t j = 0; j + 1 < subs.size(); j += 2) {
      const std::string& sub = subs[j].text;
      const size_t bar = sub.find('|');
      if (bar != std::string::npos && find_subcommand(spec, sub.substr(bar + 1))) {
        kept.push_back(std::move(subs[j]));
        kept.push_back(std::move(subs[j + 1]));
      }
    }
    subs = std::move(kept);
  }
  return docs;
}

// A command by name, "container|sub" too; null for the internal ones.
std::pair<const CommandSpec*, const CommandSpec*> lookup(std::string_view lower_name) {
  const size_t bar = lower_name.find('|');
  const CommandSpec* spec = describe_command(lower_name.substr(0, bar));
  if (spec == nullptr || is_internal_command(spec->name)) return {nullptr, nullptr};
  if (bar == std::string_view::npos) return {nullptr, spec};
  const CommandSpec* sub = find_subcommand(*spec, lower_name.substr(bar + 1));
  return sub ? std::pair{spec, sub} : std::pair<const CommandSpec*, const CommandSpec*>{};
}

void visit_public(const std::function<void(const CommandSpec&)>& visit) {
  for_each_command([&](const CommandSpec& spec) {
    if (!is_internal_command(spec.name)) visit(spec);
  });
}

Reply list_reply(const std::vector<std::string>& args) {
  if (args.size() == 2) return bulks(command_list());
  if (args.size() != 5 || lower(args[2]) != "filterby") return syntax_error();
  const std::string by = lower(args[3]);
  std::vector<std::string> out;
  if (by == "aclcat") {
    uint32_t bit = 0;
    for (const auto& [name, b] : category_names())
      if (name == lower(args[4])) bit = b;
    const std::string cat = lower(args[4]);
    auto in_category = [&](const CommandSpec& spec) {
      return (spec.categories & bit) != 0 || (cat == "fast" && spec.has_flag("fast")) ||
             (cat == "slow" && !spec.has_flag("fast"));
    };
    visit_public([&](const CommandSpec& spec) {
      if (in_category(spec)) out.emplace_back(spec.name);
      for (const CommandSpec& sub : spec.subcommands)
        if (in_category(sub)) out.push_back(full_name(&spec, sub));
    });
  } else if (by == "pattern") {
    for (std::string& name : command_list())
      if (glob_match(lower(args[4]), name)) out.push_back(std::move(name));
  } else if (by != "module") {
    return syntax_error();
  }
  return bulks(out);
}

}  // namespace

std::vector<CommandSpec> server_commands() {
  return {
      {"acl",
       -2,
       "",
       {},
       nullptr,
       nullptr,
       0,
       {{"cat", -2, kLocalNoScript},
        {"deluser", -3, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"dryrun", -4, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"getuser", 3, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"list", 2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"load", 2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"log", -2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"save", 2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"setuser", -3, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"users", 2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"whoami", 2, kLocalNoScript}}},
      {"auth", -2, kAlways, {}, nullptr, nullptr, kConnection},
      {"client",
       -2,
       "",
       {},
       nullptr,
       nullptr,
       0,
       {{"getname", 2, kLocalNoScript, {}, nullptr, nullptr, kConnection},
        {"id", 2, kLocalNoScript, {}, nullptr, nullptr, kConnection},
        {"info", 2, kLocalNoScript, {}, nullptr, nullptr, kConnection},
        {"kill",
         -3,
         "admin noscript loading stale",
         {},
         nullptr,
         nullptr,
         kAdminOnly | kConnection},
        {"list",
         -2,
         "admin noscript loading stale",
         {},
         nullptr,
         nullptr,
         kAdminOnly | kConnection},
        // Redis 7.2's; accepted because redis-py 5 sends it.
        {"setinfo", -4, kLocalNoScript, {}, nullptr, nullptr, kConnection},
        {"setname", 3, kLocalNoScript, {}, nullptr, nullptr, kConnection}}},
      {"command",
       -1,
       kLocal,
       {},
       nullptr,
       nullptr,
       kConnection,
       {{"count", 2, kLocal, {}, nullptr, nullptr, kConnection},
        {"docs", -2, kLocal, {}, nullptr, nullptr, kConnection},
        {"getkeys", -4, kLocal, {}, nullptr, nullptr, kConnection},
        {"info", -2, kLocal, {}, nullptr, nullptr, kConnection},
        {"list", -2, kLocal, {}, nullptr, nullptr, kConnection}}},
      {"config",
       -2,
       "",
       {},
       nullptr,
       nullptr,
       0,
       {{"get", -3, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"resetstat", 2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"rewrite", 2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"set", -4, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly}}},
      {"discard", 1, kTx, {}, nullptr, nullptr, kTransaction},
      {"echo", 2, "loading stale fast", {}, nullptr, nullptr, kConnection},
      {"hello", -1, kAlways, {}, nullptr, nullptr, kConnection},
      {"info", -1, kLocal, {}, nullptr, nullptr, kDangerous},
      // Synod's own: configuration changes (node/server.cc, docs/operations.md).
      {"member",
       -2,
       "",
       {},
       nullptr,
       nullptr,
       0,
       {{"add-learner", -3, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"list", 2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"promote", 3, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"remove", 3, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"replace", -4, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"swap", 4, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
        {"transfer", -2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly}}},
      {"multi", 1, kTx, {}, nullptr, nullptr, kTransaction},
      {"ping", -1, "fast", {}, nullptr, nullptr, kConnection},
      {"quit", -1, kAlways, {}, nullptr, nullptr, kConnection},
      {"select", 2, "loading stale fast", {}, nullptr, nullptr, kConnection},
      // Synod's own: SYNOD.FAULT BLOCK id... | CLEAR | CLOCK ... (node/server.cc).
      {"synod.fault", -2, "admin noscript loading stale", {}, nullptr, nullptr, kAdminOnly},
      {"unwatch", 1, kTx, {}, nullptr, nullptr, kTransaction},
  };
}

std::vector<std::string> command_list() {
  std::vector<std::string> out;
  visit_public([&](const CommandSpec& spec) {
    out.emplace_back(spec.name);
    for (const CommandSpec& sub : spec.subcommands) out.push_back(full_name(&spec, sub));
  });
  std::sort(out.begin(), out.end());
  return out;
}

Reply command_getkeys(const std::vector<std::string>& command) {
  const CommandSpec* spec = command.empty() ? nullptr : describe_command(lower(command[0]));
  if (spec && is_internal_command(spec->name)) spec = nullptr;
  if (spec && !spec->subcommands.empty())
    spec = command.size() >= 2 ? find_subcommand(*spec, lower(command[1])) : nullptr;
  if (spec == nullptr) return Reply::error("ERR Invalid command specified");
  const KeyPositions& k = spec->keys;
  if (k.first <= 0 && k.numkeys <= 0) return Reply::error("ERR The command has no key arguments");
  if (!arity_ok(*spec, command.size()))
    return Reply::error("ERR Invalid number of arguments specified for command");
  const auto argc = static_cast<int64_t>(command.size());
  int64_t first = k.first, last = k.last, step = k.step;
  if (k.numkeys > 0) {
    int64_t n = 0;
    if (k.numkeys < argc && parse_i64(command[static_cast<size_t>(k.numkeys)], n) && n > 0 &&
        n <= argc - k.numkeys - 1) {
      first = k.numkeys + 1;
      last = k.numkeys + n;
      step = 1;
    } else {
      first = 0;
    }
  } else if (last < 0) {
    last += argc;
  }
  std::vector<std::string> keys;
  for (int64_t i = first; first > 0 && i <= last && i < argc; i += step)
    keys.push_back(command[static_cast<size_t>(i)]);
  if (keys.empty() && !spec->has_flag("no_mandatory_keys"))
    return Reply::error("ERR Invalid arguments specified for command");
  return bulks(keys);
}

Reply command_command(const std::vector<std::string>& args) {
  const std::string sub = args.size() >= 2 ? lower(args[1]) : "";
  const auto arity = [&] { return arity_error("command|" + sub); };
  std::vector<Reply> out;
  if (args.size() == 1 || (sub == "info" && args.size() == 2)) {
    visit_public([&](const CommandSpec& spec) { out.push_back(info_reply(nullptr, spec)); });
    return Reply::array(std::move(out));
  }
  if (sub == "count") {
    if (args.size() != 2) return arity();
    int64_t n = 0;
    visit_public([&](const CommandSpec&) { ++n; });
    return Reply::integer_of(n);
  }
  if (sub == "list") return list_reply(args);
  if (sub == "info") {
    for (size_t i = 2; i < args.size(); ++i) {
      const auto [container, spec] = lookup(lower(args[i]));
      out.push_back(spec ? info_reply(container, *spec) : Reply::null());
    }
    return Reply::array(std::move(out));
  }
  if (sub == "docs") {
    auto add = [&](const CommandSpec& spec) {
      out.push_back(Reply::bulk(std::string(spec.name)));
      out.push_back(docs_reply(spec));
    };
    if (args.size() == 2) visit_public(add);
    for (size_t i = 2; i < args.size(); ++i) {
      const auto [container, spec] = lookup(lower(args[i]));
      if (spec && !container) add(*spec);
      if (!container) continue;
      // A subcommand's docs are in its container's.
      Reply docs = docs_reply(*container);
      for (size_t j = 0; j + 1 < docs.elements.size(); j += 2) {
        if (docs.elements[j].text != "subcommands") continue;
        auto& subs = docs.elements[j + 1].elements;
        for (size_t k = 0; k + 1 < subs.size(); k += 2)
          if (subs[k].text == full_name(container, *spec)) {
            out.push_back(std::move(subs[k]));
            out.push_back(std::move(subs[k + 1]));
          }
      }
    }
    return Reply::array(std::move(out));
  }
  if (sub == "getkeys") {
    if (args.size() < 4) return arity();
    return command_getkeys(std::vector<std::string>(args.begin() + 2, args.end()));
  }
  return Reply::error("ERR unknown subcommand '" + args[1].substr(0, 128) + "'. Try COMMAND HELP.");
}

std::string to_resp2(const Reply& r) {
  switch (r.kind) {
    case Reply::Kind::kSimple:
      return "+" + r.text + "\r\n";
    case Reply::Kind::kError:
      return "-" + r.text + "\r\n";
    case Reply::Kind::kInteger:
      return ":" + std::to_string(r.integer) + "\r\n";
    case Reply::Kind::kBulk:
      return "$" + std::to_string(r.text.size()) + "\r\n" + r.text + "\r\n";
    case Reply::Kind::kNull:
      return "$-1\r\n";
    case Reply::Kind::kNullArray:
      return "*-1\r\n";
    case Reply::Kind::kArray: {
      std::string out = "*" + std::to_string(r.elements.size()) + "\r\n";
      for (const auto& e : r.elements) out += to_resp2(e);
      return out;
    }
  }
  return {};
}

std::optional<Reply> from_resp2(std::string_view bytes) {
  Reply out;
  if (!parse_resp(bytes, out, 0) || !bytes.empty()) return std::nullopt;
  return out;
}

}  // namespace synod::kv
