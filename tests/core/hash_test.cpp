#include "tyto/core/hash.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <set>
#include <vector>

namespace tyto {
namespace {

InfoHash make_hash(std::uint32_t seed) {
  InfoHash hash;
  for (std::size_t i = 0; i < hash.bytes.size(); ++i) {
    hash.bytes[i] = static_cast<std::uint8_t>((seed >> ((i % 4) * 8)) + i * 31);
  }
  return hash;
}

TEST(HashBytes, DependsOnTheSecret) {
  const auto a = HashSecret::from_seed(1);
  const auto b = HashSecret::from_seed(2);
  const InfoHash hash = make_hash(42);
  EXPECT_EQ(hash_info_hash(hash, a), hash_info_hash(hash, a));
  EXPECT_NE(hash_info_hash(hash, a), hash_info_hash(hash, b));
}

TEST(HashBytes, RandomSecretsDiffer) {
  const auto a = HashSecret::random();
  const auto b = HashSecret::random();
  const InfoHash hash = make_hash(7);
  EXPECT_NE(hash_info_hash(hash, a), hash_info_hash(hash, b));
}

TEST(ShardOf, StaysInRangeAndSpreadsEvenly) {
  const ShardKey key = ShardKey::from_seed(99);
  constexpr std::uint32_t shards = 4;
  std::array<int, shards> counts{};
  for (std::uint32_t i = 0; i < 40000; ++i) {
    InfoHash hash;
    std::uint64_t state = i * 0x9E3779B97F4A7C15ull + 1;
    for (auto& byte : hash.bytes) {
      state ^= state >> 29;
      state *= 0xBF58476D1CE4E5B9ull;
      byte = static_cast<std::uint8_t>(state >> 56);
    }
    const std::uint32_t shard = shard_of(hash, key, shards);
    ASSERT_LT(shard, shards);
    ++counts[shard];
  }
  for (int count : counts) {
    EXPECT_GT(count, 9000);  // 10000 expected per shard
    EXPECT_LT(count, 11000);
  }
}

TEST(ShardOf, UsesOnlyTheFirstEightBytesAndTheKey) {
  // The BPF steering program sees only the first two words: the rest must not matter.
  const ShardKey key = ShardKey::from_seed(5);
  InfoHash a = make_hash(1);
  InfoHash b = a;
  b.bytes[19] ^= 0xff;
  b.bytes[8] ^= 0x01;
  EXPECT_EQ(shard_of(a, key, 7), shard_of(b, key, 7));
  std::set<std::uint32_t> seen;
  for (std::uint64_t seed = 0; seed < 64; ++seed)
    seen.insert(shard_of(a, ShardKey::from_seed(seed), 16));
  EXPECT_GT(seen.size(), 8u);  // the key moves the owner
}

// Known answers, computed once with shard_of: a change to the mix (which the BPF steering
// program must mirror) or to the byte order of its words fails here. The first row by hand:
// (0xdeadbeef ^ k0) * 0x9E3779B1 = 0x20f73108, >> 15 -> 0x20f770e6, (^ 0x00112233 ^ k1) *
// 0x85EBCA77 = 0x3ef6c7f6, >> 13 -> 0x3ef73040, * 0xC2B2AE3D = 0x1031ff40, >> 16 -> 0x1031ef71.
TEST(ShardOf, GivesTheKnownShardsForAFixedKey) {
  const ShardKey key{0x01234567u, 0x89abcdefu};
  EXPECT_EQ(shard_mix(0xdeadbeefu, 0x00112233u, key), 0x1031ef71u);
  struct KnownAnswer {
    std::array<std::uint8_t, 8> head;  // the info_hash's first 8 bytes; the rest are zero
    std::uint32_t of_1000, of_7, of_2, of_64;
  };
  const KnownAnswer answers[] = {
      {{0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33}, 17, 0, 1, 49},   // mix 0x1031ef71
      {{0, 0, 0, 0, 0, 0, 0, 0}, 348, 1, 0, 12},                          // mix 0x81115b4c
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 233, 0, 1, 33},  // mix 0xe7d3d3e1
      {{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}, 0, 0, 0, 0},     // the key: mix 0
      {{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}, 758, 4, 0, 38},  // mix 0xe643faa6
  };
  for (const KnownAnswer& answer : answers) {
    InfoHash hash{};
    std::copy(answer.head.begin(), answer.head.end(), hash.bytes.begin());
    const auto row = &answer - answers;
    EXPECT_EQ(shard_of(hash, key, 1000), answer.of_1000) << "row " << row;
    EXPECT_EQ(shard_of(hash, key, 7), answer.of_7) << "row " << row;
    EXPECT_EQ(shard_of(hash, key, 2), answer.of_2) << "row " << row;
    EXPECT_EQ(shard_of(hash, key, 64), answer.of_64) << "row " << row;
    EXPECT_EQ(shard_of(hash, key, 1), 0u) << "row " << row;
  }
}

}  // namespace
}  // namespace tyto
