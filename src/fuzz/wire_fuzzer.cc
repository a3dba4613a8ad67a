// libFuzzer target: the replica frame decoder on arbitrary bytes. Half of the inputs get a valid
// length and checksum in front, so the message decoders behind the CRC are reached too. It must
// never crash, and a decoded frame must encode back to the same bytes (nothing is invented).
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/assert.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "net/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using synod::net::FrameReader;
  std::string input(reinterpret_cast<const char*>(data), size);
  if (size > 0 && data[0] % 2 == 0) {
    std::string framed;
    const std::string body = input.substr(1);
    synod::put_u32(framed, static_cast<uint32_t>(body.size()));
    synod::put_u32(framed, synod::crc32c(body));
    input = framed + body;
  }
  FrameReader reader(1 << 20);
  reader.feed(input);
  synod::net::Frame frame;
  std::string error;
  using Kind = synod::net::Frame::Kind;
  if (reader.next(frame, error) != FrameReader::Status::kFrame) return 0;
  std::string again;
  switch (frame.kind) {
    case Kind::kHello:
      again = synod::net::encode_hello(frame.hello);
      break;
    case Kind::kMessage:
      again = synod::net::encode_frame(frame.envelope);
      break;
    case Kind::kForward:
      again = synod::net::encode_forward(frame.forward);
      break;
    case Kind::kForwardReply:
      again = synod::net::encode_forward_reply(frame.forward_reply);
      break;
    case Kind::kReadIndexRequest:
      again = synod::net::encode_read_index_request(frame.read_index_request);
      break;
    case Kind::kReadIndexReply:
      again = synod::net::encode_read_index_reply(frame.read_index_reply);
      break;
    case Kind::kRefusal:
      again = synod::net::encode_refusal(frame.refusal);
      break;
  }
  SYNOD_ASSERT(again == input.substr(0, again.size()), "a decoded frame re-encodes differently");
  while (reader.next(frame, error) == FrameReader::Status::kFrame) {
  }
  return 0;
}
