// The process's operator log (spdlog): one line per event an operator needs, timestamped (UTC,
// milliseconds) and levelled, as text or as JSON lines (docs/operations.md, "Logs", lists every
// event). Lines go to stderr, each written whole and flushed before the call returns.
//
//   text: 2026-12-05T20:14:59.123Z info n1 election_won: leads at ballot 3.1 (chosen through 42)
//   json: {"ts":"2026-12-05T20:14:59.123Z","level":"info","node":1,"event":"election_won",
//          "msg":"leads at ballot 3.1 (chosen through 42)","ballot":"3.1","slot":42}
//
// Not for the protocol core (src/paxos does no I/O): the driver logs what the core reports.
// configure() before the first line; then any thread may write.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

#include "base/status.h"

namespace synod::logging {

enum class Level { kDebug, kInfo, kWarn, kError, kOff };
enum class Format { kText, kJson };

// "debug", "info", "warn", "error", "off"; "text", "json".
Result<Level> parse_level(std::string_view name);
Result<Format> parse_format(std::string_view name);

// `node` (0: none) is written on every line.
void configure(Format format, Level level, uint32_t node);
bool enabled(Level level);

// A field of a JSON line (a text line has only the message, which should say it all).
struct Field {
  std::string_view key;
  std::variant<int64_t, uint64_t, std::string_view> value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, uint64_t v) : key(k), value(v) {}
  Field(std::string_view k, uint32_t v) : key(k), value(uint64_t{v}) {}
  Field(std::string_view k, int64_t v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(int64_t{v}) {}
};

// Writes one line: `event` is a fixed snake_case name (the list in docs/operations.md),
// `message` a sentence for people.
void write(Level level, std::string_view event, std::string_view message,
           std::initializer_list<Field> fields = {});

}  // namespace synod::logging
