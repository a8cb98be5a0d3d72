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
  batch.shards_count = 4;
  batch.shard = 3;
  batch.sequence = 42;
  batch.base_unix_ms = 1'800'000'000'123;
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

// decode_batch as a value or the refusal's name.
struct Decoded {
  bool ok = false;
  Refusal refusal = Refusal::too_short;
  Batch batch;
};
Decoded decode(std::span<const std::uint8_t> bytes, const ClusterKey& key) {
  Decoded decoded;
  decoded.ok = decode_batch(bytes, key, decoded.batch, decoded.refusal);
  return decoded;
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
  const auto decoded = decode(bytes, key);
  ASSERT_TRUE(decoded.ok) << refusal_name(decoded.refusal);
  const Batch expected = sample();
  EXPECT_EQ(decoded.batch.origin, expected.origin);
  EXPECT_EQ(decoded.batch.shards_count, expected.shards_count);
  EXPECT_EQ(decoded.batch.shard, expected.shard);
  EXPECT_EQ(decoded.batch.sequence, expected.sequence);
  EXPECT_EQ(decoded.batch.base_unix_ms, expected.base_unix_ms);
  EXPECT_EQ(decoded.batch.changes, expected.changes);
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
  EXPECT_EQ(decode(bytes, key_of(2)).refusal, Refusal::bad_mac);
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    auto altered = bytes;
    altered[at] ^= 0x20;
    const auto decoded = decode(altered, key_of(1));
    ASSERT_FALSE(decoded.ok) << at;
    EXPECT_EQ(decoded.refusal, Refusal::bad_mac) << at;
  }
  auto truncated = bytes;
  truncated.pop_back();
  EXPECT_EQ(decode(truncated, key_of(1)).refusal, Refusal::bad_mac);
  EXPECT_EQ(decode(std::span(bytes).first(10), key_of(1)).refusal, Refusal::too_short);
}

TEST(ReplicationBatch, ContentIsCheckedBehindAValidMac) {
  const ClusterKey key = key_of(1);
  std::vector<std::uint8_t> good;
  ASSERT_TRUE(encode_batch(sample(), key, good));
  const std::size_t origin_at = 6, after_origin = origin_at + 6;
  const std::size_t count_at = after_origin + 2 + 2 + 8 + 8, first_change = count_at + 4;
  auto refused = [&](auto edit) {
    auto bytes = good;
    edit(bytes);
    resign(bytes, key);
    const auto decoded = decode(bytes, key);
    return decoded.ok ? std::string("accepted") : std::string(refusal_name(decoded.refusal));
  };
  EXPECT_EQ(refused([](auto& b) { b[0] = 'X'; }), "bad_magic");
  EXPECT_EQ(refused([](auto& b) { b[4] = 2; }), "bad_version");
  EXPECT_EQ(refused([](auto& b) { b[5] = 0; }), "bad_header");
  EXPECT_EQ(refused([&](auto& b) {  // sequence 0
              for (std::size_t i = 0; i < 8; ++i) b[after_origin + 4 + i] = 0;
            }),
            "bad_header");
  EXPECT_EQ(refused([&](auto& b) { b[after_origin + 3] = 4; }), "bad_header");  // shard 4 of 4
  EXPECT_EQ(refused([&](auto& b) { b[after_origin + 1] = 0; }), "bad_header");  // 0 shards
  EXPECT_EQ(refused([&](auto& b) { b[count_at] = 0x7f; }), "bad_count");
  EXPECT_EQ(refused([&](auto& b) { b[count_at + 3] = 3; }), "bad_count");       // fewer than sent
  EXPECT_EQ(refused([&](auto& b) { b[first_change] = 3 | 0x04; }), "bad_change");  // IPv6 baseline
  EXPECT_EQ(refused([&](auto& b) { b[first_change] |= 0x10; }), "bad_change");  // a closed peer
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

// Private mode: a peer's accounting baseline travels with its swarm changes (81 bytes).
TEST(ReplicationBatch, BaselinesRoundTripAndZeroIdsAreRefused) {
  const ClusterKey key = key_of(1);
  Batch batch = sample();
  batch.changes.clear();
  std::vector<std::uint8_t> empty;
  ASSERT_TRUE(encode_batch(batch, key, empty));
  for (const bool closed : {false, true}) {
    Change baseline;
    baseline.kind = ChangeKind::baseline;
    baseline.info_hash.bytes.fill(closed ? 9 : 8);
    baseline.user_id = 0x0102030405060708;
    baseline.torrent_id = closed ? 1 : ~std::uint64_t{0};
    baseline.peer_id.bytes.fill('p');
    baseline.uploaded = ~std::uint64_t{0} - 1;
    baseline.downloaded = 12345;
    baseline.announced_unix_s = 1'800'000'000;
    baseline.seeder = !closed;
    baseline.closed = closed;
    batch.changes.push_back(baseline);
  }
  batch.changes.push_back(peer_change(5, false, true));
  std::vector<std::uint8_t> bytes;
  ASSERT_TRUE(encode_batch(batch, key, bytes));
  EXPECT_EQ(bytes.size() - empty.size(), 2 * 81 + ipv4_peer_change_size);
  auto decoded = decode(bytes, key);
  ASSERT_TRUE(decoded.ok) << refusal_name(decoded.refusal);
  EXPECT_EQ(decoded.batch.changes, batch.changes);
  // user_id 0 (bytes 21..28 of the first change) under a valid MAC.
  const std::size_t first_change = empty.size() - batch_mac_size;
  auto zero_user = bytes;
  for (std::size_t i = 0; i < 8; ++i) zero_user[first_change + 21 + i] = 0;
  resign(zero_user, key);
  decoded = decode(zero_user, key);
  ASSERT_FALSE(decoded.ok);
  EXPECT_EQ(decoded.refusal, Refusal::bad_change);
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

TEST(WarmMessages, RoundTripAndAreRefusedWhenAltered) {
  const ClusterKey key = key_of(1);
  const std::vector<std::uint8_t> records(1000, 0xab);
  for (const WarmKind kind : {WarmKind::request, WarmKind::piece, WarmKind::done}) {
    WarmMessage message;
    message.kind = kind;
    message.origin = "node-b";
    message.nonce = 0x0102030405060708;
    if (kind != WarmKind::request) message.index = 7;
    if (kind == WarmKind::piece) {
      message.unix_ms = 1'800'000'000'000;
      message.records = records;
    }
    std::vector<std::uint8_t> bytes;
    ASSERT_TRUE(encode_warm(message, key, bytes));
    WarmMessage decoded;
    Refusal refusal{};
    ASSERT_TRUE(decode_warm(bytes, key, decoded, refusal)) << refusal_name(refusal);
    EXPECT_EQ(decoded.kind, kind);
    EXPECT_EQ(decoded.origin, "node-b");
    EXPECT_EQ(decoded.nonce, message.nonce);
    EXPECT_EQ(decoded.index, message.index);
    EXPECT_EQ(decoded.unix_ms, message.unix_ms);
    EXPECT_TRUE(std::equal(decoded.records.begin(), decoded.records.end(), message.records.begin(),
                           message.records.end()));
    EXPECT_FALSE(decode_warm(bytes, key_of(2), decoded, refusal));
    EXPECT_EQ(refusal, Refusal::bad_mac);
    bytes[bytes.size() / 2] ^= 1;
    EXPECT_FALSE(decode_warm(bytes, key, decoded, refusal));
    EXPECT_EQ(refusal, Refusal::bad_mac);
  }
  // A batch is not a warm message, and a warm message is not a batch, even under the same key.
  std::vector<std::uint8_t> batch;
  ASSERT_TRUE(encode_batch(sample(), key, batch));
  WarmMessage decoded;
  Refusal refusal{};
  EXPECT_FALSE(decode_warm(batch, key, decoded, refusal));
  EXPECT_EQ(refusal, Refusal::bad_magic);
  std::vector<std::uint8_t> request;
  ASSERT_TRUE(encode_warm(WarmMessage{WarmKind::request, "a", 1, 0, 0, {}}, key, request));
  EXPECT_FALSE(decode(request, key).ok);
  // Too many records to send.
  const std::vector<std::uint8_t> too_many(warm_piece_records_max + 1, 0);
  std::vector<std::uint8_t> out;
  EXPECT_FALSE(encode_warm(WarmMessage{WarmKind::piece, "a", 1, 0, 0, too_many}, key, out));
}

TEST(ClusterKey, DerivedKeysAgreeForOneSecretAndDifferForAnother) {
  const ClusterKey a = key_of(1), b = key_of(2);
  EXPECT_EQ(cluster_shard_seed(a), cluster_shard_seed(key_of(1)));
  EXPECT_NE(cluster_shard_seed(a), cluster_shard_seed(b));
  EXPECT_EQ(cluster_connection_id_key(a), cluster_connection_id_key(key_of(1)));
  EXPECT_NE(cluster_connection_id_key(a), cluster_connection_id_key(b));
}

TEST(ClusterKey, NeedsThirtyTwoBytesAndDependsOnEveryByte) {
  EXPECT_FALSE(cluster_key_from_secret(std::vector<std::uint8_t>(31, 1)).ok());
  EXPECT_FALSE(cluster_key_from_secret(std::vector<std::uint8_t>(4097, 1)).ok());
  // Longer than a BLAKE2b key (64 bytes): every byte still counts.
  std::vector<std::uint8_t> long_secret(4096, 1);
  const ClusterKey long_key = cluster_key_from_secret(long_secret).value();
  long_secret[4095] = 2;
  EXPECT_NE(cluster_key_from_secret(long_secret).value(), long_key);
  std::vector<std::uint8_t> secret(64, 1);
  const ClusterKey a = cluster_key_from_secret(secret).value();
  EXPECT_EQ(cluster_key_from_secret(secret).value(), a);
  secret[63] = 2;
  EXPECT_NE(cluster_key_from_secret(secret).value(), a);
}

}  // namespace
}  // namespace tyto::cluster
