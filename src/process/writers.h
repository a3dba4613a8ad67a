// Clients that write distinct keys in a loop against a cluster on 127.0.0.1 and remember what was
// acknowledged and when: the longest gap between two acknowledged writes during an operation (a
// membership change, a failover) is what the cluster's clients see of it. For `synod demo`,
// `synod bench members` and the end-to-end tests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace synod::process {

class Writers {
 public:
  using Clock = std::chrono::steady_clock;

  // `clients` threads, each on a connection of its own, writing "<prefix><client>:<i>" through
  // one of `ports` (client c starts at the c-th, and moves on to the next after a failure).
  Writers(int clients, std::vector<uint16_t> ports, std::string prefix);
  ~Writers() { stop(); }
  Writers(const Writers&) = delete;
  Writers& operator=(const Writers&) = delete;

  // Where writes go from now on (each client reconnects at its next write).
  void set_ports(std::vector<uint16_t> ports);
  void stop();

  size_t acknowledged() const;
  size_t failed() const { return failed_; }
  // Waits until `n` more writes are acknowledged; false if they are not within `timeout_ms`.
  bool progresses(size_t n, int timeout_ms = 15000) const;
  // Every acknowledged write: key -> value.
  std::map<std::string, std::string> acked() const;

  // What the clients saw of [from, to]: its length, the writes acknowledged in it and the
  // longest gap between two acknowledged writes that touches it. Ask once writes were
  // acknowledged after `to` (progresses()): a gap still open at `to` is not counted.
  struct Window {
    uint64_t took_ms = 0;
    size_t writes = 0;
    uint64_t longest_gap_ms = 0;
  };
  Window measure(Clock::time_point from, Clock::time_point to) const;

 private:
  void client(int index);
  uint16_t port_for(int index, size_t attempt) const;

  const std::string prefix_;
  mutable std::mutex mu_;
  std::vector<uint16_t> ports_;  // guarded by mu_
  uint64_t ports_version_ = 0;   // guarded by mu_: bumped by set_ports
  std::map<std::string, std::string> acked_;
  std::vector<Clock::time_point> acked_at_;  // in order
  std::atomic<size_t> failed_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace synod::process
