#include "lincheck/history.h"

#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

namespace synod::lincheck {

namespace {

using nlohmann::json;

// Field readers over one parsed object. Each returns an error naming the field; nlohmann's
// typed getters throw on a type mismatch, so every get<>() below is guarded by a type test.
class Fields {
 public:
  Fields(const json& object, int line) : object_(object), line_(line) {}

  Status error(std::string_view what) const {
    return Status::invalid_argument(fmt::format("line {}: {}", line_, what));
  }
  bool has(const char* name) const {
    auto it = object_.find(name);
    return it != object_.end() && !it->is_null();
  }
  Status integer(const char* name, int64_t& out) const {
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) return error(fmt::format("missing \"{}\"", name));
    if (it->is_number_unsigned()) {
      if (it->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
        return error(fmt::format("\"{}\" is out of range", name));
      out = int64_t(it->get<uint64_t>());
      return Status::ok();
    }
    if (!it->is_number_integer()) return error(fmt::format("\"{}\" must be an integer", name));
    out = it->get<int64_t>();
    return Status::ok();
  }
  Status string(const char* name, std::string& out) const {
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) return error(fmt::format("missing \"{}\"", name));
    if (!it->is_string()) return error(fmt::format("\"{}\" must be a string", name));
    out = it->get<std::string>();
    return Status::ok();
  }
  // An optional boolean: absent and null leave `out` untouched.
  Status boolean(const char* name, std::optional<bool>& out) const {
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) return Status::ok();
    if (!it->is_boolean()) return error(fmt::format("\"{}\" must be true or false", name));
    out = it->get<bool>();
    return Status::ok();
  }

 private:
  const json& object_;
  int line_;
};

std::optional<OpKind> parse_kind(std::string_view name) {
  if (name == "get") return OpKind::kGet;
  if (name == "put") return OpKind::kPut;
  if (name == "cas") return OpKind::kCas;
  if (name == "del") return OpKind::kDel;
  if (name == "txn") return OpKind::kTxn;
  return std::nullopt;
}

Status parse_times(const Fields& f, Operation& op) {
  SYNOD_RETURN_IF_ERROR(f.integer("call", op.call_ns));
  if (f.has("return")) {
    int64_t return_ns = 0;
    SYNOD_RETURN_IF_ERROR(f.integer("return", return_ns));
    if (return_ns < op.call_ns) return f.error("\"return\" is before \"call\"");
    op.return_ns = return_ns;
  }
  return Status::ok();
}

Status parse_outcome(const Fields& f, Operation& op) {
  std::optional<bool> ok;
  SYNOD_RETURN_IF_ERROR(f.boolean("ok", ok));
  SYNOD_RETURN_IF_ERROR(f.boolean("found", op.found));
  if (f.has("error")) {
    op.error.emplace();
    SYNOD_RETURN_IF_ERROR(f.string("error", *op.error));
  }
  if (!op.outcome_unknown() && !op.error && !ok)
    return f.error("a completed operation needs \"ok\" (or an \"error\")");
  op.ok = ok.value_or(false) && !op.error;
  if (op.kind == OpKind::kGet && op.ok && op.found != false) {
    if (!f.has("output")) return f.error("a successful get needs \"output\" or \"found\":false");
  }
  if (f.has("output")) SYNOD_RETURN_IF_ERROR(f.string("output", op.output));
  return Status::ok();
}

Status parse_arguments(const Fields& f, Operation& op) {
  switch (op.kind) {
    case OpKind::kGet:
    case OpKind::kDel:
      return Status::ok();
    case OpKind::kPut:
      return f.string("value", op.value);
    case OpKind::kCas: {
      std::optional<bool> absent;
      SYNOD_RETURN_IF_ERROR(f.boolean("expect_absent", absent));
      op.expect_absent = absent.value_or(false);
      if (op.expect_absent && f.has("expect"))
        return f.error("cas has both \"expect\" and \"expect_absent\"");
      if (!op.expect_absent) SYNOD_RETURN_IF_ERROR(f.string("expect", op.expect));
      return f.string("new", op.new_value);
    }
    case OpKind::kTxn:
      return Status::ok();  // parse_parts()
  }
  return Status::ok();
}

std::string printable(std::string_view s);

// One part of a txn: {"op":..., "key":..., arguments, and for a get "found"/"output"}.
Status parse_part(const nlohmann::json& object, int line, Operation& part) {
  const Fields f(object, line);
  if (!object.is_object()) return f.error("a txn part must be a JSON object");
  std::string kind;
  SYNOD_RETURN_IF_ERROR(f.string("op", kind));
  const std::optional<OpKind> parsed_kind = parse_kind(kind);
  if (!parsed_kind || *parsed_kind == OpKind::kTxn)
    return f.error("a txn part's \"op\" must be get, put, cas or del, not " + printable(kind));
  part.kind = *parsed_kind;
  part.line = line;
  SYNOD_RETURN_IF_ERROR(f.string("key", part.key));
  SYNOD_RETURN_IF_ERROR(parse_arguments(f, part));
  SYNOD_RETURN_IF_ERROR(f.boolean("found", part.found));
  if (f.has("output")) SYNOD_RETURN_IF_ERROR(f.string("output", part.output));
  return Status::ok();
}

// A txn's "parts", after its outcome is known: a completed get part needs what it read, and a
// txn that did not match has exactly one cas part (the one that did not match).
Status parse_parts(const nlohmann::json& object, const Fields& f, Operation& op) {
  auto it = object.find("parts");
  if (it == object.end() || !it->is_array() || it->empty())
    return f.error("a txn needs \"parts\", a non-empty array");
  if (it->size() > kMaxTxnParts)
    return f.error(fmt::format("a txn has at most {} parts", kMaxTxnParts));
  for (const auto& element : *it) {
    Operation part;
    SYNOD_RETURN_IF_ERROR(parse_part(element, op.line, part));
    part.client = op.client;
    part.call_ns = op.call_ns;
    part.return_ns = op.return_ns;
    part.ok = op.ok;
    if (part.kind == OpKind::kGet && op.ok && part.found != false && !element.contains("output"))
      return f.error("a get part of a successful txn needs \"output\" or \"found\":false");
    op.parts.push_back(std::move(part));
  }
  const auto cas_parts = std::count_if(op.parts.begin(), op.parts.end(),
                                       [](const Operation& p) { return p.kind == OpKind::kCas; });
  if (!op.outcome_unknown() && !op.error && !op.ok && cas_parts != 1)
    return f.error(
        "a txn with \"ok\":false needs exactly one cas part (the one that did not match)");
  return Status::ok();
}

bool is_comment(std::string_view line) {
  const size_t start = line.find_first_not_of(" \t\r");
  if (start == std::string_view::npos) return true;
  line.remove_prefix(start);
  return line.starts_with('#') || line.starts_with("//");
}

// Strings from a history may hold anything; print them quoted, control bytes escaped.
std::string printable(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string describe_call(const Operation& op) {
  switch (op.kind) {
    case OpKind::kGet:
      return "get";
    case OpKind::kPut:
      return "put " + printable(op.value);
    case OpKind::kDel:
      return "del";
    case OpKind::kCas:
      return "cas " + (op.expect_absent ? std::string("<absent>") : printable(op.expect)) + " -> " +
             printable(op.new_value);
    case OpKind::kTxn: {
      std::string out = "txn {";
      for (const Operation& part : op.parts) {
        out += (out.size() > 5 ? "; " : "") + part.key + " " + describe_call(part);
        if (part.kind == OpKind::kGet && op.ok)
          out += part.found == false ? " -> <absent>" : " -> " + printable(part.output);
      }
      return out + "}";
    }
  }
  return "?";
}

std::string describe_outcome(const Operation& op) {
  if (op.error) return "error " + printable(*op.error);
  if (op.outcome_unknown()) return "unknown outcome";
  switch (op.kind) {
    case OpKind::kGet:
      if (!op.ok) return "failed";
      return op.found == false ? "-> <absent>" : "-> " + printable(op.output);
    case OpKind::kCas:
      return op.ok ? "ok" : "mismatch";
    case OpKind::kDel:
      if (op.ok && op.found) return *op.found ? "ok (existed)" : "ok (was absent)";
      return op.ok ? "ok" : "failed";
    case OpKind::kPut:
      return op.ok ? "ok" : "failed";
    case OpKind::kTxn:
      return op.ok ? "ok" : "mismatch";
  }
  return "?";
}

}  // namespace

std::string_view op_kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::kGet:
      return "get";
    case OpKind::kPut:
      return "put";
    case OpKind::kCas:
      return "cas";
    case OpKind::kDel:
      return "del";
    case OpKind::kTxn:
      return "txn";
  }
  return "?";
}

std::vector<std::string> keys_of(const Operation& op) {
  if (op.kind != OpKind::kTxn) return {op.key};
  std::vector<std::string> keys;
  for (const Operation& part : op.parts) keys.push_back(part.key);
  return keys;
}

Result<Operation> parse_operation(std::string_view text, int line) {
  const json object = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded())
    return Status::invalid_argument(fmt::format("line {}: not JSON", line));
  const Fields f(object, line);
  if (!object.is_object()) return f.error("not a JSON object");
  Operation op;
  op.line = line;
  SYNOD_RETURN_IF_ERROR(f.integer("client", op.client));
  std::string kind;
  SYNOD_RETURN_IF_ERROR(f.string("op", kind));
  const std::optional<OpKind> parsed_kind = parse_kind(kind);
  if (!parsed_kind)
    return f.error("\"op\" must be get, put, cas, del or txn, not " + printable(kind));
  op.kind = *parsed_kind;
  if (op.kind != OpKind::kTxn) SYNOD_RETURN_IF_ERROR(f.string("key", op.key));
  SYNOD_RETURN_IF_ERROR(parse_arguments(f, op));
  SYNOD_RETURN_IF_ERROR(parse_times(f, op));
  SYNOD_RETURN_IF_ERROR(parse_outcome(f, op));
  if (op.kind == OpKind::kTxn) SYNOD_RETURN_IF_ERROR(parse_parts(object, f, op));
  return op;
}

Result<History> parse_history(std::string_view text) {
  History history;
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.size() > kMaxLineBytes)
      return Status::invalid_argument(
          fmt::format("line {}: longer than {} bytes", line_number, kMaxLineBytes));
    if (is_comment(line)) continue;
    Result<Operation> op = parse_operation(line, line_number);
    if (!op.is_ok()) return op.status();
    history.ops.push_back(std::move(*op));
  }
  return history;
}

std::string describe(const Operation& op) {
  const std::string returned =
      op.return_ns ? fmt::format("{}", *op.return_ns) : std::string("unknown");
  const std::string interval = fmt::format("[{}, {}]", op.call_ns, returned);
  std::string text = fmt::format("client {:<3} {:<24} {:<24} {}", op.client, describe_call(op),
                                 interval, describe_outcome(op));
  if (op.line > 0) text += fmt::format("  (line {})", op.line);
  return text;
}

}  // namespace synod::lincheck
