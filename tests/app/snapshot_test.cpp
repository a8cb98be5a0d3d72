#include "tyto/app/snapshot.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace tyto::app {
namespace {

SnapshotFile sample() {
  SnapshotFile snapshot;
  snapshot.written_unix_s = 1'800'000'000;
  snapshot.swarms = 2;
  for (int i = 0; i < 300; ++i) snapshot.records.push_back(static_cast<std::uint8_t>(i * 7));
  return snapshot;
}

TEST(SnapshotFile, EncodesAndDecodesTheSame) {
  const auto decoded = decode_snapshot(encode_snapshot(sample()));
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_EQ(decoded.value().written_unix_s, sample().written_unix_s);
  EXPECT_EQ(decoded.value().swarms, 2u);
  EXPECT_EQ(decoded.value().records, sample().records);
}

// Pins the documented header (big-endian) so a change of writer cannot change the format.
TEST(SnapshotFile, TheHeaderIsLaidOutAsDocumented) {
  SnapshotFile snapshot;
  snapshot.written_unix_s = 0x0102030405060708;
  snapshot.swarms = 0x1112131415161718;
  snapshot.records = {0xaa, 0xbb};
  const std::vector<std::uint8_t> bytes = encode_snapshot(snapshot);
  const std::vector<std::uint8_t> header = {
      'T',  'Y',  'T',  'O',  'S',  'N',  'A',  'P',  0,    0,    0,    1,    0,    0,
      0,    0,    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11, 0x12, 0x13, 0x14,
      0x15, 0x16, 0x17, 0x18, 0,    0,    0,    0,    0,    0,    0,    2,    0xaa, 0xbb};
  ASSERT_EQ(bytes.size(), header.size() + 8);
  EXPECT_EQ(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 42), header);
}

TEST(SnapshotFile, EveryFlippedByteIsRefused) {
  const std::vector<std::uint8_t> good = encode_snapshot(sample());
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::vector<std::uint8_t> bad = good;
    bad[i] ^= 0x10;
    EXPECT_FALSE(decode_snapshot(bad).ok()) << "byte " << i;
  }
}

TEST(SnapshotFile, ForeignTruncatedAndNewerFilesSayWhy) {
  const std::vector<std::uint8_t> good = encode_snapshot(sample());
  EXPECT_EQ(decode_snapshot({'n', 'o', 't', ' ', 'o', 'u', 'r', 's'}).error(),
            "not a tyto snapshot (no TYTOSNAP header)");
  std::vector<std::uint8_t> truncated(good.begin(), good.end() - 20);
  EXPECT_NE(decode_snapshot(truncated).error().find("truncated"), std::string::npos);
  std::vector<std::uint8_t> newer = good;
  newer[11] = 2;  // version 2
  EXPECT_EQ(decode_snapshot(newer).error(), "snapshot version 2, this tyto reads version 1");
  std::vector<std::uint8_t> corrupt = good;
  corrupt[100] ^= 1;
  EXPECT_EQ(decode_snapshot(corrupt).error(), "snapshot checksum mismatch (corrupt file)");
}

TEST(SnapshotFile, WrittenByRenameAndReadBack) {
  const std::string path = "snapshot_test.snapshot";
  std::remove(path.c_str());
  bool missing = false;
  EXPECT_FALSE(read_snapshot_file(path, missing).ok());
  EXPECT_TRUE(missing);
  ASSERT_EQ(write_snapshot_file(path, sample()), "");
  const auto read = read_snapshot_file(path, missing);
  ASSERT_TRUE(read.ok()) << read.error();
  EXPECT_FALSE(missing);
  EXPECT_EQ(read.value().records, sample().records);
  EXPECT_EQ(std::fopen((path + ".tmp").c_str(), "r"), nullptr);  // renamed away
  EXPECT_NE(write_snapshot_file("/nonexistent-dir/x.snapshot", sample()), "");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tyto::app
