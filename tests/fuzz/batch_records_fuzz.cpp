// libFuzzer target for the storage journal's batch records (store/batch_codec.hpp), read back
// from a file at start: hostile input. Never a crash; whatever decodes re-encodes to exactly the
// bytes it was read from, and the valid prefix ends on a record boundary.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

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
  std::vector<std::uint8_t> again;
  for (const AccountingBatch& batch : decoded.batches) {
    check(batch.deltas.size() <= batch_deltas_max);
    append_batch_record(batch, again);
  }
  check(again.size() == decoded.bytes_used);
  check(std::equal(again.begin(), again.end(), bytes.begin()));
  return 0;
}
