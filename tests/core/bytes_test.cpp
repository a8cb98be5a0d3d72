#include "tyto/core/bytes.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace tyto {
namespace {

TEST(ByteReader, ReadsBigEndianFields) {
  const std::array<std::uint8_t, 15> in{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                        0x09, 0x0a, 0x0b, 0xff, 0xff, 0xff, 0xfe};
  ByteReader reader(in);
  EXPECT_EQ(reader.u8(), 0x01);
  EXPECT_EQ(reader.u16(), 0x0203);
  EXPECT_EQ(reader.u64(), 0x0405060708090a0bull);
  EXPECT_EQ(reader.i32(), -2);
  EXPECT_TRUE(reader.ok());
  EXPECT_EQ(reader.remaining(), 0u);
}

TEST(ByteReader, FailureIsStickyAndReturnsZeros) {
  const std::array<std::uint8_t, 3> in{0xaa, 0xbb, 0xcc};
  ByteReader reader(in);
  EXPECT_EQ(reader.u32(), 0u);  // only 3 bytes
  EXPECT_FALSE(reader.ok());
  EXPECT_EQ(reader.u8(), 0u);  // even though a byte is left, the reader stays failed
  EXPECT_TRUE(reader.bytes(1).empty());
  EXPECT_EQ(reader.offset(), 0u);
}

TEST(ByteReader, BytesReturnsExactWindowOrNothing) {
  const std::array<std::uint8_t, 4> in{1, 2, 3, 4};
  ByteReader reader(in);
  const auto first = reader.bytes(3);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[2], 3);
  EXPECT_TRUE(reader.bytes(2).empty());
  EXPECT_FALSE(reader.ok());
}

TEST(ByteReader, EveryTruncationOfARecordFails) {
  std::vector<std::uint8_t> record(98, 0x5a);
  for (std::size_t size = 0; size < record.size(); ++size) {
    ByteReader reader{std::span<const std::uint8_t>(record).first(size)};
    reader.u64();
    reader.u32();
    reader.u32();
    reader.bytes(20);
    reader.bytes(20);
    reader.u64();
    reader.u64();
    reader.u64();
    reader.u32();
    reader.u32();
    reader.u32();
    reader.i32();
    reader.u16();
    EXPECT_FALSE(reader.ok()) << "size " << size;
  }
  ByteReader whole(record);
  whole.bytes(98);
  EXPECT_TRUE(whole.ok());
}

TEST(ByteWriter, WritesBigEndianAndRefusesOverflow) {
  std::array<std::uint8_t, 7> out{};
  ByteWriter writer(out);
  writer.u32(0x01020304);
  writer.u16(0x0506);
  EXPECT_TRUE(writer.ok());
  writer.u16(0x0708);  // one byte short
  EXPECT_FALSE(writer.ok());
  EXPECT_EQ(writer.size(), 6u);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[5], 6);
  EXPECT_EQ(out[6], 0);  // untouched
  EXPECT_EQ(writer.reserve(1), nullptr);
}

TEST(ByteWriter, RoundTripsThroughReader) {
  std::array<std::uint8_t, 32> out{};
  ByteWriter writer(out);
  writer.u64(0xdeadbeefcafef00dull);
  writer.i32(-1);
  const std::array<std::uint8_t, 3> tail{7, 8, 9};
  writer.bytes(tail);
  ASSERT_TRUE(writer.ok());
  ByteReader reader(writer.written());
  EXPECT_EQ(reader.u64(), 0xdeadbeefcafef00dull);
  EXPECT_EQ(reader.i32(), -1);
  EXPECT_EQ(reader.bytes(3)[1], 8);
  EXPECT_EQ(reader.remaining(), 0u);
}

}  // namespace
}  // namespace tyto
