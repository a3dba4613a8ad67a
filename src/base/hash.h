// A running 64-bit FNV-1a digest, used to compare traces between runs.
#pragma once

#include <cstdint>
#include <string_view>

namespace synod {

class Digest {
 public:
  void add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      h_ ^= c;
      h_ *= 0x100000001b3ULL;
    }
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace synod
