#include "net/refusal_log.h"

#include <cctype>

namespace synod::net {

std::string RefusalLog::kind(std::string_view reason) {
  std::string out;
  for (size_t i = 0; i < reason.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(reason[i]))) {
      if (out.empty() || out.back() != '#') out += '#';
    } else {
      out += reason[i];
    }
  }
  return out;
}

bool RefusalLog::refused(const std::string& source, std::string_view reason,
                         const std::string& line, Clock::time_point now) {
  std::string key = source + " " + kind(reason);
  auto it = entries_.find(key);
  if (it == entries_.end() && entries_.size() >= options_.max_sources) {
    // Forget the keys whose interval has passed with nothing left unsaid; if none can go, new
    // sources share one key.
    std::erase_if(entries_, [&](const auto& e) {
      return e.second.suppressed == 0 && now - e.second.logged >= options_.interval;
    });
    if (entries_.size() >= options_.max_sources) key = "(other sources)";
    it = entries_.find(key);
  }
  if (it != entries_.end() && now - it->second.logged < options_.interval) {
    ++it->second.suppressed;
    ++suppressed_;
    return false;
  }
  std::string out = line;
  if (it != entries_.end() && it->second.suppressed > 0) {
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(now - it->second.logged).count();
    out += " (and " + std::to_string(it->second.suppressed) + " more like it from " +
           (key == "(other sources)" ? std::string("other sources") : source) + " in the last " +
           std::to_string(seconds) + " s, not logged)";
  }
  entries_[key] = Entry{now, 0};
  sink_(out);
  return true;
}

}  // namespace synod::net
