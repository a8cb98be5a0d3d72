// Socket addresses: parsing "ADDR:PORT" / "[V6ADDR]:PORT" listen specs, and conversion between
// sockaddr and the wire-format PeerEndpoint. Start-up and per-packet helpers; no allocation.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "tyto/core/types.hpp"

namespace tyto::net {

// An IPv4 or IPv6 socket address, stored as sockaddr_in6-sized storage.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t size = 0;

  int family() const noexcept { return storage.ss_family; }
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  std::string to_string() const;  // "1.2.3.4:6969" or "[::1]:6969"
  bool is_wildcard() const noexcept;  // 0.0.0.0 or [::]: any local address
};

// "0.0.0.0:6969", "127.0.0.1:7000", "[::]:6969", "[::1]:6969". nullopt when malformed.
std::optional<SocketAddress> parse_socket_address(std::string_view text);

// The wire endpoint (ip, port) of a socket address; IPv4-mapped IPv6 becomes IPv4.
std::optional<PeerEndpoint> endpoint_of(const sockaddr* address, socklen_t size) noexcept;

// A textual IP address ("192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7") as an endpoint with
// port 0; IPv4-mapped IPv6 becomes IPv4. Surrounding spaces are allowed (header lists).
// nullopt when malformed. No allocation: used per request for forwarded client addresses.
std::optional<PeerEndpoint> parse_ip_address(std::string_view text) noexcept;

// "192.0.2.7:6881" or "[2001:db8::1]:6881" (logs).
std::string to_string(const PeerEndpoint& endpoint);

// An address prefix ("10.0.0.0/8", "::1/128", or a bare address meaning all its bits), as in
// --trusted-proxy. An IPv4 prefix matches only IPv4 endpoints (IPv4-mapped ones are IPv4 by then).
struct AddressPrefix {
  AddressFamily family = AddressFamily::ipv4;
  std::array<std::uint8_t, 16> address{};  // first 4 or 16 bytes used, bits past the length zero
  std::uint32_t length_bits = 0;

  bool contains(const PeerEndpoint& endpoint) const noexcept;
  std::string to_string() const;  // "10.0.0.0/8", "::1/128"
};
std::optional<AddressPrefix> parse_address_prefix(std::string_view text) noexcept;

}  // namespace tyto::net
