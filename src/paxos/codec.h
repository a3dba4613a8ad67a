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
// value = count u32, then per command: client u64, seq u64, payload (u32 length + bytes). A
// configuration change starts with the marker 0xFFFFFFFF and its membership before the count.
void encode_value(std::string& out, const Value& value);
bool decode_value(Reader& in, Value& value);
// membership = epoch u64, next id u32, phase-1 weight u64, phase-2 weight u64, count u32, then per
// member: id u32, voter u8, weight u32, incarnation u64, address (u32 length + bytes). Decoding
// checks only the bounds; verify_membership() judges the content.
void encode_membership(std::string& out, const Membership& membership);
bool decode_membership(Reader& in, Membership& membership);
// present u8 (0 or 1), then the membership if present.
void encode_optional_membership(std::string& out, const MembershipRef& membership);
bool decode_optional_membership(Reader& in, MembershipRef& membership);

// node set = count u32, then each id u32, ascending (model-checker state, never on the wire).
void encode_node_set(std::string& out, const NodeSet& set);

// A message body (without from/to), tagged by its type byte (see docs/wire-format.md).
uint8_t message_type(const Message& message);
void encode_message(std::string& out, const Message& message);
bool decode_message(uint8_t type, Reader& in, Message& message);

}  // namespace synod::paxos
