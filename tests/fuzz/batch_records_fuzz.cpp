// libFuzzer target for the storage journal's batch records (store/batch_codec.hpp), read back
// from a file at start: hostile input. Never a crash; the valid prefix ends on a record
// boundary; whatever decodes re-encodes (as version 3) to a record that decodes to itself, and a
// version-3 record to exactly the bytes it was read from (earlier versions are read, not written).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "tyto/core/bytes.hpp"
#include "tyto/store/batch_codec.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tyto::store;
  const std::span<const std::uint8_t> bytes(data, size);
  const DecodedRecords decoded = decode_batch_records(bytes);
  check(decoded.bytes_used <= size);
  check(decoded.stopped_because.empty() == (decoded.bytes_used == size));
  std::size_t at = 0;  // the record's place in the valid prefix
  for (const AccountingBatch& batch : decoded.batches) {
    check(batch.deltas.size() <= batch_deltas_max);
    check(at + batch_record_header_size <= decoded.bytes_used);
    tyto::ByteReader header(bytes.subspan(at, batch_record_header_size));
    header.bytes(4);  // the magic
    const std::uint8_t version = header.u8();
    const std::size_t record_size = batch_record_header_size + header.u32();
    std::vector<std::uint8_t> again;
    append_batch_record(batch, again);
    if (version == 3) {
      check(again.size() == record_size);
      check(std::equal(again.begin(), again.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at)));
    }
    const DecodedRecords reread = decode_batch_records(again);
    check(reread.stopped_because.empty() && reread.batches.size() == 1);
    std::vector<std::uint8_t> third;
    append_batch_record(reread.batches[0], third);
    check(third == again);
    at += record_size;
  }
  check(at == decoded.bytes_used);
  return 0;
}
