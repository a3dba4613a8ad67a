// The peer wire: every message type round-trips, frames reassemble at any split, and corrupt,
// oversized, foreign or garbage input is refused with a reason (fuzzed).
#include "net/wire.h"

#include <gtest/gtest.h>

#include "base/coding.h"
#include "base/crc32c.h"
#include "base/rng.h"

namespace synod::net {
namespace {

using namespace synod::paxos;

Value value(uint64_t seq) {
  return Value{{Command{{3, seq}, "payload " + std::to_string(seq)}}};
}

std::vector<Envelope> every_message() {
  const Ballot b{7, NodeId{2}};
  std::vector<Message> messages = {
      PrepareMsg{b, 5},
      PromiseMsg{b, 5, {{5, Proposal{Ballot{3, NodeId{1}}, value(5)}}, {6, {b, noop()}}}, 4},
      PromiseMsg{b, 5, {{5, Proposal{Ballot{3, NodeId{1}}, value(5)}}}, 4, 5},  // one part
      AcceptMsg{b, {{9, value(9)}, {10, noop()}}, 8, 3},
      AcceptMsg{b, {}, 8, 0},
      AcceptedMsg{b, {9, 10}, 8, 3},
      RejectMsg{b, Ballot{9, NodeId{3}}},
      CatchupRequestMsg{11},
      CatchupReplyMsg{{{11, value(11)}}, 12},
      SnapshotChunkMsg{40, 1000, 0xfeedface, 300, std::string(300, '\x07')},
      SnapshotRequestMsg{40, 600},
      TimeoutNowMsg{b},
  };
  std::vector<Envelope> out;
  for (auto& m : messages) out.push_back(Envelope{NodeId{2}, NodeId{1}, m});
  return out;
}

TEST(Wire, EveryMessageRoundTripsAtEverySplit) {
  const Hello sent_hello{77, NodeId{2}, Incarnation{0x1122334455667788, 0x99aabbccddeeff00}};
  std::string stream = encode_hello(sent_hello);
  for (const auto& e : every_message()) stream += encode_frame(e);
  const Forward forward{41, true, 1234, 5678, {"SET", "k", std::string(3, '\0')}};
  const Forward empty_forward{42, false, 1, 2, {}};
  const ForwardReply forward_reply{41, std::string("\x01\x02", 2)};
  const ReadIndexRequest index_request{43};
  const ReadIndexReply index_reply{43, true, 1ull << 40, 1796000000123};
  const ReadIndexReply refusal{44, false, 0, 0};
  stream +=
      encode_forward(forward) + encode_forward(empty_forward) + encode_forward_reply(forward_reply);
  const Refusal identity_refusal{Refusal::Code::kIdentity, "n1 knows n2 as another incarnation"};
  stream += encode_read_index_request(index_request) + encode_read_index_reply(index_reply) +
            encode_read_index_reply(refusal) + encode_refusal(identity_refusal);
  for (size_t split = 0; split <= stream.size(); split += 7) {
    FrameReader r;
    r.feed(stream.substr(0, split));
    std::vector<Envelope> got;
    Hello hello;
    int hellos = 0;
    std::vector<Forward> forwards;
    std::vector<ForwardReply> replies;
    std::vector<ReadIndexRequest> index_requests;
    std::vector<ReadIndexReply> index_replies;
    std::vector<Refusal> refusals;
    auto drain = [&] {
      Frame f;
      std::string error;
      for (;;) {
        auto s = r.next(f, error);
        if (s != FrameReader::Status::kFrame) {
          ASSERT_EQ(s, FrameReader::Status::kNeedMore) << error;
          return;
        }
        switch (f.kind) {
          case Frame::Kind::kHello:
            ++hellos;
            hello = f.hello;
            break;
          case Frame::Kind::kMessage:
            got.push_back(f.envelope);
            break;
          case Frame::Kind::kForward:
            forwards.push_back(f.forward);
            break;
          case Frame::Kind::kForwardReply:
            replies.push_back(f.forward_reply);
            break;
          case Frame::Kind::kReadIndexRequest:
            index_requests.push_back(f.read_index_request);
            break;
          case Frame::Kind::kReadIndexReply:
            index_replies.push_back(f.read_index_reply);
            break;
          case Frame::Kind::kRefusal:
            refusals.push_back(f.refusal);
            break;
        }
      }
    };
    drain();
    r.feed(stream.substr(split));
    drain();
    EXPECT_EQ(hellos, 1);
    EXPECT_EQ(hello, sent_hello);
    ASSERT_EQ(got.size(), every_message().size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(to_string(got[i]), to_string(every_message()[i]));
      EXPECT_EQ(got[i].from, NodeId{2});
    }
    EXPECT_EQ(forwards, (std::vector<Forward>{forward, empty_forward}));
    EXPECT_EQ(replies, (std::vector<ForwardReply>{forward_reply}));
    EXPECT_EQ(index_requests, (std::vector<ReadIndexRequest>{index_request}));
    EXPECT_EQ(index_replies, (std::vector<ReadIndexReply>{index_reply, refusal}));
    EXPECT_EQ(refusals, (std::vector<Refusal>{identity_refusal}));
  }
}

TEST(Wire, BadFramesAreRefusedWithAReason) {
  const std::string good = encode_frame(every_message()[0]);
  struct Case {
    std::string bytes;
    std::string error;
  } cases[] = {
      {[&] {
         std::string s = good;
         s[10] ^= 1;
         return s;
       }(),
       "frame checksum mismatch"},
      {[&] {
         std::string s = good;
         s[0] = '\xff';
         s[1] = '\xff';
         s[2] = '\xff';
         s[3] = '\x7f';
         return s;
       }(),
       "frame of 2147483647 bytes exceeds the limit of 16777216"},
      {std::string("\x01\x00\x00\x00", 4) + std::string(4, '\0') + "x",
       "frame too short to hold a version and a type"},
  };
  for (const auto& c : cases) {
    FrameReader r;
    r.feed(c.bytes);
    Frame f;
    std::string error;
    EXPECT_EQ(r.next(f, error), FrameReader::Status::kError);
    EXPECT_EQ(error, c.error);
  }
  const Incarnation inc{1, 2};
  EXPECT_EQ(check_hello({5, NodeId{1}, inc}, 6, std::nullopt), "peer belongs to cluster 5, not 6");
  EXPECT_EQ(check_hello({6, NodeId{1}, inc}, 6, NodeId{2}), "peer says it is node 1, expected 2");
  EXPECT_EQ(check_hello({6, NodeId{2}, {}}, 6, NodeId{2}), "peer presents no incarnation");
  EXPECT_FALSE(check_hello({6, NodeId{2}, inc}, 6, NodeId{2}).has_value());
}

// Body bytes (version, type, fields) in a valid frame.
std::string framed(const std::string& body) {
  std::string out;
  put_u32(out, static_cast<uint32_t>(body.size()));
  put_u32(out, crc32c(body));
  return out + body;
}

FrameReader::Status read_one(const std::string& bytes, Frame& f, std::string& error) {
  FrameReader r;
  r.feed(bytes);
  return r.next(f, error);
}

TEST(Wire, HelloCarriesTheIncarnationAndOlderHellosAreRefused) {
  const Hello hello{9, NodeId{3}, Incarnation{0xa, 0xb}};
  const std::string bytes = encode_hello(hello);
  // version 2, type 64, cluster u64, node u32, incarnation hi u64, lo u64
  ASSERT_EQ(bytes.size(), 8u + 2 + 8 + 4 + 16);
  EXPECT_EQ(bytes[8], 2);
  EXPECT_EQ(static_cast<uint8_t>(bytes[9]), 64);
  Frame f;
  std::string error;
  ASSERT_EQ(read_one(bytes, f, error), FrameReader::Status::kFrame) << error;
  EXPECT_EQ(f.kind, Frame::Kind::kHello);
  EXPECT_EQ(f.hello, hello);
  // Every shorter body (a version-1 Hello had no incarnation) and a longer one is malformed.
  const std::string body = bytes.substr(8);
  for (size_t n = 2; n < body.size(); ++n) {
    EXPECT_EQ(read_one(framed(body.substr(0, n)), f, error), FrameReader::Status::kError) << n;
    EXPECT_EQ(error, "malformed frame of type 64");
  }
  EXPECT_EQ(read_one(framed(body + "x"), f, error), FrameReader::Status::kError);
  // A version-1 peer: refused by its version before anything is decoded.
  std::string v1 = body.substr(0, 2 + 8 + 4);
  v1[0] = 1;
  EXPECT_EQ(read_one(framed(v1), f, error), FrameReader::Status::kError);
  EXPECT_EQ(error, "wire version 1 is not supported (this build speaks 2)");
}

TEST(Wire, RefusalRoundTripsWithinItsBounds) {
  for (const Refusal& refusal :
       {Refusal{Refusal::Code::kIdentity, "n1 knows n3 as incarnation ..."},
        Refusal{Refusal::Code::kPeer, ""},
        Refusal{Refusal::Code::kPeer, std::string(kMaxRefusalReasonBytes, 'r')}}) {
    Frame f;
    std::string error;
    ASSERT_EQ(read_one(encode_refusal(refusal), f, error), FrameReader::Status::kFrame) << error;
    EXPECT_EQ(f.kind, Frame::Kind::kRefusal);
    EXPECT_EQ(f.refusal, refusal);
  }
  // A longer reason is cut on the way out.
  Frame f;
  std::string error;
  ASSERT_EQ(read_one(encode_refusal({Refusal::Code::kPeer, std::string(5000, 'x')}), f, error),
            FrameReader::Status::kFrame);
  EXPECT_EQ(f.refusal.reason.size(), kMaxRefusalReasonBytes);
  // On the way in, a reason above the bound, an unknown code, a length past the end, or a
  // truncated body is malformed (never allocated past the frame).
  auto body = [](uint8_t code, uint32_t length, const std::string& reason) {
    std::string b;
    put_u8(b, kWireVersion);
    put_u8(b, kRefusalType);
    put_u8(b, code);
    put_u32(b, length);
    return b + reason;
  };
  const std::string ok = body(1, 3, "why");
  EXPECT_EQ(read_one(framed(ok), f, error), FrameReader::Status::kFrame);
  for (const std::string& bad :
       {body(0, 3, "why"), body(3, 3, "why"), body(1, 4, "why"), body(1, 0xffffffff, "why"),
        body(1, kMaxRefusalReasonBytes + 1, std::string(kMaxRefusalReasonBytes + 1, 'x')),
        ok.substr(0, 4), ok + "!"}) {
    EXPECT_EQ(read_one(framed(bad), f, error), FrameReader::Status::kError);
    EXPECT_EQ(error, "malformed frame of type 69");
  }
}

TEST(Wire, FuzzedFramesNeverCrash) {
  Rng rng(11);
  std::vector<std::string> frames;
  for (const auto& m : every_message()) frames.push_back(encode_frame(m));
  frames.push_back(encode_forward({7, false, 3, 4, {"SET", "key", "value"}}));
  frames.push_back(encode_forward_reply({7, "reply bytes"}));
  frames.push_back(encode_hello({1, NodeId{2}, Incarnation{3, 4}}));
  frames.push_back(encode_refusal({Refusal::Code::kIdentity, "a reason"}));
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = frames[rng.below(frames.size())];
    // Corrupt the body and fix the checksum, so the decoders (not just the CRC) see garbage.
    const int flips = 1 + static_cast<int>(rng.below(4));
    for (int f = 0; f < flips; ++f)
      bytes[8 + rng.below(bytes.size() - 8)] = static_cast<char>(rng.below(256));
    if (rng.chance(0.3)) bytes.resize(8 + rng.below(bytes.size() - 7));
    store_u32(bytes.data(), static_cast<uint32_t>(bytes.size() - 8));
    store_u32(bytes.data() + 4, crc32c(std::string_view(bytes).substr(8)));
    FrameReader r(1 << 16);
    r.feed(bytes);
    Frame f;
    std::string error;
    (void)r.next(f, error);
  }
}

}  // namespace
}  // namespace synod::net
