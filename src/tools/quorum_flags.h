// The command-line flags that configure a quorum system (`--weights`, `--phase1`, `--phase2`,
// `--allow-unsafe-quorum`), shared by every subcommand that builds one from user input, so that
// each of them verifies it before use.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string_view>

#include "paxos/quorum.h"

namespace synod::tools {

struct QuorumFlags {
  paxos::QuorumConfig config;
  bool allow_unsafe = false;  // run a configuration that fails verification (to test checkers)
};

void add_quorum_flags(CLI::App* cmd, QuorumFlags& flags);

// True if any of the flags was given on the command line.
bool quorum_flags_given(const CLI::App* cmd);

// The configured system over members n1..n`members`, verified. A malformed or unsafe
// configuration is refused with a message on stderr naming `command` (and, when unsafe, two
// disjoint quorums); with --allow-unsafe-quorum an unsafe one is only warned about.
std::optional<paxos::QuorumSystem> configured_quorum(std::string_view command, int members,
                                                     const QuorumFlags& flags);

}  // namespace synod::tools
