// Incremental snapshots (PeerStore::append_snapshot_slice), against both stores: a store is
// sliced with a small budget while announces insert, erase and grow swarms between slices; the
// records must restore (in either store) every swarm present throughout, with nothing corrupt.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "support/reference_store.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace tyto::swarm {
namespace {

InfoHash hash_of(std::uint32_t n) {
  InfoHash hash;
  for (std::size_t i = 0; i < 20; ++i) hash.bytes[i] = static_cast<std::uint8_t>(n * 13 + i * 5);
  hash.bytes[0] = static_cast<std::uint8_t>(n);
  hash.bytes[1] = static_cast<std::uint8_t>(n >> 8);
  hash.bytes[2] = static_cast<std::uint8_t>(n >> 16);
  return hash;
}

PeerEndpoint v4(std::uint32_t n) {
  const std::uint8_t address[4] = {10, static_cast<std::uint8_t>(n >> 16),
                                   static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  return PeerEndpoint::ipv4(address, 6881);
}

PeerEndpoint v6(std::uint32_t n) {
  std::uint8_t address[16] = {0x20, 0x01, 0x0d, 0xb8};
  address[13] = static_cast<std::uint8_t>(n >> 16);
  address[14] = static_cast<std::uint8_t>(n >> 8);
  address[15] = static_cast<std::uint8_t>(n);
  return PeerEndpoint::ipv6(address, 6881);
}

using Factory = std::function<std::unique_ptr<store::PeerStore>(const StoreLimits&)>;

std::unique_ptr<store::PeerStore> make_memory(const StoreLimits& limits) {
  return std::make_unique<SwarmStore>(limits, HashSecret::from_seed(21), 21);
}
std::unique_ptr<store::PeerStore> make_reference(const StoreLimits& limits) {
  return std::make_unique<testing::ReferenceStore>(limits);
}

void verify(const store::PeerStore& store) {
  if (const auto* memory = dynamic_cast<const SwarmStore*>(&store)) memory->verify();
}

class SnapshotSliceTest : public ::testing::TestWithParam<bool> {
 protected:
  SnapshotSliceTest() : store_(make(limits_)) {}
  Factory make = GetParam() ? Factory(make_memory) : Factory(make_reference);

  void announce(std::uint32_t hash, const PeerEndpoint& peer, std::uint64_t left,
                AnnounceEvent event = AnnounceEvent::none) {
    AnnounceRequest request;
    request.info_hash = hash_of(hash);
    request.peer = peer;
    request.left_bytes = left;
    request.event = event;
    store_->announce(request, now_s_, out_);
  }
  // Slices until done, calling between(slice) after each; returns the records.
  std::vector<std::uint8_t> slice_all(std::size_t budget_bytes,
                                      const std::function<void(std::uint32_t)>& between) {
    std::vector<std::uint8_t> records;
    store::SnapshotCursor cursor;
    for (std::uint32_t slice = 0;; ++slice) {
      const std::size_t before = records.size();
      const bool done = store_->append_snapshot_slice(cursor, now_s_, records, budget_bytes);
      const std::size_t appended = records.size() - before;
      // SwarmStore splits swarms: a slice stays within the budget plus one record header and
      // one (IPv6) peer. The reference store overshoots by at most one whole swarm.
      if (GetParam()) {
        EXPECT_LE(appended, budget_bytes + 36 + 21) << slice;
      }
      if (done) break;
      EXPECT_GT(appended, 0u) << "a slice that is not the last makes progress";
      between(slice);
      if (slice % 64 == 0) verify(*store_);  // O(n): not after every slice
    }
    swarms_begun_ = cursor.swarms;
    return records;
  }

  StoreLimits limits_;
  std::unique_ptr<store::PeerStore> store_;
  std::vector<std::uint8_t> out_ = std::vector<std::uint8_t>(50 * 18);
  std::uint32_t now_s_ = 100;
  std::uint64_t swarms_begun_ = 0;
};

const auto keep_all = [](const InfoHash&) { return true; };

TEST_P(SnapshotSliceTest, SlicesOfAQuietStoreRestoreEverySwarmExactly) {
  for (std::uint32_t hash = 0; hash < 500; ++hash) {
    for (std::uint32_t peer = 0; peer < hash % 9 + 1; ++peer) {
      announce(hash, peer % 4 == 3 ? v6(peer) : v4(peer), peer % 2);
    }
  }
  for (std::uint32_t peer = 0; peer < 3000; ++peer) announce(7, v4(peer), peer % 3);  // split
  announce(9, v4(1), 0, AnnounceEvent::completed);
  const std::vector<std::uint8_t> records = slice_all(300, [](std::uint32_t) {});
  EXPECT_EQ(swarms_begun_, 500u);
  for (const Factory& restore_into : {Factory(make_memory), Factory(make_reference)}) {
    auto restored = restore_into(limits_);
    const auto result = restored->restore_snapshot(records, now_s_, 0, keep_all);
    ASSERT_TRUE(result.ok()) << result.error();
    EXPECT_EQ(result.value().swarms, 500u);  // a split swarm's records are merged, not counted
    verify(*restored);
    for (std::uint32_t hash = 0; hash < 500; ++hash) {
      EXPECT_EQ(restored->scrape(hash_of(hash), now_s_), store_->scrape(hash_of(hash), now_s_)) << hash;
    }
  }
}

// Between slices: new swarms (the table grows, its index step by step), whole swarms stopped
// (the last record moves into their place), peers joining and leaving the swarms that stay.
TEST_P(SnapshotSliceTest, SwarmsPresentThroughoutSurviveChurnBetweenSlices) {
  constexpr std::uint32_t stable_count = 2000;  // never lose their peers
  constexpr std::uint32_t doomed_first = 10000;
  constexpr std::uint32_t doomed_count = 1500;  // erased one by one during the snapshot
  for (std::uint32_t hash = 0; hash < stable_count; ++hash) {
    announce(hash, v4(hash), 1);
    if (hash % 5 == 0) announce(hash, v6(hash), 0);
  }
  for (std::uint32_t peer = 0; peer < 2000; ++peer) announce(3, v4(100000 + peer), 1);
  for (std::uint32_t hash = doomed_first; hash < doomed_first + doomed_count; ++hash) {
    announce(hash, v4(hash), 1);
  }
  std::uint32_t next_new = 50000;
  std::uint32_t next_doomed = doomed_first;
  const std::vector<std::uint8_t> records = slice_all(200, [&](std::uint32_t slice) {
    for (int i = 0; i < 8; ++i, ++next_new) announce(next_new, v4(next_new), 1);  // growth
    if (next_doomed < doomed_first + doomed_count) {
      announce(next_doomed, v4(next_doomed), 1, AnnounceEvent::stopped);  // erase: a move
      ++next_doomed;
    }
    // Stable swarms change too: a peer joins one and leaves the split one.
    announce(slice % stable_count, v4(200000 + slice), 0);
    announce(3, v4(100000 + slice % 2000), 1, AnnounceEvent::stopped);
    ++now_s_;
  });
  EXPECT_GT(next_new - 50000, 8u * 100) << "enough slices to churn";
  for (const Factory& restore_into : {Factory(make_memory), Factory(make_reference)}) {
    auto restored = restore_into(limits_);
    const auto result = restored->restore_snapshot(records, now_s_, 0, keep_all);
    ASSERT_TRUE(result.ok()) << result.error();
    verify(*restored);
    for (std::uint32_t hash = 0; hash < stable_count; ++hash) {
      const ScrapeEntry entry = restored->scrape(hash_of(hash), now_s_);
      // Its first peer never left; the IPv6 seeder neither.
      ASSERT_GE(entry.leechers, 1u) << hash;
      if (hash % 5 == 0) {
        EXPECT_GE(entry.seeders, 1u) << hash;
      }
    }
    EXPECT_GE(restored->scrape(hash_of(3), now_s_).leechers, 1u);
    EXPECT_LE(restored->counters().peers_ipv4 + restored->counters().peers_ipv6,
              store_->counters().peers_ipv4 + store_->counters().peers_ipv6 + doomed_count + 2000)
        << "nothing invented";
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, SnapshotSliceTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "SwarmStore" : "Reference"; });

}  // namespace
}  // namespace tyto::swarm
