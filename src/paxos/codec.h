// Byte coding of the core's vocabulary, shared by the write-ahead log (docs/wal-format.md) and
// the replica-to-replica wire (docs/wire-format.md). Little-endian, length-prefixed; decoding is
// bounds-checked and never allocates more than the input could hold.
#pragma once

#include <string>

#include "base/coding.h"
#include "paxos/messages.h"

namespace synod::paxos {

// ballot = round u64, node u32.
void encode_ballot(std::string& out, const Ballot& ballot);
bool decode_ballot(Reader& in, Ballot& ballot);
// value = count u32, then per command: client u64, seq u64, payload (u32 length + bytes).
void encode_value(std::string& out, const Value& value);
bool decode_value(Reader& in, Value& value);

// A message body (without from/to), tagged by its type byte (see docs/wire-format.md).
uint8_t message_type(const Message& message);
void encode_message(std::string& out, const Message& message);
bool decode_message(uint8_t type, Reader& in, Message& message);

}  // namespace synod::paxos
