#include "tyto/net/address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace tyto::net {

std::string SocketAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
  inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
  // Appended piece by piece: `"[" + std::string` trips GCC 12's -Wrestrict false positive.
  std::string result = "[";
  result += text;
  result += "]:";
  result += std::to_string(ntohs(in6->sin6_port));
  return result;
}

bool SocketAddress::is_wildcard() const noexcept {
  if (family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  return family() == AF_INET6 &&
         IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr);
}

std::optional<SocketAddress> parse_socket_address(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  bool ipv6 = false;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    ipv6 = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 ||
      host.size() >= INET6_ADDRSTRLEN) {
    return std::nullopt;
  }
  char host_z[INET6_ADDRSTRLEN] = {};
  std::memcpy(host_z, host.data(), host.size());
  SocketAddress address;
  if (ipv6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET6, host_z, &in6->sin6_addr) != 1) return std::nullopt;
    address.size = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&address.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET, host_z, &in->sin_addr) != 1) return std::nullopt;
    address.size = sizeof(sockaddr_in);
  }
  return address;
}

std::optional<PeerEndpoint> endpoint_of(const sockaddr* address, socklen_t size) noexcept {
  if (address == nullptr) return std::nullopt;
  if (address->sa_family == AF_INET && size >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return PeerEndpoint::ipv4(
        std::span<const std::uint8_t, 4>(reinterpret_cast<const std::uint8_t*>(&in->sin_addr), 4),
        ntohs(in->sin_port));
  }
  if (address->sa_family == AF_INET6 && size >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(&in6->sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      return PeerEndpoint::ipv4(std::span<const std::uint8_t, 4>(bytes + 12, 4),
                                ntohs(in6->sin6_port));
    }
    return PeerEndpoint::ipv6(std::span<const std::uint8_t, 16>(bytes, 16), ntohs(in6->sin6_port));
  }
  return std::nullopt;
}

std::optional<PeerEndpoint> parse_ip_address(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char text_z[INET6_ADDRSTRLEN] = {};
  std::memcpy(text_z, text.data(), text.size());
  std::uint8_t bytes[16];
  if (inet_pton(AF_INET, text_z, bytes) == 1) {
    return PeerEndpoint::ipv4(std::span<const std::uint8_t, 4>(bytes, 4), 0);
  }
  if (inet_pton(AF_INET6, text_z, bytes) != 1) return std::nullopt;
  static constexpr std::uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
    return PeerEndpoint::ipv4(std::span<const std::uint8_t, 4>(bytes + 12, 4), 0);
  }
  return PeerEndpoint::ipv6(std::span<const std::uint8_t, 16>(bytes, 16), 0);
}

std::optional<AddressPrefix> parse_address_prefix(std::string_view text) noexcept {
  const auto slash = text.find('/');
  const auto address = parse_ip_address(text.substr(0, slash));
  if (!address) return std::nullopt;
  AddressPrefix prefix;
  prefix.family = address->family;
  const std::uint32_t width_bits = address->family == AddressFamily::ipv4 ? 32 : 128;
  prefix.length_bits = width_bits;
  if (slash != std::string_view::npos) {
    const std::string_view length_text = text.substr(slash + 1);
    const char* end = length_text.data() + length_text.size();
    const auto [stop, error] = std::from_chars(length_text.data(), end, prefix.length_bits);
    if (length_text.empty() || error != std::errc{} || stop != end ||
        prefix.length_bits > width_bits) {
      return std::nullopt;
    }
  }
  const auto bytes = address->address_bytes();
  for (std::uint32_t i = 0; i < bytes.size(); ++i) {
    const std::uint32_t bits_here =
        prefix.length_bits > i * 8 ? std::min<std::uint32_t>(8, prefix.length_bits - i * 8) : 0;
    const auto mask = static_cast<std::uint8_t>(0xff00u >> bits_here);
    prefix.address[i] = bytes[i] & mask;
  }
  return prefix;
}

bool AddressPrefix::contains(const PeerEndpoint& endpoint) const noexcept {
  if (endpoint.family != family) return false;
  const auto bytes = endpoint.address_bytes();
  for (std::uint32_t i = 0; i < bytes.size() && i * 8 < length_bits; ++i) {
    const std::uint32_t bits_here = std::min<std::uint32_t>(8, length_bits - i * 8);
    const auto mask = static_cast<std::uint8_t>(0xff00u >> bits_here);
    if ((bytes[i] & mask) != address[i]) return false;
  }
  return true;
}

std::string to_string(const PeerEndpoint& endpoint) {
  char text[INET6_ADDRSTRLEN] = {};
  const bool ipv4 = endpoint.family == AddressFamily::ipv4;
  inet_ntop(ipv4 ? AF_INET : AF_INET6, endpoint.address_bytes().data(), text, sizeof text);
  std::string result = ipv4 ? "" : "[";
  result += text;
  result += ipv4 ? ":" : "]:";
  result += std::to_string(endpoint.port());
  return result;
}

std::string AddressPrefix::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == AddressFamily::ipv4 ? AF_INET : AF_INET6, address.data(), text, sizeof text);
  std::string result = text;
  result += '/';
  result += std::to_string(length_bits);
  return result;
}

}  // namespace tyto::net
