#include "tyto/store/batch_codec.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "tyto/core/assert.hpp"
#include "tyto/core/bytes.hpp"

namespace tyto::store {

namespace {
constexpr std::uint8_t magic[4] = {'T', 'Y', 'J', 'B'};
// Versions 1 (no completions) and 2 (completions) are read, from journals of earlier releases;
// version 3 adds each delta's from-baseline, factors and stop, and is the one written.
constexpr std::uint8_t record_version_deltas = 1, record_version_completions = 2,
                       record_version_from = 3;
constexpr std::uint16_t flag_seeding = 1, flag_completed = 2, flag_closed = 4,
                        flag_from_continues = 8;
constexpr std::uint16_t flags_known_before_3 = flag_seeding | flag_completed | flag_closed;
constexpr std::uint16_t flags_known = flags_known_before_3 | flag_from_continues;
// A delta's factor is the torrent's times the user's, each checked to [0, 100] by the backends.
constexpr double scale_max = 100.0 * 100.0;

std::size_t delta_wire_size(std::uint8_t version) noexcept {
  return version == record_version_from ? batch_delta_wire_size : batch_delta_wire_size_before_3;
}

std::uint64_t bits_of(double value) noexcept {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

double double_of(std::uint64_t bits) noexcept {
  double value = 0;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

bool key_less(const PeerKey& a, const PeerKey& b) noexcept {
  if (a.user_id != b.user_id) return a.user_id < b.user_id;
  if (a.torrent_id != b.torrent_id) return a.torrent_id < b.torrent_id;
  return std::memcmp(a.peer_id.bytes.data(), b.peer_id.bytes.data(), a.peer_id.bytes.size()) < 0;
}

void write_delta(ByteWriter& out, const AccountingDelta& delta) noexcept {
  out.u64(delta.key.user_id);
  out.u64(delta.key.torrent_id);
  out.bytes(delta.key.peer_id.bytes);
  out.u64(delta.uploaded);
  out.u64(delta.downloaded);
  out.u64(delta.uploaded_real);
  out.u64(delta.downloaded_real);
  out.u32(delta.seed_s);
  out.u32(delta.leech_s);
  out.u64(delta.baseline_uploaded);
  out.u64(delta.baseline_downloaded);
  out.u64(delta.announced_unix_s);
  out.u16(static_cast<std::uint16_t>((delta.seeding ? flag_seeding : 0) |
                                     (delta.completed ? flag_completed : 0) |
                                     (delta.closed ? flag_closed : 0) |
                                     (delta.from_continues ? flag_from_continues : 0)));
  out.u64(delta.from_uploaded);
  out.u64(delta.from_downloaded);
  out.u64(delta.from_announced_unix_s);
  out.u64(bits_of(delta.upload_scale));
  out.u64(bits_of(delta.download_scale));
  out.u64(delta.stopped_unix_s);
  out.u64(delta.stopped_uploaded);
  out.u64(delta.stopped_downloaded);
}

bool read_delta(ByteReader& in, AccountingDelta& delta, std::uint8_t version) noexcept {
  delta.key.user_id = in.u64();
  delta.key.torrent_id = in.u64();
  in.copy_to(delta.key.peer_id.bytes);
  delta.uploaded = in.u64();
  delta.downloaded = in.u64();
  delta.uploaded_real = in.u64();
  delta.downloaded_real = in.u64();
  delta.seed_s = in.u32();
  delta.leech_s = in.u32();
  delta.baseline_uploaded = in.u64();
  delta.baseline_downloaded = in.u64();
  delta.announced_unix_s = in.u64();
  const std::uint16_t flags = in.u16();
  delta.seeding = flags & flag_seeding;
  delta.completed = flags & flag_completed;
  delta.closed = flags & flag_closed;
  delta.from_continues = flags & flag_from_continues;
  if (version == record_version_from) {
    delta.from_uploaded = in.u64();
    delta.from_downloaded = in.u64();
    delta.from_announced_unix_s = in.u64();
    delta.upload_scale = double_of(in.u64());
    delta.download_scale = double_of(in.u64());
    delta.stopped_unix_s = in.u64();
    delta.stopped_uploaded = in.u64();
    delta.stopped_downloaded = in.u64();
  }
  // Earlier versions leave the from-baseline unknown (0) and the factors 1: arbitration can only
  // cut such a delta, never bridge from it.
  const bool scales_ok = delta.upload_scale >= 0 && delta.upload_scale <= scale_max &&
                         delta.download_scale >= 0 && delta.download_scale <= scale_max;
  const std::uint16_t known = version == record_version_from ? flags_known : flags_known_before_3;
  return in.ok() && (flags & ~known) == 0 && scales_ok && delta.key.user_id != 0 &&
         delta.key.torrent_id != 0;
}

bool read_completion(ByteReader& in, CompletionDelta& completion) noexcept {
  in.copy_to(completion.info_hash.bytes);
  completion.count = in.u64();
  return in.ok() && completion.count != 0;
}

// The tail after the deltas (versions 2 and 3): the completions, in info_hash order, each once.
Result<bool, std::string> read_completions(ByteReader& in, AccountingBatch& batch,
                                           std::uint8_t version) {
  const std::uint32_t count = in.u32();
  // Version 2 with none would have been version 1: one batch, one encoding.
  const bool none_allowed = version == record_version_from;
  if (!in.ok() || (count == 0 && !none_allowed) || count > batch_deltas_max ||
      std::uint64_t{count} * batch_completion_wire_size != in.remaining()) {
    return Failure{std::string("completion count does not match the record's size")};
  }
  batch.completions.resize(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (!read_completion(in, batch.completions[i])) {
      return Failure{"bad completion " + std::to_string(i)};
    }
    if (i > 0 && !(batch.completions[i - 1].info_hash < batch.completions[i].info_hash)) {
      return Failure{"completions not in info_hash order at " + std::to_string(i)};
    }
  }
  return true;
}

// The payload of one record, or the reason it is not one.
Result<AccountingBatch, std::string> read_payload(std::span<const std::uint8_t> payload,
                                                  std::uint8_t version) {
  ByteReader in(payload);
  AccountingBatch batch;
  const std::uint8_t node_size = in.u8();
  const auto node = in.bytes(node_size);
  if (!in.ok() || node_size == 0 || node_size > batch_node_size_max) {
    return Failure{std::string("bad node name")};
  }
  batch.id.node.assign(reinterpret_cast<const char*>(node.data()), node.size());
  batch.id.shard = in.u32();
  batch.id.sequence = in.u64();
  const std::uint32_t count = in.u32();
  if (!in.ok() || batch.id.sequence == 0) return Failure{std::string("bad batch id")};
  const std::uint64_t deltas_size = std::uint64_t{count} * delta_wire_size(version);
  const bool fits = version == record_version_deltas ? deltas_size == in.remaining()
                                                     : deltas_size + 4 <= in.remaining();
  if (count > batch_deltas_max || !fits) {
    return Failure{"delta count " + std::to_string(count) + " does not match the record's size"};
  }
  batch.deltas.resize(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (!read_delta(in, batch.deltas[i], version)) {
      return Failure{"bad delta " + std::to_string(i)};
    }
    if (i > 0 && !key_less(batch.deltas[i - 1].key, batch.deltas[i].key)) {
      return Failure{"deltas not in key order at " + std::to_string(i)};
    }
  }
  if (version != record_version_deltas) {
    auto read = read_completions(in, batch, version);
    if (!read.ok()) return Failure{read.error()};
  }
  TYTO_ASSERT(in.remaining() == 0);
  return batch;
}
}  // namespace

void append_batch_record(const AccountingBatch& batch, std::vector<std::uint8_t>& out) {
  const std::size_t node_size = std::min(batch.id.node.size(), batch_node_size_max);
  const std::size_t payload_size = 1 + node_size + 4 + 8 + 4 +
                                   batch.deltas.size() * batch_delta_wire_size + 4 +
                                   batch.completions.size() * batch_completion_wire_size;
  const std::size_t at = out.size();
  out.resize(at + batch_record_header_size + payload_size);
  ByteWriter payload({out.data() + at + batch_record_header_size, payload_size});
  payload.u8(static_cast<std::uint8_t>(node_size));
  payload.bytes({reinterpret_cast<const std::uint8_t*>(batch.id.node.data()), node_size});
  payload.u32(batch.id.shard);
  payload.u64(batch.id.sequence);
  payload.u32(static_cast<std::uint32_t>(batch.deltas.size()));
  for (const AccountingDelta& delta : batch.deltas) write_delta(payload, delta);
  payload.u32(static_cast<std::uint32_t>(batch.completions.size()));
  for (const CompletionDelta& completion : batch.completions) {
    TYTO_ASSERT(completion.count != 0);
    payload.bytes(completion.info_hash.bytes);
    payload.u64(completion.count);
  }
  TYTO_ASSERT(payload.ok() && payload.remaining() == 0);
  ByteWriter header({out.data() + at, batch_record_header_size});
  header.bytes(magic);
  header.u8(record_version_from);
  header.u32(static_cast<std::uint32_t>(payload_size));
  header.u64(XXH3_64bits(out.data() + at + batch_record_header_size, payload_size));
  TYTO_ASSERT(header.ok());
}

DecodedRecords decode_batch_records(std::span<const std::uint8_t> bytes) {
  DecodedRecords decoded;
  while (decoded.bytes_used < bytes.size()) {
    ByteReader header(bytes.subspan(decoded.bytes_used));
    const auto found_magic = header.bytes(4);
    const std::uint8_t version = header.u8();
    const std::uint32_t payload_size = header.u32();
    const std::uint64_t checksum = header.u64();
    if (!header.ok()) {
      decoded.stopped_because = "a torn record header at the end";
      break;
    }
    if (std::memcmp(found_magic.data(), magic, 4) != 0 ||
        (version != record_version_deltas && version != record_version_completions &&
         version != record_version_from)) {
      decoded.stopped_because = "not a batch record (magic or version)";
      break;
    }
    if (payload_size > header.remaining()) {
      decoded.stopped_because = "a torn record at the end";
      break;
    }
    const auto payload = header.bytes(payload_size);
    if (XXH3_64bits(payload.data(), payload.size()) != checksum) {
      decoded.stopped_because = "a record whose checksum does not match";
      break;
    }
    auto batch = read_payload(payload, version);
    if (!batch.ok()) {
      decoded.stopped_because = batch.error();
      break;
    }
    decoded.batches.push_back(std::move(batch.value()));
    decoded.bytes_used += batch_record_header_size + payload_size;
  }
  return decoded;
}

}  // namespace tyto::store
