#include "tyto/proto/connection_id.hpp"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

#include "tyto/core/hash.hpp"

namespace tyto::proto {

static_assert(ConnectionIds::key_size == crypto_shorthash_KEYBYTES);
static_assert(ConnectionIds::slot_s * (ConnectionIds::slots_accepted - 1) >=
              limits::connection_id_lifetime_min_s);

ConnectionIds ConnectionIds::random() {
  std::array<std::uint8_t, key_size> key;
  random_bytes(key);
  return from_key(key);
}

ConnectionIds ConnectionIds::from_key(std::span<const std::uint8_t, key_size> key) {
  if (sodium_init() < 0) std::abort();
  ConnectionIds ids;
  std::memcpy(ids.key_.data(), key.data(), key_size);
  return ids;
}

std::uint64_t ConnectionIds::mac48(const PeerEndpoint& client, std::uint64_t slot) const noexcept {
  // family ‖ ip ‖ slot (8 bytes). Not the port: BEP 15 ties the id to the client's IP, and
  // clients share ids across their sockets (libtorrent caches one per tracker per process).
  std::uint8_t message[1 + 16 + 8];
  std::size_t size = 0;
  message[size++] = static_cast<std::uint8_t>(client.family);
  const auto address = client.address_bytes();
  std::memcpy(message + size, address.data(), address.size());
  size += address.size();
  for (int i = 0; i < 8; ++i) message[size++] = static_cast<std::uint8_t>(slot >> (8 * i));
  std::uint8_t mac[crypto_shorthash_BYTES];
  crypto_shorthash(mac, message, size, key_.data());
  std::uint64_t value = 0;
  for (int i = 0; i < 6; ++i) value = (value << 8) | mac[i];
  return value;
}

std::uint64_t ConnectionIds::issue(const PeerEndpoint& client, std::uint64_t now_s) const noexcept {
  const std::uint64_t slot = now_s / slot_s;
  return ((slot & 0xffff) << 48) | mac48(client, slot);
}

bool ConnectionIds::valid(std::uint64_t connection_id, const PeerEndpoint& client,
                          std::uint64_t now_s) const noexcept {
  const std::uint64_t slot_now = now_s / slot_s;
  // The 16-bit slot wraps every 45 days; the age is taken modulo 2^16.
  const std::uint64_t age = ((slot_now & 0xffff) - (connection_id >> 48)) & 0xffff;
  // One slot "ahead" is accepted too: another shard may have read the clock a moment later.
  const std::uint64_t slot = age == 0xffff ? slot_now + 1 : slot_now - age;
  if ((age >= slots_accepted && age != 0xffff) || age > slot_now) return false;
  return mac48(client, slot) == (connection_id & 0xffffffffffffull);
}

}  // namespace tyto::proto
