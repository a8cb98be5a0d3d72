// Accounting batches as bytes: the records of the storage journal (app/accounting_journal.hpp),
// where a batch the database could not take yet, or one a `stopped` announce waits on, is made
// durable before anything depends on it. Pure: no I/O, no allocation beyond the output.
//
// One record (big-endian): "TYJB" | version u8 (3; 1 and 2 are read) | payload_size u32 |
// XXH3-64 of the payload u64 | payload. Payload: node_size u8 | node | shard u32 | sequence u64 |
// deltas_count u32 | deltas_count × 166-byte deltas (user_id u64, torrent_id u64, peer_id 20,
// uploaded u64, downloaded u64, uploaded_real u64, downloaded_real u64, seed_s u32, leech_s u32,
// baseline_uploaded u64, baseline_downloaded u64, announced_unix_s u64, flags u16 (bit 0
// seeding, 1 completed, 2 closed, 3 from_continues), from_uploaded u64, from_downloaded u64,
// from_announced_unix_s u64, upload_scale and download_scale as IEEE-754 binary64 bits in a
// u64, each in [0, 10000], stopped_unix_s u64, stopped_uploaded u64, stopped_downloaded u64)
// | completions_count u32 | completions_count × 28-byte completions
// (info_hash 20, count u64 > 0) in info_hash order. Version 1 (no completions) and 2
// (completions_count > 0) have 102-byte deltas, without the from-baseline, factors and stop.
// The reader trusts nothing: sizes, counts, the checksum, the order of keys, the factors and
// unknown flag bits are all checked.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tyto/core/result.hpp"
#include "tyto/store/accounting.hpp"

namespace tyto::store {

inline constexpr std::size_t batch_record_header_size = 4 + 1 + 4 + 8;
inline constexpr std::size_t batch_delta_wire_size_before_3 =
    8 + 8 + 20 + 8 * 4 + 4 * 2 + 8 * 3 + 2;
static_assert(batch_delta_wire_size_before_3 == 102);
inline constexpr std::size_t batch_delta_wire_size = batch_delta_wire_size_before_3 + 8 * 8;
inline constexpr std::size_t batch_completion_wire_size = 20 + 8;
// A record holds at most this many deltas (a batch is cut to the storage thread's batch size,
// 20 000 rows by default): bounds what a hostile file can make the reader allocate.
inline constexpr std::uint32_t batch_deltas_max = 1u << 20;
inline constexpr std::size_t batch_node_size_max = 64;

// Appends one record for `batch` to `out`.
void append_batch_record(const AccountingBatch& batch, std::vector<std::uint8_t>& out);

struct DecodedRecords {
  std::vector<AccountingBatch> batches;
  std::size_t bytes_used = 0;   // the valid prefix; a torn or corrupt tail after it is ignored
  std::string stopped_because;  // "" when every byte was a valid record
};
// Every valid record from the front of `bytes`, up to the first that is not.
DecodedRecords decode_batch_records(std::span<const std::uint8_t> bytes);

}  // namespace tyto::store
