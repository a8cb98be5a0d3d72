// Replication batches (DESIGN §9 "Cluster"; issue 20): what one shard of one node changed in its
// swarms over a publishing interval, as every other node applies it. A pure codec with a MAC:
// bytes from the network are hostile until the MAC over all of them verifies, and every length,
// count and value is checked after that too. No I/O: the NATS bridge (cluster/cluster_client.hpp)
// publishes and receives these.
//
// Batch (big-endian):
//   "TYRB" | version u8 (1) | origin_size u8 | origin (the node's name, 1..64 bytes) |
//   shards_count u16 | shard u16 | sequence u64 | base_unix_ms u64 | changes_count u32 |
//   changes | MAC (32 bytes, HMAC-SHA-512-256 of everything before it, keyed by the cluster key).
// shards_count and shard say which of the origin's shards made the changes: a receiver with as
// many shards (the shard key is the cluster's, cluster_shard_key) owns them in the same shard.
// Change: flags u8 (bits 0-1 kind: 0 peer, 1 peer removed, 2 completed, 3 baseline; bit 2 IPv6;
// bit 3 seeder; bit 4 closed (baseline only); other bits 0) | info_hash 20 | then by kind:
//   peer:          peer wire (6 or 18) | announced_before_base_s u16 (the peer's last announce,
//                  wherever it was made, seconds before base_unix_s: every node expires it from
//                  the same moment)
//   peer removed:  peer wire (6 or 18)
//   completed:     count u16 (completions counted at the origin in this batch)
//   baseline:      user_id u64 | torrent_id u64 | peer_id 20 | uploaded u64 | downloaded u64 |
//                  announced_unix_s u64 (private mode: a peer's accounting baseline the origin
//                  made durable; bit 3 says it was seeding, bit 4 that the peer closed; user and
//                  torrent ids are never 0)
// An IPv4 peer change is 1 + 20 + 6 + 2 = 29 bytes (the goal: at most 32).
//
// Idempotence: peer changes are upserts and removals (applying one twice changes nothing);
// `completed` adds, so a receiver keeps, per (origin, shard), the highest sequence applied and
// skips a batch at or below it (a replay or a duplicate). Sequences start, per run of a node, at
// its start time in microseconds, so a restarted node's batches are above its earlier ones.
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
// The key from the cluster secret (cluster.secret_file: 32 to 4096 bytes, the same on every
// node): BLAKE2b-256 of the secret keyed by a fixed context string, so any length of secret
// gives a full key.
inline constexpr std::size_t cluster_secret_size_max = 4096;
Result<ClusterKey, std::string> cluster_key_from_secret(std::span<const std::uint8_t> secret);

enum class ChangeKind : std::uint8_t { peer = 0, peer_removed = 1, completed = 2, baseline = 3 };

struct Change {
  ChangeKind kind = ChangeKind::peer;
  InfoHash info_hash;
  PeerEndpoint peer;                          // peer, peer_removed
  bool seeder = false;                        // peer
  std::uint16_t announced_before_base_s = 0;  // peer
  std::uint16_t completed_count = 0;          // completed
  // baseline (seeder says whether the peer was seeding):
  std::uint64_t user_id = 0;
  std::uint64_t torrent_id = 0;
  PeerId peer_id;
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t announced_unix_s = 0;
  bool closed = false;
  friend bool operator==(const Change&, const Change&) = default;
};

struct Batch {
  std::string origin;              // the publishing node's name, 1..origin_size_max bytes
  std::uint16_t shards_count = 1;  // the origin's; shard < shards_count
  std::uint16_t shard = 0;
  std::uint64_t sequence = 0;  // increasing per (origin, shard)
  std::uint64_t base_unix_ms = 0;  // when it was cut, in frame Unix time (core/clock.hpp)
  std::vector<Change> changes;
};

inline constexpr std::size_t origin_size_max = 64;
inline constexpr std::size_t batch_mac_size = 32;
// A batch is at most this large on the wire (NATS's default max payload is 1 MiB).
inline constexpr std::size_t batch_size_max = 1u << 20;
inline constexpr std::size_t batch_header_size_max =
    4 + 1 + 1 + origin_size_max + 2 + 2 + 8 + 8 + 4;
inline constexpr std::size_t ipv4_peer_change_size = 1 + 20 + 6 + 2;
static_assert(ipv4_peer_change_size <= 32, "issue 20: at most 32 bytes per replicated announce");

// Appends the batch's bytes, MAC included; false (nothing appended) when it would pass
// batch_size_max or a field is out of range (an origin of 0 or more than 64 bytes).
bool encode_batch(const Batch& batch, const ClusterKey& key, std::vector<std::uint8_t>& out);
// The encoded size of one change (batches are cut to stay under batch_size_max).
std::size_t encoded_change_size(const Change& change) noexcept;

enum class Refusal : std::uint8_t {
  too_short,    // shorter than the smallest batch
  too_large,    // over batch_size_max
  bad_mac,      // another key, or altered in transit: nothing else is read
  bad_magic,    // not a replication batch
  bad_version,  // a version this node does not speak
  bad_header,   // origin size, sequence 0, shard not below shards_count
  bad_count,    // changes_count does not match the bytes
  bad_change,   // an unknown kind or flag bit, a truncated change
};
const char* refusal_name(Refusal refusal) noexcept;

inline constexpr std::size_t refusals_count = 8;

// Decodes into `out` (its vectors' capacity is reused: a receiver decodes every batch into one).
// false with the reason when the bytes are refused; `out` is then unspecified.
bool decode_batch(std::span<const std::uint8_t> bytes, const ClusterKey& key, Batch& out,
                  Refusal& refusal);

// --- Warm start (cluster_client.hpp): a node that starts asks the cluster for its swarms ---
// Every message is MAC'd like a batch: magic (4) | version u8 (1) | origin_size u8 | origin |
// nonce u64 | then by kind | MAC.
//   request "TYWQ": (nothing more). Published on the warm subject with a reply subject.
//   piece   "TYWP": index u32 | unix_ms u64 | snapshot records (app/snapshot's record format,
//                   whole records; restore_snapshot checks them as hostile input).
//   done    "TYWD": pieces u32 (how many pieces were sent: the requester checks it has them all).
// origin is the sender's name; nonce is the requester's, echoed in the answers.
enum class WarmKind : std::uint8_t { request, piece, done };
struct WarmMessage {
  WarmKind kind = WarmKind::request;
  std::string origin;
  std::uint64_t nonce = 0;
  std::uint32_t index = 0;    // piece: its index from 0; done: the number of pieces
  // piece: the second the responder's shard cut it at (frame Unix time, a whole second in ms):
  // the records' ages count from it.
  std::uint64_t unix_ms = 0;
  std::span<const std::uint8_t> records;  // piece: points into the decoded bytes
};
inline constexpr std::size_t warm_piece_records_max = 64 * 1024;
bool encode_warm(const WarmMessage& message, const ClusterKey& key, std::vector<std::uint8_t>& out);
bool decode_warm(std::span<const std::uint8_t> bytes, const ClusterKey& key, WarmMessage& out,
                 Refusal& refusal);

// Keys derived from the cluster key, so every node of a cluster agrees on them: the shard key
// (which shard owns an info_hash) and the UDP connection-id key (an id from one node is valid
// on every node). Keyed BLAKE2b, one context each.
std::uint64_t cluster_shard_seed(const ClusterKey& key);
std::array<std::uint8_t, 16> cluster_connection_id_key(const ClusterKey& key);

}  // namespace tyto::cluster
