// The message codec: Accept and Accepted carry the leader's read round both ways.
#include "paxos/codec.h"

#include <gtest/gtest.h>

namespace synod::paxos {
namespace {

TEST(Codec, AcceptAndAcceptedCarryTheReadRound) {
  const Ballot b{4, NodeId{2}};
  for (const Message& m : {Message{AcceptMsg{b, {}, 6, 11}}, Message{AcceptedMsg{b, {6}, 6, 11}}}) {
    std::string bytes;
    encode_message(bytes, m);
    Reader in(bytes);
    Message back;
    ASSERT_TRUE(decode_message(message_type(m), in, back));
    EXPECT_TRUE(in.done());
    EXPECT_EQ(to_string(back), to_string(m));
    EXPECT_NE(to_string(back).find("read_round=11"), std::string::npos) << to_string(back);
    // Cut short by the last field: refused.
    Reader cut(std::string_view(bytes).substr(0, bytes.size() - 1));
    EXPECT_FALSE(decode_message(message_type(m), cut, back));
  }
}

TEST(Codec, AcceptAndPromiseCarryTheClusterTime) {
  const Ballot b{4, NodeId{2}};
  AcceptMsg accept{b, {}, 6, 11};
  accept.time_ms = 1'700'000'000'123;
  PromiseMsg promise{b, 3, {}, 0};
  promise.last_slot = 9;
  promise.time_ms = 1'700'000'000'456;
  promise.time_horizon_ms = 1'700'000'001'000;
  promise.time_ballot = Ballot{3, NodeId{1}};
  promise.time_horizon_ballot = Ballot{2, NodeId{3}};
  for (const Message& m : {Message{accept}, Message{promise}}) {
    std::string bytes;
    encode_message(bytes, m);
    Reader in(bytes);
    Message back;
    ASSERT_TRUE(decode_message(message_type(m), in, back));
    EXPECT_TRUE(in.done());
    EXPECT_EQ(to_string(back), to_string(m));
    EXPECT_NE(to_string(back).find(" time=1700000000"), std::string::npos) << to_string(back);
    Reader cut(std::string_view(bytes).substr(0, bytes.size() - 1));
    EXPECT_FALSE(decode_message(message_type(m), cut, back));
  }
  Message back;
  std::string bytes;
  encode_message(bytes, Message{promise});
  Reader in(bytes);
  ASSERT_TRUE(decode_message(message_type(Message{promise}), in, back));
  const auto& p = std::get<PromiseMsg>(back);
  EXPECT_EQ(p.last_slot, 9u);
  EXPECT_EQ(p.time_ms, promise.time_ms);
  EXPECT_EQ(p.time_horizon_ms, promise.time_horizon_ms);
  EXPECT_EQ(p.time_ballot, promise.time_ballot);
  EXPECT_EQ(p.time_horizon_ballot, promise.time_horizon_ballot);
}

// PreVote (type 10), PreVoteReply (type 11) and the Prepare's transfer flag (with the ballot it
// hands over from) survive the codec; a short body, an unknown flag bit or a granted byte other
// than 0 or 1 is refused.
// TimeoutNow (leader transfer): type 12, the leader's ballot alone, byte by byte as
// docs/wire-format.md gives it.
TEST(Codec, TimeoutNow) {
  const Message m{TimeoutNowMsg{Ballot{0x0102030405060708, NodeId{0x0a0b0c0d}}}};
  EXPECT_EQ(message_type(m), 12);
  std::string bytes;
  encode_message(bytes, m);
  EXPECT_EQ(bytes, std::string("\x08\x07\x06\x05\x04\x03\x02\x01\x0d\x0c\x0b\x0a", 12));
  Reader in(bytes);
  Message back;
  ASSERT_TRUE(decode_message(12, in, back));
  EXPECT_TRUE(in.done());
  EXPECT_EQ(to_string(back), "TimeoutNow b=72623859790382856.168496141");
  Reader cut(std::string_view(bytes).substr(0, bytes.size() - 1));
  EXPECT_FALSE(decode_message(12, cut, back));
  Reader unknown(bytes);
  EXPECT_FALSE(decode_message(13, unknown, back));
}

TEST(Codec, PreVoteMessagesAndTheTransferFlag) {
  const Ballot b{7, NodeId{3}};
  const Message prevote{PreVoteMsg{b, 41}};
  const Message reply{PreVoteReplyMsg{b, true, Ballot{6, NodeId{1}}, 41}};
  const Message prepare{PrepareMsg{b, 42, true, Ballot{6, NodeId{1}}}};
  EXPECT_EQ(message_type(prevote), 10);
  EXPECT_EQ(message_type(reply), 11);
  for (const Message& m : {prevote, reply, prepare, Message{PrepareMsg{b, 42, false}}}) {
    std::string bytes;
    encode_message(bytes, m);
    Reader in(bytes);
    Message back;
    ASSERT_TRUE(decode_message(message_type(m), in, back)) << to_string(m);
    EXPECT_TRUE(in.done());
    EXPECT_EQ(to_string(back), to_string(m));
    Reader cut(std::string_view(bytes).substr(0, bytes.size() - 1));
    EXPECT_FALSE(decode_message(message_type(m), cut, back)) << to_string(m);
  }
  EXPECT_EQ(to_string(prepare), "Prepare b=7.3 from=42 transfer=6.1");
  std::string bytes;
  encode_message(bytes, prepare);
  // ballot (round u64, node u32), first_slot u64, flags u8, then the ballot handing over.
  EXPECT_EQ(bytes, std::string("\x07\0\0\0\0\0\0\0\x03\0\0\0"
                               "\x2a\0\0\0\0\0\0\0\x01"
                               "\x06\0\0\0\0\0\0\0\x01\0\0\0",
                               33));
  Message back;
  Reader in(bytes);
  ASSERT_TRUE(decode_message(1, in, back));
  EXPECT_TRUE(std::get<PrepareMsg>(back).transfer);
  EXPECT_EQ(std::get<PrepareMsg>(back).transfer_from, (Ballot{6, NodeId{1}}));
  bytes.resize(21);
  bytes.back() = 3;  // an unknown flag bit
  Reader unknown(bytes);
  EXPECT_FALSE(decode_message(1, unknown, back));
  bytes.clear();
  encode_message(bytes, reply);
  bytes[12] = 2;  // granted is neither 0 nor 1
  Reader bad(bytes);
  EXPECT_FALSE(decode_message(11, bad, back));
}

}  // namespace
}  // namespace synod::paxos
