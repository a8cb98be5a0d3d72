// Every protocol bound and default in one place, with the arithmetic that ties them together.
// Configurable limits take their defaults from here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tyto::limits {

// Wire sizes (BEP 15 / BEP 23 compact peers, BEP 7 for IPv6).
inline constexpr std::size_t info_hash_size = 20;
inline constexpr std::size_t peer_id_size = 20;
inline constexpr std::size_t ipv4_peer_wire_size = 4 + 2;
inline constexpr std::size_t ipv6_peer_wire_size = 16 + 2;
static_assert(ipv4_peer_wire_size == 6 && ipv6_peer_wire_size == 18);

// One reply datagram: 1500-byte Ethernet MTU less IPv6 (40) and UDP (8) headers = 1452.
inline constexpr std::size_t udp_reply_size_max = 1452;
inline constexpr std::size_t udp_announce_request_size = 98;       // BEP 15
inline constexpr std::size_t udp_announce_reply_header_size = 20;  // BEP 15
inline constexpr std::size_t udp_scrape_request_header_size = 16;  // BEP 15
inline constexpr std::size_t udp_scrape_reply_header_size = 8;     // BEP 15
inline constexpr std::size_t udp_scrape_reply_entry_size = 12;     // BEP 15

// numwant: a negative or zero request means "tracker default" (BEP 15: -1).
inline constexpr std::uint32_t numwant_default = 50;
inline constexpr std::uint32_t numwant_max = 200;
inline constexpr std::uint32_t udp_ipv4_peers_max =
    (udp_reply_size_max - udp_announce_reply_header_size) / ipv4_peer_wire_size;  // 238
inline constexpr std::uint32_t udp_ipv6_peers_max =
    (udp_reply_size_max - udp_announce_reply_header_size) / ipv6_peer_wire_size;  // 79
static_assert(udp_announce_reply_header_size + numwant_max * ipv4_peer_wire_size <=
              udp_reply_size_max);  // 20 + 6 × 200 = 1220 ≤ 1452: IPv4 never needs the cap
static_assert(udp_ipv6_peers_max == 79);

// Scrape: BEP 15 allows about 74 hashes per packet; 8 + 12 × 74 = 896 bytes of reply.
inline constexpr std::size_t udp_scrape_hashes_max = 74;
inline constexpr std::size_t http_scrape_hashes_max = 64;
static_assert(udp_scrape_reply_header_size + udp_scrape_reply_entry_size * udp_scrape_hashes_max <=
              udp_reply_size_max);

// HTTP (DESIGN §7).
inline constexpr std::size_t http_request_head_size_max = 4096;
inline constexpr std::uint32_t http_idle_timeout_s = 30;
inline constexpr std::size_t trusted_proxies_max = 64;  // --trusted-proxy prefixes
inline constexpr std::uint32_t http_connections_per_shard_max = 1u << 20;  // TcpServer: < 2^24

// Announce timing (DESIGN §7). Peer timeout = 2 × interval + slack.
inline constexpr std::uint32_t announce_interval_s = 1800;
inline constexpr std::uint32_t announce_interval_min_s = 900;
inline constexpr std::uint32_t peer_timeout_slack_s = 300;
inline constexpr std::uint32_t peer_timeout_s = 2 * announce_interval_s + peer_timeout_slack_s;
// A swarm whose last peer left keeps its completed count (scrape `downloaded`: the torrent's
// history, not the swarm's) this long as an empty record; 0 drops it with its last peer.
inline constexpr std::uint32_t completed_keep_s = 7 * 24 * 3600;

// UDP connection ids are accepted for at least this long (BEP 15 asks for 2 minutes).
inline constexpr std::uint32_t connection_id_lifetime_min_s = 120;

// Per-shard capacity defaults.
inline constexpr std::uint32_t swarms_per_shard_max = 8u << 20;
inline constexpr std::uint32_t peers_per_swarm_max = 1u << 20;

}  // namespace tyto::limits
