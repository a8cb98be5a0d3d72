// The storage journal's records (store/batch_codec.hpp): version 3 round-trips every field a
// backend arbitrates with, records of earlier releases (versions 1 and 2) are still read, and
// what a version forbids is refused.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tyto/core/bytes.hpp"
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
  delta.uploaded_real = 4;
  delta.baseline_uploaded = 1004;
  delta.announced_unix_s = 1'800'000'060;
  delta.from_uploaded = 1000;
  delta.from_downloaded = 7;
  delta.from_announced_unix_s = 1'800'000'000;
  delta.from_continues = true;
  delta.upload_scale = 1.25;
  delta.download_scale = 0.5;
  delta.seeding = true;
  delta.stopped_unix_s = 1'800'000'030;
  delta.stopped_uploaded = 1002;
  delta.stopped_downloaded = 9;
  batch.deltas.push_back(delta);
  batch.completions = std::move(completions);
  return batch;
}

constexpr std::size_t version_at = 4;

// The record as an earlier release wrote it (version 1 without completions, 2 with): each delta
// without its last 64 bytes, the checksum recomputed.
std::vector<std::uint8_t> as_written_before_3(const std::vector<std::uint8_t>& record) {
  const std::size_t node_size = record[batch_record_header_size];
  const std::size_t deltas_at = batch_record_header_size + 1 + node_size + 4 + 8;
  ByteReader counts({record.data() + deltas_at, 4});
  const std::uint32_t deltas = counts.u32();
  std::vector<std::uint8_t> payload(record.begin() + batch_record_header_size,
                                    record.begin() + deltas_at + 4);
  std::size_t at = deltas_at + 4;
  for (std::uint32_t i = 0; i < deltas; ++i, at += batch_delta_wire_size) {
    payload.insert(payload.end(), record.begin() + static_cast<std::ptrdiff_t>(at),
                   record.begin() + static_cast<std::ptrdiff_t>(at + batch_delta_wire_size_before_3));
  }
  ByteReader tail({record.data() + at, 4});
  const bool completions = tail.u32() != 0;
  if (completions) payload.insert(payload.end(), record.begin() + static_cast<std::ptrdiff_t>(at), record.end());
  std::vector<std::uint8_t> out(batch_record_header_size);
  ByteWriter header(out);
  header.bytes(std::span<const std::uint8_t>(record.data(), 4));
  header.u8(completions ? 2 : 1);
  header.u32(static_cast<std::uint32_t>(payload.size()));
  header.u64(XXH3_64bits(payload.data(), payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

TEST(BatchCodec, Version3RoundTripsTheFromBaselineAndFactors) {
  for (const auto& completions : std::vector<std::vector<CompletionDelta>>{
           {}, {{info_hash_of(1), 2}, {info_hash_of(9), 1}}}) {
    const AccountingBatch written = sample(completions);
    std::vector<std::uint8_t> bytes;
    append_batch_record(written, bytes);
    EXPECT_EQ(bytes[version_at], 3);
    EXPECT_EQ(bytes.size(), batch_record_header_size + 1 + 6 + 4 + 8 + 4 + batch_delta_wire_size +
                                4 + completions.size() * batch_completion_wire_size);
    const DecodedRecords decoded = decode_batch_records(bytes);
    ASSERT_EQ(decoded.stopped_because, "");
    ASSERT_EQ(decoded.batches.size(), 1u);
    EXPECT_EQ(decoded.batches[0].completions, written.completions);
    EXPECT_EQ(decoded.batches[0].id.sequence, 17u);
    ASSERT_EQ(decoded.batches[0].deltas.size(), 1u);
    const AccountingDelta& read = decoded.batches[0].deltas[0];
    const AccountingDelta& sent = written.deltas[0];
    EXPECT_EQ(read.key, sent.key);
    EXPECT_EQ(read.uploaded, sent.uploaded);
    EXPECT_EQ(read.baseline_uploaded, sent.baseline_uploaded);
    EXPECT_EQ(read.announced_unix_s, sent.announced_unix_s);
    EXPECT_EQ(read.from_uploaded, sent.from_uploaded);
    EXPECT_EQ(read.from_downloaded, sent.from_downloaded);
    EXPECT_EQ(read.from_announced_unix_s, sent.from_announced_unix_s);
    EXPECT_TRUE(read.from_continues);
    EXPECT_EQ(read.upload_scale, sent.upload_scale);
    EXPECT_EQ(read.download_scale, sent.download_scale);
    EXPECT_EQ(read.stopped_unix_s, sent.stopped_unix_s);
    EXPECT_EQ(read.stopped_uploaded, sent.stopped_uploaded);
    EXPECT_EQ(read.stopped_downloaded, sent.stopped_downloaded);
    EXPECT_TRUE(read.seeding);
  }
}

// A journal left by an earlier release is replayed: its deltas' from-baseline unknown (0, not
// continuing: arbitration can only cut them), factors 1.
TEST(BatchCodec, RecordsOfVersions1And2AreStillRead) {
  for (const auto& completions : std::vector<std::vector<CompletionDelta>>{
           {}, {{info_hash_of(1), 2}}}) {
    auto written = sample(completions);
    written.deltas[0].from_continues = false;  // a flag earlier releases did not have
    std::vector<std::uint8_t> bytes;
    append_batch_record(written, bytes);
    const auto old = as_written_before_3(bytes);
    EXPECT_EQ(old[version_at], completions.empty() ? 1 : 2);
    const DecodedRecords decoded = decode_batch_records(old);
    ASSERT_EQ(decoded.stopped_because, "") << int{old[version_at]};
    ASSERT_EQ(decoded.batches.size(), 1u);
    EXPECT_EQ(decoded.batches[0].completions, completions);
    ASSERT_EQ(decoded.batches[0].deltas.size(), 1u);
    const AccountingDelta& read = decoded.batches[0].deltas[0];
    EXPECT_EQ(read.uploaded, 5u);
    EXPECT_EQ(read.baseline_uploaded, 1004u);
    EXPECT_EQ(read.from_announced_unix_s, 0u);
    EXPECT_FALSE(read.from_continues);
    EXPECT_EQ(read.upload_scale, 1.0);
    EXPECT_EQ(read.stopped_unix_s, 0u);
  }
}

// Bit 3 (from_continues) is not a flag of versions 1 and 2.
TEST(BatchCodec, AnEarlierVersionsRecordWithTheFlagOf3IsRefused) {
  std::vector<std::uint8_t> bytes;
  append_batch_record(sample({{info_hash_of(1), 2}}), bytes);
  auto old = as_written_before_3(bytes);  // version 2, from_continues' bit set in the flags
  const DecodedRecords decoded = decode_batch_records(old);
  EXPECT_TRUE(decoded.batches.empty());
  EXPECT_NE(decoded.stopped_because.find("bad delta"), std::string::npos)
      << decoded.stopped_because;
}

TEST(BatchCodec, FactorsOutOfRangeAreRefused) {
  for (const double scale : {-1.0, 10'000.5, std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity()}) {
    auto batch = sample({});
    batch.deltas[0].download_scale = scale;
    std::vector<std::uint8_t> bytes;
    append_batch_record(batch, bytes);
    const DecodedRecords decoded = decode_batch_records(bytes);
    EXPECT_TRUE(decoded.batches.empty()) << scale;
    EXPECT_NE(decoded.stopped_because.find("bad delta"), std::string::npos) << scale;
  }
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
