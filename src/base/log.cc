#include "base/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>

namespace synod::logging {
namespace {

struct State {
  std::shared_ptr<spdlog::logger> logger;
  Format format = Format::kText;
  uint32_t node = 0;
};

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

// A logger that writes to stderr, unbuffered, in the given pattern (UTC timestamps).
std::shared_ptr<spdlog::logger> make_logger(Format format) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("synod", std::move(sink));
  // Levels as operators grep for them: "warn" and "error", not spdlog's "warning" / "err" in JSON.
  const char* pattern = format == Format::kJson
                            ? R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})"
                            : "%Y-%m-%dT%H:%M:%S.%eZ %l %v";
  logger->set_pattern(pattern, spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

State& state() {
  static State s{make_logger(Format::kText), Format::kText, 0};
  return s;
}

// A JSON string literal of `text`; bytes that are not UTF-8 become U+FFFD rather than an error.
std::string quoted(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Result<Level> parse_level(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  return Status::invalid_argument("--log-level must be debug, info, warn, error or off, not '" +
                                  std::string(name) + "'");
}

Result<Format> parse_format(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return Status::invalid_argument("--log-format must be text or json, not '" + std::string(name) +
                                  "'");
}

void configure(Format format, Level level, uint32_t node) {
  State& s = state();
  s.format = format;
  s.node = node;
  s.logger = make_logger(format);
  s.logger->set_level(to_spdlog(level));
}

bool enabled(Level level) {
  return level != Level::kOff && state().logger->should_log(to_spdlog(level));
}

void write(Level level, std::string_view event, std::string_view message,
           std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  State& s = state();
  std::string line;
  if (s.format == Format::kText) {
    if (s.node != 0) line += "n" + std::to_string(s.node) + " ";
    line.append(event);
    line += ": ";
    line.append(message);
  } else {
    if (s.node != 0) line += "\"node\":" + std::to_string(s.node) + ",";
    line += "\"event\":" + quoted(event) + ",\"msg\":" + quoted(message);
    for (const Field& f : fields) {
      line += "," + quoted(f.key) + ":";
      if (const auto* text = std::get_if<std::string_view>(&f.value)) {
        line += quoted(*text);
      } else if (const auto* u = std::get_if<uint64_t>(&f.value)) {
        line += std::to_string(*u);
      } else {
        line += std::to_string(std::get<int64_t>(f.value));
      }
    }
  }
  s.logger->log(to_spdlog(level), "{}", line);
}

}  // namespace synod::logging
