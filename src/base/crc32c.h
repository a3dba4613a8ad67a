// CRC-32C (Castagnoli), the checksum of every log record, segment header, snapshot and frame.
// Computed by Intel's ISA-L (hardware-accelerated where the CPU allows); see docs/wal-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace synod {

// The CRC-32C of `data` continued from `crc` (the CRC of whatever came before; 0 to start).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(const void* data, size_t size) {
  return crc32c_extend(0, data, size);
}
inline uint32_t crc32c(std::string_view data) {
  return crc32c(data.data(), data.size());
}

}  // namespace synod
