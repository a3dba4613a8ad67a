#include "tools/quorum_flags.h"

#include <iostream>

namespace synod::tools {

void add_quorum_flags(CLI::App* cmd, QuorumFlags& flags) {
  cmd->add_option("--weights", flags.config.weights,
                  "Acceptor weights, one per member, e.g. 1,1,1,2 (default: all 1)")
      ->delimiter(',');
  cmd->add_option("--phase1", flags.config.phase1_weight,
                  "Weight a phase-1 quorum must reach (default: more than half the total)");
  cmd->add_option("--phase2", flags.config.phase2_weight,
                  "Weight a phase-2 quorum must reach (default: more than half the total)");
  cmd->add_flag("--allow-unsafe-quorum", flags.allow_unsafe,
                "Run a quorum system whose phase-1 and phase-2 quorums need not intersect "
                "(to show that the checkers catch it)");
}

bool quorum_flags_given(const CLI::App* cmd) {
  return cmd->count("--weights") + cmd->count("--phase1") + cmd->count("--phase2") > 0;
}

std::optional<paxos::QuorumSystem> configured_quorum(std::string_view command, int members,
                                                     const QuorumFlags& flags) {
  Result<paxos::QuorumSystem> quorum = paxos::make_quorum_system(members, flags.config);
  if (!quorum.is_ok()) {
    std::cerr << command << ": " << quorum.status().message() << '\n';
    return std::nullopt;
  }
  const Status verified = paxos::verify_quorum_system(*quorum);
  if (!verified.is_ok()) {
    if (!flags.allow_unsafe) {
      std::cerr << command << ": refusing " << verified.message() << '\n';
      return std::nullopt;
    }
    std::cerr << command << ": warning (--allow-unsafe-quorum): " << verified.message() << '\n';
  }
  return std::move(*quorum);
}

}  // namespace synod::tools
