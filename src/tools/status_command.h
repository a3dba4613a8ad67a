// `synod status --endpoints A,B,C [--watch S] [--tls ...] [--user U]`: every member of a running
// cluster in one table, with an exit status for scripts (0 healthy; 1 a member unreachable or no
// leader; 2 bad usage).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string_view>
#include <vector>

#include "client/resp_client.h"
#include "net/peer_transport.h"

namespace synod::tools {

void add_status_command(CLI::App& app, int& exit_code);

// "HOST:PORT,HOST:PORT,..." (--endpoints of synod status and synod member).
Result<std::vector<net::Endpoint>> parse_endpoint_list(std::string_view list);

// One round of `synod status`: the table and the cluster's verdict on stdout; true when healthy
// (a leader the members agree on, every member answered within `options.timeout_ms`, one
// cluster). Each member is dialled with `options` (TLS, AUTH).
bool print_cluster_status(const std::vector<net::Endpoint>& endpoints,
                          const client::ClientOptions& options);

}  // namespace synod::tools
