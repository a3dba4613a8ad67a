#include "kv/keyspace.h"

#include <bit>
#include <cmath>

#include "base/coding.h"

namespace synod::kv {

std::string_view type_name(Type type) {
  switch (type) {
    case Type::kString:
      return "string";
    case Type::kHash:
      return "hash";
    case Type::kList:
      return "list";
    case Type::kSet:
      return "set";
    case Type::kZset:
      return "zset";
  }
  return "none";
}

void ZSet::put(const std::string& member, double score) {
  if (score == 0) score = 0;  // -0 is stored as 0, as Redis's compact encoding does
  auto [it, inserted] = scores.try_emplace(member, score);
  if (inserted) {
    bytes += member.size() + 8;
  } else {
    order.erase({it->second, member});
    it->second = score;
  }
  order.emplace(score, member);
}

bool ZSet::remove(std::string_view member) {
  auto it = scores.find(member);
  if (it == scores.end()) return false;
  bytes -= it->first.size() + 8;
  order.erase({it->second, it->first});
  scores.erase(it);
  return true;
}

const Value* Keyspace::find(std::string_view key, uint64_t now_ms) const {
  auto it = data_.find(key);
  if (it == data_.end()) return nullptr;
  if (it->second.expire_at_ms != 0 && it->second.expire_at_ms <= now_ms) return nullptr;
  return &it->second;
}

Value* Keyspace::find_live(std::string_view key) {
  Value* v = const_cast<Value*>(find(key, clock_ms_));
  if (v) v->version = seed_;
  return v;
}

uint64_t Keyspace::modified_at(std::string_view key) const {
  if (auto it = data_.find(key); it != data_.end()) return it->second.version;
  if (auto it = tombstones_.find(key); it != tombstones_.end()) return it->second;
  return tombstone_floor_;
}

void Keyspace::bury(std::string_view key) {
  unbury(key);
  tombstones_.emplace(std::string(key), seed_);
  tombstone_order_.emplace(seed_, std::string(key));
  while (tombstones_.size() > kMaxTombstones) {
    const auto oldest = tombstone_order_.begin();
    tombstone_floor_ = std::max(tombstone_floor_, oldest->first);
    tombstones_.erase(tombstones_.find(oldest->second));
    tombstone_order_.erase(oldest);
  }
}

void Keyspace::unbury(std::string_view key) {
  auto it = tombstones_.find(key);
  if (it == tombstones_.end()) return;
  tombstone_order_.erase({it->second, it->first});
  tombstones_.erase(it);
}

Value& Keyspace::put(const std::string& key, Value value) {
  unbury(key);
  value.version = seed_;
  // One search, and an existing key keeps its node: an overwrite (most SETs) frees and allocates
  // no tree node and copies no key.
  auto it = data_.lower_bound(key);
  if (it != data_.end() && it->first == key) {
    if (it->second.expire_at_ms != 0) drop_expiry(it->second.expire_at_ms, it->first);
    discard(std::move(it->second));
    it->second = std::move(value);
  } else {
    it = data_.emplace_hint(it, key, std::move(value));
  }
  if (it->second.expire_at_ms != 0) add_expiry(it->second.expire_at_ms, key);
  return it->second;
}

void Keyspace::drop_if_empty(std::string_view key) {
  auto it = data_.find(key);
  if (it == data_.end()) return;
  const bool empty = std::visit(
      [](const auto& v) {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>) {
          return false;  // an empty string is a value
        } else {
          return v->size() == 0;
        }
      },
      it->second.data);
  if (empty) erase(key);
}

bool Keyspace::remove(std::string_view key) {
  auto it = data_.find(key);
  if (it == data_.end()) return false;
  if (it->second.expire_at_ms != 0) drop_expiry(it->second.expire_at_ms, it->first);
  discard(std::move(it->second));
  data_.erase(it);
  return true;
}

bool Keyspace::erase(std::string_view key) {
  if (!remove(key)) return false;
  bury(key);
  return true;
}

void Keyspace::set_expiry(std::string_view key, Value& value, uint64_t at_ms) {
  if (value.expire_at_ms != 0) drop_expiry(value.expire_at_ms, std::string(key));
  value.expire_at_ms = at_ms;
  value.version = seed_;
  if (at_ms != 0) add_expiry(at_ms, std::string(key));
}

void Keyspace::expire_due() {
  while (!expiries_.empty() && expiries_.begin()->first <= clock_ms_) {
    const std::string key = expiries_.begin()->second;
    erase(key);
  }
}

void Keyspace::clear() {
  if (dispose_ && data_.size() + tombstones_.size() >= kDisposeElements) {
    struct Old {
      Map data;
      std::set<std::pair<uint64_t, std::string>> expiries;
      std::map<std::string, uint64_t, std::less<>> tombstones;
      std::set<std::pair<uint64_t, std::string>> tombstone_order;
    };
    dispose_(std::make_shared<Old>(Old{std::move(data_), std::move(expiries_),
                                       std::move(tombstones_), std::move(tombstone_order_)}));
  }
  data_.clear();
  expiries_.clear();
  expiry_sum_ = 0;
  // Every key, present or not, counts as modified now.
  tombstones_.clear();
  tombstone_order_.clear();
  tombstone_floor_ = seed_;
}

size_t Keyspace::live_count(uint64_t now_ms) const {
  size_t expired = 0;
  for (auto it = expiries_.begin(); it != expiries_.end() && it->first <= now_ms; ++it) ++expired;
  return data_.size() - expired;
}

void Keyspace::discard(Value&& value) {
  if (!dispose_) return;
  const size_t elements = std::visit(
      [](const auto& v) -> size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>) {
          return 0;  // one allocation, however long
        } else {
          return v.holds() ? v->size() : 0;
        }
      },
      value.data);
  if (elements >= kDisposeElements) dispose_(std::make_shared<Value>(std::move(value)));
}

void Keyspace::add_expiry(uint64_t at_ms, std::string key) {
  if (expiries_.emplace(at_ms, std::move(key)).second) expiry_sum_ += at_ms;
}

void Keyspace::drop_expiry(uint64_t at_ms, const std::string& key) {
  if (expiries_.erase({at_ms, key}) != 0) expiry_sum_ -= at_ms;
}

Keyspace::ExpiryStats Keyspace::expiry_stats(uint64_t now_ms) const {
  ExpiryStats stats;
  stats.expires = expiries_.size();
  if (expiries_.empty()) return stats;
  // The mean of max(at - now, 0): every deadline's distance from now, less the deadlines already
  // past (those the log has not removed yet: few, and only those are walked).
  ExpirySum past = 0;
  size_t past_count = 0;
  for (auto it = expiries_.begin(); it != expiries_.end() && it->first <= now_ms; ++it) {
    past += it->first;
    ++past_count;
  }
  const ExpirySum ahead = expiry_sum_ - past - ExpirySum(expiries_.size() - past_count) * now_ms;
  stats.avg_ttl_ms = static_cast<uint64_t>(ahead / expiries_.size());
  return stats;
}

std::optional<std::string> Keyspace::check_collection(size_t elements, size_t bytes) const {
  if (elements > limits_.max_elements)
    return "ERR the value would hold more than " + std::to_string(limits_.max_elements) +
           " elements (the per-key limit); nothing was changed";
  if (bytes > limits_.max_value_bytes)
    return "ERR the value would hold more than " + std::to_string(limits_.max_value_bytes) +
           " bytes (the per-key limit); nothing was changed";
  return std::nullopt;
}

std::optional<std::string> Keyspace::check_string(size_t bytes) const {
  // Redis's words for its own bound (proto-max-bulk-len), with Synod's per-key limit.
  if (bytes > limits_.max_value_bytes)
    return std::string("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  return std::nullopt;
}

namespace {

struct Encoder {
  std::string& out;
  void operator()(const std::string& s) const { put_bytes(out, s); }
  template <class T>
  void operator()(const Boxed<T>& boxed) const {
    (*this)(*boxed);
  }
  void operator()(const Hash& h) const {
    put_u64(out, h.fields.size());
    for (const auto& [f, v] : h.fields) {
      put_bytes(out, f);
      put_bytes(out, v);
    }
  }
  void operator()(const List& l) const {
    put_u64(out, l.items.size());
    for (const auto& item : l.items) put_bytes(out, item);
  }
  void operator()(const Set& s) const {
    put_u64(out, s.members.size());
    for (const auto& m : s.members) put_bytes(out, m);
  }
  void operator()(const ZSet& z) const {
    put_u64(out, z.scores.size());
    for (const auto& [m, score] : z.scores) {
      put_bytes(out, m);
      put_u64(out, std::bit_cast<uint64_t>(score));
    }
  }
};

// A collection's element count: at least 1 (empty ones are never kept), at most the bound, and
// no more than the bytes left could hold (4 bytes each at least).
bool read_count(Reader& in, const KeyLimits& limits, uint64_t& n) {
  return in.u64(n) && n >= 1 && n <= limits.max_elements && n <= in.remaining() / 4;
}

bool decode_value(Reader& in, uint8_t type, const KeyLimits& limits, Value& value) {
  uint64_t n = 0;
  std::string a, b;
  switch (static_cast<Type>(type)) {
    case Type::kString: {
      std::string s;
      if (!in.bytes(s) || s.size() > limits.max_value_bytes) return false;
      value.data = std::move(s);
      return true;
    }
    case Type::kHash: {
      Hash h;
      if (!read_count(in, limits, n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        if (!in.bytes(a) || !in.bytes(b)) return false;
        h.bytes += a.size() + b.size();
        if (!h.fields.emplace(std::move(a), std::move(b)).second) return false;
      }
      const bool ok = h.bytes <= limits.max_value_bytes;
      value.data = Boxed<Hash>(std::move(h));
      return ok;
    }
    case Type::kList: {
      List l;
      if (!read_count(in, limits, n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        if (!in.bytes(a)) return false;
        l.bytes += a.size();
        l.items.push_back(std::move(a));
      }
      const bool ok = l.bytes <= limits.max_value_bytes;
      value.data = Boxed<List>(std::move(l));
      return ok;
    }
    case Type::kSet: {
      Set s;
      if (!read_count(in, limits, n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        if (!in.bytes(a)) return false;
        s.bytes += a.size();
        if (!s.members.insert(std::move(a)).second) return false;
      }
      const bool ok = s.bytes <= limits.max_value_bytes;
      value.data = Boxed<Set>(std::move(s));
      return ok;
    }
    case Type::kZset: {
      ZSet z;
      if (!read_count(in, limits, n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        uint64_t bits = 0;
        if (!in.bytes(a) || !in.u64(bits)) return false;
        const double score = std::bit_cast<double>(bits);
        if (std::isnan(score) || z.scores.count(a)) return false;
        z.put(a, score);
      }
      const bool ok = z.bytes <= limits.max_value_bytes;
      value.data = Boxed<ZSet>(std::move(z));
      return ok;
    }
  }
  return false;  // an unknown type byte
}

}  // namespace

void Keyspace::encode(std::string& out) const {
  put_u64(out, data_.size());
  for (const auto& [key, value] : data_) {
    put_bytes(out, key);
    put_u64(out, value.expire_at_ms);
    put_u64(out, value.version);
    put_u8(out, static_cast<uint8_t>(value.type()));
    std::visit(Encoder{out}, value.data);
  }
  put_u64(out, tombstone_floor_);
  put_u64(out, tombstones_.size());
  for (const auto& [key, at] : tombstones_) {
    put_bytes(out, key);
    put_u64(out, at);
  }
}

bool Keyspace::decode(Reader& in, bool with_versions) {
  uint64_t n = 0;
  if (!in.u64(n) || n > in.remaining() / 17) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string key;
    Value value;
    uint8_t type = 0;
    if (!in.bytes(key) || !in.u64(value.expire_at_ms) ||
        (with_versions && !in.u64(value.version)) || value.version > seed_ || !in.u8(type) ||
        !decode_value(in, type, limits_, value) || data_.count(key))
      return false;
    const uint64_t version = value.version;
    Value& stored = put(key, std::move(value));
    if (with_versions) stored.version = version;
  }
  if (!with_versions) {
    // No versions recorded: every key counts as modified at the snapshot's position, the same
    // answer on every replica restoring it.
    tombstone_floor_ = seed_;
    return true;
  }
  if (!in.u64(tombstone_floor_) || tombstone_floor_ > seed_ || !in.u64(n) || n > kMaxTombstones ||
      n > in.remaining() / 12)
    return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string key;
    uint64_t at = 0;
    if (!in.bytes(key) || !in.u64(at) || at > seed_ || data_.count(key) ||
        !tombstones_.emplace(key, at).second)
      return false;
    tombstone_order_.emplace(at, std::move(key));
  }
  return true;
}

bool Keyspace::decode_strings(Reader& in) {
  uint64_t n = 0;
  if (!in.u64(n) || n > in.remaining() / 16) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string key, s;
    Value value;
    if (!in.bytes(key) || !in.bytes(s) || !in.u64(value.expire_at_ms) || data_.count(key))
      return false;
    value.data = std::move(s);
    put(key, std::move(value));
  }
  return true;
}

}  // namespace synod::kv
