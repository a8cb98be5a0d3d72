#include "tyto/cluster/replication_batch.hpp"

#include <sodium.h>

#include <cstring>

#include "tyto/core/bytes.hpp"

namespace tyto::cluster {

namespace {
constexpr std::uint8_t magic[4] = {'T', 'Y', 'R', 'B'};
constexpr std::uint8_t batch_version = 1;
constexpr std::uint8_t kind_mask = 0x03, flag_ipv6 = 0x04, flag_seeder = 0x08, flag_closed = 0x10;
constexpr std::uint8_t flags_known = kind_mask | flag_ipv6 | flag_seeder | flag_closed;
constexpr std::size_t baseline_change_size = 1 + 20 + 8 + 8 + 20 + 8 + 8 + 8;
// The smallest change: flags, info_hash and a completed count.
constexpr std::size_t change_size_min = 1 + 20 + 2;
// Keyed BLAKE2b's personal key for deriving the MAC key from the secret.
constexpr char derivation_context[] = "tyto cluster replication key v1";

static_assert(crypto_auth_hmacsha512256_BYTES == batch_mac_size);
static_assert(crypto_auth_hmacsha512256_KEYBYTES == cluster_key_size);

void init_sodium() {
  if (sodium_init() < 0) std::abort();
}

}  // namespace

std::size_t encoded_change_size(const Change& change) noexcept {
  const std::size_t wire = change.peer.wire_size();
  switch (change.kind) {
    case ChangeKind::peer:
      return 1 + 20 + wire + 2;
    case ChangeKind::peer_removed:
      return 1 + 20 + wire;
    case ChangeKind::completed:
      return 1 + 20 + 2;
    case ChangeKind::baseline:
      return baseline_change_size;
  }
  return 0;
}

namespace {
void write_change(ByteWriter& out, const Change& change) noexcept {
  if (change.kind == ChangeKind::baseline) {
    out.u8(static_cast<std::uint8_t>(static_cast<std::uint8_t>(change.kind) |
                                     (change.seeder ? flag_seeder : 0) |
                                     (change.closed ? flag_closed : 0)));
    out.bytes(change.info_hash.bytes);
    out.u64(change.user_id);
    out.u64(change.torrent_id);
    out.bytes(change.peer_id.bytes);
    out.u64(change.uploaded);
    out.u64(change.downloaded);
    out.u64(change.announced_unix_s);
    return;
  }
  const bool ipv6 =
      change.kind != ChangeKind::completed && change.peer.family == AddressFamily::ipv6;
  out.u8(static_cast<std::uint8_t>(
      static_cast<std::uint8_t>(change.kind) | (ipv6 ? flag_ipv6 : 0) |
      (change.kind == ChangeKind::peer && change.seeder ? flag_seeder : 0)));
  out.bytes(change.info_hash.bytes);
  if (change.kind != ChangeKind::completed) out.bytes(change.peer.wire_bytes());
  if (change.kind == ChangeKind::peer) out.u16(change.announced_before_base_s);
  if (change.kind == ChangeKind::completed) out.u16(change.completed_count);
}

bool read_change(ByteReader& in, Change& change) noexcept {
  const std::uint8_t flags = in.u8();
  const std::uint8_t kind = flags & kind_mask;
  if ((flags & ~flags_known) != 0) return false;
  change.kind = static_cast<ChangeKind>(kind);
  in.copy_to(change.info_hash.bytes);
  if (change.kind == ChangeKind::baseline) {
    if ((flags & flag_ipv6) != 0) return false;
    change.seeder = (flags & flag_seeder) != 0;
    change.closed = (flags & flag_closed) != 0;
    change.user_id = in.u64();
    change.torrent_id = in.u64();
    in.copy_to(change.peer_id.bytes);
    change.uploaded = in.u64();
    change.downloaded = in.u64();
    change.announced_unix_s = in.u64();
    return in.ok() && change.user_id != 0 && change.torrent_id != 0;
  }
  if ((flags & flag_closed) != 0) return false;
  if (change.kind == ChangeKind::completed) {
    if ((flags & (flag_ipv6 | flag_seeder)) != 0) return false;
    change.completed_count = in.u16();
    return in.ok() && change.completed_count != 0;
  }
  if (change.kind == ChangeKind::peer_removed && (flags & flag_seeder) != 0) return false;
  change.peer.family = (flags & flag_ipv6) != 0 ? AddressFamily::ipv6 : AddressFamily::ipv4;
  in.copy_to(std::span<std::uint8_t>(change.peer.wire.data(), change.peer.wire_size()));
  change.seeder = (flags & flag_seeder) != 0;
  if (change.kind == ChangeKind::peer) change.announced_before_base_s = in.u16();
  return in.ok();
}
}  // namespace

Result<ClusterKey, std::string> cluster_key_from_secret(std::span<const std::uint8_t> secret) {
  init_sodium();
  if (secret.size() < cluster_key_size) {
    return Failure{"the cluster secret has " + std::to_string(secret.size()) +
                   " bytes; at least 32 are needed"};
  }
  if (secret.size() > cluster_secret_size_max) {
    return Failure{"the cluster secret has " + std::to_string(secret.size()) +
                   " bytes; at most 4096 are read"};
  }
  // BLAKE2b of the secret (any length) keyed by the context (BLAKE2b keys are 64 bytes at most).
  ClusterKey key;
  crypto_generichash(key.data(), key.size(), secret.data(), secret.size(),
                     reinterpret_cast<const unsigned char*>(derivation_context),
                     sizeof derivation_context - 1);
  return key;
}

bool encode_batch(const Batch& batch, const ClusterKey& key, std::vector<std::uint8_t>& out) {
  init_sodium();
  if (batch.origin.empty() || batch.origin.size() > origin_size_max || batch.sequence == 0) {
    return false;
  }
  if (batch.shards_count == 0 || batch.shard >= batch.shards_count) return false;
  std::size_t size = 4 + 1 + 1 + batch.origin.size() + 2 + 2 + 8 + 8 + 4 + batch_mac_size;
  for (const Change& change : batch.changes) size += encoded_change_size(change);
  if (size > batch_size_max) return false;
  const std::size_t at = out.size();
  out.resize(at + size);
  ByteWriter writer({out.data() + at, size - batch_mac_size});
  writer.bytes(magic);
  writer.u8(batch_version);
  writer.u8(static_cast<std::uint8_t>(batch.origin.size()));
  writer.bytes({reinterpret_cast<const std::uint8_t*>(batch.origin.data()), batch.origin.size()});
  writer.u16(batch.shards_count);
  writer.u16(batch.shard);
  writer.u64(batch.sequence);
  writer.u64(batch.base_unix_ms);
  writer.u32(static_cast<std::uint32_t>(batch.changes.size()));
  for (const Change& change : batch.changes) write_change(writer, change);
  TYTO_ASSERT(writer.ok() && writer.remaining() == 0);
  crypto_auth_hmacsha512256(out.data() + at + size - batch_mac_size, out.data() + at,
                            size - batch_mac_size, key.data());
  return true;
}

const char* refusal_name(Refusal refusal) noexcept {
  switch (refusal) {
    case Refusal::too_short:
      return "too_short";
    case Refusal::too_large:
      return "too_large";
    case Refusal::bad_mac:
      return "bad_mac";
    case Refusal::bad_magic:
      return "bad_magic";
    case Refusal::bad_version:
      return "bad_version";
    case Refusal::bad_header:
      return "bad_header";
    case Refusal::bad_count:
      return "bad_count";
    case Refusal::bad_change:
      return "bad_change";
  }
  return "unknown";
}

namespace {
// The MAC over everything but the last batch_mac_size bytes; the signed part, or a refusal.
bool verify(std::span<const std::uint8_t> bytes, std::size_t size_min, const ClusterKey& key,
            Refusal& refusal) {
  init_sodium();
  if (bytes.size() < size_min) {
    refusal = Refusal::too_short;
    return false;
  }
  if (bytes.size() > batch_size_max) {
    refusal = Refusal::too_large;
    return false;
  }
  const std::size_t signed_size = bytes.size() - batch_mac_size;
  if (crypto_auth_hmacsha512256_verify(bytes.data() + signed_size, bytes.data(), signed_size,
                                       key.data()) != 0) {
    refusal = Refusal::bad_mac;
    return false;
  }
  return true;
}

void sign(std::vector<std::uint8_t>& out, std::size_t at, const ClusterKey& key) {
  const std::size_t size = out.size() - at;
  crypto_auth_hmacsha512256(out.data() + at + size - batch_mac_size, out.data() + at,
                            size - batch_mac_size, key.data());
}

// magic | version | origin_size | origin: the common head of every message.
bool read_head(ByteReader& in, const std::uint8_t (&expected)[4], std::string& origin,
               Refusal& refusal) {
  const auto found_magic = in.bytes(4);
  if (!in.ok() || std::memcmp(found_magic.data(), expected, 4) != 0) {
    refusal = Refusal::bad_magic;
    return false;
  }
  if (in.u8() != batch_version) {
    refusal = Refusal::bad_version;
    return false;
  }
  const std::uint8_t origin_size = in.u8();
  const auto bytes = in.bytes(origin_size);
  if (!in.ok() || origin_size == 0 || origin_size > origin_size_max) {
    refusal = Refusal::bad_header;
    return false;
  }
  origin.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return true;
}
}  // namespace

bool decode_batch(std::span<const std::uint8_t> bytes, const ClusterKey& key, Batch& batch,
                  Refusal& refusal) {
  constexpr std::size_t size_min = 4 + 1 + 1 + 1 + 2 + 2 + 8 + 8 + 4 + batch_mac_size;
  if (!verify(bytes, size_min, key, refusal)) return false;
  ByteReader in(bytes.first(bytes.size() - batch_mac_size));
  if (!read_head(in, magic, batch.origin, refusal)) return false;
  batch.shards_count = in.u16();
  batch.shard = in.u16();
  batch.sequence = in.u64();
  batch.base_unix_ms = in.u64();
  const std::uint32_t count = in.u32();
  if (!in.ok() || batch.sequence == 0 || batch.shards_count == 0 ||
      batch.shard >= batch.shards_count) {
    refusal = Refusal::bad_header;
    return false;
  }
  if (count > in.remaining() / change_size_min) {
    refusal = Refusal::bad_count;
    return false;
  }
  batch.changes.resize(count);
  for (Change& change : batch.changes) {
    change = Change{};
    if (!read_change(in, change)) {
      refusal = Refusal::bad_change;
      return false;
    }
  }
  if (in.remaining() != 0) {
    refusal = Refusal::bad_count;
    return false;
  }
  return true;
}

namespace {
constexpr std::uint8_t warm_magics[3][4] = {
    {'T', 'Y', 'W', 'Q'}, {'T', 'Y', 'W', 'P'}, {'T', 'Y', 'W', 'D'}};
}  // namespace

bool encode_warm(const WarmMessage& message, const ClusterKey& key,
                 std::vector<std::uint8_t>& out) {
  init_sodium();
  if (message.origin.empty() || message.origin.size() > origin_size_max ||
      message.records.size() > warm_piece_records_max) {
    return false;
  }
  const auto kind = static_cast<std::size_t>(message.kind);
  std::size_t size = 4 + 1 + 1 + message.origin.size() + 8 + batch_mac_size;
  if (message.kind == WarmKind::piece) size += 4 + 8 + message.records.size();
  if (message.kind == WarmKind::done) size += 4;
  const std::size_t at = out.size();
  out.resize(at + size);
  ByteWriter writer({out.data() + at, size - batch_mac_size});
  writer.bytes(warm_magics[kind]);
  writer.u8(batch_version);
  writer.u8(static_cast<std::uint8_t>(message.origin.size()));
  writer.bytes(
      {reinterpret_cast<const std::uint8_t*>(message.origin.data()), message.origin.size()});
  writer.u64(message.nonce);
  if (message.kind == WarmKind::piece) {
    writer.u32(message.index);
    writer.u64(message.unix_ms);
    writer.bytes(message.records);
  }
  if (message.kind == WarmKind::done) writer.u32(message.index);
  TYTO_ASSERT(writer.ok() && writer.remaining() == 0);
  sign(out, at, key);
  return true;
}

bool decode_warm(std::span<const std::uint8_t> bytes, const ClusterKey& key, WarmMessage& out,
                 Refusal& refusal) {
  constexpr std::size_t size_min = 4 + 1 + 1 + 1 + 8 + batch_mac_size;
  if (!verify(bytes, size_min, key, refusal)) return false;
  ByteReader in(bytes.first(bytes.size() - batch_mac_size));
  const auto found = bytes.first(4);
  std::size_t kind = 0;
  while (kind < 3 && std::memcmp(found.data(), warm_magics[kind], 4) != 0) ++kind;
  if (kind == 3) {
    refusal = Refusal::bad_magic;
    return false;
  }
  if (!read_head(in, warm_magics[kind], out.origin, refusal)) return false;
  out.kind = static_cast<WarmKind>(kind);
  out.nonce = in.u64();
  out.index = 0;
  out.unix_ms = 0;
  out.records = {};
  if (out.kind == WarmKind::piece) {
    out.index = in.u32();
    out.unix_ms = in.u64();
    if (in.remaining() > warm_piece_records_max) {
      refusal = Refusal::bad_count;
      return false;
    }
    out.records = in.bytes(in.remaining());
  }
  if (out.kind == WarmKind::done) out.index = in.u32();
  if (!in.ok()) {
    refusal = Refusal::bad_header;
    return false;
  }
  if (in.remaining() != 0) {
    refusal = Refusal::bad_count;
    return false;
  }
  return true;
}

namespace {
// BLAKE2b of the context keyed by the cluster key (32 bytes, within BLAKE2b's key limit).
template <std::size_t N>
void derive(const ClusterKey& key, const char* context, std::array<std::uint8_t, N>& out) {
  init_sodium();
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(context),
                     std::strlen(context), key.data(), key.size());
}
}  // namespace

std::uint64_t cluster_shard_seed(const ClusterKey& key) {
  std::array<std::uint8_t, 16> bytes;  // BLAKE2b's smallest output
  derive(key, "tyto cluster shard key v1", bytes);
  std::uint64_t seed = 0;
  std::memcpy(&seed, bytes.data(), sizeof seed);
  return seed;
}

std::array<std::uint8_t, 16> cluster_connection_id_key(const ClusterKey& key) {
  std::array<std::uint8_t, 16> bytes;
  derive(key, "tyto cluster connection id key v1", bytes);
  return bytes;
}

}  // namespace tyto::cluster
