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
      AcceptMsg{b, {{9, value(9)}, {10, noop()}}, 8, 3},
      AcceptMsg{b, {}, 8, 0},
      AcceptedMsg{b, {9, 10}, 8, 3},
      RejectMsg{b, Ballot{9, NodeId{3}}},
      CatchupRequestMsg{11},
      CatchupReplyMsg{{{11, value(11)}}, 12},
      SnapshotChunkMsg{40, 1000, 0xfeedface, 300, std::string(300, '\x07')},
      SnapshotRequestMsg{40, 600},
  };
  std::vector<Envelope> out;
  for (auto& m : messages) out.push_back(Envelope{NodeId{2}, NodeId{1}, m});
  return out;
}

TEST(Wire, EveryMessageRoundTripsAtEverySplit) {
  std::string stream = encode_hello({77, NodeId{2}});
  for (const auto& e : every_message()) stream += encode_frame(e);
  for (size_t split = 0; split <= stream.size(); split += 7) {
    FrameReader r;
    r.feed(stream.substr(0, split));
    std::vector<Envelope> got;
    Hello hello;
    int hellos = 0;
    auto drain = [&] {
      Envelope e;
      std::string error;
      for (;;) {
        auto s = r.next(hello, e, error);
        if (s == FrameReader::Status::kHello)
          ++hellos;
        else if (s == FrameReader::Status::kMessage)
          got.push_back(e);
        else {
          ASSERT_EQ(s, FrameReader::Status::kNeedMore) << error;
          return;
        }
      }
    };
    drain();
    r.feed(stream.substr(split));
    drain();
    EXPECT_EQ(hellos, 1);
    EXPECT_EQ(hello, (Hello{77, NodeId{2}}));
    ASSERT_EQ(got.size(), every_message().size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(to_string(got[i]), to_string(every_message()[i]));
      EXPECT_EQ(got[i].from, NodeId{2});
    }
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
       "frame of 2147483647 bytes exceeds the limit of 67108864"},
      {std::string("\x01\x00\x00\x00", 4) + std::string(4, '\0') + "x",
       "frame too short to hold a version and a type"},
  };
  for (const auto& c : cases) {
    FrameReader r;
    r.feed(c.bytes);
    Hello h;
    Envelope e;
    std::string error;
    EXPECT_EQ(r.next(h, e, error), FrameReader::Status::kError);
    EXPECT_EQ(error, c.error);
  }
  EXPECT_EQ(check_hello({5, NodeId{1}}, 6, std::nullopt), "peer belongs to cluster 5, not 6");
  EXPECT_EQ(check_hello({6, NodeId{1}}, 6, NodeId{2}), "peer says it is node 1, expected 2");
  EXPECT_FALSE(check_hello({6, NodeId{2}}, 6, NodeId{2}).has_value());
}

TEST(Wire, FuzzedFramesNeverCrash) {
  Rng rng(11);
  const auto messages = every_message();
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = encode_frame(messages[rng.below(messages.size())]);
    // Corrupt the body and fix the checksum, so the decoders (not just the CRC) see garbage.
    const int flips = 1 + static_cast<int>(rng.below(4));
    for (int f = 0; f < flips; ++f)
      bytes[8 + rng.below(bytes.size() - 8)] = static_cast<char>(rng.below(256));
    if (rng.chance(0.3)) bytes.resize(8 + rng.below(bytes.size() - 7));
    store_u32(bytes.data(), static_cast<uint32_t>(bytes.size() - 8));
    store_u32(bytes.data() + 4, crc32c(std::string_view(bytes).substr(8)));
    FrameReader r(1 << 16);
    r.feed(bytes);
    Hello h;
    Envelope e;
    std::string error;
    (void)r.next(h, e, error);
  }
}

}  // namespace
}  // namespace synod::net
