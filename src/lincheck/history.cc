#include "lincheck/history.h"

#include <fmt/core.h>

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
  }
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
  }
  return "?";
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
  if (!parsed_kind) return f.error("\"op\" must be get, put, cas or del, not " + printable(kind));
  op.kind = *parsed_kind;
  SYNOD_RETURN_IF_ERROR(f.string("key", op.key));
  SYNOD_RETURN_IF_ERROR(parse_arguments(f, op));
  SYNOD_RETURN_IF_ERROR(parse_times(f, op));
  SYNOD_RETURN_IF_ERROR(parse_outcome(f, op));
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
