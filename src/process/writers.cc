#include "process/writers.h"

#include <algorithm>
#include <optional>

#include "client/resp_client.h"

namespace synod::process {

Writers::Writers(int clients, std::vector<uint16_t> ports, std::string prefix)
    : prefix_(std::move(prefix)), ports_(std::move(ports)) {
  for (int c = 0; c < clients; ++c) threads_.emplace_back([this, c] { client(c); });
}

void Writers::set_ports(std::vector<uint16_t> ports) {
  std::lock_guard<std::mutex> lock(mu_);
  ports_ = std::move(ports);
  ++ports_version_;
}

void Writers::stop() {
  stop_ = true;
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

uint16_t Writers::port_for(int index, size_t attempt) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (ports_.empty()) return 0;
  return ports_[(static_cast<size_t>(index) + attempt) % ports_.size()];
}

void Writers::client(int index) {
  std::optional<client::RespClient> connection;
  size_t attempt = 0;
  uint64_t version = 0;
  const std::string value(64, 'w');
  for (uint64_t i = 0; !stop_; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (version != ports_version_) connection.reset();  // the ports changed: go where told
      version = ports_version_;
    }
    if (!connection) {
      const uint16_t port = port_for(index, attempt);
      auto c = port == 0 ? Result<client::RespClient>(Status::io_error("no ports"))
                         : client::RespClient::connect("127.0.0.1", port, 500);
      if (!c.is_ok()) {
        ++attempt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      c->set_timeout_ms(5000);
      connection.emplace(std::move(*c));
    }
    const std::string key = prefix_ + std::to_string(index) + ":" + std::to_string(i);
    auto reply = connection->call({"SET", key, value});
    if (reply.is_ok() && reply->kind == kv::Reply::Kind::kSimple && reply->text == "OK") {
      std::lock_guard<std::mutex> lock(mu_);
      acked_[key] = value;
      acked_at_.push_back(Clock::now());
      continue;
    }
    ++failed_;
    connection.reset();  // a refusal or a broken connection: the next replica
    ++attempt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

size_t Writers::acknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_at_.size();
}

bool Writers::progresses(size_t n, int timeout_ms) const {
  const size_t before = acknowledged();
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (acknowledged() < before + n) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::map<std::string, std::string> Writers::acked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

Writers::Window Writers::measure(Clock::time_point from, Clock::time_point to) const {
  auto ms = [](Clock::duration d) {
    return static_cast<uint64_t>(
        std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(d).count()));
  };
  std::lock_guard<std::mutex> lock(mu_);
  Window w;
  w.took_ms = ms(to - from);
  Clock::duration longest{};
  for (size_t i = 1; i < acked_at_.size(); ++i) {
    if (acked_at_[i] < from || acked_at_[i - 1] > to) continue;
    longest = std::max(longest, acked_at_[i] - acked_at_[i - 1]);
    if (acked_at_[i] <= to) ++w.writes;
  }
  w.longest_gap_ms = ms(longest);
  return w;
}

}  // namespace synod::process
