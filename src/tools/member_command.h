// `synod member list|add|promote|remove|replace --endpoints A,B,C ...`: the MEMBER admin
// commands from the command line (docs/operations.md, "Grow", "Shrink", "Replace a machine").
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "client/resp_client.h"
#include "net/peer_transport.h"

namespace synod::tools {

void add_member_command(CLI::App& app, int& exit_code);

// Sends `command` (a MEMBER change) to the endpoints in turn until one gives an answer that is
// not TRYAGAIN or UNKNOWN, or until `timeout_ms` has passed: then the last answer, or the last
// error if none came. Every change is safe to ask for again (`synod member`, `synod local`'s add,
// the demo and `synod bench members` send theirs this way).
Result<kv::Reply> call_any(const std::vector<net::Endpoint>& endpoints,
                           const client::ClientOptions& options,
                           const std::vector<std::string>& command, uint32_t timeout_ms);

}  // namespace synod::tools
