// The replica-to-replica wire format (docs/wire-format.md): length-prefixed, versioned,
// checksummed frames. The first frame on a connection, in each direction, is a Hello naming the
// cluster and the sender; a peer of another cluster, an unknown version, an oversized or corrupt
// frame ends the connection with a reason for the log — never a crash, never a partial message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "paxos/messages.h"

namespace synod::net {

inline constexpr uint8_t kWireVersion = 1;
inline constexpr uint8_t kHelloType = 64;
inline constexpr size_t kFrameHeaderSize = 8;  // body length u32, CRC-32C of the body u32

struct Hello {
  uint64_t cluster_id = 0;
  NodeId node;
  bool operator==(const Hello&) const = default;
};

std::string encode_hello(const Hello& hello);
std::string encode_frame(const paxos::Envelope& envelope);

// Reassembles frames from a byte stream.
class FrameReader {
 public:
  enum class Status { kNeedMore, kHello, kMessage, kError };

  explicit FrameReader(size_t max_frame_bytes = 64 << 20) : max_frame_bytes_(max_frame_bytes) {}
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next frame: a Hello (into `hello`) or a message (into `envelope`). After kError the
  // stream is unusable: `error` says why.
  Status next(Hello& hello, paxos::Envelope& envelope, std::string& error);

 private:
  size_t max_frame_bytes_;
  std::string buffer_;
  size_t pos_ = 0;
};

// What a replica checks of a peer's Hello before it trusts anything else on the connection.
// Returns the reason to refuse, if any.
std::optional<std::string> check_hello(const Hello& hello, uint64_t cluster_id,
                                       std::optional<NodeId> expected_node);

}  // namespace synod::net
