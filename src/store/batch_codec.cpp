#include "tyto/store/batch_codec.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "tyto/core/assert.hpp"
#include "tyto/core/bytes.hpp"

namespace tyto::store {

namespace {
constexpr std::uint8_t magic[4] = {'T', 'Y', 'J', 'B'};
// Version 1 has no completions; a batch without any is still written as version 1.
constexpr std::uint8_t record_version_deltas = 1, record_version_completions = 2;
constexpr std::uint16_t flag_seeding = 1, flag_completed = 2, flag_closed = 4;
constexpr std::uint16_t flags_known = flag_seeding | flag_completed | flag_closed;

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
                                     (delta.closed ? flag_closed : 0)));
}

bool read_delta(ByteReader& in, AccountingDelta& delta) noexcept {
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
  return in.ok() && (flags & ~flags_known) == 0 && delta.key.user_id != 0 &&
         delta.key.torrent_id != 0;
}

bool read_completion(ByteReader& in, CompletionDelta& completion) noexcept {
  in.copy_to(completion.info_hash.bytes);
  completion.count = in.u64();
  return in.ok() && completion.count != 0;
}

// Version 2's tail after the deltas: the completions, in info_hash order, each once.
Result<bool, std::string> read_completions(ByteReader& in, AccountingBatch& batch) {
  const std::uint32_t count = in.u32();
  // Zero would re-encode as version 1: one batch, one encoding.
  if (!in.ok() || count == 0 || count > batch_deltas_max ||
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
  const std::uint64_t deltas_size = std::uint64_t{count} * batch_delta_wire_size;
  const bool fits = version == record_version_deltas ? deltas_size == in.remaining()
                                                     : deltas_size + 4 <= in.remaining();
  if (count > batch_deltas_max || !fits) {
    return Failure{"delta count " + std::to_string(count) + " does not match the record's size"};
  }
  batch.deltas.resize(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (!read_delta(in, batch.deltas[i])) return Failure{"bad delta " + std::to_string(i)};
    if (i > 0 && !key_less(batch.deltas[i - 1].key, batch.deltas[i].key)) {
      return Failure{"deltas not in key order at " + std::to_string(i)};
    }
  }
  if (version == record_version_completions) {
    auto read = read_completions(in, batch);
    if (!read.ok()) return Failure{read.error()};
  }
  TYTO_ASSERT(in.remaining() == 0);
  return batch;
}
}  // namespace

void append_batch_record(const AccountingBatch& batch, std::vector<std::uint8_t>& out) {
  const std::size_t node_size = std::min(batch.id.node.size(), batch_node_size_max);
  const bool completions = !batch.completions.empty();
  const std::size_t payload_size =
      1 + node_size + 4 + 8 + 4 + batch.deltas.size() * batch_delta_wire_size +
      (completions ? 4 + batch.completions.size() * batch_completion_wire_size : 0);
  const std::size_t at = out.size();
  out.resize(at + batch_record_header_size + payload_size);
  ByteWriter payload({out.data() + at + batch_record_header_size, payload_size});
  payload.u8(static_cast<std::uint8_t>(node_size));
  payload.bytes({reinterpret_cast<const std::uint8_t*>(batch.id.node.data()), node_size});
  payload.u32(batch.id.shard);
  payload.u64(batch.id.sequence);
  payload.u32(static_cast<std::uint32_t>(batch.deltas.size()));
  for (const AccountingDelta& delta : batch.deltas) write_delta(payload, delta);
  if (completions) {
    payload.u32(static_cast<std::uint32_t>(batch.completions.size()));
    for (const CompletionDelta& completion : batch.completions) {
      TYTO_ASSERT(completion.count != 0);
      payload.bytes(completion.info_hash.bytes);
      payload.u64(completion.count);
    }
  }
  TYTO_ASSERT(payload.ok() && payload.remaining() == 0);
  ByteWriter header({out.data() + at, batch_record_header_size});
  header.bytes(magic);
  header.u8(completions ? record_version_completions : record_version_deltas);
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
        (version != record_version_deltas && version != record_version_completions)) {
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
