#include "kv/acl.h"

#include <cctype>

namespace synod::kv {
namespace {

std::string lower_text(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status bad_rule(std::string_view rule, std::string_view why) {
  return Status::invalid_argument("ACL rule '" + std::string(rule) + "': " + std::string(why));
}

}  // namespace

const std::vector<std::pair<std::string_view, uint32_t>>& category_names() {
  static const std::vector<std::pair<std::string_view, uint32_t>> names = {
      {"keyspace", kKeyspace},
      {"read", kRead},
      {"write", kWrite},
      {"set", kSet},
      {"sortedset", kSortedSet},
      {"list", kList},
      {"hash", kHash},
      {"string", kString},
      {"bitmap", kBitmap},
      {"hyperloglog", kHyperLogLog},
      {"geo", kGeo},
      {"stream", kStream},
      {"pubsub", kPubSub},
      {"admin", kAdmin},
      {"blocking", kBlocking},
      {"dangerous", kDangerous},
      {"connection", kConnection},
      {"transaction", kTransaction},
      {"scripting", kScripting},
  };
  return names;
}

std::vector<std::string_view> category_list(uint32_t categories) {
  std::vector<std::string_view> out;
  for (const auto& [name, bit] : category_names())
    if (categories & bit) out.push_back(name);
  return out;
}

Result<CommandRules> CommandRules::parse(std::string_view text) {
  CommandRules rules;
  while (!text.empty()) {
    const size_t space = text.find(' ');
    const std::string_view rule = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (rule.empty()) continue;
    SYNOD_RETURN_IF_ERROR(rules.add(rule));
  }
  return rules;
}

Status CommandRules::add(std::string_view text) {
  const std::string rule = lower_text(text);
  Rule r;
  if (rule == "allcommands" || rule == "nocommands") {
    r.allow = rule == "allcommands";
    r.all = true;
    rules_.push_back(r);
    return Status::ok();
  }
  if (rule.size() < 2 || (rule[0] != '+' && rule[0] != '-'))
    return bad_rule(text, "not a command rule (+@category, -@category, +command, -command)");
  r.allow = rule[0] == '+';
  const std::string_view what = std::string_view(rule).substr(1);
  if (what[0] == '@') {
    const std::string_view name = what.substr(1);
    if (name == "all") {
      r.all = true;
    } else if (name == "fast" || name == "slow") {
      return bad_rule(text,
                      "Synod does not sort commands into @fast and @slow; name other "
                      "categories or commands");
    } else {
      for (const auto& [category, bit] : category_names())
        if (category == name) r.categories = bit;
      if (r.categories == 0) return bad_rule(text, "no such category (see ACL CAT)");
    }
  } else {
    const size_t bar = what.find('|');
    r.command = std::string(what.substr(0, bar));
    if (bar != std::string_view::npos) {
      r.sub = std::string(what.substr(bar + 1));
      if (r.sub.empty() || r.sub.find('|') != std::string::npos)
        return bad_rule(text, "a subcommand rule is +command|subcommand");
    }
    if (r.command.empty()) return bad_rule(text, "no command named");
  }
  rules_.push_back(std::move(r));
  return Status::ok();
}

bool CommandRules::allows(std::string_view name, std::string_view sub, uint32_t categories) const {
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    const bool matches =
        it->all || (it->categories & categories) != 0 ||
        (!it->command.empty() && it->command == name && (it->sub.empty() || it->sub == sub));
    if (matches) return it->allow;
  }
  return false;
}

bool CommandRules::allows_everything() const {
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (!it->allow) return false;
    if (it->all) return true;
  }
  return false;
}

std::string CommandRules::text() const {
  std::string out;
  for (const Rule& r : rules_) {
    if (!out.empty()) out += ' ';
    out += r.allow ? '+' : '-';
    if (r.all) {
      out += "@all";
    } else if (r.categories) {
      out += "@" + std::string(category_list(r.categories).front());
    } else {
      out += r.command;
      if (!r.sub.empty()) out += "|" + r.sub;
    }
  }
  return out;
}

}  // namespace synod::kv
