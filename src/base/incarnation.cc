#include "base/incarnation.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>

#include "base/assert.h"

namespace synod {

std::string to_string(const Incarnation& incarnation) {
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(incarnation.hi),
                static_cast<unsigned long long>(incarnation.lo));
  return out;
}

std::optional<Incarnation> parse_incarnation(std::string_view text) {
  if (text.size() != 32) return std::nullopt;
  Incarnation out;
  for (size_t i = 0; i < 32; ++i) {
    const char c = text[i];
    uint64_t digit = 0;
    if (c >= '0' && c <= '9')
      digit = static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<uint64_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      digit = static_cast<uint64_t>(c - 'A' + 10);
    else
      return std::nullopt;
    uint64_t& half = i < 16 ? out.hi : out.lo;
    half = (half << 4) | digit;
  }
  return out;
}

Incarnation random_incarnation() {
  for (;;) {
    uint64_t words[2] = {0, 0};
    size_t got = 0;
    auto* bytes = reinterpret_cast<unsigned char*>(words);
    while (got < sizeof words) {
      const ssize_t n = ::getrandom(bytes + got, sizeof words - got, 0);
      if (n < 0 && errno == EINTR) continue;
      SYNOD_ASSERT(n > 0, "getrandom failed: no random source for a new incarnation");
      got += static_cast<size_t>(n);
    }
    const Incarnation out{words[0], words[1]};
    if (out.valid()) return out;
  }
}

}  // namespace synod
