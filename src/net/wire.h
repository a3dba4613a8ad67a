// The replica-to-replica wire format (docs/wire-format.md): length-prefixed, versioned,
// checksummed frames. The first frame on a connection, in each direction, is a Hello naming the
// cluster and the sender; a peer of another cluster, an unknown version, an oversized or corrupt
// frame ends the connection with a reason for the log — never a crash, never a partial message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/incarnation.h"
#include "paxos/messages.h"

namespace synod::net {

// Version 2: the Hello carries the sender's incarnation, and a Refusal may answer it.
inline constexpr uint8_t kWireVersion = 2;
inline constexpr uint8_t kHelloType = 64;
inline constexpr uint8_t kForwardType = 65;
inline constexpr uint8_t kForwardReplyType = 66;
inline constexpr uint8_t kReadIndexRequestType = 67;
inline constexpr uint8_t kReadIndexReplyType = 68;
inline constexpr uint8_t kRefusalType = 69;
inline constexpr size_t kFrameHeaderSize = 8;  // body length u32, CRC-32C of the body u32

struct Hello {
  uint64_t cluster_id = 0;
  NodeId node;
  Incarnation incarnation;  // of the sender's data directory (storage/identity.h)
  bool operator==(const Hello&) const = default;
};

// Why a replica would not take a peer's Hello, sent to that peer before the connection closes
// (instead of the answering Hello, or as the first frame after its own), so that the refused
// side can log the reason — and, for an identity refusal, stop instead of retrying forever.
struct Refusal {
  enum class Code : uint8_t {
    kIdentity = 1,  // the sender's incarnation is not the one this replica knows for its id
    kPeer = 2,      // another cluster, not a member, a wrong certificate, ... (may change)
  };
  Code code = Code::kPeer;
  std::string reason;  // for the refused replica's log; at most kMaxRefusalReasonBytes
  bool operator==(const Refusal&) const = default;
};
inline constexpr size_t kMaxRefusalReasonBytes = 2048;

// A client's command, forwarded by the replica that received it to the one it believes leads.
// The command id (client, seq) was assigned by the receiving replica; the leader proposes it as
// is, so a forward that is retried after a lost reply is applied at most once.
struct Forward {
  uint64_t request_id = 0;  // the sender's, echoed in the reply
  bool read = false;        // a linearizable read (served without the log) or a write
  uint64_t client = 0;
  uint64_t seq = 0;
  std::vector<std::string> args;
  bool operator==(const Forward&) const = default;
};

// The leader's answer to a Forward: the reply in kv's coding (kv::encode_reply).
struct ForwardReply {
  uint64_t request_id = 0;
  std::string reply;
  bool operator==(const ForwardReply&) const = default;
};

// A follower's request for a read index, for the linearizable reads its clients asked since its
// previous request: the leader confirms its leadership with a quorum and answers with a slot
// that covers every write acknowledged before the request arrived. The follower then serves
// those reads from its own state machine once it has applied through that slot.
struct ReadIndexRequest {
  uint64_t request_id = 0;  // the sender's, echoed in the reply
  bool operator==(const ReadIndexRequest&) const = default;
};

struct ReadIndexReply {
  uint64_t request_id = 0;
  bool ok = false;         // false: not confirmed (not the leader, or leadership changed)
  Slot slot = 0;           // for ok: serve once applied through it
  uint64_t leader_ms = 0;  // the leader's clock when the index was fixed (the reads' time)
  bool operator==(const ReadIndexReply&) const = default;
};

// One decoded frame.
struct Frame {
  enum class Kind {
    kHello,
    kMessage,
    kForward,
    kForwardReply,
    kReadIndexRequest,
    kReadIndexReply,
    kRefusal
  };
  Kind kind = Kind::kHello;
  Hello hello;
  paxos::Envelope envelope;
  Forward forward;
  ForwardReply forward_reply;
  ReadIndexRequest read_index_request;
  ReadIndexReply read_index_reply;
  Refusal refusal;
};

std::string encode_hello(const Hello& hello);
std::string encode_frame(const paxos::Envelope& envelope);
std::string encode_forward(const Forward& forward);
std::string encode_forward_reply(const ForwardReply& reply);
std::string encode_read_index_request(const ReadIndexRequest& request);
std::string encode_read_index_reply(const ReadIndexReply& reply);
// The reason is cut to kMaxRefusalReasonBytes.
std::string encode_refusal(const Refusal& refusal);

// Reassembles frames from a byte stream.
class FrameReader {
 public:
  enum class Status { kNeedMore, kFrame, kError };

  explicit FrameReader(size_t max_frame_bytes = 16 << 20) : max_frame_bytes_(max_frame_bytes) {}
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next frame, into `frame`. After kError the stream is unusable: `error` says why.
  Status next(Frame& frame, std::string& error);
  // Bytes buffered but not yet consumed.
  size_t buffered() const { return buffer_.size() - pos_; }

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
