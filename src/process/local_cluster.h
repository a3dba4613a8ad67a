// A cluster of real `synod server` processes on 127.0.0.1, for `synod local`, `synod demo` and
// the end-to-end tests: start, SIGKILL, SIGSTOP/SIGCONT, restart and stop each replica. Each
// replica keeps its data in DIR/nN and its log in DIR/nN.log. A machine can be added at run time
// under a new id with ports of its own (add_machine), and take a member's place (replace_member),
// as `synod chaos --faults replace` does.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "client/resp_client.h"

namespace synod::process {

class LocalCluster {
 public:
  struct Options {
    std::string binary;  // the synod executable
    std::string dir;
    int replicas = 3;
    // The replicas that found the cluster (start_all starts them, and their --peers lists
    // them); 0: all. Those above it are machines added at run time (synod member add): each
    // starts with --join, its --peers the founders' and its own.
    int founders = 0;
    uint16_t client_port = 7001;  // replica i serves clients on client_port + i - 1 (0: none)
    uint16_t peer_port = 7101;    // and peers on peer_port + i - 1
    // Passed to every `synod server`, "{id}" replaced by the replica's id (e.g. its certificate:
    // --tls-cert-file certs/n{id}.crt).
    std::vector<std::string> extra_args;
    uint16_t tls_client_port = 0;  // non-zero: replica i also serves TLS clients on this + i - 1
    uint16_t metrics_port = 0;     // non-zero: replica i serves /metrics on this + i - 1
    // Sent before INFO when the replicas require a password: {"AUTH", user, password}.
    std::vector<std::string> auth;
    // Enabled: INFO goes to the TLS client port with these (for clusters whose clients speak
    // only TLS: client_port 0 starts each replica with --listen none).
    client::TlsOptions client_tls;
  };

  explicit LocalCluster(Options options) : options_(std::move(options)) {
    pids_.assign(static_cast<size_t>(options_.replicas) + 1, -1);
    started_.assign(static_cast<size_t>(options_.replicas) + 1, false);
    exit_codes_.assign(static_cast<size_t>(options_.replicas) + 1, -1);
    for (int i = 1; i <= options_.replicas; ++i) members_.push_back(i);
  }
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Makes room for machines added at run time, ids up to `replicas` (each on the next ports of
  // the two runs); the founders stay those there were. Never shrinks.
  void grow_to(int replicas);

  // Picks two runs of free loopback ports (for clients and peers).
  static Status pick_free_ports(int replicas, uint16_t& client_port, uint16_t& peer_port);

  // A new machine: the next id (ids are never reused), and a client and a peer port that are free
  // now and that no replica of this cluster ever had. Its --peers, when started, names
  // `contacts` (members it may ask for the log; it starts with --join) and itself. It is no
  // member until replace_member() makes it one.
  Result<int> add_machine(const std::vector<int>& contacts);
  // Machine `new_id` takes member `old_id`'s place in members(): leader(), and whoever iterates
  // members(), address it from now on. `old_id` is never started again by this object's users.
  void replace_member(int old_id, int new_id);
  // The members, in their places: 1 .. replicas at first; a replaced one's place holds the id
  // that replaced it.
  const std::vector<int>& members() const { return members_; }

  // Creates the directory (with its parents) and starts every replica.
  Status start_all();
  // Waits until every replica answers INFO as itself (see info()). Fails as soon as one exits
  // (naming it and the last line of its log: a port in use, a data directory it cannot use) or
  // when `timeout_ms` passes first.
  Status wait_until_serving(uint32_t timeout_ms) const;
  // A founder's first start here says --initial-cluster-state new (it founds the cluster, or
  // finds its data from an earlier run); every later one, and every start of a machine added at
  // run time (above founders(), or by add_machine), says existing, so a replica whose data
  // directory was lost refuses to start. Options::extra_args, and `extra_args` of this start
  // only (after them), may say otherwise; a --peers among them replaces peers_for().
  Status start(int id, const std::vector<std::string>& extra_args = {});
  void kill(int id, int signal);  // SIGKILL: the process is gone (reaped); SIGSTOP/SIGCONT: paused
  void stop(int id);              // SIGTERM, then wait (SIGKILL after 5 s); reaped
  void stop_all();                // the same for every replica, together
  bool running(int id) const { return pids_[static_cast<size_t>(id)] > 0; }
  // Replica `id` was never started, or has exited (reaped or not).
  bool exited(int id) const;
  // Reaps replicas that exited on their own; returns their ids.
  std::vector<int> reap();
  // How replica `id` exited when reap() last collected it: its exit status, or 128 + the signal
  // (-1: never reaped).
  int exit_code(int id) const { return exit_codes_[static_cast<size_t>(id)]; }

  // INFO `section` of replica `id`, as fields; empty if it does not answer within 1 s, or if what
  // answers on its port is not the process this cluster started as `id` (its INFO process_id
  // differs): another cluster on the same ports must never be taken for this one.
  std::map<std::string, std::string> info(int id, const std::string& section = "replication") const;
  // The running replica (of any id this object knows) that says it leads, or 0.
  int leader() const;

  int replicas() const { return options_.replicas; }
  uint16_t client_port(int id) const {
    if (auto it = machine_ports_.find(id); it != machine_ports_.end()) return it->second.client;
    return static_cast<uint16_t>(options_.client_port + id - 1);
  }
  uint16_t tls_client_port(int id) const {
    return static_cast<uint16_t>(options_.tls_client_port + id - 1);
  }
  uint16_t peer_port(int id) const {
    if (auto it = machine_ports_.find(id); it != machine_ports_.end()) return it->second.peer;
    return static_cast<uint16_t>(options_.peer_port + id - 1);
  }
  uint16_t metrics_port(int id) const {
    return static_cast<uint16_t>(options_.metrics_port + id - 1);
  }
  std::string peers() const;  // the founders': "1=127.0.0.1:P1,2=..."
  // "1=127.0.0.1:P1,..." for `ids`.
  std::string peers_of(const std::vector<int>& ids) const;
  // What replica `id` is started with: the founders', and if it is not one, every machine added
  // by grow_to and started here before it, and its own (a machine from add_machine: its
  // contacts and its own). A machine that joins takes peer connections only from its --peers
  // until it has learned the configuration, so they must include the leader, which may be a
  // machine added before it.
  std::string peers_for(int id) const;
  int founders() const { return options_.founders == 0 ? options_.replicas : options_.founders; }
  std::string log_path(int id) const;
  std::string data_dir(int id) const;  // DIR/nN
  const Options& options() const { return options_; }

 private:
  // Every id this object knows: 1 .. replicas, and the machines added since.
  int max_id() const { return static_cast<int>(pids_.size()) - 1; }
  // A loopback port that is free now and was never one of this cluster's.
  Result<uint16_t> fresh_port();

  struct MachinePorts {
    uint16_t client = 0;
    uint16_t peer = 0;
    std::string peers;  // its --peers
  };
  Options options_;
  std::vector<int> members_;
  std::map<int, MachinePorts> machine_ports_;  // machines added by add_machine()
  uint32_t next_port_ = 0;                     // where fresh_port() looks next
  std::vector<pid_t> pids_;
  std::vector<bool> started_;  // per id: started before by this object
  std::vector<int> exit_codes_;
};

// The last non-empty line of the file at `path` ("" if none), to say why a replica exited.
std::string last_line(const std::string& path);

// The path of the running executable.
std::string self_executable();

}  // namespace synod::process
