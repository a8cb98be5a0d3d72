// Stateless UDP connection ids (BEP 15, DESIGN §6): 16-bit coarse time slot ‖ 48-bit keyed MAC
// (SipHash-2-4 via libsodium) of the client's IP address and the slot. Nothing is stored per
// client; an id is valid for the IP it was issued to, for 2 to 3 minutes.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "tyto/core/types.hpp"

namespace tyto::proto {

class ConnectionIds {
 public:
  static constexpr std::uint32_t slot_s = 60;
  // An id issued in slot s is accepted in slots s-1 .. s+2: at least 2 minutes, at most 3
  // (s-1 because shards read the coarse clock at slightly different moments).
  static constexpr std::uint32_t slots_accepted = 3;
  static constexpr std::size_t key_size = 16;

  static ConnectionIds random();
  static ConnectionIds from_key(std::span<const std::uint8_t, key_size> key);

  std::uint64_t issue(const PeerEndpoint& client, std::uint64_t now_s) const noexcept;
  bool valid(std::uint64_t connection_id, const PeerEndpoint& client,
             std::uint64_t now_s) const noexcept;

 private:
  std::uint64_t mac48(const PeerEndpoint& client, std::uint64_t slot) const noexcept;

  std::array<std::uint8_t, key_size> key_{};
};

}  // namespace tyto::proto
