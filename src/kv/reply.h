// A reply of the key-value service, independent of the wire protocol (the server encodes it as
// RESP2 or RESP3; the client decodes RESP into it). Its own header, so that a client knows replies
// without knowing the store (scripts/check-structure).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace synod::kv {

// A reply, independent of the wire protocol (the server encodes it as RESP2 or RESP3).
struct Reply {
  // kNullArray: Redis's null array (RESP2 *-1), which a few commands answer instead of a null
  // bulk string (LPOP key count on a missing key).
  enum class Kind { kSimple, kError, kInteger, kBulk, kNull, kArray, kNullArray };
  Kind kind = Kind::kNull;
  std::string text;  // kSimple, kError, kBulk
  int64_t integer = 0;
  std::vector<Reply> elements;

  static Reply ok() { return simple("OK"); }
  static Reply simple(std::string s) { return {Kind::kSimple, std::move(s), 0, {}}; }
  static Reply error(std::string s) { return {Kind::kError, std::move(s), 0, {}}; }
  static Reply integer_of(int64_t v) { return {Kind::kInteger, {}, v, {}}; }
  static Reply bulk(std::string s) { return {Kind::kBulk, std::move(s), 0, {}}; }
  static Reply null() { return {}; }
  static Reply null_array() { return {Kind::kNullArray, {}, 0, {}}; }
  static Reply array(std::vector<Reply> e) { return {Kind::kArray, {}, 0, std::move(e)}; }
  bool operator==(const Reply&) const = default;
};

// The byte coding of a Reply, shared by snapshots (exactly-once sessions) and the peer wire
// (replies to forwarded commands): kind u8, text (u32 length + bytes), integer u64, element count
// u32, then each element the same way (nested at most 4 deep).
void encode_reply(std::string& out, const Reply& reply);
Result<Reply> decode_reply(std::string_view bytes);

}  // namespace synod::kv
