// One chaos client's connections to the replicas (docs/chaos.md): one per replica, made on
// demand, and the replicas it avoids for a while after they failed it. Every workload's clients
// (workload.h, bank_workload.h, lock_workload.h) send each command or transaction through one of
// these, to a random replica it does not suspect.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/rng.h"
#include "client/resp_client.h"
#include "kv/reply.h"

namespace synod::chaos {

// A TRYAGAIN (not applied, and never will be) or ERR (a bad command: nothing happened) reply: a
// definite failure. Any other error, UNKNOWN above all, may have taken effect.
bool definite_failure(const kv::Reply& reply);

// The replicas' client ports on 127.0.0.1, one per place in the cluster
// (process::LocalCluster::members()). A place's port changes when the nemesis replaces its member
// with a new machine (`--faults replace`); the clients then connect to the new one. Thread-safe.
class ClientPorts {
 public:
  explicit ClientPorts(const std::vector<uint16_t>& ports);
  size_t size() const { return size_; }
  uint16_t at(size_t place) const { return ports_[place].load(); }
  void set(size_t place, uint16_t port) { ports_[place].store(port); }

 private:
  size_t size_;
  std::unique_ptr<std::atomic<uint16_t>[]> ports_;
};
using ClientPortsRef = std::shared_ptr<const ClientPorts>;

// Not thread-safe: one per client thread.
class ReplicaConnections {
 public:
  // `ports`: every replica's client port. `rng` picks the replicas and must outlive this. A
  // replica that refuses a connection, or is suspect()ed, is avoided for `suspect_ms`.
  ReplicaConnections(ClientPortsRef ports, uint32_t connect_timeout_ms, uint32_t reply_timeout_ms,
                     uint32_t suspect_ms, Rng& rng);

  // A replica this client does not suspect, connected: tries random ones every 20 ms until one
  // accepts. Nothing if `stop` was set first.
  std::optional<size_t> pick(const std::atomic<bool>& stop);
  client::RespClient& conn(size_t replica) { return conns_[replica]; }
  // Avoid `replica` for a while.
  void suspect(size_t replica);
  // Drops the connection (and whatever it had queued or watched): a late reply on it must not
  // answer the next command.
  void close(size_t replica) { conns_[replica].close(); }

 private:
  using Clock = std::chrono::steady_clock;
  // A random replica not suspected now (any replica if all are).
  size_t choose();
  bool connect(size_t replica);

  const ClientPortsRef ports_;
  const uint32_t connect_timeout_ms_;
  const uint32_t reply_timeout_ms_;
  const uint32_t suspect_ms_;
  Rng& rng_;
  std::vector<client::RespClient> conns_;
  std::vector<uint16_t> conn_ports_;  // the port each connection was made to
  std::vector<Clock::time_point> suspect_until_;
};

}  // namespace synod::chaos
