#include "node/acl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <set>

#include "base/assert.h"
#include "kv/commands.h"
#include "kv/scripting.h"

namespace synod::node {
namespace {

using kv::Reply;

// Commands whose first argument names a subcommand, which rules and refusals name as cmd|sub.
bool is_container(std::string_view name) {
  const kv::CommandSpec* spec = kv::describe_command(name);
  return spec && !spec->subcommands.empty();
}

}  // namespace

std::optional<uint32_t> command_categories(std::string_view name, std::string_view sub) {
  const kv::CommandSpec* spec = kv::describe_command(name);
  if (spec == nullptr || kv::is_internal_command(name)) return std::nullopt;
  if (sub.empty() || spec->subcommands.empty()) return spec->categories;
  const kv::CommandSpec* found = kv::find_subcommand(*spec, sub);
  if (found == nullptr) return std::nullopt;
  return found->categories;
}

namespace {

std::string lower(std::string_view s) {
  return kv::lower(s);
}

Reply noperm(std::string_view label) {
  return Reply::error("NOPERM this user has no permissions to run the '" + std::string(label) +
                      "' command");
}

std::optional<Sha256> parse_hex_digest(std::string_view text) {
  if (text.size() != 64) return std::nullopt;
  Sha256 out{};
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, v, 16);
    if (ec != std::errc() || end != text.data() + 2 * i + 2) return std::nullopt;
    out[i] = static_cast<unsigned char>(v);
  }
  return out;
}

Status bad_line(const User& u, std::string_view why) {
  return Status::invalid_argument("user '" + u.name + "': " + std::string(why));
}

// A rule naming a command (+get, -config|set) must name one the server has.
Status check_command_rule(const User& u, std::string_view rule) {
  const std::string what = lower(rule.substr(1));
  if (what.empty() || what[0] == '@') return Status::ok();
  const size_t bar = what.find('|');
  const std::string name = what.substr(0, bar);
  const std::string sub = bar == std::string::npos ? "" : what.substr(bar + 1);
  bool known = false;
  if (bar == std::string::npos) {
    known = !kv::is_internal_command(name) && kv::describe_command(name) != nullptr;
  } else {
    known = is_container(name) && command_categories(name, sub).has_value();
  }
  if (!known)
    return bad_line(u, "'" + std::string(rule) + "': no such command or subcommand in Synod");
  return Status::ok();
}

Status apply_rule(User& u, std::string_view rule) {
  const std::string r = lower(rule);
  if (r == "on" || r == "off") {
    u.enabled = r == "on";
  } else if (r == "nopass") {
    u.nopass = true;
    u.passwords.clear();
  } else if (r == "resetpass") {
    u.nopass = false;
    u.passwords.clear();
  } else if (r[0] == '#' || r[0] == '!') {
    auto digest = parse_hex_digest(std::string_view(r).substr(1));
    if (!digest) return bad_line(u, "a password hash is '#' and 64 hex digits (SHA-256)");
    std::erase(u.passwords, *digest);
    if (r[0] == '#') {
      u.passwords.push_back(*digest);
      u.nopass = false;
    }
  } else if (r[0] == '>' || r[0] == '<') {
    // The rule itself is not repeated: it holds the password.
    return bad_line(u,
                    "a password in plain text ('>...'): write its SHA-256 instead, '#' and 64 hex "
                    "digits (printf %s 'the password' | sha256sum)");
  } else if (r == "~*" || r == "allkeys") {
    u.all_keys = true;
  } else if (r == "resetkeys") {
    u.all_keys = false;
  } else if (r[0] == '~' || r[0] == '%') {
    return bad_line(u, "'" + std::string(rule) +
                           "': Synod does not restrict users to some keys; the only key "
                           "pattern is ~* (allkeys)");
  } else if (r[0] == '&' || r == "allchannels" || r == "resetchannels") {
    // Channels: Synod has no pub/sub, so there is nothing to allow or refuse.
  } else if (r == "reset") {
    User fresh;
    fresh.name = std::move(u.name);
    u = std::move(fresh);
  } else if (r[0] == '+' || r[0] == '-' || r == "allcommands" || r == "nocommands") {
    if (r[0] == '+' || r[0] == '-') SYNOD_RETURN_IF_ERROR(check_command_rule(u, rule));
    if (Status s = u.rules.add(rule); !s.is_ok()) return bad_line(u, s.message());
  } else {
    return bad_line(u, "'" + std::string(rule) + "' is not an ACL rule Synod knows");
  }
  return Status::ok();
}

Result<User> parse_user(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  if (words.empty()) return Status::invalid_argument("an empty user line");
  User u;
  u.name = std::string(words[0]);
  for (size_t w = 1; w < words.size(); ++w) SYNOD_RETURN_IF_ERROR(apply_rule(u, words[w]));
  if (!u.all_keys)
    return bad_line(u, "no key pattern: give ~* (Synod does not restrict users to some keys)");
  return u;
}

}  // namespace

Sha256 sha256(std::string_view data) {
  Sha256 out{};
  unsigned int n = 0;
  SYNOD_ASSERT(EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr) == 1 &&
                   n == out.size(),
               "libcrypto computes SHA-256");
  return out;
}

std::string hex(const Sha256& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string User::describe() const {
  std::string out = "user " + name + (enabled ? " on" : " off");
  if (nopass) out += " nopass";
  for (size_t i = 0; i < passwords.size(); ++i) out += " #<redacted>";
  out += " ~* &*";
  const std::string text = rules.text();
  // Every user starts with no commands; say so when its rules do not start from @all.
  if (text.rfind("+@all", 0) != 0 && text.rfind("-@all", 0) != 0) out += " -@all";
  if (!text.empty()) out += " " + text;
  return out;
}

std::optional<Reply> parse_hello(const std::vector<std::string>& args, HelloRequest& out) {
  if (args.size() >= 2) {
    int v = 0;
    auto [end, ec] = std::from_chars(args[1].data(), args[1].data() + args[1].size(), v);
    if (ec != std::errc() || end != args[1].data() + args[1].size())
      return Reply::error("ERR Protocol version is not an integer or out of range");
    if (v != 2 && v != 3) return Reply::error("NOPROTO unsupported protocol version");
    out.protocol = v;
  }
  for (size_t j = 2; j < args.size(); ++j) {
    const size_t more = args.size() - 1 - j;
    const std::string opt = lower(args[j]);
    if (opt == "auth" && more >= 2) {
      out.auth.emplace(args[j + 1], args[j + 2]);
      j += 2;
    } else if (opt == "setname" && more >= 1) {
      for (char c : args[j + 1])
        if (c < '!' || c > '~')
          return Reply::error(
              "ERR Client names cannot contain spaces, newlines or special characters.");
      out.setname = args[++j];
    } else {
      return Reply::error("ERR Syntax error in HELLO option '" + args[j] + "'");
    }
  }
  return std::nullopt;
}

Result<std::vector<std::string>> read_acl_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::io_error("cannot read the ACL file " + path);
  std::vector<std::string> users;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line[start] == '#') continue;
    const std::string_view text = std::string_view(line).substr(start);
    if (text.substr(0, 5) != "user " || text.size() > 64 * 1024)
      return Status::invalid_argument(path + ":" + std::to_string(number) +
                                      ": a line is 'user NAME RULE...'");
    users.emplace_back(text.substr(5));
  }
  return users;
}

Result<std::unique_ptr<Acl>> Acl::create(const std::vector<std::string>& user_lines,
                                         const std::string& requirepass) {
  std::unique_ptr<Acl> acl(new Acl());
  for (const std::string& line : user_lines) {
    auto user = parse_user(line);
    if (!user.is_ok()) return user.status();
    const std::string name = user->name;
    if (!acl->users_.emplace(name, std::move(*user)).second)
      return Status::invalid_argument("user '" + name + "' is defined twice");
  }
  auto [it, added] = acl->users_.try_emplace("default");
  if (added) {
    // Redis's default user: every right, no password.
    User& d = it->second;
    d.name = "default";
    d.enabled = d.nopass = d.all_keys = true;
    (void)d.rules.add("+@all");
  }
  if (!requirepass.empty()) {
    if (!added)
      return Status::invalid_argument(
          "requirepass and a 'user default' line both give the default user's password; keep one");
    it->second.nopass = false;
    it->second.passwords = {sha256(requirepass)};
  }
  return acl;
}

const User* Acl::find(std::string_view name) const {
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : &it->second;
}

AuthState Acl::connect() const {
  const User* d = find("default");
  SYNOD_ASSERT(d != nullptr, "create() always defines the default user");
  AuthState state;
  state.user = d;
  state.authenticated = d->enabled && d->nopass;
  return state;
}

Acl::Failure Acl::authenticate(AuthState& state, std::string_view name,
                               std::string_view password) const {
  const Sha256 candidate = sha256(password);
  const User* u = find(name);
  // The same work whether or not the user exists and whichever hash matches.
  static const Sha256 kNoUser = sha256("no such user");
  bool match = false;
  if (u == nullptr || u->passwords.empty()) {
    (void)CRYPTO_memcmp(candidate.data(), kNoUser.data(), candidate.size());
  } else {
    for (const Sha256& p : u->passwords)
      match |= CRYPTO_memcmp(candidate.data(), p.data(), p.size()) == 0;
  }
  if (u == nullptr) return Failure::kUnknownUser;
  if (!u->enabled) return Failure::kDisabled;
  if (!u->nopass && !match) return Failure::kWrongPassword;
  state.user = u;
  state.authenticated = true;
  return Failure::kNone;
}

Reply Acl::auth(AuthState& state, const std::vector<std::string>& args, Failure& failure) const {
  failure = Failure::kNone;
  if (args.size() < 2) return kv::arity_error("auth");
  if (args.size() > 3) return kv::syntax_error();
  if (args.size() == 2 && find("default")->nopass)
    return Reply::error(
        "ERR AUTH <password> called without any password configured for the default user. Are "
        "you sure your configuration is correct?");
  failure = args.size() == 2 ? authenticate(state, "default", args[1])
                             : authenticate(state, args[1], args[2]);
  if (failure != Failure::kNone)
    return Reply::error("WRONGPASS invalid username-password pair or user is disabled.");
  return Reply::ok();
}

std::optional<Reply> Acl::check(const AuthState& state,
                                const std::vector<std::string>& args) const {
  if (args.empty()) return std::nullopt;
  const std::string name = lower(args[0]);
  if (kv::is_internal_command(name)) return kv::unknown_command(args);
  // The connection answers EXEC and WATCH itself (the table's are their log forms).
  const kv::CommandSpec* spec = kv::describe_command(name);
  if (spec && name != "exec" && name != "watch" && !kv::arity_ok(*spec, args.size()))
    return kv::arity_error(name);
  if (name == "auth" || name == "hello" || name == "quit") return std::nullopt;
  if (!state.authenticated) return Reply::error("NOAUTH Authentication required.");
  if (state.user->rules.allows_everything()) return std::nullopt;
  const std::string sub = is_container(name) && args.size() >= 2 ? lower(args[1]) : "";
  // A command no table knows is in no category: only +@all or a rule naming it lets it reach its
  // handler (which refuses it), so a command added to the server without an entry here is
  // refused rather than let through.
  const uint32_t categories = command_categories(name, sub).value_or(0);
  if (state.user->rules.allows(name, sub, categories)) return std::nullopt;
  return noperm(sub.empty() ? name : name + "|" + sub);
}

void Acl::bind_script(const AuthState& state, std::vector<std::string>& args) const {
  if (args.empty() || state.user == nullptr || state.user->rules.allows_everything()) return;
  const std::string name = lower(args[0]);
  if (name == "eval" || name == "evalsha" || name == "eval_ro" || name == "evalsha_ro")
    args = kv::encode_eval_with_rules(state.user->rules, std::move(args));
}

Reply Acl::command(const AuthState& state, const std::vector<std::string>& args) const {
  if (args.size() < 2) return kv::arity_error("acl");
  const std::string sub = lower(args[1]);
  const size_t argc = args.size();
  auto arity = [&] { return kv::arity_error("acl|" + sub); };
  if (sub == "whoami") return argc == 2 ? Reply::bulk(state.user->name) : arity();
  if (sub == "users" || sub == "list") {
    if (argc != 2) return arity();
    std::vector<std::string> out;
    for (const auto& [name, user] : users_) out.push_back(sub == "users" ? name : user.describe());
    return kv::bulks(out);
  }
  if (sub == "cat") {
    if (argc > 3) return arity();
    std::vector<std::string> out;
    if (argc == 2) {
      for (const auto& [category, bit] : kv::category_names()) out.emplace_back(category);
      return kv::bulks(out);
    }
    uint32_t bit = 0;
    for (const auto& [category, b] : kv::category_names())
      if (category == lower(args[2])) bit = b;
    if (bit == 0) return Reply::error("ERR Unknown category '" + args[2] + "'");
    kv::for_each_command([&](const kv::CommandSpec& spec) {
      if (kv::is_internal_command(spec.name)) return;
      if (spec.categories & bit) out.emplace_back(spec.name);
      for (const kv::CommandSpec& s : spec.subcommands)
        if (s.categories & bit) out.push_back(std::string(spec.name) + "|" + std::string(s.name));
    });
    return kv::bulks(out);
  }
  std::string shown = sub;
  for (char& c : shown) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (sub == "setuser" || sub == "deluser" || sub == "load" || sub == "save")
    return Reply::error("ERR ACL " + shown +
                        " is not supported: users come from the server's configuration (user "
                        "lines, the same on every replica; docs/operations.md)");
  if (sub == "getuser" || sub == "log" || sub == "dryrun")
    return Reply::error("ERR ACL " + shown + " is not supported; ACL LIST shows every user");
  return Reply::error("ERR unknown subcommand '" + args[1] + "'. Try ACL HELP.");
}

}  // namespace synod::node
