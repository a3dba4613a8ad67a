// `synod identity --data DIR`: a data directory's identity (cluster, node, incarnation, when it
// was created) and the incarnations it pinned for its peers; `--forget-peer N` drops one pin
// (docs/operations.md, "Clearing a pinned incarnation"). Formats: docs/storage-format.md.
#include <fmt/format.h>

#include <memory>

#include "storage/identity.h"
#include "tools/storage_commands.h"

namespace synod::tools {
namespace {

struct IdentityArgs {
  std::string dir;
  uint32_t forget_peer = 0;
};

int run_identity(const IdentityArgs& args) {
  auto fs = storage::make_posix_file_system();
  auto identity = storage::read_identity(*fs, args.dir);
  if (!identity.is_ok()) {
    fmt::print(stderr, "synod identity: {}\n", identity.status().to_string());
    return 1;
  }
  fmt::print("data directory: {}\n{}", args.dir, storage::describe_identity(*identity));
  auto pins = storage::PeerPins::open(*fs, args.dir, identity->cluster_id, identity->node_id);
  if (!pins.is_ok()) {
    fmt::print(stderr, "synod identity: {}\n", pins.status().to_string());
    return 1;
  }
  if (args.forget_peer != 0) {
    auto forgotten = pins->forget(NodeId{args.forget_peer});
    if (!forgotten.is_ok()) {
      fmt::print(stderr, "synod identity: {}\n", forgotten.status().to_string());
      return 1;
    }
    fmt::print("{}\n", *forgotten ? fmt::format("forgot n{}'s pinned incarnation: the next "
                                                "incarnation it presents will be pinned",
                                                args.forget_peer)
                                  : fmt::format("n{} had no pinned incarnation", args.forget_peer));
  }
  fmt::print("pinned peers: {}\n", pins->pins().size());
  for (const auto& [peer, pin] : pins->pins())
    fmt::print("  n{} incarnation {} first seen {}\n", peer.value, to_string(pin.incarnation),
               storage::format_unix_ms(pin.first_seen_ms));
  return 0;
}

}  // namespace

void add_identity_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<IdentityArgs>();
  CLI::App* cmd = app.add_subcommand(
      "identity",
      "Print a data directory's identity (cluster, node, incarnation) and the incarnations it "
      "pinned for its peers; exit 1 if the identity is missing or damaged");
  cmd->add_option("--data", args->dir, "The replica's data directory")->required();
  cmd->add_option("--forget-peer", args->forget_peer,
                  "Drop the incarnation pinned for peer N, with this replica stopped, so that it "
                  "takes the next one N presents (docs/operations.md, \"Clearing a pinned "
                  "incarnation\": only if N's data was never lost)")
      ->check(CLI::Range(1u, 0xffffffffu));
  cmd->callback([args, &exit_code] { exit_code = run_identity(*args); });
}

}  // namespace synod::tools
