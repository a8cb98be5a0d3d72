// The vocabulary every area speaks: info hashes, peer ids and peer endpoints in wire format.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tyto/core/assert.hpp"
#include "tyto/core/limits.hpp"

namespace tyto {

struct InfoHash {
  std::array<std::uint8_t, limits::info_hash_size> bytes{};
  friend bool operator==(const InfoHash&, const InfoHash&) = default;
  friend auto operator<=>(const InfoHash&, const InfoHash&) = default;
};
static_assert(sizeof(InfoHash) == 20);

// 40 hex digits, either case (access lists, /stats/swarm); nullopt for anything else.
inline std::optional<InfoHash> parse_info_hash_hex(std::string_view text) noexcept {
  if (text.size() != 2 * sizeof(InfoHash)) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  InfoHash hash;
  for (std::size_t i = 0; i < hash.bytes.size(); ++i) {
    const int high = digit(text[2 * i]);
    const int low = digit(text[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    hash.bytes[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return hash;
}

// Lowercase hex digits of any bytes.
inline std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text(2 * bytes.size(), '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    text[2 * i] = digits[bytes[i] >> 4];
    text[2 * i + 1] = digits[bytes[i] & 15];
  }
  return text;
}

inline std::string to_hex(const InfoHash& hash) { return to_hex(std::span(hash.bytes)); }

struct PeerId {
  std::array<std::uint8_t, limits::peer_id_size> bytes{};
  friend bool operator==(const PeerId&, const PeerId&) = default;
};
static_assert(sizeof(PeerId) == 20);

enum class AddressFamily : std::uint8_t { ipv4 = 4, ipv6 = 6 };

inline constexpr std::size_t peer_wire_size(AddressFamily family) noexcept {
  return family == AddressFamily::ipv4 ? limits::ipv4_peer_wire_size : limits::ipv6_peer_wire_size;
}

// A peer's address as it appears on the wire in compact peer lists (BEP 23, BEP 7):
// the IP address in network order, then the port, big-endian. 6 bytes for IPv4, 18 for IPv6.
// A peer is identified by this address: only that address can update or remove it.
struct PeerEndpoint {
  AddressFamily family = AddressFamily::ipv4;
  std::array<std::uint8_t, limits::ipv6_peer_wire_size> wire{};  // first wire_size() bytes used

  std::size_t wire_size() const noexcept { return peer_wire_size(family); }
  std::span<const std::uint8_t> wire_bytes() const noexcept { return {wire.data(), wire_size()}; }
  std::span<const std::uint8_t> address_bytes() const noexcept {
    return {wire.data(), wire_size() - 2};
  }
  std::uint16_t port() const noexcept {
    const std::size_t at = wire_size() - 2;
    return static_cast<std::uint16_t>((wire[at] << 8) | wire[at + 1]);
  }

  static PeerEndpoint ipv4(std::span<const std::uint8_t, 4> address, std::uint16_t port) noexcept {
    PeerEndpoint endpoint;
    endpoint.family = AddressFamily::ipv4;
    std::memcpy(endpoint.wire.data(), address.data(), 4);
    endpoint.wire[4] = static_cast<std::uint8_t>(port >> 8);
    endpoint.wire[5] = static_cast<std::uint8_t>(port);
    return endpoint;
  }
  static PeerEndpoint ipv6(std::span<const std::uint8_t, 16> address, std::uint16_t port) noexcept {
    PeerEndpoint endpoint;
    endpoint.family = AddressFamily::ipv6;
    std::memcpy(endpoint.wire.data(), address.data(), 16);
    endpoint.wire[16] = static_cast<std::uint8_t>(port >> 8);
    endpoint.wire[17] = static_cast<std::uint8_t>(port);
    return endpoint;
  }

  friend bool operator==(const PeerEndpoint& a, const PeerEndpoint& b) noexcept {
    return a.family == b.family && std::memcmp(a.wire.data(), b.wire.data(), a.wire_size()) == 0;
  }
};

}  // namespace tyto
