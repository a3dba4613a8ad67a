// Random and mutated bytes through every storage parser: segment scanning, record payload
// decoding and snapshot files. Nothing may crash, read out of bounds (the sanitizer build runs
// this too) or return records that were not written.
#include <gtest/gtest.h>

#include "base/rng.h"
#include "storage/log.h"
#include "storage/mem_file_system.h"
#include "storage/paxos_log.h"
#include "storage/snapshot_store.h"

namespace synod::storage {
namespace {

std::string random_bytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng.below(256));
  return s;
}

TEST(StorageFuzz, MutatedSegmentsNeverYieldUnwrittenRecords) {
  // A real segment with known records.
  MemFileSystem base;
  LogOptions o;
  o.dir = "wal";
  o.segment_bytes = 8192;
  std::vector<std::string> written;
  {
    auto log = Log::open(base, o, nullptr);
    ASSERT_TRUE(log.is_ok());
    Rng rng(1);
    for (int i = 0; i < 60; ++i) {
      written.push_back(random_bytes(rng, rng.below(64)));
      (*log)->append(kFirstUserRecordType, written.back());
      if (i % 5 == 4) {
        ASSERT_TRUE((*log)->sync().is_ok());
      }
    }
  }
  const std::string image = *base.read_file("wal/" + segment_file_name(1));
  Rng rng(2);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::string bytes = image;
    const int mutations = 1 + static_cast<int>(rng.below(8));
    for (int m = 0; m < mutations && !bytes.empty(); ++m) {
      switch (rng.below(4)) {
        case 0:  // flip a bit
          bytes[rng.below(bytes.size())] ^= static_cast<char>(1u << rng.below(8));
          break;
        case 1:  // overwrite a run with random bytes
        {
          const size_t at = rng.below(bytes.size());
          const size_t n = std::min<size_t>(rng.below(32), bytes.size() - at);
          std::string r = random_bytes(rng, n);
          bytes.replace(at, n, r);
          break;
        }
        case 2:  // truncate
          bytes.resize(rng.below(bytes.size() + 1));
          break;
        default:  // a huge length field somewhere
          if (bytes.size() > 8) {
            const size_t at = rng.below(bytes.size() - 8);
            bytes[at + 4] = '\xff';
            bytes[at + 7] = '\x7f';
          }
      }
    }
    MemFileSystem fs;
    ASSERT_TRUE(fs.create_dir("wal").is_ok());
    auto f = fs.open_writable("wal/" + segment_file_name(1));
    ASSERT_TRUE((*f)->write_at(0, bytes).is_ok());
    LogScan scan = scan_log(fs, "wal");
    // Whatever the verdict, every record returned is one that was written, in order.
    ASSERT_LE(scan.records.size(), written.size());
    for (size_t i = 0; i < scan.records.size(); ++i)
      ASSERT_EQ(scan.records[i].payload, written[i]) << "iteration " << iteration;
  }
}

TEST(StorageFuzz, RecordPayloadsAndSnapshotsRejectGarbage) {
  Rng rng(3);
  for (int i = 0; i < 20000; ++i) {
    const std::string bytes = random_bytes(rng, rng.below(80));
    const auto type = static_cast<uint8_t>(16 + rng.below(5));
    (void)describe_record(type, bytes);
    std::vector<LogRecord> records{{type, bytes, 1, 40}};
    paxos::DurableState state;
    (void)replay(records, state);
    auto snap = decode_snapshot_file("fuzz.snap", bytes, 0, 0);
    EXPECT_FALSE(snap.is_ok());
  }
}

}  // namespace
}  // namespace synod::storage
