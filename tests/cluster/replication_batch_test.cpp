// Replication batches (cluster/replication_batch.hpp): round trips, the 29-byte IPv4 change, and
// every refusal — another key, any byte altered, and content that is wrong under a valid MAC.
#include "tyto/cluster/replication_batch.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <vector>

namespace tyto::cluster {
namespace {

ClusterKey key_of(std::uint8_t fill) {
  const std::vector<std::uint8_t> secret(40, fill);
  return cluster_key_from_secret(secret).value();
}

Change peer_change(std::uint8_t n, bool ipv6, bool seeder) {
  Change change;
  change.kind = ChangeKind::peer;
  change.info_hash.bytes.fill(n);
  change.peer = ipv6 ? PeerEndpoint::ipv6(std::array<std::uint8_t, 16>{0x20, 0x01, n}, 6881)
                     : PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{10, 0, 0, n}, 6881);
  change.seeder = seeder;
  change.announced_before_base_s = n * 7;
  return change;
}

Batch sample() {
  Batch batch;
  batch.origin = "node-a";
  batch.shard = 3;
  batch.sequence = 42;
  batch.base_unix_s = 1'800'000'000;
  batch.changes.push_back(peer_change(1, false, true));
  batch.changes.push_back(peer_change(2, true, false));
  Change removed = peer_change(3, false, false);
  removed.kind = ChangeKind::peer_removed;
  removed.announced_before_base_s = 0;
  batch.changes.push_back(removed);
  Change completed;
  completed.kind = ChangeKind::completed;
  completed.info_hash.bytes.fill(4);
  completed.completed_count = 2;
  batch.changes.push_back(completed);
  return batch;
}

// Re-signs `bytes` after an edit, so the content checks behind the MAC are reached.
void resign(std::vector<std::uint8_t>& bytes, const ClusterKey& key) {
  crypto_auth_hmacsha512256(bytes.data() + bytes.size() - batch_mac_size, bytes.data(),
                            bytes.size() - batch_mac_size, key.data());
}

TEST(ReplicationBatch, RoundTrips) {
  const ClusterKey key = key_of(1);
  std::vector<std::uint8_t> bytes;
  ASSERT_TRUE(encode_batch(sample(), key, bytes));
  const auto decoded = decode_batch(bytes, key);
  ASSERT_TRUE(decoded.ok()) << refusal_name(decoded.error());
  const Batch expected = sample();
  EXPECT_EQ(decoded.value().origin, expected.origin);
  EXPECT_EQ(decoded.value().shard, expected.shard);
  EXPECT_EQ(decoded.value().sequence, expected.sequence);
  EXPECT_EQ(decoded.value().base_unix_s, expected.base_unix_s);
  EXPECT_EQ(decoded.value().changes, expected.changes);
}

TEST(ReplicationBatch, AnIpv4AnnounceCosts29Bytes) {
  const ClusterKey key = key_of(1);
  Batch batch = sample();
  batch.changes.clear();
  std::vector<std::uint8_t> empty, full;
  ASSERT_TRUE(encode_batch(batch, key, empty));
  for (std::uint8_t n = 0; n < 100; ++n) batch.changes.push_back(peer_change(n, false, n & 1));
  ASSERT_TRUE(encode_batch(batch, key, full));
  EXPECT_EQ(full.size() - empty.size(), 100 * ipv4_peer_change_size);
  EXPECT_EQ(ipv4_peer_change_size, 29u);
}

TEST(ReplicationBatch, AnotherKeyOrAnyAlteredByteIsRefusedByTheMac) {
  std::vector<std::uint8_t> bytes;
  ASSERT_TRUE(encode_batch(sample(), key_of(1), bytes));
  EXPECT_EQ(decode_batch(bytes, key_of(2)).error(), Refusal::bad_mac);
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    auto altered = bytes;
    altered[at] ^= 0x20;
    const auto decoded = decode_batch(altered, key_of(1));
    ASSERT_FALSE(decoded.ok()) << at;
    EXPECT_EQ(decoded.error(), Refusal::bad_mac) << at;
  }
  auto truncated = bytes;
  truncated.pop_back();
  EXPECT_EQ(decode_batch(truncated, key_of(1)).error(), Refusal::bad_mac);
  EXPECT_EQ(decode_batch(std::span(bytes).first(10), key_of(1)).error(), Refusal::too_short);
}

TEST(ReplicationBatch, ContentIsCheckedBehindAValidMac) {
  const ClusterKey key = key_of(1);
  std::vector<std::uint8_t> good;
  ASSERT_TRUE(encode_batch(sample(), key, good));
  const std::size_t origin_at = 6, after_origin = origin_at + 6;
  const std::size_t count_at = after_origin + 2 + 8 + 4, first_change = count_at + 4;
  auto refused = [&](auto edit) {
    auto bytes = good;
    edit(bytes);
    resign(bytes, key);
    const auto decoded = decode_batch(bytes, key);
    return decoded.ok() ? std::string("accepted") : std::string(refusal_name(decoded.error()));
  };
  EXPECT_EQ(refused([](auto& b) { b[0] = 'X'; }), "bad_magic");
  EXPECT_EQ(refused([](auto& b) { b[4] = 2; }), "bad_version");
  EXPECT_EQ(refused([](auto& b) { b[5] = 0; }), "bad_header");
  EXPECT_EQ(refused([&](auto& b) {  // sequence 0
              for (std::size_t i = 0; i < 8; ++i) b[after_origin + 2 + i] = 0;
            }),
            "bad_header");
  EXPECT_EQ(refused([&](auto& b) { b[count_at] = 0x7f; }), "bad_count");
  EXPECT_EQ(refused([&](auto& b) { b[count_at + 3] = 3; }), "bad_count");       // fewer than sent
  EXPECT_EQ(refused([&](auto& b) { b[first_change] = 3; }), "bad_change");      // kind 3
  EXPECT_EQ(refused([&](auto& b) { b[first_change] |= 0x40; }), "bad_change");  // unknown flag
  EXPECT_EQ(refused([&](auto& b) { b.insert(b.end() - batch_mac_size, 0); }), "bad_count");
  // A completed change with a zero count, and a removal marked seeder.
  const std::size_t completed_at = good.size() - batch_mac_size - 23;
  EXPECT_EQ(refused([&](auto& b) {
              b[completed_at + 21] = 0;
              b[completed_at + 22] = 0;
            }),
            "bad_change");
  const std::size_t removed_at = completed_at - 27;
  EXPECT_EQ(refused([&](auto& b) { b[removed_at] |= 0x08; }), "bad_change");
  EXPECT_EQ(refused([](auto&) {}), "accepted");
}

TEST(ReplicationBatch, EncodingRefusesWhatCannotBeSent) {
  const ClusterKey key = key_of(1);
  std::vector<std::uint8_t> out;
  Batch batch = sample();
  batch.origin = std::string(65, 'n');
  EXPECT_FALSE(encode_batch(batch, key, out));
  batch.origin = "";
  EXPECT_FALSE(encode_batch(batch, key, out));
  batch = sample();
  batch.changes.assign(batch_size_max / ipv4_peer_change_size + 1, peer_change(1, false, false));
  EXPECT_FALSE(encode_batch(batch, key, out));
  EXPECT_TRUE(out.empty());
}

TEST(ClusterKey, NeedsThirtyTwoBytesAndDependsOnEveryByte) {
  EXPECT_FALSE(cluster_key_from_secret(std::vector<std::uint8_t>(31, 1)).ok());
  std::vector<std::uint8_t> secret(64, 1);
  const ClusterKey a = cluster_key_from_secret(secret).value();
  EXPECT_EQ(cluster_key_from_secret(secret).value(), a);
  secret[63] = 2;
  EXPECT_NE(cluster_key_from_secret(secret).value(), a);
}

}  // namespace
}  // namespace tyto::cluster
