// `synod member list|add|promote|remove|replace --endpoints A,B,C ...`: the cluster's
// configuration, and changes to it, through the MEMBER admin commands (node/server.cc,
// docs/operations.md). Any member takes a change and forwards it to the leader; this command
// tries the endpoints in turn until one answers (a member that is down or has no leader yet is
// skipped), so it works while a member is being replaced. Exit 0 on success, 1 on a refusal or
// when no endpoint answered in time, 2 on bad usage.
#include "tools/member_command.h"

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/resp_client.h"
#include "tools/client_flags.h"
#include "tools/status_command.h"

namespace synod::tools {
namespace {

struct MemberArgs {
  std::string endpoints;
  uint32_t timeout_ms = 10'000;  // the whole command's, over every endpoint and retry
  ClientFlags client;
  std::string peer;     // add, replace: the new machine's peer address
  uint32_t id = 0;      // add: the id to give (0: the next free one); promote, remove: whose
  uint32_t old_id = 0;  // replace: the member that goes
  uint32_t catchup_ms = 60'000;  // replace: how long the new learner may take to catch up
};

bool retryable(const kv::Reply& reply) {
  return reply.kind == kv::Reply::Kind::kError &&
         (reply.text.starts_with("TRYAGAIN") || reply.text.starts_with("UNKNOWN"));
}

}  // namespace

// (A member retries a TRYAGAIN itself for a few seconds before it gives it.)
Result<kv::Reply> call_any(const std::vector<net::Endpoint>& endpoints,
                           const client::ClientOptions& options,
                           const std::vector<std::string>& command, uint32_t timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::optional<kv::Reply> answered;
  Status failed = Status::io_error("no endpoint answered");
  for (size_t i = 0;; ++i) {
    const net::Endpoint& e = endpoints[i % endpoints.size()];
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    auto c = client::RespClient::connect(e.host, e.port, options);
    if (c.is_ok()) {
      c->set_timeout_ms(static_cast<uint32_t>(std::max<int64_t>(left, 100)));
      auto reply = c->call(command);
      if (reply.is_ok() && !retryable(*reply)) return reply;
      if (reply.is_ok()) {
        // A refusal says why (a learner not caught up, no leader); UNKNOWN (a forward that
        // timed out) says less: it does not replace one.
        if (!answered || !reply->text.starts_with("UNKNOWN") ||
            answered->text.starts_with("UNKNOWN"))
          answered = *reply;
      } else {
        failed = Status::io_error(e.to_string() + ": " + reply.status().to_string());
      }
    } else {
      failed = Status::io_error(e.to_string() + ": " + c.status().to_string());
    }
    if (Clock::now() >= deadline) {
      if (answered) return *answered;
      return failed;
    }
    if (i % endpoints.size() == endpoints.size() - 1)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

namespace {

// MEMBER LIST from every endpoint; the leader's answer (it alone knows each member's lag), else
// the first that answered.
int run_list(const std::vector<net::Endpoint>& endpoints, const client::ClientOptions& options) {
  std::vector<std::string> best;
  for (const net::Endpoint& e : endpoints) {
    auto c = client::RespClient::connect(e.host, e.port, options);
    if (!c.is_ok()) continue;
    c->set_timeout_ms(options.timeout_ms);
    auto reply = c->call({"MEMBER", "LIST"});
    if (!reply.is_ok() || reply->kind != kv::Reply::Kind::kArray || reply->elements.empty())
      continue;
    std::vector<std::string> lines;
    for (const kv::Reply& line : reply->elements) lines.push_back(line.text);
    const std::string& head = lines.front();
    const size_t self = head.find("self=");
    const bool leader = self != std::string::npos &&
                        head.find("leader=" + head.substr(self + 5)) != std::string::npos;
    if (best.empty() || leader) best = std::move(lines);
    if (leader) break;
  }
  if (best.empty()) {
    fmt::print(stderr, "synod member list: no endpoint answered MEMBER LIST\n");
    return 1;
  }
  for (const std::string& line : best) fmt::print("{}\n", line);
  return 0;
}

int run(const std::string& verb, const MemberArgs& args) {
  auto endpoints = parse_endpoint_list(args.endpoints);
  if (!endpoints.is_ok()) {
    fmt::print(stderr, "synod member {}: --endpoints: {}\n", verb, endpoints.status().message());
    return 2;
  }
  auto options = args.client.options(std::min<uint32_t>(args.timeout_ms, 5000));
  if (!options.is_ok()) {
    fmt::print(stderr, "synod member {}: {}\n", verb, options.status().message());
    return 2;
  }
  if (verb == "list") return run_list(*endpoints, *options);
  std::vector<std::string> command = {"MEMBER"};
  uint32_t timeout_ms = args.timeout_ms;
  if (verb == "add") {
    command.insert(command.end(), {"ADD-LEARNER", args.peer});
    if (args.id != 0) command.push_back(std::to_string(args.id));
  } else if (verb == "promote" || verb == "remove") {
    command.insert(command.end(),
                   {verb == "promote" ? "PROMOTE" : "REMOVE", std::to_string(args.id)});
  } else if (verb == "transfer") {
    command.push_back("TRANSFER");
    if (args.id != 0) command.push_back(std::to_string(args.id));
  } else {  // replace
    command.insert(command.end(), {"REPLACE", std::to_string(args.old_id), args.peer,
                                   std::to_string(args.catchup_ms)});
    timeout_ms = std::max(timeout_ms, args.catchup_ms + 10'000);
  }
  auto reply = call_any(*endpoints, *options, command, timeout_ms);
  if (!reply.is_ok()) {
    fmt::print(stderr, "synod member {}: {}\n", verb, reply.status().to_string());
    return 1;
  }
  if (reply->kind == kv::Reply::Kind::kError) {
    fmt::print(stderr, "synod member {}: {}\n", verb, reply->text);
    return 1;
  }
  if (verb == "add") {
    fmt::print(
        "added n{} at {} as a learner; start it with: synod server --id {} --join "
        "--peers <every member's peer address, and n{}={}> --data <empty directory> ...\n",
        reply->integer, args.peer, reply->integer, reply->integer, args.peer);
  } else {
    fmt::print("{}\n", client::to_string(*reply));
  }
  return 0;
}

}  // namespace

void add_member_command(CLI::App& app, int& exit_code) {
  CLI::App* member = app.add_subcommand(
      "member",
      "List the cluster's members, or change them: add a learner, promote it, remove a member, "
      "replace a member's machine (docs/operations.md)");
  member->require_subcommand(1);
  auto add_verb = [&](const std::string& verb, const std::string& what) {
    auto args = std::make_shared<MemberArgs>();
    CLI::App* cmd = member->add_subcommand(verb, what);
    cmd->add_option("--endpoints", args->endpoints,
                    "members' client addresses, HOST:PORT,HOST:PORT,... (any member takes a "
                    "change and forwards it to the leader)")
        ->required();
    cmd->add_option("--timeout-ms", args->timeout_ms,
                    "give up when no endpoint has answered within this")
        ->check(CLI::Range(100u, 3'600'000u))
        ->capture_default_str();
    add_client_flags(*cmd, args->client);
    if (verb == "add") {
      cmd->add_option("--peer-addr", args->peer, "the new machine's peer address, HOST:PORT")
          ->required();
      cmd->add_option("--id", args->id, "the id to give it (default: the next free id)");
    } else if (verb == "promote" || verb == "remove") {
      cmd->add_option("id", args->id, "the member's id")->required();
    } else if (verb == "transfer") {
      cmd->add_option("id", args->id, "the voter to lead (default: the most caught-up one)");
    } else if (verb == "replace") {
      cmd->add_option("old-id", args->old_id, "the member whose machine is replaced")->required();
      cmd->add_option("peer-addr", args->peer, "the new machine's peer address, HOST:PORT")
          ->required();
      cmd->add_option("--catchup-ms", args->catchup_ms,
                      "how long the new machine may take to catch up before it is swapped in")
          ->capture_default_str();
    }
    cmd->callback([verb, args, &exit_code] { exit_code = run(verb, *args); });
  };
  add_verb("list", "Every member: id, peer address, role, incarnation, lag, leader");
  add_verb("add", "Add a machine as a learner (it counts in no quorum); answers its new id");
  add_verb("promote", "Make a learner that has caught up a voter");
  add_verb("remove",
           "Remove a member; the leader hands leadership over first (the command waits for it)");
  add_verb("transfer", "Hand leadership over to a voter without waiting for an election timeout");
  add_verb("replace",
           "Add a new machine as a learner, wait until it has caught up, and swap it for the "
           "old member in one change; start the new machine with --join meanwhile");
}

}  // namespace synod::tools
