// Replication batches (DESIGN §9 "Cluster"; issue 20): what one shard of one node changed in its
// swarms over a publishing interval, as every other node applies it. A pure codec with a MAC:
// bytes from the network are hostile until the MAC over all of them verifies, and every length,
// count and value is checked after that too. No I/O; the NATS bridge that publishes and
// receives these is not built yet.
//
// Batch (big-endian):
//   "TYRB" | version u8 (1) | origin_size u8 | origin (the node's name, 1..64 bytes) |
//   shard u16 | sequence u64 | base_unix_s u32 | changes_count u32 | changes | MAC (32 bytes,
//   HMAC-SHA-512-256 of everything before it, keyed by the cluster key).
// Change: flags u8 (bits 0-1 kind: 0 peer, 1 peer removed, 2 completed; bit 2 IPv6; bit 3
// seeder; other bits 0) | info_hash 20 | then by kind:
//   peer:          peer wire (6 or 18) | announced_before_base_s u16 (the peer's last announce,
//                  wherever it was made, seconds before base_unix_s: every node expires it from
//                  the same moment)
//   peer removed:  peer wire (6 or 18)
//   completed:     count u16 (completions counted at the origin in this batch)
// An IPv4 peer change is 1 + 20 + 6 + 2 = 29 bytes (the goal: at most 32).
//
// Idempotence: peer changes are upserts and removals (applying one twice changes nothing);
// `completed` adds, so a receiver keeps, per (origin, shard), the highest sequence applied and
// skips a batch at or below it (a replay or a duplicate).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tyto/core/result.hpp"
#include "tyto/core/types.hpp"

namespace tyto::cluster {

inline constexpr std::size_t cluster_key_size = 32;
using ClusterKey = std::array<std::uint8_t, cluster_key_size>;
// The key from the cluster secret (cluster.secret_file: at least 32 bytes, the same on every
// node): a keyed BLAKE2b of the secret, so any length of secret gives a full key.
Result<ClusterKey, std::string> cluster_key_from_secret(std::span<const std::uint8_t> secret);

enum class ChangeKind : std::uint8_t { peer = 0, peer_removed = 1, completed = 2 };

struct Change {
  ChangeKind kind = ChangeKind::peer;
  InfoHash info_hash;
  PeerEndpoint peer;                          // peer, peer_removed
  bool seeder = false;                        // peer
  std::uint16_t announced_before_base_s = 0;  // peer
  std::uint16_t completed_count = 0;          // completed
  friend bool operator==(const Change&, const Change&) = default;
};

struct Batch {
  std::string origin;  // the publishing node's name, 1..origin_size_max bytes
  std::uint16_t shard = 0;
  std::uint64_t sequence = 0;  // 1, 2, ... per (origin, shard)
  std::uint32_t base_unix_s = 0;
  std::vector<Change> changes;
};

inline constexpr std::size_t origin_size_max = 64;
inline constexpr std::size_t batch_mac_size = 32;
// A batch is at most this large on the wire (NATS's default max payload is 1 MiB).
inline constexpr std::size_t batch_size_max = 1u << 20;
inline constexpr std::size_t batch_header_size_max = 4 + 1 + 1 + origin_size_max + 2 + 8 + 4 + 4;
inline constexpr std::size_t ipv4_peer_change_size = 1 + 20 + 6 + 2;
static_assert(ipv4_peer_change_size <= 32, "issue 20: at most 32 bytes per replicated announce");

// Appends the batch's bytes, MAC included; false (nothing appended) when it would pass
// batch_size_max or a field is out of range (an origin of 0 or more than 64 bytes).
bool encode_batch(const Batch& batch, const ClusterKey& key, std::vector<std::uint8_t>& out);

enum class Refusal : std::uint8_t {
  too_short,    // shorter than the smallest batch
  too_large,    // over batch_size_max
  bad_mac,      // another key, or altered in transit: nothing else is read
  bad_magic,    // not a replication batch
  bad_version,  // a version this node does not speak
  bad_header,   // origin size, sequence 0
  bad_count,    // changes_count does not match the bytes
  bad_change,   // an unknown kind or flag bit, a truncated change
};
const char* refusal_name(Refusal refusal) noexcept;

Result<Batch, Refusal> decode_batch(std::span<const std::uint8_t> bytes, const ClusterKey& key);

}  // namespace tyto::cluster
