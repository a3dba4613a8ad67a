// RESP, the Redis serialization protocol, as Synod's client protocol: an incremental parser for
// requests (arrays of bulk strings, and inline commands as redis-cli and telnet send them) and a
// writer for replies in RESP2 or RESP3 (chosen per connection with HELLO).
//
// The parser never trusts a length: every count and size is checked against RespLimits before
// anything is allocated, and a malformed request yields the Redis-style error text that the
// connection answers with before it closes (the stream cannot be resynchronized after a framing
// error). Reference: https://redis.io/docs/latest/develop/reference/protocol-spec/
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace synod::net {

struct RespLimits {
  size_t max_bulk_bytes = 64 << 20;    // one argument
  size_t max_arguments = 1 << 20;      // arguments in one request
  size_t max_inline_bytes = 64 << 10;  // one inline request line
  // One whole request, framing included (Redis's client-query-buffer-limit): the parser never
  // buffers more than this plus one read for a request. A request whose declared sizes exceed it
  // is refused as soon as they are read, before its bytes arrive.
  size_t max_request_bytes = 32 << 20;
};

class RespParser {
 public:
  enum class Status {
    kNeedMore,  // no complete request buffered yet
    kRequest,   // `args` holds the next request
    kError,     // protocol error: `error` says what; the connection must be closed
  };

  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // Extracts the next complete request. Empty inline lines are skipped, as Redis does.
  Status next(std::vector<std::string>& args, std::string& error);
  // Bytes buffered but not yet consumed.
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  Status parse_multibulk(std::vector<std::string>& args, std::string& error);
  Status parse_inline(std::vector<std::string>& args, std::string& error);
  void compact();

  RespLimits limits_;
  std::string buffer_;
  size_t pos_ = 0;
};

// Builds replies. RESP3 adds maps, nulls, doubles and booleans; in RESP2 they fall back to arrays,
// null bulk strings, bulk strings and integers, as Redis does.
class RespWriter {
 public:
  explicit RespWriter(int protocol = 2) : protocol_(protocol) {}
  void set_protocol(int protocol) { protocol_ = protocol; }
  int protocol() const { return protocol_; }

  void simple(std::string_view s);  // +OK
  void error(std::string_view s);   // -ERR ... (the text must start with the error code)
  void integer(int64_t v);
  void bulk(std::string_view s);
  void null();           // $-1 or _
  void null_array();     // *-1 or _
  void array(size_t n);  // followed by n values
  void map(size_t n);    // followed by n key/value pairs
  void boolean(bool v);

  const std::string& data() const { return out_; }
  std::string take() { return std::exchange(out_, {}); }

 private:
  int protocol_;
  std::string out_;
};

}  // namespace synod::net
