#include "tyto/core/hash.hpp"

#include <sys/random.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace tyto {

void random_bytes(std::span<std::uint8_t> out) {
  std::size_t filled = 0;
  while (filled < out.size()) {
    const ssize_t got = getrandom(out.data() + filled, out.size() - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      std::perror("tyto: getrandom");
      std::abort();
    }
    filled += static_cast<std::size_t>(got);
  }
}

namespace {
// splitmix64: expands a seed into deterministic key material for tests and benches.
std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

HashSecret HashSecret::random() {
  HashSecret secret;
  random_bytes(secret.bytes_);
  return secret;
}

HashSecret HashSecret::from_seed(std::uint64_t seed) {
  HashSecret secret;
  for (std::size_t i = 0; i < size; i += 8) {
    const std::uint64_t word = splitmix64(seed);
    for (std::size_t j = 0; j < 8; ++j)
      secret.bytes_[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
  }
  return secret;
}

std::uint64_t hash_bytes(std::span<const std::uint8_t> bytes, const HashSecret& secret) noexcept {
  static_assert(HashSecret::size >= XXH3_SECRET_SIZE_MIN);
  return XXH3_64bits_withSecret(bytes.data(), bytes.size(), secret.data(), HashSecret::size);
}

ShardKey ShardKey::random() {
  std::uint8_t raw[8];
  random_bytes(raw);
  ShardKey key;
  key.k0 = std::uint32_t{raw[0]} | std::uint32_t{raw[1]} << 8 | std::uint32_t{raw[2]} << 16 |
           std::uint32_t{raw[3]} << 24;
  key.k1 = std::uint32_t{raw[4]} | std::uint32_t{raw[5]} << 8 | std::uint32_t{raw[6]} << 16 |
           std::uint32_t{raw[7]} << 24;
  return key;
}

ShardKey ShardKey::from_seed(std::uint64_t seed) {
  const std::uint64_t word = splitmix64(seed);
  return ShardKey{static_cast<std::uint32_t>(word), static_cast<std::uint32_t>(word >> 32)};
}

}  // namespace tyto
