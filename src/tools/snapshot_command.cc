// `synod snapshot save FILE --endpoint HOST:PORT`: an online backup of a running cluster, through
// any member (SYNOD.BACKUP: taken at a linearizable point), verified and written atomically.
// `synod snapshot save FILE --data DIR`: the same file made from a stopped replica's data
// directory, the way back after a majority is lost.
// `synod snapshot restore FILE --data DIR --id N --cluster-id C`: seeds replica N of a new cluster
// from it. docs/operations.md, "Backup and restore"; the file: docs/backup-format.md.
#include "tools/snapshot_command.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "client/resp_client.h"
#include "kv/store.h"
#include "net/peer_transport.h"
#include "node/backup.h"
#include "storage/file_system.h"
#include "storage/identity.h"
#include "storage/replica_storage.h"
#include "storage/snapshot_store.h"
#include "tools/client_flags.h"

namespace synod::tools {
namespace {

struct SaveArgs {
  std::string file;
  std::string endpoint;
  std::string data;  // instead of endpoint: a stopped replica's data directory
  bool include_accepted = false;
  size_t max_sessions = kv::kDefaultMaxSessions;
  uint32_t timeout_ms = 30000;
  ClientFlags client;
};

struct RestoreArgs {
  std::string file;
  std::string data;
  uint32_t id = 0;
  uint64_t cluster_id = 0;
  size_t max_sessions = kv::kDefaultMaxSessions;
};

// `bytes` to `path`, durably: a temporary file synced, renamed over, the directory synced.
Status write_durably(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("cannot create " + tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      return Status::io_error("cannot write " + tmp);
    }
    done += size_t(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::io_error("cannot sync or rename " + tmp + " to " + path);
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

Result<int64_t> integer_at(const kv::Reply& reply, size_t i) {
  if (reply.kind != kv::Reply::Kind::kArray || reply.elements.size() <= i ||
      reply.elements[i].kind != kv::Reply::Kind::kInteger)
    return Status::io_error("unexpected reply to SYNOD.BACKUP: " + client::to_string(reply));
  return reply.elements[i].integer;
}

int run_save(const SaveArgs& args) {
  auto endpoint = net::parse_endpoint(args.endpoint);
  if (!endpoint.is_ok()) {
    fmt::print(stderr, "synod snapshot save: --endpoint: {}\n", endpoint.status().to_string());
    return 2;
  }
  auto options = args.client.options(2000);
  if (!options.is_ok()) {
    fmt::print(stderr, "synod snapshot save: {}\n", options.status().message());
    return 2;
  }
  auto client = client::RespClient::connect(endpoint->host, endpoint->port, *options);
  if (!client.is_ok()) {
    fmt::print(stderr, "synod snapshot save: {}\n", client.status().to_string());
    return 1;
  }
  client->set_timeout_ms(args.timeout_ms);
  auto taken = client->call({"SYNOD.BACKUP"});
  if (!taken.is_ok() || taken->kind == kv::Reply::Kind::kError) {
    fmt::print(stderr, "synod snapshot save: the cluster did not take a backup: {}\n",
               taken.is_ok() ? taken->text : taken.status().to_string());
    return 1;
  }
  auto id = integer_at(*taken, 0);
  auto size = integer_at(*taken, 1);
  if (!id.is_ok() || !size.is_ok() || *size < 0) {
    fmt::print(stderr, "synod snapshot save: {}\n", id.status().to_string());
    return 1;
  }
  std::string bytes;
  while (bytes.size() < size_t(*size)) {
    auto chunk =
        client->call({"SYNOD.BACKUP", "READ", std::to_string(*id), std::to_string(bytes.size()),
                      std::to_string(node::kBackupChunkBytes)});
    if (!chunk.is_ok() || chunk->kind != kv::Reply::Kind::kBulk || chunk->text.empty()) {
      fmt::print(stderr, "synod snapshot save: reading the backup at byte {} of {}: {}\n",
                 bytes.size(), *size,
                 chunk.is_ok() ? client::to_string(*chunk) : chunk.status().to_string());
      return 1;
    }
    bytes += chunk->text;
  }
  (void)client->call({"SYNOD.BACKUP", "END", std::to_string(*id)});
  auto backup = node::decode_backup(bytes);
  if (!backup.is_ok()) {
    fmt::print(stderr, "synod snapshot save: the backup received is damaged: {}\n",
               backup.status().to_string());
    return 1;
  }
  if (Status s = write_durably(args.file, bytes); !s.is_ok()) {
    fmt::print(stderr, "synod snapshot save: {}\n", s.to_string());
    return 1;
  }
  fmt::print("saved {}: {} bytes, cluster {}, through slot {}, checksums verified\n", args.file,
             bytes.size(), backup->cluster_id, backup->slot);
  return 0;
}

// The backup of what one stopped replica's directory holds: the way back after a majority of
// the replicas is lost (docs/operations.md, "After losing a majority").
int run_save_from_data(const SaveArgs& args) {
  std::unique_ptr<storage::FileSystem> fs = storage::make_posix_file_system();
  auto identity = storage::read_identity(*fs, args.data);
  if (!identity.is_ok()) {
    fmt::print(stderr, "synod snapshot save: {}: {}\n", args.data, identity.status().to_string());
    return 1;
  }
  // Opened as the replica's own start opens it (which is why the replica must be stopped): a
  // torn record at the end of its log is cut off, exactly as its next start would.
  storage::LogOptions log;
  log.dir = args.data;
  log.cluster_id = identity->cluster_id;
  log.node_id = identity->node_id;
  log.identity.initial_state = storage::InitialClusterState::kExisting;
  storage::Recovered recovered;
  auto opened = storage::ReplicaStorage::open(*fs, log, &recovered);
  if (!opened.is_ok()) {
    fmt::print(stderr, "synod snapshot save: {}: {}\n", args.data, opened.status().to_string());
    return 1;
  }
  kv::StoreOptions store_options;
  store_options.max_sessions = args.max_sessions;
  const uint64_t now_ms = uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
  auto made = node::backup_from_survivor(identity->cluster_id, recovered, args.include_accepted,
                                         store_options, now_ms);
  if (!made.is_ok()) {
    fmt::print(stderr, "synod snapshot save: {}: {}\n", args.data, made.status().to_string());
    return 1;
  }
  const std::string bytes = node::encode_backup(made->backup);
  if (!node::decode_backup(bytes).is_ok()) {
    fmt::print(stderr, "synod snapshot save: the backup made does not verify\n");
    return 1;
  }
  if (Status s = write_durably(args.file, bytes); !s.is_ok()) {
    fmt::print(stderr, "synod snapshot save: {}\n", s.to_string());
    return 1;
  }
  fmt::print(
      "saved {}: {} bytes, cluster {}, through slot {}, from n{}'s data directory {} ({} values "
      "known chosen{} applied above its snapshot at slot {}; {} later values left out), checksums "
      "verified\n",
      args.file, bytes.size(), made->backup.cluster_id, made->backup.slot, identity->node_id,
      args.data, made->chosen_applied,
      args.include_accepted ? fmt::format(" and {} only accepted", made->accepted_applied) : "",
      recovered.snapshot ? recovered.snapshot->slot : 0, made->left_out);
  return 0;
}

int run_restore(const RestoreArgs& args) {
  std::ifstream in(args.file, std::ios::binary);
  if (!in) {
    fmt::print(stderr, "synod snapshot restore: cannot read {}\n", args.file);
    return 1;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto backup = node::decode_backup(text.str());
  if (!backup.is_ok()) {
    fmt::print(stderr, "synod snapshot restore: {}: {}\n", args.file, backup.status().to_string());
    return 1;
  }
  if (args.cluster_id == backup->cluster_id) {
    fmt::print(stderr,
               "synod snapshot restore: the backup comes from cluster {}; a restored cluster needs "
               "a new --cluster-id, so that its replicas and the old cluster's can never mix\n",
               backup->cluster_id);
    return 2;
  }
  // The state must load as the new cluster's replicas will load it (same --max-sessions).
  kv::StoreOptions store_options;
  store_options.max_sessions = args.max_sessions;
  if (auto store = kv::Store::restore(backup->state, store_options); !store.is_ok()) {
    fmt::print(stderr, "synod snapshot restore: the backup's state does not load: {}\n",
               store.status().to_string());
    return 1;
  }
  std::error_code ec;
  if (std::filesystem::exists(args.data, ec) && !std::filesystem::is_empty(args.data, ec)) {
    fmt::print(stderr,
               "synod snapshot restore: {} is not empty; a restore seeds a new replica's empty "
               "data directory and never overwrites one\n",
               args.data);
    return 2;
  }
  std::filesystem::create_directories(args.data, ec);
  if (ec) {
    fmt::print(stderr, "synod snapshot restore: cannot create {}: {}\n", args.data, ec.message());
    return 1;
  }
  std::unique_ptr<storage::FileSystem> fs = storage::make_posix_file_system();
  storage::SnapshotStore snapshots(*fs, args.data, args.cluster_id, args.id);
  if (Status s = snapshots.save({backup->slot, backup->state}); !s.is_ok()) {
    fmt::print(stderr, "synod snapshot restore: {}\n", s.to_string());
    return 1;
  }
  fmt::print(
      "restored replica {} of cluster {} into {}: the state of cluster {} through slot {}.\n"
      "Start it with: synod server --id {} --cluster-id {} --data {} --peers ... (every replica of "
      "the new cluster restored from the same file)\n",
      args.id, args.cluster_id, args.data, backup->cluster_id, backup->slot, args.id,
      args.cluster_id, args.data);
  return 0;
}

}  // namespace

void add_snapshot_command(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("snapshot", "Online backup and restore of a cluster's state");
  cmd->require_subcommand(1);
  auto save = std::make_shared<SaveArgs>();
  CLI::App* s = cmd->add_subcommand(
      "save",
      "Take a consistent backup of a running cluster through any member: it holds every write "
      "acknowledged before the command started (exit 0 saved and verified, 1 failed)");
  s->add_option("FILE", save->file, "where to write the backup")->required();
  auto* endpoint =
      s->add_option("--endpoint", save->endpoint, "a member's client address, HOST:PORT");
  auto* data = s->add_option(
      "--data", save->data,
      "instead of --endpoint, after a majority is lost: the data directory of a STOPPED replica; "
      "the backup holds what it knows was chosen (docs/operations.md, After losing a majority)");
  endpoint->excludes(data);
  data->excludes(endpoint);
  s->add_flag("--include-accepted", save->include_accepted,
              "with --data: where it knows no chosen value, apply the value it accepted (more "
              "acknowledged writes kept; may apply some that were never acknowledged)")
      ->needs(data);
  s->add_option("--max-sessions", save->max_sessions,
                "with --data: the cluster's --max-sessions, as its replicas load their state")
      ->needs(data)
      ->capture_default_str();
  s->add_option("--timeout-ms", save->timeout_ms, "per request")
      ->check(CLI::Range(100u, 600000u))
      ->capture_default_str();
  add_client_flags(*s, save->client);
  s->callback([save, &exit_code] {
    if (save->endpoint.empty() && save->data.empty()) {
      fmt::print(stderr, "synod snapshot save: --endpoint or --data is required\n");
      exit_code = 2;
      return;
    }
    exit_code = save->data.empty() ? run_save(*save) : run_save_from_data(*save);
  });

  auto restore = std::make_shared<RestoreArgs>();
  CLI::App* r = cmd->add_subcommand(
      "restore",
      "Seed one replica of a NEW cluster from a backup: run it for every replica, each with its "
      "own --id and --data, all with the same new --cluster-id");
  r->add_option("FILE", restore->file, "the backup")->required();
  r->add_option("--data", restore->data, "the new replica's data directory (must be empty)")
      ->required();
  r->add_option("--id", restore->id, "the new replica's node id")
      ->required()
      ->check(CLI::Range(uint32_t{1}, kMaxNodeIdValue));
  r->add_option("--cluster-id", restore->cluster_id,
                "the new cluster's id: must differ from the backup's")
      ->required()
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  r->add_option("--max-sessions", restore->max_sessions,
                "the new cluster's --max-sessions (its servers must use the same)")
      ->capture_default_str();
  r->callback([restore, &exit_code] { exit_code = run_restore(*restore); });
}

}  // namespace synod::tools
