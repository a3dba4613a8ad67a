#include "base/crc32c.h"

#include <isa-l/crc.h>

namespace synod {

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) {
  // ISA-L's crc32_iscsi neither pre- nor post-inverts; the standard CRC-32C does both.
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint32_t state = ~crc;
  while (size > 0) {
    const int chunk = size > (1u << 30) ? (1 << 30) : static_cast<int>(size);
    state = crc32_iscsi(const_cast<unsigned char*>(bytes), chunk, state);
    bytes += chunk;
    size -= static_cast<size_t>(chunk);
  }
  return ~state;
}

}  // namespace synod
