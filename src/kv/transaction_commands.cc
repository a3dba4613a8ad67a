// EXEC and WATCH in the command table (kv/transaction.h).
#include <charconv>

#include "kv/commands.h"
#include "kv/transaction.h"

namespace synod::kv {
namespace {

bool parse_u64(const std::string& s, uint64_t& v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

Reply run_queued(Keyspace& ks, const Args& args) {
  if (auto refused = check_queued(args)) return *refused;
  const CommandSpec* spec = find_command(lower(args[0]));
  // A read runs on the log clock, as a read applied from the log does.
  return spec->write ? spec->write(ks, args) : spec->read(ks, args, ks.clock_ms());
}

Reply exec(Keyspace& ks, const Args& args) {
  const std::optional<Transaction> tx = decode_exec(args);
  if (!tx) return Reply::error("ERR malformed transaction");
  if (!ks.bug_exec_ignores_watch) {
    for (const auto& [key, position] : tx->watches)
      if (ks.modified_at(key) > position) return Reply::null_array();
  }
  std::vector<Reply> replies;
  replies.reserve(tx->commands.size());
  for (const Args& command : tx->commands) replies.push_back(run_queued(ks, command));
  return Reply::array(std::move(replies));
}

Reply watch(const Keyspace& ks, const Args&, uint64_t) {
  return Reply::integer_of(static_cast<int64_t>(ks.position()));
}

}  // namespace

std::vector<std::string> encode_exec(const Transaction& tx) {
  std::vector<std::string> out{"EXEC", std::to_string(tx.watches.size())};
  for (const auto& [key, position] : tx.watches) {
    out.push_back(key);
    out.push_back(std::to_string(position));
  }
  for (const auto& command : tx.commands) {
    out.push_back(std::to_string(command.size()));
    out.insert(out.end(), command.begin(), command.end());
  }
  return out;
}

std::optional<Transaction> decode_exec(const std::vector<std::string>& args) {
  Transaction tx;
  uint64_t watches = 0;
  if (args.size() < 2 || lower(args[0]) != "exec" || !parse_u64(args[1], watches) ||
      watches > (args.size() - 2) / 2)
    return std::nullopt;
  size_t i = 2;
  for (uint64_t w = 0; w < watches; ++w, i += 2) {
    uint64_t position = 0;
    if (!parse_u64(args[i + 1], position)) return std::nullopt;
    tx.watches.emplace_back(args[i], position);
  }
  while (i < args.size()) {
    uint64_t argc = 0;
    if (!parse_u64(args[i], argc) || argc == 0 || argc > args.size() - i - 1) return std::nullopt;
    tx.commands.emplace_back(args.begin() + static_cast<ptrdiff_t>(i + 1),
                             args.begin() + static_cast<ptrdiff_t>(i + 1 + argc));
    i += 1 + argc;
  }
  return tx;
}

std::optional<Reply> check_queued(const std::vector<std::string>& args) {
  if (args.empty()) return Reply::error("ERR empty command");
  const std::string name = lower(args[0]);
  const CommandSpec* spec = find_command(name);
  if (!spec) return unknown_command(args);
  // EXEC and WATCH are the connection's to handle; inside a transaction they could only nest.
  if (name == "exec" || name == "watch")
    return Reply::error("ERR Command not allowed inside a transaction");
  if (!arity_ok(*spec, args.size())) return arity_error(args[0]);
  return std::nullopt;
}

std::vector<CommandSpec> transaction_commands() {
  return {
      {"exec", -2, "noscript loading stale skip_slowlog", {0, 0, 0}, exec, nullptr},
      {"watch", -2, "noscript loading stale fast allow_busy", {1, -1, 1}, nullptr, watch},
  };
}

}  // namespace synod::kv
