// One test per announce rule of the in-memory store (BEP 3/15, DESIGN §5), plus the peer set's
// scan/index switch and the table's growth.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "support/address_space.hpp"
#include "support/reference_store.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace tyto::swarm {
namespace {

InfoHash hash_of(std::uint32_t n) {
  InfoHash hash;
  for (std::size_t i = 0; i < 20; ++i) hash.bytes[i] = static_cast<std::uint8_t>(n * 31 + i * 7);
  hash.bytes[0] = static_cast<std::uint8_t>(n);
  hash.bytes[1] = static_cast<std::uint8_t>(n >> 8);
  hash.bytes[2] = static_cast<std::uint8_t>(n >> 16);
  return hash;
}

PeerEndpoint v4(std::uint32_t n, std::uint16_t port = 6881) {
  const std::uint8_t address[4] = {192, static_cast<std::uint8_t>(n >> 16),
                                   static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  return PeerEndpoint::ipv4(address, port);
}

PeerEndpoint v6(std::uint32_t n) {
  std::uint8_t address[16] = {0x20, 0x01, 0x0d, 0xb8};
  address[14] = static_cast<std::uint8_t>(n >> 8);
  address[15] = static_cast<std::uint8_t>(n);
  return PeerEndpoint::ipv6(address, 6881);
}

class StoreTest : public ::testing::Test {
 protected:
  AnnounceReply announce(std::uint32_t hash, const PeerEndpoint& peer, std::uint64_t left,
                         AnnounceEvent event = AnnounceEvent::none, std::uint32_t wanted = 50) {
    AnnounceRequest request;
    request.info_hash = hash_of(hash);
    request.peer = peer;
    request.left_bytes = left;
    request.event = event;
    out_.assign(wanted * peer.wire_size(), 0);
    const AnnounceReply reply = store_.announce(request, now_s_, out_);
    if (verify_each_) store_.verify();
    return reply;
  }
  std::set<std::vector<std::uint8_t>> returned(const AnnounceReply& reply, std::size_t size) const {
    std::set<std::vector<std::uint8_t>> peers;
    for (std::uint32_t i = 0; i < reply.peers_count; ++i) {
      peers.insert(
          std::vector<std::uint8_t>(out_.begin() + i * size, out_.begin() + (i + 1) * size));
    }
    return peers;
  }
  static std::vector<std::uint8_t> wire(const PeerEndpoint& peer) {
    return {peer.wire_bytes().begin(), peer.wire_bytes().end()};
  }

  StoreLimits limits_;
  SwarmStore store_{limits_, HashSecret::from_seed(11), 1};
  std::vector<std::uint8_t> out_;
  std::uint32_t now_s_ = 100;
  bool verify_each_ = true;  // O(n) per announce: off for the large tests
};

TEST_F(StoreTest, LeftZeroMakesASeederAndCountsIncludeTheRequester) {
  auto reply = announce(1, v4(1), 0, AnnounceEvent::started);
  EXPECT_EQ(reply.seeders, 1u);
  EXPECT_EQ(reply.leechers, 0u);
  EXPECT_EQ(reply.peers_count, 0u);
  reply = announce(1, v4(2), 500, AnnounceEvent::started);
  EXPECT_EQ(reply.seeders, 1u);
  EXPECT_EQ(reply.leechers, 1u);
  EXPECT_EQ(returned(reply, 6), (std::set{wire(v4(1))}));
}

TEST_F(StoreTest, ALeecherBecomesASeederAndBack) {
  announce(1, v4(1), 10);
  auto reply = announce(1, v4(1), 0);
  EXPECT_EQ(reply.seeders, 1u);
  EXPECT_EQ(reply.leechers, 0u);
  reply = announce(1, v4(1), 5);
  EXPECT_EQ(reply.seeders, 0u);
  EXPECT_EQ(reply.leechers, 1u);
}

TEST_F(StoreTest, CompletedCountsOncePerPeer) {
  announce(1, v4(1), 10, AnnounceEvent::started);
  EXPECT_EQ(announce(1, v4(1), 0, AnnounceEvent::completed).completed, 1u);
  EXPECT_EQ(announce(1, v4(1), 0, AnnounceEvent::completed).completed, 1u);
  // A new peer arriving with event=completed counts too.
  EXPECT_EQ(announce(1, v4(2), 0, AnnounceEvent::completed).completed, 2u);
  EXPECT_EQ(store_.scrape(hash_of(1), now_s_).completed, 2u);
}

TEST_F(StoreTest, StoppedRemovesThePeerAndAnEmptySwarmIsFreed) {
  announce(1, v4(1), 10);
  announce(1, v4(2), 0);
  auto reply = announce(1, v4(1), 10, AnnounceEvent::stopped);
  EXPECT_EQ(reply.peers_count, 0u);
  EXPECT_EQ(reply.leechers, 0u);
  EXPECT_EQ(reply.seeders, 1u);
  announce(1, v4(2), 0, AnnounceEvent::stopped);
  EXPECT_EQ(store_.swarms_count(), 0u);
  EXPECT_EQ(store_.scrape(hash_of(1), now_s_), ScrapeEntry{});
  // A stop for an unknown swarm creates nothing.
  announce(2, v4(3), 0, AnnounceEvent::stopped);
  EXPECT_EQ(store_.swarms_count(), 0u);
}

TEST_F(StoreTest, OnlyTheSameAddressAndPortUpdateAPeer) {
  announce(1, v4(1, 1000), 10);
  announce(1, v4(1, 1001), 10);  // same IP, other port: another peer
  EXPECT_EQ(store_.scrape(hash_of(1), now_s_).leechers, 2u);
  announce(1, v4(1, 1001), 10, AnnounceEvent::stopped);
  EXPECT_EQ(store_.scrape(hash_of(1), now_s_).leechers, 1u);
}

TEST_F(StoreTest, SeedersGetOnlyLeechersAndLeechersGetEveryone) {
  for (std::uint32_t i = 0; i < 5; ++i) announce(1, v4(i), 0);      // seeders 0..4
  for (std::uint32_t i = 10; i < 15; ++i) announce(1, v4(i), 100);  // leechers 10..14
  auto reply = announce(1, v4(0), 0);
  std::set<std::vector<std::uint8_t>> leechers;
  for (std::uint32_t i = 10; i < 15; ++i) leechers.insert(wire(v4(i)));
  EXPECT_EQ(returned(reply, 6), leechers);
  reply = announce(1, v4(10), 100);
  EXPECT_EQ(reply.peers_count, 9u);  // everyone but itself
  EXPECT_FALSE(returned(reply, 6).count(wire(v4(10))));
}

TEST_F(StoreTest, NumwantLimitsAndWindowsVary) {
  for (std::uint32_t i = 0; i < 100; ++i) announce(1, v4(i), 100);
  std::set<std::vector<std::uint8_t>> seen;
  for (int round = 0; round < 20; ++round) {
    const auto reply = announce(1, v4(200), 100, AnnounceEvent::none, 10);
    ASSERT_EQ(reply.peers_count, 10u);
    for (const auto& peer : returned(reply, 6)) seen.insert(peer);
  }
  EXPECT_GT(seen.size(), 40u);  // random windows: not the same ten every time
  EXPECT_EQ(announce(1, v4(200), 100, AnnounceEvent::none, 0).peers_count, 0u);
}

TEST_F(StoreTest, FamiliesAreNeverMixed) {
  announce(1, v4(1), 10);
  announce(1, v6(1), 10);
  auto reply = announce(1, v6(2), 10);
  EXPECT_EQ(reply.leechers, 3u);  // counts cover both families
  EXPECT_EQ(returned(reply, 18), (std::set{wire(v6(1))}));
  reply = announce(1, v4(2), 10);
  EXPECT_EQ(returned(reply, 6), (std::set{wire(v4(1))}));
  EXPECT_EQ(store_.counters().peers_ipv4, 2u);
  EXPECT_EQ(store_.counters().peers_ipv6, 2u);
}

TEST_F(StoreTest, AnIpv6SetMovesWithItsRecordWhenAnotherSwarmLeaves) {
  // Swarm 1 holds IPv4 peers only; swarm 2, the last record, both families.
  announce(1, v4(1), 10);
  announce(2, v4(2), 10);
  announce(2, v6(1), 10);
  announce(2, v6(2), 0);
  announce(1, v4(1), 10, AnnounceEvent::stopped);  // swarm 1 goes: swarm 2's record moves
  ASSERT_EQ(store_.swarms_count(), 1u);
  auto reply = announce(2, v6(3), 10);
  EXPECT_EQ(reply.seeders, 1u);
  EXPECT_EQ(reply.leechers, 3u);
  EXPECT_EQ(returned(reply, 18), (std::set{wire(v6(1)), wire(v6(2))}));
  // Its IPv6 peers leave: the set goes, and the swarm made after it (its record where swarm 2's
  // was) holds no IPv6 set.
  for (std::uint32_t n = 1; n <= 3; ++n) announce(2, v6(n), 10, AnnounceEvent::stopped);
  EXPECT_EQ(store_.counters().peers_ipv6, 0u);
  announce(3, v4(3), 10);
  reply = announce(3, v6(4), 10);
  EXPECT_EQ(reply.leechers, 2u);
  EXPECT_EQ(reply.peers_count, 0u);
  EXPECT_EQ(store_.scrape(hash_of(2), now_s_).leechers, 1u);
}

// Issue 21 §5: what a stored IPv4 peer costs at 10 peers a swarm, the bench's even fill: the
// table (records, index, IPv6 side array) and the peers' blocks, less the arena's free slabs
// (a fixed cost). 60 k swarms: 64-byte records, the index at 68 % load (11.8 bytes a swarm),
// 72-byte blocks: 14.8 bytes a peer (15.6 with the 72-byte record and its IPv6 pointer).
TEST_F(StoreTest, TenIpv4PeersASwarmCostUnder15BytesEach) {
  verify_each_ = false;
  constexpr std::uint32_t swarms = 60'000;
  constexpr std::uint32_t peers = 10 * swarms;
  for (std::uint32_t p = 0; p < peers; ++p) {
    ASSERT_EQ(announce(p % swarms, v4(p), 1, AnnounceEvent::started, 0).status,
              AnnounceStatus::ok);
  }
  store_.verify();
  ASSERT_EQ(store_.counters().peers_ipv4, peers);
  const ArenaStats& arena = store_.arena_stats();
  const std::size_t table_bytes = store_.memory_bytes() - arena.slab_bytes - arena.large_bytes;
  const std::size_t bytes = table_bytes + arena.block_bytes_in_use;
  EXPECT_EQ(arena.block_bytes_in_use, std::size_t{swarms} * 72);  // 10 peers: 70 bytes
  EXPECT_LE(table_bytes, std::size_t{swarms} * 77) << "records and index";
  EXPECT_LE(bytes, std::size_t{peers} * 15) << double(bytes) / peers << " bytes a peer";
}

TEST_F(StoreTest, CrossingTheIndexThresholdBothWaysKeepsEveryPeerFindable) {
  // Up past the index threshold and back down, with stops in the middle of the arrays.
  for (std::uint32_t i = 0; i < 300; ++i) announce(1, v4(i), i % 3 == 0 ? 0 : 1);
  EXPECT_EQ(store_.scrape(hash_of(1), now_s_).seeders + store_.scrape(hash_of(1), now_s_).leechers, 300u);
  for (std::uint32_t i = 0; i < 300; i += 2) announce(1, v4(i), 0, AnnounceEvent::stopped);
  for (std::uint32_t i = 1; i < 300; i += 2) {  // re-announces find the existing peer
    const auto before = store_.scrape(hash_of(1), now_s_);
    announce(1, v4(i), i % 3 == 0 ? 0 : 1);
    ASSERT_EQ(store_.scrape(hash_of(1), now_s_).seeders + store_.scrape(hash_of(1), now_s_).leechers,
              before.seeders + before.leechers);
  }
  for (std::uint32_t i = 1; i < 290; i += 2) announce(1, v4(i), 0, AnnounceEvent::stopped);
  const auto left = store_.scrape(hash_of(1), now_s_);
  EXPECT_EQ(left.seeders + left.leechers, 5u);
}

TEST_F(StoreTest, SetsPastTheNarrowIndexUseWideEntriesAndComeBack) {
  // Over 65534 peers the index holds 32-bit positions; shrinking returns to 16-bit ones.
  verify_each_ = false;  // PeerSet::verify is O(n^2)
  constexpr std::uint32_t peers = 80'000;
  auto total = [&] {
    const ScrapeEntry entry = store_.scrape(hash_of(1), now_s_);
    return entry.seeders + entry.leechers;
  };
  for (std::uint32_t i = 0; i < peers; ++i)
    announce(1, v4(i), i % 3 == 0 ? 0 : 1, AnnounceEvent::none, 0);
  ASSERT_EQ(total(), peers);
  for (std::uint32_t i = 0; i < peers; i += 7)
    announce(1, v4(i), i % 3 == 0 ? 1 : 0, AnnounceEvent::none, 0);
  ASSERT_EQ(total(), peers);  // role flips found their peers
  for (std::uint32_t i = 0; i < peers; ++i) {
    if (i % 8 != 0) announce(1, v4(i), 0, AnnounceEvent::stopped, 0);
  }
  ASSERT_EQ(total(), peers / 8);
  for (std::uint32_t i = 0; i < peers; i += 8) announce(1, v4(i), 1, AnnounceEvent::none, 0);
  ASSERT_EQ(total(), peers / 8);
  ASSERT_EQ(store_.scrape(hash_of(1), now_s_).seeders, 0u);
  for (std::uint32_t i = 0; i < peers; i += 8) announce(1, v4(i), 0, AnnounceEvent::stopped, 0);
  EXPECT_EQ(store_.swarms_count(), 0u);
}

TEST_F(StoreTest, PeersExpireAndEmptySwarmsAreFreed) {
  for (std::uint32_t i = 0; i < 50; ++i) announce(i, v4(i), 10);
  now_s_ += limits_.peer_timeout_s / 2;
  announce(7, v4(7), 10);  // this one stays fresh
  now_s_ += limits_.peer_timeout_s / 2 + 8;
  for (std::uint32_t s = 0; s < limits_.peer_timeout_s / 4 + 2; ++s) store_.expire_step(++now_s_);
  store_.verify();
  EXPECT_EQ(store_.swarms_count(), 1u);
  EXPECT_EQ(store_.scrape(hash_of(7), now_s_).leechers, 1u);
  EXPECT_EQ(store_.counters().peers_expired, 49u);
}

TEST_F(StoreTest, TheTableGrowsWhileServing) {
  // Thousands of swarms force several growths; every swarm stays findable throughout.
  verify_each_ = false;
  for (std::uint32_t i = 0; i < 20000; ++i) {
    announce(i, v4(i), 1);
    if (i % 997 == 0) {
      for (std::uint32_t j = 0; j <= i; j += 101)
        ASSERT_EQ(store_.scrape(hash_of(j), now_s_).leechers, 1u) << j;
    }
  }
  EXPECT_EQ(store_.swarms_count(), 20000u);
  store_.verify();
  for (std::uint32_t i = 0; i < 20000; i += 2) announce(i, v4(i), 1, AnnounceEvent::stopped);
  EXPECT_EQ(store_.swarms_count(), 10000u);
  for (std::uint32_t i = 1; i < 20000; i += 2) ASSERT_EQ(store_.scrape(hash_of(i), now_s_).leechers, 1u);
}

TEST_F(StoreTest, CarriedLookupFindsTheSameSwarms) {
  // An announce with the lookup start_lookup() began (the shard's read-ahead; the info_hash is
  // hashed there only) lands in the swarm a plain announce made and makes the one it finds
  // missing, through an index growth: one swarm per info_hash, no second entry.
  verify_each_ = false;
  for (std::uint32_t i = 0; i < 3000; ++i) announce(i, v4(i), 0);  // grows the index
  AnnounceRequest request;
  for (std::uint32_t i = 0; i < 6000; ++i) {
    request.info_hash = hash_of(i);
    request.peer = v4(100'000 + i);
    request.left_bytes = 1;
    store::SwarmLookup lookup = store_.start_lookup(request.info_hash);
    store_.prefetch({&lookup, 1});
    const AnnounceReply reply = store_.announce(request, lookup, now_s_, out_);
    ASSERT_EQ(reply.seeders + reply.leechers, i < 3000 ? 2u : 1u) << i;
  }
  store_.verify();
  EXPECT_EQ(store_.swarms_count(), 6000u);
  for (std::uint32_t i = 0; i < 6000; ++i) {
    ASSERT_EQ(store_.scrape(hash_of(i), now_s_).leechers, 1u) << i;
  }
}

TEST_F(StoreTest, StaleRecordHintsFindTheRightSwarms) {
  // A batch read ahead, then served in order: the first half of its announces are `stopped`
  // and free their swarms (each erase moves the last record into the hole), and before the
  // second half is served new swarms take the freed positions, so the hints prefetch() left
  // for the second half name other swarms' records. Each must still land in its own swarm.
  constexpr std::uint32_t swarms = 64;
  for (std::uint32_t i = 0; i < swarms; ++i) announce(i, v4(i), 1);
  std::vector<store::SwarmLookup> lookups;
  for (std::uint32_t i = 0; i < swarms; ++i) lookups.push_back(store_.start_lookup(hash_of(i)));
  store_.prefetch(lookups);
  std::uint32_t hinted = 0;
  for (const auto& lookup : lookups) {
    hinted += lookup.position_hint != store::SwarmLookup::no_position;
  }
  EXPECT_GT(hinted, swarms / 2);  // most records seen near their home
  for (std::uint32_t i = 0; i < swarms; ++i) {
    AnnounceRequest request;
    request.info_hash = hash_of(i);
    request.left_bytes = 1;
    const bool leaving = i < swarms / 2;
    if (i == swarms / 2) {
      for (std::uint32_t k = 0; k < swarms / 2; ++k) announce(5000 + k, v4(5000 + k), 1);
    }
    request.peer = leaving ? v4(i) : v4(1000 + i);
    request.event = leaving ? AnnounceEvent::stopped : AnnounceEvent::none;
    const AnnounceReply reply = store_.announce(request, lookups[i], now_s_, out_);
    ASSERT_EQ(reply.leechers, leaving ? 0u : 2u) << i;
    store_.verify();
  }
  EXPECT_EQ(store_.swarms_count(), swarms);
  for (std::uint32_t i = swarms / 2; i < swarms; ++i) {
    ASSERT_EQ(store_.scrape(hash_of(i), now_s_).leechers, 2u) << i;
    ASSERT_EQ(store_.scrape(hash_of(5000 + i - swarms / 2), now_s_).leechers, 1u) << i;
  }
}

TEST_F(StoreTest, ReadingAheadChangesNothingInAnyState) {
  // prefetch() is a hint: over an empty store, a full batch and more, known and unknown hashes,
  // and an index mid-growth, it must leave every swarm as it was (verify() checks the tables).
  verify_each_ = false;
  std::vector<store::SwarmLookup> batch;
  for (std::uint32_t i = 0; i < SwarmStore::prefetch_batch_max + 10; ++i)
    batch.push_back(store_.start_lookup(hash_of(i)));
  store_.prefetch(batch);
  store_.prefetch({});
  EXPECT_EQ(store_.swarms_count(), 0u);
  for (std::uint32_t i = 0; i < 3000; ++i) {
    announce(i, v4(i), 1);
    store_.prefetch({batch.data() + i % 40, 30});
  }
  // Swarms with no IPv4 peers (IPv6 only, or the IPv4 peer gone) and with IPv4 sets large
  // enough to carry an index: the last pass follows each record's IPv4 peers, or finds none.
  for (std::uint32_t i = 3000; i < 3010; ++i) announce(i, v6(i), 1);
  for (std::uint32_t i = 3010; i < 3020; ++i) {
    announce(i, v6(i), 1);
    announce(i, v4(i), 1);
    announce(i, v4(i), 1, AnnounceEvent::stopped);
  }
  for (std::uint32_t p = 0; p < 200; ++p) announce(3020, v4(10'000 + p), 1);
  std::vector<store::SwarmLookup> late;
  for (std::uint32_t i = 3000; i <= 3020; ++i) late.push_back(store_.start_lookup(hash_of(i)));
  store_.prefetch(late);
  store_.verify();
  EXPECT_EQ(store_.swarms_count(), 3021u);
  for (std::uint32_t i = 0; i < 3020; ++i) ASSERT_EQ(store_.scrape(hash_of(i), now_s_).leechers, 1u) << i;
  EXPECT_EQ(store_.scrape(hash_of(3020), now_s_).leechers, 200u);
}

TEST_F(StoreTest, SwarmsLeaveWhileTheIndexGrows) {
  // Swarms come and go through several index growths: an erase then finds its entry (and the
  // entry of the record moved into its place) in either index. verify() checks every entry.
  std::uint32_t next_to_stop = 0;
  for (std::uint32_t i = 0; i < 4000; ++i) {
    announce(i, v4(i), 1);
    if (i % 3 == 0) {
      announce(next_to_stop, v4(next_to_stop), 1, AnnounceEvent::stopped);
      next_to_stop += 2;
    }
  }
  EXPECT_EQ(store_.swarms_count(), 4000u - 1334u);
  for (std::uint32_t i = 0; i < 4000; ++i) {
    const bool stopped = i < next_to_stop && i % 2 == 0;
    ASSERT_EQ(store_.scrape(hash_of(i), now_s_).leechers, stopped ? 0u : 1u) << i;
  }
}

TEST_F(StoreTest, RecordPagesGoBackWhenSwarmsLeave) {
  verify_each_ = false;
  constexpr std::uint32_t swarms = 100'000;
  for (std::uint32_t i = 0; i < swarms; ++i) announce(i, v4(i), 1);
  const std::size_t full_bytes = store_.memory_bytes();
  EXPECT_GE(full_bytes, swarms * sizeof(Swarm));
  for (std::uint32_t i = 1000; i < swarms; ++i) announce(i, v4(i), 1, AnnounceEvent::stopped);
  store_.verify();
  EXPECT_EQ(store_.swarms_count(), 1000u);
  // The records of the 99,000 swarms that went, 6.3 MB, less the hysteresis (halvings down to
  // one that would give back under 1 MB: 5.85 MB went here; the index does not shrink).
  EXPECT_LE(store_.memory_bytes(), full_bytes - 5'500'000);
  for (std::uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(store_.scrape(hash_of(i), now_s_).leechers, 1u);
  for (std::uint32_t i = 0; i < 1000; ++i) announce(swarms + i, v4(i), 1);  // reuses the pages
  store_.verify();
  EXPECT_EQ(store_.swarms_count(), 2000u);
}

SwarmStatistics statistics_of(SwarmStore& store, std::uint32_t hash, std::uint32_t now_s) {
  SwarmStatistics statistics;
  EXPECT_TRUE(store.statistics(hash_of(hash), now_s, statistics));
  return statistics;
}

TEST_F(StoreTest, StatisticsCountAnnouncesJoinsAndLeavesPerWindow) {
  const std::uint32_t window_s = limits_.statistics_window_s;
  now_s_ = window_s * 10 + 5;  // early in a window
  for (std::uint32_t i = 0; i < 10; ++i) announce(1, v4(i), 10);
  for (std::uint32_t i = 0; i < 3; ++i) announce(1, v4(i), 10, AnnounceEvent::stopped);
  announce(1, v4(5), 0, AnnounceEvent::completed);  // a leecher finishes: matched
  now_s_ += 7;
  SwarmStatistics now = statistics_of(store_, 1, now_s_);
  EXPECT_EQ(now.leechers, 6u);
  EXPECT_EQ(now.seeders, 1u);
  EXPECT_EQ(now.completed, 1u);
  EXPECT_EQ(now.age_s, 7u);
  EXPECT_EQ(now.announces_this_window, 14u);
  EXPECT_EQ(now.joins_this_window, 10u);
  EXPECT_EQ(now.leaves_this_window, 3u);
  EXPECT_EQ(now.unmatched_completions_this_window, 0u);
  EXPECT_EQ(now.announces_last_window, 0u);
  EXPECT_FALSE(store_.statistics(hash_of(2), now_s_, now));

  now_s_ += window_s;  // the next window: the counts become "last window"
  const SwarmStatistics next = statistics_of(store_, 1, now_s_);
  EXPECT_EQ(next.announces_last_window, 14u);
  EXPECT_EQ(next.joins_last_window, 10u);
  EXPECT_EQ(next.leaves_last_window, 3u);
  EXPECT_EQ(next.announces_this_window, 0u);
  EXPECT_EQ(next.leechers_average, 6u / 4);  // a quarter of the way from 0 to 6 leechers
  EXPECT_EQ(next.flags, 0);

  now_s_ += 2 * window_s;  // a quiet window in between: nothing was "last window"
  EXPECT_EQ(statistics_of(store_, 1, now_s_).announces_last_window, 0u);
}

TEST_F(StoreTest, LeecherSurgeIsFlaggedAgainstTheSwarmsOwnAverage) {
  const std::uint32_t window_s = limits_.statistics_window_s;
  now_s_ = window_s * 10;
  // Swarm 1: 40 leechers every window (the same peers): its average catches up, no surge.
  // Swarm 2: 4 leechers, then 40 new ones in one window: a surge.
  for (std::uint32_t w = 0; w < 12; ++w) {
    for (std::uint32_t i = 0; i < 40; ++i) announce(1, v4(i), 10);
    for (std::uint32_t i = 0; i < 4; ++i) announce(2, v4(i), 10);
    now_s_ += window_s;
  }
  EXPECT_EQ(statistics_of(store_, 1, now_s_).flags & leecher_surge, 0);
  EXPECT_EQ(statistics_of(store_, 2, now_s_).flags & leecher_surge, 0);
  for (std::uint32_t i = 0; i < 40; ++i) announce(2, v4(100 + i), 10);
  EXPECT_EQ(statistics_of(store_, 2, now_s_).flags & leecher_surge, 0);  // window still open
  now_s_ += window_s;
  EXPECT_NE(statistics_of(store_, 2, now_s_).flags & leecher_surge, 0);
  now_s_ += window_s;  // a window without joins clears it
  EXPECT_EQ(statistics_of(store_, 2, now_s_).flags & leecher_surge, 0);
}

TEST_F(StoreTest, AnnounceFloodAndUnmatchedCompletionsAreFlagged) {
  const std::uint32_t window_s = limits_.statistics_window_s;
  now_s_ = window_s * 10;
  for (std::uint32_t i = 0; i < 100; ++i) announce(1, v4(1), 10);  // one peer, 100 announces
  for (std::uint32_t i = 0; i < 10; ++i) announce(2, v4(i), 10);   // 10 peers, once each
  // Swarm 3: 10 new peers arrive claiming a completed download; swarm 4: leechers finish.
  for (std::uint32_t i = 0; i < 10; ++i) announce(3, v4(i), 0, AnnounceEvent::completed);
  for (std::uint32_t i = 0; i < 10; ++i) announce(4, v4(i), 10);
  for (std::uint32_t i = 0; i < 10; ++i) announce(4, v4(i), 0, AnnounceEvent::completed);
  EXPECT_EQ(statistics_of(store_, 3, now_s_).unmatched_completions_this_window, 10u);
  EXPECT_EQ(statistics_of(store_, 4, now_s_).unmatched_completions_this_window, 0u);
  now_s_ += window_s;
  EXPECT_EQ(statistics_of(store_, 1, now_s_).flags, announce_flood);
  EXPECT_EQ(statistics_of(store_, 2, now_s_).flags, 0);
  EXPECT_EQ(statistics_of(store_, 3, now_s_).flags, completions_without_leechers);
  EXPECT_EQ(statistics_of(store_, 4, now_s_).flags, 0);
}

TEST_F(StoreTest, TheSweepFlagsAPrefixHoldingMostOfASwarm) {
  // Swarm 1: 20 peers in 10.1.2.0/24 and 4 elsewhere. Swarm 2: 24 peers in 24 different /24s.
  for (std::uint32_t i = 0; i < 20; ++i) {
    const std::uint8_t address[4] = {10, 1, 2, static_cast<std::uint8_t>(i)};
    announce(1, PeerEndpoint::ipv4(address, 6881), 10);
  }
  for (std::uint32_t i = 0; i < 4; ++i) announce(1, v4(i << 8), 10);
  for (std::uint32_t i = 0; i < 24; ++i) announce(2, v4(i << 8), 10);
  EXPECT_EQ(statistics_of(store_, 1, now_s_).flags, 0);  // not swept yet
  for (std::uint32_t s = 0; s < limits_.peer_timeout_s / 4 + 2; ++s) store_.expire_step(++now_s_);
  const SwarmStatistics concentrated = statistics_of(store_, 1, now_s_);
  EXPECT_NE(concentrated.flags & address_concentration, 0);
  EXPECT_NEAR(concentrated.prefix_share_permille, 20 * 1000 / 24, 5);
  EXPECT_EQ(statistics_of(store_, 2, now_s_).flags & address_concentration, 0);
  EXPECT_EQ(statistics_of(store_, 2, now_s_).prefix_share_permille, 0u);
}

TEST_F(StoreTest, TopListsTheBestSwarmsFirst) {
  for (std::uint32_t hash = 1; hash <= 6; ++hash) {
    for (std::uint32_t i = 0; i < hash; ++i) announce(hash, v4(i), 10);
  }
  announce(2, v4(99), 0);  // one seeder
  SwarmStatistics top[3];
  ASSERT_EQ(store_.top(TopOrder::leechers, now_s_, top), 3u);
  EXPECT_EQ(top[0].leechers, 6u);
  EXPECT_EQ(top[1].leechers, 5u);
  EXPECT_EQ(top[2].leechers, 4u);
  EXPECT_EQ(top[0].info_hash, hash_of(6));
  ASSERT_EQ(store_.top(TopOrder::seeders, now_s_, std::span(top, 1)), 1u);
  EXPECT_EQ(top[0].info_hash, hash_of(2));
  SwarmStatistics all[10];
  EXPECT_EQ(store_.top(TopOrder::peers, now_s_, all), 6u);
}

TEST_F(StoreTest, ASnapshotRestoresSwarmsPeersAndCounts) {
  for (std::uint32_t hash = 1; hash <= 20; ++hash) {
    for (std::uint32_t i = 0; i < hash; ++i) announce(hash, v4(i), i % 3 == 0 ? 0 : 10);
    announce(hash, v6(hash), 10);
  }
  announce(5, v4(1), 0, AnnounceEvent::completed);
  now_s_ += 40;
  std::vector<std::uint8_t> records;
  EXPECT_EQ(store_.append_snapshot(now_s_, records), 20u);

  SwarmStore restored{limits_, HashSecret::from_seed(12), 2};
  const std::uint32_t later_s = 5000;
  const auto result =
      restored.restore_snapshot(records, later_s, 60, [](const InfoHash&) { return true; });
  ASSERT_TRUE(result.ok()) << result.error();
  EXPECT_EQ(result.value().swarms, 20u);
  EXPECT_EQ(result.value().peers, 20u * 21 / 2 + 20);
  restored.verify();
  for (std::uint32_t hash = 1; hash <= 20; ++hash) {
    EXPECT_EQ(restored.scrape(hash_of(hash), now_s_), store_.scrape(hash_of(hash), now_s_)) << hash;
  }
  EXPECT_EQ(restored.counters().peers_ipv6, 20u);
  SwarmStatistics statistics;
  ASSERT_TRUE(restored.statistics(hash_of(5), later_s, statistics));
  EXPECT_EQ(statistics.age_s, 40u + 60u);  // its age then, plus the time the tracker was down
  // A completion counted before the restart is not counted again.
  AnnounceRequest again;
  again.info_hash = hash_of(5);
  again.peer = v4(1);
  again.event = AnnounceEvent::completed;
  std::vector<std::uint8_t> out(50 * 6);
  EXPECT_EQ(restored.announce(again, later_s, out).completed, 1u);
  // Peers keep their age (100 s at the restart, with the downtime): 50 s and one stamp unit
  // (ages are whole units) before the timeout of the one that announced since, a full sweep
  // finds every other peer expired.
  const std::uint32_t unit_s = StampClock(limits_.peer_timeout_s).unit_s();
  ASSERT_LT(unit_s + 50 + 100, limits_.peer_timeout_s);
  restored.expire_step(later_s);
  restored.expire_step(later_s + limits_.peer_timeout_s - 50 - unit_s);  // > a sweep period
  EXPECT_EQ(restored.swarms_count(), 1u);  // only swarm 5 announced after the restart
  EXPECT_EQ(restored.scrape(hash_of(5), now_s_).seeders, 1u);
}

TEST_F(StoreTest, ASnapshotKeepsWhatItIsToldAndRefusesTruncation) {
  for (std::uint32_t hash = 1; hash <= 10; ++hash) announce(hash, v4(hash), 10);
  std::vector<std::uint8_t> records;
  store_.append_snapshot(now_s_, records);
  SwarmStore odd{limits_, HashSecret::from_seed(13), 3};
  const auto kept = odd.restore_snapshot(
      records, now_s_, 0, [](const InfoHash& hash) { return hash.bytes[0] % 2 == 1; });
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept.value().swarms, 5u);
  EXPECT_EQ(odd.scrape(hash_of(3), now_s_).leechers, 1u);
  EXPECT_EQ(odd.scrape(hash_of(4), now_s_).leechers, 0u);
  // Downtime beyond the peer timeout (and the last stamp unit): nothing is restored.
  SwarmStore stale{limits_, HashSecret::from_seed(14), 4};
  const auto none = stale.restore_snapshot(
      records, now_s_, limits_.peer_timeout_s + StampClock(limits_.peer_timeout_s).unit_s(),
                                           [](const InfoHash&) { return true; });
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none.value().swarms, 0u);
  EXPECT_EQ(stale.swarms_count(), 0u);
  for (std::size_t cut : {std::size_t{1}, std::size_t{10}, records.size() - 1}) {
    SwarmStore partial{limits_, HashSecret::from_seed(15), 5};
    const auto truncated =
        partial.restore_snapshot(std::span(records).first(records.size() - cut), now_s_, 0,
                                 [](const InfoHash&) { return true; });
    EXPECT_FALSE(truncated.ok()) << cut;
    partial.verify();
  }
}

TEST(StampClockTest, AgesAreWholeUnitsOfOne64thOfTheTimeout) {
  EXPECT_EQ(StampClock(limits::peer_timeout_s).unit_s(), 61u);  // 3900 s / 64, rounded up
  EXPECT_EQ(StampClock(600).unit_s(), 10u);
  EXPECT_EQ(StampClock(64).unit_s(), 1u);
  EXPECT_EQ(StampClock(0).unit_s(), 1u);
  const StampClock clock(3900);
  const std::uint32_t then_s = 10'000;  // 163 units and 57 s
  const std::uint8_t stamp = clock.stamp_of(then_s);
  EXPECT_EQ(clock.age_s(stamp, then_s), 0u);
  EXPECT_EQ(clock.age_s(stamp, then_s + 3), 0u);
  EXPECT_EQ(clock.age_s(stamp, then_s + 4), 61u);  // the next unit began
  EXPECT_EQ(clock.age_s(stamp | stamp_completed_bit, then_s + 4), 61u);
  EXPECT_EQ(clock.age_s(stamp, then_s + 61 * 127), 61u * 127);
  EXPECT_EQ(clock.age_s(stamp, then_s + 61 * 128), 0u);  // the wrap the sweep never lets come
  EXPECT_EQ(clock.age_s(clock.stamp_at(20'000 - 610), 20'000), 610u);
  EXPECT_EQ(clock.stamp_at(20'000 - 610) & stamp_completed_bit, 0);
  EXPECT_EQ(clock.stamp_at(then_s), stamp);
}

// Two processes that started at different times (cluster nodes) see the same stamp for the same
// Unix second, and the same unit boundaries: units begin on multiples of the unit in Unix time.
TEST(StampClockTest, UnitsAreAlignedToUnixTimeWheneverTheClockBegan) {
  const std::uint64_t unix_s = 1'796'000'017;  // 2026-12 and a bit
  for (const std::uint64_t zero_a : {unix_s - 5, unix_s - 4'000, unix_s - 1'234'567}) {
    for (const std::uint64_t zero_b : {unix_s - 61, unix_s - 77, unix_s - 3'901}) {
      const StampClock a(3900, zero_a);
      const StampClock b(3900, zero_b);
      for (std::uint64_t t = unix_s; t < unix_s + 200; ++t) {
        const auto now_a = static_cast<std::uint32_t>(t - zero_a);
        const auto now_b = static_cast<std::uint32_t>(t - zero_b);
        ASSERT_EQ(a.stamp_of(now_a), b.stamp_of(now_b)) << t;
        ASSERT_EQ(a.stamp_of(now_a), static_cast<std::uint8_t>((t / 61) & stamp_time_mask)) << t;
      }
    }
  }
  // A second before the clock began (another node's announce, a snapshot's cut) has its stamp.
  const StampClock late(3900, unix_s - 10);
  EXPECT_EQ(late.stamp_at(-1'000), static_cast<std::uint8_t>(((unix_s - 1'010) / 61) & 0x7f));
  EXPECT_EQ(late.stamp_at(-100'000), static_cast<std::uint8_t>(((unix_s - 100'010) / 61) & 0x7f));
  EXPECT_EQ(late.stamp_at(0), static_cast<std::uint8_t>(((unix_s - 10) / 61) & 0x7f));
}

TEST(StoreLimitsTest, TheSwarmLimitShrinksToTheAddressSpaceThereIs) {
  // 2^28 swarms need 19 GB of record address space; with 34 GiB left and the arena taking 32 of
  // them, the store reserves fewer records and says so through swarms_max().
  const int status = testing::exit_status_with_address_space(std::size_t{34} << 30, [] {
    StoreLimits limits;
    limits.swarms_max = 1u << 28;
    SwarmStore store(limits, HashSecret::from_seed(1), 1);
    if (store.swarms_max() >= limits.swarms_max || store.swarms_max() < (1u << 16)) return 11;
    AnnounceRequest request;
    request.info_hash = hash_of(1);
    request.peer = v4(1);
    std::uint8_t out[6];
    if (store.announce(request, 1, out).status != AnnounceStatus::ok) return 12;
    return store.scrape(hash_of(1), 1).seeders == 1 ? 0 : 13;
  });
  EXPECT_EQ(status, 0) << "100: no limit set, 101: died, 11: limit not reduced, 12/13: no swarm";
}

TEST(StoreLimitsTest, CapsRefuseNewSwarmsAndPeersAndCountThem) {
  StoreLimits limits;
  limits.swarms_max = 2;
  limits.peers_per_swarm_max = 3;
  SwarmStore store(limits, HashSecret::from_seed(1), 1);
  std::vector<std::uint8_t> out(600);
  AnnounceRequest request;
  request.left_bytes = 1;
  for (std::uint32_t i = 0; i < 3; ++i) {
    request.info_hash = hash_of(i);
    request.peer = v4(i);
    const auto reply = store.announce(request, 10, out);
    EXPECT_EQ(reply.status, i < 2 ? AnnounceStatus::ok : AnnounceStatus::swarm_limit);
  }
  EXPECT_EQ(store.counters().swarms_refused, 1u);
  request.info_hash = hash_of(0);
  for (std::uint32_t i = 10; i < 14; ++i) {
    request.peer = v4(i);
    const auto reply = store.announce(request, 10, out);
    EXPECT_EQ(reply.status, i < 12 ? AnnounceStatus::ok : AnnounceStatus::peer_limit);
  }
  EXPECT_EQ(store.counters().peers_refused, 2u);
  request.peer = v4(10);  // existing peers still update
  EXPECT_EQ(store.announce(request, 10, out).status, AnnounceStatus::ok);
  store.verify();
}

// A completed count is the torrent's history: started, completed, stopped leaves a scrape that
// still says downloaded 1, for completed_keep_s after the swarm emptied, then the swarm goes. A
// swarm without completions goes with its last peer. (Issue 21: it used to go either way.)
TEST(CompletedCounts, OutliveTheLastPeerForTheKeepTime) {
  StoreLimits limits;
  limits.peer_timeout_s = 100;
  limits.statistics_window_s = 60;
  limits.completed_keep_s = 600;  // 10 windows
  SwarmStore store(limits, HashSecret::from_seed(5), 5);
  std::vector<std::uint8_t> out(50 * 6);
  auto announce = [&](std::uint32_t hash, AnnounceEvent event, std::uint32_t now_s) {
    AnnounceRequest request;
    request.info_hash = hash_of(hash);
    request.peer = v4(1);
    request.left_bytes = event == AnnounceEvent::started ? 10 : 0;
    request.event = event;
    return store.announce(request, now_s, out);
  };
  announce(1, AnnounceEvent::started, 1000);
  announce(1, AnnounceEvent::completed, 1010);
  EXPECT_EQ(announce(1, AnnounceEvent::stopped, 1020).completed, 1u);
  announce(2, AnnounceEvent::started, 1000);
  announce(2, AnnounceEvent::stopped, 1020);
  EXPECT_EQ(store.scrape(hash_of(1), 1020), (ScrapeEntry{0, 0, 1}));
  EXPECT_EQ(store.swarms_count(), 1u);  // the one without completions went
  store.verify();
  // Swept (and asked about) for the keep time: still there; a statistics query does not
  // extend it. Then gone.
  std::uint32_t now_s = 1020;
  for (; now_s < 1020 + 540; now_s += 10) {
    store.expire_step(now_s);
    SwarmStatistics statistics;
    ASSERT_TRUE(store.statistics(hash_of(1), now_s, statistics)) << now_s;
    EXPECT_EQ(statistics.completed, 1u);
  }
  for (; now_s < 1020 + 720; now_s += 10) store.expire_step(now_s);
  EXPECT_EQ(store.scrape(hash_of(1), now_s), ScrapeEntry{});
  EXPECT_EQ(store.swarms_count(), 0u);
  store.verify();
  // An emptied swarm that comes back goes on counting from its kept history.
  announce(3, AnnounceEvent::completed, 2000);
  announce(3, AnnounceEvent::stopped, 2001);
  announce(3, AnnounceEvent::completed, 2100);
  EXPECT_EQ(store.scrape(hash_of(3), 2100), (ScrapeEntry{1, 0, 2}));
  // Peers that expire (no stopped) leave the count behind too.
  for (now_s = 2100; now_s < 2400; now_s += 10) store.expire_step(now_s);
  EXPECT_EQ(store.scrape(hash_of(3), now_s), (ScrapeEntry{0, 0, 2}));
  store.verify();
}

TEST(CompletedCounts, AKeepTimeOfZeroDropsThemWithTheLastPeer) {
  StoreLimits limits;
  limits.completed_keep_s = 0;
  SwarmStore store(limits, HashSecret::from_seed(6), 6);
  std::vector<std::uint8_t> out(50 * 6);
  AnnounceRequest request;
  request.info_hash = hash_of(1);
  request.peer = v4(1);
  request.event = AnnounceEvent::completed;
  store.announce(request, 10, out);
  request.event = AnnounceEvent::stopped;
  store.announce(request, 11, out);
  EXPECT_EQ(store.swarms_count(), 0u);
}

// The snapshot record format belongs to the boundary, not to one store: what one store writes
// the other restores, both ways, to the same swarms (IPv4 and IPv6, seeders, completions).
TEST(SnapshotInterchange, TheReferenceStoreAndTheSwarmStoreReadEachOthersRecords) {
  StoreLimits limits;
  SwarmStore memory(limits, HashSecret::from_seed(9), 9);
  testing::ReferenceStore reference(limits);
  std::vector<std::uint8_t> out(50 * 18);
  for (std::uint32_t hash = 0; hash < 20; ++hash) {
    for (std::uint32_t peer = 0; peer < hash % 7 + 1; ++peer) {
      AnnounceRequest request;
      request.info_hash = hash_of(hash);
      request.peer = peer % 3 == 2 ? v6(peer) : v4(peer);
      request.left_bytes = peer % 2;
      request.event = peer % 4 == 0 ? AnnounceEvent::completed : AnnounceEvent::none;
      memory.announce(request, 100, out);
      reference.announce(request, 100, out);
    }
  }
  const auto keep_all = [](const InfoHash&) { return true; };
  std::vector<std::uint8_t> from_memory;
  std::vector<std::uint8_t> from_reference;
  EXPECT_EQ(memory.append_snapshot(110, from_memory), 20u);
  EXPECT_EQ(reference.append_snapshot(110, from_reference), 20u);
  SwarmStore memory_again(limits, HashSecret::from_seed(10), 10);
  testing::ReferenceStore reference_again(limits);
  ASSERT_TRUE(memory_again.restore_snapshot(from_reference, 200, 0, keep_all).ok());
  ASSERT_TRUE(reference_again.restore_snapshot(from_memory, 200, 0, keep_all).ok());
  for (std::uint32_t hash = 0; hash < 20; ++hash) {
    const ScrapeEntry expected = memory.scrape(hash_of(hash), 200);
    EXPECT_GT(expected.seeders + expected.leechers, 0u);
    EXPECT_EQ(reference.scrape(hash_of(hash), 200), expected);
    EXPECT_EQ(memory_again.scrape(hash_of(hash), 200), expected) << "from the reference's records";
    EXPECT_EQ(reference_again.scrape(hash_of(hash), 200), expected) << "from the memory store's";
  }
  // Records are hostile input: a truncated one is refused with its reason by both.
  from_memory.pop_back();
  EXPECT_FALSE(
      testing::ReferenceStore(limits).restore_snapshot(from_memory, 200, 0, keep_all).ok());
  EXPECT_FALSE(SwarmStore(limits, HashSecret::from_seed(11), 11)
                   .restore_snapshot(from_memory, 200, 0, keep_all)
                   .ok());
}

}  // namespace
}  // namespace tyto::swarm
