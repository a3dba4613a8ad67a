#include "net/wire.h"

#include "base/coding.h"
#include "base/crc32c.h"
#include "paxos/codec.h"

namespace synod::net {
namespace {

std::string frame(std::string body) {
  std::string out;
  put_u32(out, static_cast<uint32_t>(body.size()));
  put_u32(out, crc32c(body));
  out += body;
  return out;
}

}  // namespace

std::string encode_hello(const Hello& hello) {
  std::string body;
  put_u8(body, kWireVersion);
  put_u8(body, kHelloType);
  put_u64(body, hello.cluster_id);
  put_u32(body, hello.node.value);
  put_u64(body, hello.incarnation.hi);
  put_u64(body, hello.incarnation.lo);
  return frame(std::move(body));
}

std::string encode_frame(const paxos::Envelope& envelope) {
  std::string body;
  put_u8(body, kWireVersion);
  put_u8(body, paxos::message_type(envelope.message));
  put_u32(body, envelope.from.value);
  put_u32(body, envelope.to.value);
  paxos::encode_message(body, envelope.message);
  return frame(std::move(body));
}

std::string encode_forward(const Forward& forward) {
  std::string body;
  put_u8(body, kWireVersion);
  put_u8(body, kForwardType);
  put_u64(body, forward.request_id);
  put_u8(body, forward.read ? 1 : 0);
  put_u64(body, forward.client);
  put_u64(body, forward.seq);
  put_u32(body, static_cast<uint32_t>(forward.args.size()));
  for (const auto& a : forward.args) put_bytes(body, a);
  return frame(std::move(body));
}

std::string encode_forward_reply(const ForwardReply& reply) {
  std::string body;
  put_u8(body, kWireVersion);
  put_u8(body, kForwardReplyType);
  put_u64(body, reply.request_id);
  put_bytes(body, reply.reply);
  return frame(std::move(body));
}

std::string encode_read_index_request(const ReadIndexRequest& request) {
  std::string body;
  put_u8(body, kWireVersion);
  put_u8(body, kReadIndexRequestType);
  put_u64(body, request.request_id);
  return frame(std::move(body));
}

std::string encode_read_index_reply(const ReadIndexReply& reply) {
  std::string body;
  put_u8(body, kWireVersion);
  put_u8(body, kReadIndexReplyType);
  put_u64(body, reply.request_id);
  put_u8(body, reply.ok ? 1 : 0);
  put_u64(body, reply.slot);
  put_u64(body, reply.leader_ms);
  return frame(std::move(body));
}

std::string encode_refusal(const Refusal& refusal) {
  std::string body;
  put_u8(body, kWireVersion);
  put_u8(body, kRefusalType);
  put_u8(body, static_cast<uint8_t>(refusal.code));
  put_bytes(body, std::string_view(refusal.reason).substr(0, kMaxRefusalReasonBytes));
  return frame(std::move(body));
}

namespace {

bool decode_hello(Reader& in, Hello& h) {
  return in.u64(h.cluster_id) && in.u32(h.node.value) && in.u64(h.incarnation.hi) &&
         in.u64(h.incarnation.lo);
}

bool decode_refusal(Reader& in, Refusal& r) {
  uint8_t code = 0;
  if (!in.u8(code) || code < 1 || code > 2 || !in.bytes(r.reason) ||
      r.reason.size() > kMaxRefusalReasonBytes)
    return false;
  r.code = static_cast<Refusal::Code>(code);
  return true;
}

bool decode_read_index_reply(Reader& in, ReadIndexReply& r) {
  uint8_t ok = 0;
  if (!in.u64(r.request_id) || !in.u8(ok) || ok > 1 || !in.u64(r.slot) || !in.u64(r.leader_ms))
    return false;
  r.ok = ok == 1;
  return true;
}

bool decode_forward(Reader& in, Forward& f) {
  uint8_t read = 0;
  uint32_t n = 0;
  if (!in.u64(f.request_id) || !in.u8(read) || read > 1 || !in.u64(f.client) || !in.u64(f.seq) ||
      !in.u32(n) || n > in.remaining() / 4)
    return false;
  f.read = read == 1;
  f.args.resize(n);
  for (auto& a : f.args)
    if (!in.bytes(a)) return false;
  return true;
}

bool decode_body(uint8_t type, Reader& in, Frame& frame) {
  switch (type) {
    case kHelloType:
      frame.kind = Frame::Kind::kHello;
      return decode_hello(in, frame.hello);
    case kForwardType:
      frame.kind = Frame::Kind::kForward;
      return decode_forward(in, frame.forward);
    case kForwardReplyType:
      frame.kind = Frame::Kind::kForwardReply;
      return in.u64(frame.forward_reply.request_id) && in.bytes(frame.forward_reply.reply);
    case kReadIndexRequestType:
      frame.kind = Frame::Kind::kReadIndexRequest;
      return in.u64(frame.read_index_request.request_id);
    case kReadIndexReplyType:
      frame.kind = Frame::Kind::kReadIndexReply;
      return decode_read_index_reply(in, frame.read_index_reply);
    case kRefusalType:
      frame.kind = Frame::Kind::kRefusal;
      return decode_refusal(in, frame.refusal);
    default:
      frame.kind = Frame::Kind::kMessage;
      return in.u32(frame.envelope.from.value) && in.u32(frame.envelope.to.value) &&
             paxos::decode_message(type, in, frame.envelope.message);
  }
}

}  // namespace

FrameReader::Status FrameReader::next(Frame& frame, std::string& error) {
  if (pos_ > 0 && pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  }
  if (buffer_.size() - pos_ < kFrameHeaderSize) return Status::kNeedMore;
  const uint32_t length = load_u32(buffer_.data() + pos_);
  const uint32_t crc = load_u32(buffer_.data() + pos_ + 4);
  if (length > max_frame_bytes_) {
    error = "frame of " + std::to_string(length) + " bytes exceeds the limit of " +
            std::to_string(max_frame_bytes_);
    return Status::kError;
  }
  if (length < 2) {
    error = "frame too short to hold a version and a type";
    return Status::kError;
  }
  if (buffer_.size() - pos_ - kFrameHeaderSize < length) return Status::kNeedMore;
  std::string_view body(buffer_.data() + pos_ + kFrameHeaderSize, length);
  pos_ += kFrameHeaderSize + length;
  if (crc32c(body) != crc) {
    error = "frame checksum mismatch";
    return Status::kError;
  }
  Reader in(body);
  uint8_t version = 0, type = 0;
  (void)in.u8(version);
  (void)in.u8(type);
  if (version != kWireVersion) {
    error = "wire version " + std::to_string(version) + " is not supported (this build speaks " +
            std::to_string(kWireVersion) + ")";
    return Status::kError;
  }
  if (!decode_body(type, in, frame) || !in.done()) {
    error = "malformed frame of type " + std::to_string(type);
    return Status::kError;
  }
  if (buffer_.size() > (1 << 20) && pos_ * 2 > buffer_.size()) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  return Status::kFrame;
}

std::optional<std::string> check_hello(const Hello& hello, uint64_t cluster_id,
                                       std::optional<NodeId> expected_node) {
  if (hello.cluster_id != cluster_id)
    return "peer belongs to cluster " + std::to_string(hello.cluster_id) + ", not " +
           std::to_string(cluster_id);
  if (expected_node && hello.node != *expected_node)
    return "peer says it is node " + std::to_string(hello.node.value) + ", expected " +
           std::to_string(expected_node->value);
  if (!hello.incarnation.valid()) return "peer presents no incarnation";
  return std::nullopt;
}

}  // namespace synod::net
