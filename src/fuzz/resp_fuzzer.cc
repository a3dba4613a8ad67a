// libFuzzer target: the RESP request parser on arbitrary bytes, fed in arbitrary pieces. It must
// never crash, never allocate beyond its limits (one request included), and after an error accept
// nothing more.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/assert.h"
#include "net/resp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using synod::net::RespParser;
  synod::net::RespLimits limits;
  limits.max_bulk_bytes = 1 << 16;
  limits.max_arguments = 1 << 10;
  limits.max_inline_bytes = 1 << 12;
  limits.max_request_bytes = 1 << 17;
  RespParser parser(limits);
  // The first byte picks the size of the pieces, so splits at every point are explored.
  const size_t piece = size ? 1 + data[0] % 64 : 1;
  std::vector<std::string> args;
  std::string error;
  for (size_t pos = size ? 1 : 0; pos < size; pos += piece) {
    const size_t n = pos + piece <= size ? piece : size - pos;
    parser.feed(std::string_view(reinterpret_cast<const char*>(data + pos), n));
    for (;;) {
      const auto status = parser.next(args, error);
      if (status == RespParser::Status::kError) {
        SYNOD_ASSERT(!error.empty(), "a protocol error without a reason");
        return 0;  // the server closes the connection here
      }
      if (status == RespParser::Status::kNeedMore) break;
      SYNOD_ASSERT(args.size() <= limits.max_arguments, "more arguments than the limit");
      size_t total = 0;
      for (const auto& a : args) {
        SYNOD_ASSERT(a.size() <= limits.max_bulk_bytes, "oversized argument");
        total += a.size();
      }
      SYNOD_ASSERT(total <= limits.max_request_bytes, "a request above the query buffer limit");
    }
  }
  return 0;
}
