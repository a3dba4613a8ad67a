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

}  // namespace
}  // namespace synod::paxos
