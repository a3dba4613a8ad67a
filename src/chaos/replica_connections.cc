#include "chaos/replica_connections.h"

#include <thread>

namespace synod::chaos {

bool definite_failure(const kv::Reply& reply) {
  return reply.kind == kv::Reply::Kind::kError &&
         (reply.text.rfind("TRYAGAIN", 0) == 0 || reply.text.rfind("ERR", 0) == 0);
}

ReplicaConnections::ReplicaConnections(std::vector<uint16_t> ports, uint32_t connect_timeout_ms,
                                       uint32_t reply_timeout_ms, uint32_t suspect_ms, Rng& rng)
    : ports_(std::move(ports)),
      connect_timeout_ms_(connect_timeout_ms),
      reply_timeout_ms_(reply_timeout_ms),
      suspect_ms_(suspect_ms),
      rng_(rng),
      conns_(ports_.size()),
      suspect_until_(ports_.size()) {}

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
  if (conn.connected()) return true;
  auto c = client::RespClient::connect("127.0.0.1", ports_[replica], connect_timeout_ms_);
  if (!c.is_ok()) {
    suspect(replica);
    return false;
  }
  conn = std::move(*c);
  conn.set_timeout_ms(reply_timeout_ms_);
  return true;
}

}  // namespace synod::chaos
