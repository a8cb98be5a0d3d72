#include "tyto/cluster/replication_batch.hpp"

#include <sodium.h>

#include <cstring>

#include "tyto/core/bytes.hpp"

namespace tyto::cluster {

namespace {
constexpr std::uint8_t magic[4] = {'T', 'Y', 'R', 'B'};
constexpr std::uint8_t batch_version = 1;
constexpr std::uint8_t kind_mask = 0x03, flag_ipv6 = 0x04, flag_seeder = 0x08;
constexpr std::uint8_t flags_known = kind_mask | flag_ipv6 | flag_seeder;
// The smallest change: flags, info_hash and a completed count.
constexpr std::size_t change_size_min = 1 + 20 + 2;
// Keyed BLAKE2b's personal key for deriving the MAC key from the secret.
constexpr char derivation_context[] = "tyto cluster replication key v1";

static_assert(crypto_auth_hmacsha512256_BYTES == batch_mac_size);
static_assert(crypto_auth_hmacsha512256_KEYBYTES == cluster_key_size);

void init_sodium() {
  if (sodium_init() < 0) std::abort();
}

std::size_t change_size(const Change& change) noexcept {
  const std::size_t wire = change.peer.wire_size();
  switch (change.kind) {
    case ChangeKind::peer:
      return 1 + 20 + wire + 2;
    case ChangeKind::peer_removed:
      return 1 + 20 + wire;
    case ChangeKind::completed:
      return 1 + 20 + 2;
  }
  return 0;
}

void write_change(ByteWriter& out, const Change& change) noexcept {
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
  if ((flags & ~flags_known) != 0 || kind > 2) return false;
  change.kind = static_cast<ChangeKind>(kind);
  in.copy_to(change.info_hash.bytes);
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
  ClusterKey key;
  crypto_generichash(key.data(), key.size(),
                     reinterpret_cast<const unsigned char*>(derivation_context),
                     sizeof derivation_context - 1, secret.data(), secret.size());
  return key;
}

bool encode_batch(const Batch& batch, const ClusterKey& key, std::vector<std::uint8_t>& out) {
  init_sodium();
  if (batch.origin.empty() || batch.origin.size() > origin_size_max || batch.sequence == 0) {
    return false;
  }
  std::size_t size = 4 + 1 + 1 + batch.origin.size() + 2 + 8 + 4 + 4 + batch_mac_size;
  for (const Change& change : batch.changes) size += change_size(change);
  if (size > batch_size_max) return false;
  const std::size_t at = out.size();
  out.resize(at + size);
  ByteWriter writer({out.data() + at, size - batch_mac_size});
  writer.bytes(magic);
  writer.u8(batch_version);
  writer.u8(static_cast<std::uint8_t>(batch.origin.size()));
  writer.bytes({reinterpret_cast<const std::uint8_t*>(batch.origin.data()), batch.origin.size()});
  writer.u16(batch.shard);
  writer.u64(batch.sequence);
  writer.u32(batch.base_unix_s);
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

Result<Batch, Refusal> decode_batch(std::span<const std::uint8_t> bytes, const ClusterKey& key) {
  init_sodium();
  constexpr std::size_t size_min = 4 + 1 + 1 + 1 + 2 + 8 + 4 + 4 + batch_mac_size;
  if (bytes.size() < size_min) return Failure{Refusal::too_short};
  if (bytes.size() > batch_size_max) return Failure{Refusal::too_large};
  const std::size_t signed_size = bytes.size() - batch_mac_size;
  if (crypto_auth_hmacsha512256_verify(bytes.data() + signed_size, bytes.data(), signed_size,
                                       key.data()) != 0) {
    return Failure{Refusal::bad_mac};
  }
  ByteReader in(bytes.first(signed_size));
  const auto found_magic = in.bytes(4);
  if (std::memcmp(found_magic.data(), magic, 4) != 0) return Failure{Refusal::bad_magic};
  if (in.u8() != batch_version) return Failure{Refusal::bad_version};
  Batch batch;
  const std::uint8_t origin_size = in.u8();
  const auto origin = in.bytes(origin_size);
  batch.shard = in.u16();
  batch.sequence = in.u64();
  batch.base_unix_s = in.u32();
  const std::uint32_t count = in.u32();
  if (!in.ok() || origin_size == 0 || origin_size > origin_size_max || batch.sequence == 0) {
    return Failure{Refusal::bad_header};
  }
  batch.origin.assign(reinterpret_cast<const char*>(origin.data()), origin.size());
  if (count > in.remaining() / change_size_min) return Failure{Refusal::bad_count};
  batch.changes.resize(count);
  for (Change& change : batch.changes) {
    if (!read_change(in, change)) return Failure{Refusal::bad_change};
  }
  if (in.remaining() != 0) return Failure{Refusal::bad_count};
  return batch;
}

}  // namespace tyto::cluster
