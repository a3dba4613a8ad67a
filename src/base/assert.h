// Always-on assertions for broken invariants: a failed SYNOD_ASSERT means the code is wrong, not
// the world. Expected failures (bad input, I/O) go through Status/Result instead.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace synod::detail {
[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line,
                                     const char* msg) {
  std::fprintf(stderr, "synod: assertion failed: %s (%s) at %s:%d\n", expr, msg, file, line);
  std::abort();
}
}  // namespace synod::detail

#define SYNOD_ASSERT(cond, msg)                                       \
  do {                                                                \
    if (!(cond)) [[unlikely]]                                         \
      ::synod::detail::assert_fail(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)
