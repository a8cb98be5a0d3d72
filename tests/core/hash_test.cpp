#include "tyto/core/hash.hpp"

#include <gtest/gtest.h>

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

TEST(ShardOf, MatchesTheWordwiseMixABpfProgramComputes) {
  const ShardKey key{0x01234567u, 0x89abcdefu};
  InfoHash hash{};
  hash.bytes = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33};
  // Hand-computed steps of shard_mix for these words and key.
  std::uint32_t h = (0xdeadbeefu ^ 0x01234567u) * 0x9E3779B1u;
  h ^= h >> 15;
  h = (h ^ 0x00112233u ^ 0x89abcdefu) * 0x85EBCA77u;
  h ^= h >> 13;
  h *= 0xC2B2AE3Du;
  h ^= h >> 16;
  EXPECT_EQ(shard_of(hash, key, 1000), h % 1000);
}

}  // namespace
}  // namespace tyto
