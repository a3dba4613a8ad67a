// `synod status --endpoints A,B,C [--watch S]`: every member of a running cluster in one table,
// with an exit status for scripts (0 healthy; 1 a member unreachable or no leader; 2 bad usage).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <vector>

#include "net/peer_transport.h"

namespace synod::tools {

void add_status_command(CLI::App& app, int& exit_code);

// One round of `synod status`: the table and the cluster's verdict on stdout; true when healthy
// (a leader the members agree on, every member answered within `timeout_ms`, one cluster).
bool print_cluster_status(const std::vector<net::Endpoint>& endpoints, uint32_t timeout_ms);

}  // namespace synod::tools
