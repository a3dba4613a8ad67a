// A small blocking RESP client for Synod's own tools and tests (status, snapshot save, demo,
// end-to-end tests, load and fault harnesses): one TCP connection, optionally TLS (OpenSSL) and
// AUTH, a request/reply timeout, pipelining on demand. It parses RESP2 and RESP3 replies into
// kv::Reply (maps become flat arrays, doubles and booleans bulk strings and integers).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
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

// TLS as redis-cli's --tls, --cacert, --cert, --key, --sni and --insecure.
struct TlsOptions {
  bool enabled = false;
  std::string ca_cert_file;  // PEM CA(s) the server's certificate must chain to ("": system's)
  std::string cert_file;     // a client certificate, for --tls-auth-clients yes ("": none)
  std::string key_file;      // its key
  std::string sni;           // the server name sent and checked ("": the host dialled)
  // Checks nothing about the server's certificate (the connection is then encrypted, not
  // authenticated). By default its chain must reach the CA and it must name the host dialled (a
  // DNS or IP subjectAltName; scripts/tls-certs puts DNS:localhost and IP:127.0.0.1 in each).
  bool insecure = false;
};

struct ClientOptions {
  uint32_t timeout_ms = 2000;  // connecting, the TLS handshake and AUTH, each
  TlsOptions tls;
  // AUTH after connecting when `password` is set: `AUTH user password`, or `AUTH password` (the
  // default user, as requirepass) when `user` is empty.
  std::string user;
  std::optional<std::string> password;
};

class RespClient {
 public:
  ~RespClient();
  RespClient();
  RespClient(RespClient&& other) noexcept;
  RespClient& operator=(RespClient&& other) noexcept;

  // Connects to host:port within `timeout_ms`.
  static Result<RespClient> connect(const std::string& host, uint16_t port,
                                    uint32_t timeout_ms = 2000);
  // Connects, then the TLS handshake and AUTH that `options` ask for. A refused handshake or
  // password is an error naming why ("certificate verify failed", "WRONGPASS ...").
  static Result<RespClient> connect(const std::string& host, uint16_t port,
                                    const ClientOptions& options);

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
  bool tls() const { return tls_ != nullptr; }
  void close();

 private:
  struct Tls;  // OpenSSL's context and connection
  Status handshake(const std::string& host, const TlsOptions& options);
  // One non-blocking read or write: bytes moved (> 0), 0 at the end of the stream, or -1 with
  // `wait` set to the poll events to wait for (0: a failure, in `error`).
  ssize_t recv_some(char* buf, size_t n, short& wait, std::string& error);
  ssize_t send_some(std::string_view bytes, short& wait, std::string& error);

  int fd_ = -1;
  std::unique_ptr<Tls> tls_;
  uint32_t timeout_ms_ = 2000;
  ReplyParser parser_;
};

// The "field:value" lines of an INFO reply (section headers and blank lines left out).
std::map<std::string, std::string> parse_info(std::string_view text);

std::string encode_command(const std::vector<std::string>& args);
// A reply as redis-cli shows it, on one line: "OK", "(nil)", "(integer) 5", "\"text\"", ...
std::string to_string(const kv::Reply& reply);

}  // namespace synod::client
