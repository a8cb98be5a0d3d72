// The storage journal's records (store/batch_codec.hpp) with completions: version 2 round-trips,
// a batch without completions stays version 1, and what version 2 forbids is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tyto/store/batch_codec.hpp"

namespace tyto::store {
namespace {

InfoHash info_hash_of(std::uint8_t fill) {
  InfoHash made;
  std::memset(made.bytes.data(), fill, made.bytes.size());
  return made;
}

AccountingBatch sample(std::vector<CompletionDelta> completions) {
  AccountingBatch batch;
  batch.id = {"node-a", 3, 17};
  AccountingDelta delta;
  delta.key.user_id = 1;
  delta.key.torrent_id = 2;
  delta.uploaded = 5;
  batch.deltas.push_back(delta);
  batch.completions = std::move(completions);
  return batch;
}

constexpr std::size_t version_at = 4;

TEST(BatchCodec, CompletionsRoundTripInVersion2) {
  const AccountingBatch written = sample({{info_hash_of(1), 2}, {info_hash_of(9), 1}});
  std::vector<std::uint8_t> bytes;
  append_batch_record(written, bytes);
  EXPECT_EQ(bytes[version_at], 2);
  const DecodedRecords decoded = decode_batch_records(bytes);
  ASSERT_EQ(decoded.stopped_because, "");
  ASSERT_EQ(decoded.batches.size(), 1u);
  EXPECT_EQ(decoded.batches[0].completions, written.completions);
  EXPECT_EQ(decoded.batches[0].deltas.size(), 1u);
  EXPECT_EQ(decoded.batches[0].id.sequence, 17u);
}

TEST(BatchCodec, ABatchWithoutCompletionsIsVersion1) {
  std::vector<std::uint8_t> bytes;
  append_batch_record(sample({}), bytes);
  EXPECT_EQ(bytes[version_at], 1);
  EXPECT_EQ(bytes.size(), batch_record_header_size + 1 + 6 + 4 + 8 + 4 + batch_delta_wire_size);
  const DecodedRecords decoded = decode_batch_records(bytes);
  ASSERT_EQ(decoded.batches.size(), 1u);
  EXPECT_TRUE(decoded.batches[0].completions.empty());
}

// The writer never makes these; a reader must refuse them (checked by the record's own bytes,
// so the checksum is recomputed by writing the forbidden batch itself).
TEST(BatchCodec, CompletionsOutOfOrderTwiceOrZeroAreRefused) {
  for (const auto& completions : std::vector<std::vector<CompletionDelta>>{
           {{info_hash_of(9), 1}, {info_hash_of(1), 1}},
           {{info_hash_of(4), 1}, {info_hash_of(4), 1}},
       }) {
    std::vector<std::uint8_t> bytes;
    append_batch_record(sample(completions), bytes);
    const DecodedRecords decoded = decode_batch_records(bytes);
    EXPECT_TRUE(decoded.batches.empty());
    EXPECT_NE(decoded.stopped_because.find("order"), std::string::npos) << decoded.stopped_because;
  }
}

}  // namespace
}  // namespace tyto::store
