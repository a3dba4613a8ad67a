#include "paxos/codec.h"

namespace synod::paxos {
namespace {

constexpr uint8_t kPrepareTransfer = 1;  // PrepareMsg flags, bit 0

void encode_slots(std::string& out, const std::vector<Slot>& slots) {
  put_u32(out, static_cast<uint32_t>(slots.size()));
  for (Slot s : slots) put_u64(out, s);
}
bool decode_slots(Reader& in, std::vector<Slot>& slots) {
  uint32_t n = 0;
  if (!in.u32(n) || n > in.remaining() / 8) return false;
  slots.resize(n);
  for (auto& s : slots)
    if (!in.u64(s)) return false;
  return true;
}
void encode_slot_values(std::string& out, const std::vector<SlotValue>& entries) {
  put_u32(out, static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    put_u64(out, e.slot);
    encode_value(out, e.value);
  }
}
bool decode_slot_values(Reader& in, std::vector<SlotValue>& entries) {
  uint32_t n = 0;
  if (!in.u32(n) || n > in.remaining() / 12) return false;
  entries.resize(n);
  for (auto& e : entries)
    if (!in.u64(e.slot) || !decode_value(in, e.value)) return false;
  return true;
}

}  // namespace

void encode_optional_membership(std::string& out, const MembershipRef& membership) {
  put_u8(out, membership ? 1 : 0);
  if (membership) encode_membership(out, *membership);
}

bool decode_optional_membership(Reader& in, MembershipRef& membership) {
  uint8_t present = 0;
  if (!in.u8(present) || present > 1) return false;
  membership.reset();
  if (present == 0) return true;
  auto m = std::make_shared<Membership>();
  if (!decode_membership(in, *m)) return false;
  membership = std::move(m);
  return true;
}

void encode_ballot(std::string& out, const Ballot& b) {
  put_u64(out, b.round);
  put_u32(out, b.node.value);
}

bool decode_ballot(Reader& in, Ballot& b) {
  return in.u64(b.round) && in.u32(b.node.value);
}

inline constexpr uint32_t kMembershipMarker = 0xFFFFFFFF;

void encode_membership(std::string& out, const Membership& m) {
  put_u64(out, m.epoch);
  put_u32(out, m.next_id);
  put_u64(out, m.phase1_weight);
  put_u64(out, m.phase2_weight);
  put_u32(out, static_cast<uint32_t>(m.members.size()));
  for (const Member& member : m.members) {
    put_u32(out, member.id.value);
    put_u8(out, member.voter ? 1 : 0);
    put_u32(out, member.weight);
    put_u64(out, member.incarnation);
    put_bytes(out, member.address);
  }
}

bool decode_membership(Reader& in, Membership& m) {
  uint32_t n = 0;
  if (!in.u64(m.epoch) || !in.u32(m.next_id) || !in.u64(m.phase1_weight) ||
      !in.u64(m.phase2_weight) || !in.u32(n) || n > kMaxMembers || n > in.remaining() / 21)
    return false;
  m.members.resize(n);
  for (Member& member : m.members) {
    uint8_t voter = 0;
    if (!in.u32(member.id.value) || !in.u8(voter) || voter > 1 || !in.u32(member.weight) ||
        !in.u64(member.incarnation) || !in.bytes(member.address) ||
        member.address.size() > kMaxMemberAddressBytes)
      return false;
    member.voter = voter == 1;
  }
  return true;
}

void encode_value(std::string& out, const Value& value) {
  if (value.membership) {
    put_u32(out, kMembershipMarker);
    encode_membership(out, *value.membership);
  }
  put_u32(out, static_cast<uint32_t>(value.commands.size()));
  for (const auto& c : value.commands) {
    put_u64(out, c.id.client);
    put_u64(out, c.id.seq);
    put_bytes(out, c.payload);
  }
}

bool decode_value(Reader& in, Value& value) {
  uint32_t n = 0;
  if (!in.u32(n)) return false;
  value.membership.reset();
  if (n == kMembershipMarker) {
    auto membership = std::make_shared<Membership>();
    if (!decode_membership(in, *membership) || !in.u32(n)) return false;
    value.membership = std::move(membership);
  }
  if (n > in.remaining() / 20) return false;  // each command takes >= 20 bytes
  std::vector<Command>& commands = value.commands.edit();
  commands.resize(n);
  for (auto& c : commands) {
    if (!in.u64(c.id.client) || !in.u64(c.id.seq) || !in.bytes(c.payload)) return false;
  }
  return true;
}

void encode_node_set(std::string& out, const NodeSet& set) {
  const std::vector<NodeId> ids = set.ids();
  put_u32(out, static_cast<uint32_t>(ids.size()));
  for (NodeId id : ids) put_u32(out, id.value);
}

uint8_t message_type(const Message& message) {
  return static_cast<uint8_t>(message.index() + 1);
}

void encode_message(std::string& out, const Message& message) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PrepareMsg>) {
          encode_ballot(out, m.ballot);
          put_u64(out, m.first_slot);
          put_u8(out, m.transfer ? kPrepareTransfer : 0);
          if (m.transfer) encode_ballot(out, m.transfer_from);
        } else if constexpr (std::is_same_v<T, PromiseMsg>) {
          encode_ballot(out, m.ballot);
          put_u64(out, m.first_slot);
          put_u32(out, static_cast<uint32_t>(m.accepted.size()));
          for (const auto& e : m.accepted) {
            put_u64(out, e.slot);
            encode_ballot(out, e.proposal.ballot);
            encode_value(out, e.proposal.value);
          }
          put_u64(out, m.snapshot);
          put_u64(out, m.last_slot);
          put_u64(out, m.time_ms);
          put_u64(out, m.time_horizon_ms);
          encode_ballot(out, m.time_ballot);
          encode_ballot(out, m.time_horizon_ballot);
        } else if constexpr (std::is_same_v<T, AcceptMsg>) {
          encode_ballot(out, m.ballot);
          encode_slot_values(out, m.entries);
          put_u64(out, m.commit);
          put_u64(out, m.read_round);
          put_u64(out, m.time_ms);
        } else if constexpr (std::is_same_v<T, AcceptedMsg>) {
          encode_ballot(out, m.ballot);
          encode_slots(out, m.slots);
          put_u64(out, m.commit);
          put_u64(out, m.read_round);
        } else if constexpr (std::is_same_v<T, RejectMsg>) {
          encode_ballot(out, m.ballot);
          encode_ballot(out, m.promised);
        } else if constexpr (std::is_same_v<T, CatchupRequestMsg>) {
          put_u64(out, m.first_slot);
        } else if constexpr (std::is_same_v<T, CatchupReplyMsg>) {
          encode_slot_values(out, m.chosen);
          put_u64(out, m.commit);
          put_u64(out, m.first_slot);
          encode_optional_membership(out, m.membership);
        } else if constexpr (std::is_same_v<T, SnapshotChunkMsg>) {
          put_u64(out, m.slot);
          put_u64(out, m.total);
          put_u64(out, m.digest);
          put_u64(out, m.offset);
          put_bytes(out, m.data);
          encode_optional_membership(out, m.membership);
        } else if constexpr (std::is_same_v<T, SnapshotRequestMsg>) {
          put_u64(out, m.slot);
          put_u64(out, m.offset);
        } else if constexpr (std::is_same_v<T, PreVoteMsg>) {
          encode_ballot(out, m.ballot);
          put_u64(out, m.commit);
        } else if constexpr (std::is_same_v<T, PreVoteReplyMsg>) {
          encode_ballot(out, m.ballot);
          put_u8(out, m.granted ? 1 : 0);
          encode_ballot(out, m.promised);
          put_u64(out, m.commit);
        } else {
          static_assert(std::is_same_v<T, TimeoutNowMsg>);
          encode_ballot(out, m.ballot);
        }
      },
      message);
}

bool decode_message(uint8_t type, Reader& in, Message& message) {
  switch (type) {
    case 1: {
      PrepareMsg m;
      uint8_t flags = 0;
      // Unknown flag bits are refused: a sender that sets one means something we cannot honour.
      if (!decode_ballot(in, m.ballot) || !in.u64(m.first_slot) || !in.u8(flags) ||
          (flags & ~kPrepareTransfer) != 0)
        return false;
      m.transfer = (flags & kPrepareTransfer) != 0;
      if (m.transfer && !decode_ballot(in, m.transfer_from)) return false;
      message = m;
      return true;
    }
    case 2: {
      PromiseMsg m;
      uint32_t n = 0;
      if (!decode_ballot(in, m.ballot) || !in.u64(m.first_slot) || !in.u32(n) ||
          n > in.remaining() / 24)
        return false;
      m.accepted.resize(n);
      for (auto& e : m.accepted)
        if (!in.u64(e.slot) || !decode_ballot(in, e.proposal.ballot) ||
            !decode_value(in, e.proposal.value))
          return false;
      if (!in.u64(m.snapshot) || !in.u64(m.last_slot) || !in.u64(m.time_ms) ||
          !in.u64(m.time_horizon_ms) || !decode_ballot(in, m.time_ballot) ||
          !decode_ballot(in, m.time_horizon_ballot))
        return false;
      message = std::move(m);
      return true;
    }
    case 3: {
      AcceptMsg m;
      if (!decode_ballot(in, m.ballot) || !decode_slot_values(in, m.entries) || !in.u64(m.commit) ||
          !in.u64(m.read_round) || !in.u64(m.time_ms))
        return false;
      message = std::move(m);
      return true;
    }
    case 4: {
      AcceptedMsg m;
      if (!decode_ballot(in, m.ballot) || !decode_slots(in, m.slots) || !in.u64(m.commit) ||
          !in.u64(m.read_round))
        return false;
      message = std::move(m);
      return true;
    }
    case 5: {
      RejectMsg m;
      if (!decode_ballot(in, m.ballot) || !decode_ballot(in, m.promised)) return false;
      message = m;
      return true;
    }
    case 6: {
      CatchupRequestMsg m;
      if (!in.u64(m.first_slot)) return false;
      message = m;
      return true;
    }
    case 7: {
      CatchupReplyMsg m;
      if (!decode_slot_values(in, m.chosen) || !in.u64(m.commit) || !in.u64(m.first_slot) ||
          !decode_optional_membership(in, m.membership))
        return false;
      message = std::move(m);
      return true;
    }
    case 8: {
      SnapshotChunkMsg m;
      if (!in.u64(m.slot) || !in.u64(m.total) || !in.u64(m.digest) || !in.u64(m.offset) ||
          !in.bytes(m.data) || !decode_optional_membership(in, m.membership))
        return false;
      message = std::move(m);
      return true;
    }
    case 9: {
      SnapshotRequestMsg m;
      if (!in.u64(m.slot) || !in.u64(m.offset)) return false;
      message = m;
      return true;
    }
    case 10: {
      PreVoteMsg m;
      if (!decode_ballot(in, m.ballot) || !in.u64(m.commit)) return false;
      message = m;
      return true;
    }
    case 11: {
      PreVoteReplyMsg m;
      uint8_t granted = 0;
      if (!decode_ballot(in, m.ballot) || !in.u8(granted) || granted > 1 ||
          !decode_ballot(in, m.promised) || !in.u64(m.commit))
        return false;
      m.granted = granted == 1;
      message = m;
      return true;
    }
    case 12: {
      TimeoutNowMsg m;
      if (!decode_ballot(in, m.ballot)) return false;
      message = m;
      return true;
    }
    default:
      return false;
  }
}

}  // namespace synod::paxos
