// A small blocking RESP client for Synod's own tools and tests (demo, end-to-end tests, load and
// fault harnesses): one TCP connection, a request/reply timeout, pipelining on demand. It parses
// RESP2 and RESP3 replies into kv::Reply (maps become flat arrays, doubles and booleans bulk
// strings and integers).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "kv/reply.h"

namespace synod::client {

// Incremental parser of RESP replies. Bounded: no length beyond the limits is trusted.
class ReplyParser {
 public:
  enum class Status { kNeedMore, kReply, kError };
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  Status next(kv::Reply& reply, std::string& error);

 private:
  // Parses one value at pos; returns kNeedMore without consuming if incomplete.
  Status parse(size_t& pos, kv::Reply& reply, std::string& error, int depth);
  std::string buffer_;
  size_t pos_ = 0;
};

class RespClient {
 public:
  ~RespClient();
  RespClient() = default;
  RespClient(RespClient&& other) noexcept;
  RespClient& operator=(RespClient&& other) noexcept;

  // Connects to host:port within `timeout_ms`.
  static Result<RespClient> connect(const std::string& host, uint16_t port,
                                    uint32_t timeout_ms = 2000);

  // Sends one command and waits for its reply. An I/O failure or timeout is a Status: the
  // command's outcome is then unknown.
  Result<kv::Reply> call(const std::vector<std::string>& args);
  // Sends many commands at once, then reads every reply (in order).
  Result<std::vector<kv::Reply>> pipeline(const std::vector<std::vector<std::string>>& commands);
  // Sends raw bytes (for tests that speak garbage).
  Status send_raw(std::string_view bytes);
  // Reads one reply.
  Result<kv::Reply> read_reply();

  void set_timeout_ms(uint32_t ms) { timeout_ms_ = ms; }
  bool connected() const { return fd_ >= 0; }
  void close();

 private:
  int fd_ = -1;
  uint32_t timeout_ms_ = 2000;
  ReplyParser parser_;
};

// The "field:value" lines of an INFO reply (section headers and blank lines left out).
std::map<std::string, std::string> parse_info(std::string_view text);

std::string encode_command(const std::vector<std::string>& args);
// A reply as redis-cli shows it, on one line: "OK", "(nil)", "(integer) 5", "\"text\"", ...
std::string to_string(const kv::Reply& reply);

}  // namespace synod::client
