#include "node/backup.h"

#include <gtest/gtest.h>

namespace synod::node {
namespace {

Backup sample() {
  Backup b;
  b.cluster_id = 42;
  b.slot = 1234;
  b.taken_unix_ms = 1'700'000'000'000;
  b.state = std::string(1000, 's') + "end";
  return b;
}

TEST(Backup, RoundTrips) {
  const std::string bytes = encode_backup(sample());
  ASSERT_EQ(bytes.size(), kBackupHeaderBytes + sample().state.size());
  auto back = decode_backup(bytes);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->cluster_id, 42u);
  EXPECT_EQ(back->slot, 1234u);
  EXPECT_EQ(back->taken_unix_ms, 1'700'000'000'000u);
  EXPECT_EQ(back->state, sample().state);
}

// A copy damaged anywhere — any byte changed, cut short, or grown — is refused, never restored.
TEST(Backup, AnyDamageIsRefused) {
  const std::string bytes = encode_backup(sample());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x20);
    EXPECT_FALSE(decode_backup(damaged).is_ok()) << "byte " << i;
  }
  EXPECT_FALSE(decode_backup(bytes.substr(0, bytes.size() - 1)).is_ok());
  EXPECT_FALSE(decode_backup(bytes.substr(0, kBackupHeaderBytes - 1)).is_ok());
  EXPECT_FALSE(decode_backup(bytes + "x").is_ok());
  EXPECT_FALSE(decode_backup("").is_ok());
}

}  // namespace
}  // namespace synod::node
