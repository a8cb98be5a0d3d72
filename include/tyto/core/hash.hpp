// Keyed hashing. Attackers choose info_hashes, so nothing is hashed unkeyed.
// - HashSecret / hash_bytes: XXH3 with a random per-process secret, for shard-local tables.
// - ShardKey / shard_of: which shard owns a swarm. A 32-bit mix of the info_hash's first two
//   big-endian words using only 32-bit xor/mul/shift/mod, so a classic BPF program
//   (SO_ATTACH_REUSEPORT_CBPF, DESIGN §3) can compute the same value from the UDP announce
//   payload (info_hash at offset 16). Both keys are random per process.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "tyto/core/types.hpp"

namespace tyto {

class HashSecret {
 public:
  static constexpr std::size_t size = 192;  // XXH3 needs >= 136 bytes

  static HashSecret random();                       // from getrandom(2)
  static HashSecret from_seed(std::uint64_t seed);  // deterministic, for tests and benches

  const std::uint8_t* data() const noexcept { return bytes_.data(); }

 private:
  std::array<std::uint8_t, size> bytes_{};
};

std::uint64_t hash_bytes(std::span<const std::uint8_t> bytes, const HashSecret& secret) noexcept;

inline std::uint64_t hash_info_hash(const InfoHash& info_hash, const HashSecret& secret) noexcept {
  return hash_bytes(info_hash.bytes, secret);
}

struct ShardKey {
  std::uint32_t k0 = 0;
  std::uint32_t k1 = 0;

  static ShardKey random();
  static ShardKey from_seed(std::uint64_t seed);
};

// The BPF program mirrors these steps exactly: words are big-endian loads (BPF_LD|BPF_W|BPF_ABS).
inline constexpr std::uint32_t shard_mix(std::uint32_t word0, std::uint32_t word1,
                                         ShardKey key) noexcept {
  std::uint32_t h = (word0 ^ key.k0) * 0x9E3779B1u;
  h ^= h >> 15;
  h = (h ^ word1 ^ key.k1) * 0x85EBCA77u;
  h ^= h >> 13;
  h *= 0xC2B2AE3Du;
  h ^= h >> 16;
  return h;
}

inline std::uint32_t shard_of(const InfoHash& info_hash, ShardKey key,
                              std::uint32_t shards_count) noexcept {
  TYTO_ASSERT(shards_count > 0);
  const auto& b = info_hash.bytes;
  const std::uint32_t word0 = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                              (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
  const std::uint32_t word1 = (std::uint32_t{b[4]} << 24) | (std::uint32_t{b[5]} << 16) |
                              (std::uint32_t{b[6]} << 8) | std::uint32_t{b[7]};
  return shard_mix(word0, word1, key) % shards_count;
}

// Fill `out` from getrandom(2); aborts if the kernel cannot provide entropy.
void random_bytes(std::span<std::uint8_t> out);

}  // namespace tyto
