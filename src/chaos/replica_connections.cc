#include "chaos/replica_connections.h"

#include <thread>

namespace synod::chaos {

bool definite_failure(const kv::Reply& reply) {
  return reply.kind == kv::Reply::Kind::kError &&
         (reply.text.rfind("TRYAGAIN", 0) == 0 || reply.text.rfind("ERR", 0) == 0);
}

ClientPorts::ClientPorts(const std::vector<uint16_t>& ports)
    : size_(ports.size()), ports_(new std::atomic<uint16_t>[ports.size()]) {
  for (size_t i = 0; i < size_; ++i) ports_[i].store(ports[i]);
}

ReplicaConnections::ReplicaConnections(ClientPortsRef ports, uint32_t connect_timeout_ms,
                                       uint32_t reply_timeout_ms, uint32_t suspect_ms, Rng& rng)
    : ports_(std::move(ports)),
      connect_timeout_ms_(connect_timeout_ms),
      reply_timeout_ms_(reply_timeout_ms),
      suspect_ms_(suspect_ms),
      rng_(rng),
      conns_(ports_->size()),
      conn_ports_(ports_->size()),
      suspect_until_(ports_->size()) {}

std::optional<size_t> ReplicaConnections::pick(const std::atomic<bool>& stop) {
  for (;;) {
    const size_t replica = choose();
    if (connect(replica)) return replica;
    if (stop.load()) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void ReplicaConnections::suspect(size_t replica) {
  suspect_until_[replica] = Clock::now() + std::chrono::milliseconds(suspect_ms_);
}

size_t ReplicaConnections::choose() {
  const auto now = Clock::now();
  std::vector<size_t> healthy;
  for (size_t i = 0; i < conns_.size(); ++i)
    if (suspect_until_[i] <= now) healthy.push_back(i);
  if (healthy.empty()) return rng_.below(conns_.size());
  return healthy[rng_.below(healthy.size())];
}

bool ReplicaConnections::connect(size_t replica) {
  auto& conn = conns_[replica];
  const uint16_t port = ports_->at(replica);
  // A member replaced since: its place is the new machine's now.
  if (conn.connected() && conn_ports_[replica] != port) conn.close();
  if (conn.connected()) return true;
  auto c = client::RespClient::connect("127.0.0.1", port, connect_timeout_ms_);
  if (!c.is_ok()) {
    suspect(replica);
    return false;
  }
  conn = std::move(*c);
  conn_ports_[replica] = port;
  conn.set_timeout_ms(reply_timeout_ms_);
  return true;
}

}  // namespace synod::chaos
