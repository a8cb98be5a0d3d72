// Issue 20, the peer store's side: PeerStore::apply_replica (another node's changes applied as
// if announced here), AnnounceReply::completion_counted, and restore_snapshot merging into swarms
// replicated changes made first (a warm start). Typed over both stores: the in-memory SwarmStore
// and the reference store, so the contract, not one implementation, is what is tested.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "support/reference_store.hpp"
#include "tyto/core/bytes.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace tyto::swarm {
namespace {

InfoHash hash_of(std::uint32_t n) {
  InfoHash hash;
  for (std::size_t i = 0; i < 20; ++i) hash.bytes[i] = static_cast<std::uint8_t>(n * 17 + i * 3);
  hash.bytes[0] = static_cast<std::uint8_t>(n);
  hash.bytes[1] = static_cast<std::uint8_t>(n >> 8);
  return hash;
}

PeerEndpoint v4(std::uint32_t n) {
  const std::uint8_t address[4] = {10, 1, static_cast<std::uint8_t>(n >> 8),
                                   static_cast<std::uint8_t>(n)};
  return PeerEndpoint::ipv4(address, 6881);
}

PeerEndpoint v6(std::uint32_t n) {
  std::uint8_t address[16] = {0x20, 0x01, 0x0d, 0xb8};
  address[14] = static_cast<std::uint8_t>(n >> 8);
  address[15] = static_cast<std::uint8_t>(n);
  return PeerEndpoint::ipv6(address, 6881);
}

struct Memory {
  static std::unique_ptr<store::PeerStore> make(const StoreLimits& limits) {
    return std::make_unique<SwarmStore>(limits, HashSecret::from_seed(31), 31);
  }
};
struct Reference {
  static std::unique_ptr<store::PeerStore> make(const StoreLimits& limits) {
    return std::make_unique<testing::ReferenceStore>(limits);
  }
};

void verify(const store::PeerStore& store) {
  if (const auto* memory = dynamic_cast<const SwarmStore*>(&store)) memory->verify();
}

// A timeout of 640 s makes the stamp unit 10 s: times and ages below are whole units, so both
// stores (seconds in one, units in the other) agree exactly.
constexpr std::uint32_t timeout_s = 640;
constexpr std::uint32_t unit_s = 10;
static_assert(StampClock(timeout_s).unit_s() == unit_s);

template <class Maker>
class ReplicaTest : public ::testing::Test {
 protected:
  ReplicaTest() { reset(); }
  void reset() {
    store_ = Maker::make(limits_);
    ASSERT_NE(store_, nullptr);
  }
  AnnounceReply announce(std::uint32_t hash, const PeerEndpoint& peer, std::uint64_t left,
                         AnnounceEvent event = AnnounceEvent::none) {
    AnnounceRequest request;
    request.info_hash = hash_of(hash);
    request.peer = peer;
    request.left_bytes = left;
    request.event = event;
    const AnnounceReply reply = store_->announce(request, now_s_, out_);
    verify(*store_);
    return reply;
  }
  ReplicaResult peer(std::uint32_t hash, const PeerEndpoint& peer, bool seeder,
                     std::uint32_t age_s) {
    ReplicaChange change;
    change.kind = ReplicaChange::Kind::peer;
    change.info_hash = hash_of(hash);
    change.peer = peer;
    change.seeder = seeder;
    change.announced_s = static_cast<std::int32_t>(now_s_) - static_cast<std::int32_t>(age_s);
    return apply(change);
  }
  ReplicaResult removed(std::uint32_t hash, const PeerEndpoint& peer) {
    ReplicaChange change;
    change.kind = ReplicaChange::Kind::peer_removed;
    change.info_hash = hash_of(hash);
    change.peer = peer;
    return apply(change);
  }
  ReplicaResult completed(std::uint32_t hash, std::uint16_t count) {
    ReplicaChange change;
    change.kind = ReplicaChange::Kind::completed;
    change.info_hash = hash_of(hash);
    change.completed_count = count;
    return apply(change);
  }
  ReplicaResult apply(const ReplicaChange& change) {
    const ReplicaResult result = store_->apply_replica(change, now_s_);
    verify(*store_);
    return result;
  }
  ScrapeEntry scrape(std::uint32_t hash) { return store_->scrape(hash_of(hash), now_s_); }
  // Expiry steps every unit up to now_s_ + seconds (a sweep covers a one-swarm store each step).
  void advance(std::uint32_t seconds) {
    for (const std::uint32_t end_s = now_s_ + seconds; now_s_ < end_s;) {
      now_s_ = std::min(end_s, now_s_ + unit_s);
      store_->expire_step(now_s_);
    }
    verify(*store_);
  }
  std::uint64_t peers_held() const {
    const auto& counters = store_->counters();
    return counters.peers_ipv4 + counters.peers_ipv6;
  }

  StoreLimits limits_ = [] {
    StoreLimits limits;
    limits.peer_timeout_s = timeout_s;
    limits.statistics_window_s = 600;
    limits.completed_keep_s = 3000;
    return limits;
  }();
  std::unique_ptr<store::PeerStore> store_;
  std::vector<std::uint8_t> out_ = std::vector<std::uint8_t>(50 * 18);
  std::uint32_t now_s_ = 100'000;  // a whole number of units
};

using Stores = ::testing::Types<Memory, Reference>;
class StoreNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, Memory> ? "SwarmStore" : "ReferenceStore";
  }
};
TYPED_TEST_SUITE(ReplicaTest, Stores, StoreNames);

TYPED_TEST(ReplicaTest, AnAnnounceSaysWhetherItCountedACompletion) {
  EXPECT_FALSE(this->announce(1, v4(1), 10, AnnounceEvent::started).completion_counted);
  EXPECT_FALSE(this->announce(1, v4(1), 10).completion_counted);
  auto reply = this->announce(1, v4(1), 0, AnnounceEvent::completed);
  EXPECT_TRUE(reply.completion_counted);
  EXPECT_EQ(reply.completed, 1u);
  reply = this->announce(1, v4(1), 0, AnnounceEvent::completed);  // repeated: counted once
  EXPECT_FALSE(reply.completion_counted);
  EXPECT_EQ(reply.completed, 1u);
  EXPECT_FALSE(this->announce(1, v4(1), 0).completion_counted);
  // A new peer arriving completed counts (IPv6 too); a stop never does.
  EXPECT_TRUE(this->announce(1, v6(2), 0, AnnounceEvent::completed).completion_counted);
  EXPECT_FALSE(this->announce(1, v6(2), 0, AnnounceEvent::stopped).completion_counted);
  EXPECT_EQ(this->scrape(1).completed, 2u);
}

TYPED_TEST(ReplicaTest, ARemotePeerIsAddedWithItsRoleAndCountsAsNoAnnounceHere) {
  EXPECT_EQ(this->peer(1, v4(1), false, 0), ReplicaResult::applied);
  EXPECT_EQ(this->peer(1, v6(2), true, 3 * unit_s), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{1, 1, 0}));
  const auto& counters = this->store_->counters();
  EXPECT_EQ(counters.announces, 0u);
  EXPECT_EQ(counters.swarms, 1u);
  EXPECT_EQ(counters.peers_ipv4, 1u);
  EXPECT_EQ(counters.peers_ipv6, 1u);
  EXPECT_EQ(counters.seeders, 1u);
  EXPECT_EQ(counters.leechers, 1u);
  store::SwarmStatistics statistics;
  ASSERT_TRUE(this->store_->statistics(hash_of(1), this->now_s_, statistics));
  EXPECT_EQ(statistics.announces_this_window, 0u);
  EXPECT_EQ(statistics.joins_this_window, 0u);
  // Local clients get the remote peer: a local leecher sees it.
  const AnnounceReply reply = this->announce(1, v4(3), 10);
  ASSERT_EQ(reply.peers_count, 1u);
  EXPECT_TRUE(std::equal(this->out_.begin(), this->out_.begin() + 6, v4(1).wire.begin()));
  EXPECT_EQ(this->store_->counters().announces, 1u);
  // The same change again changes nothing.
  EXPECT_EQ(this->peer(1, v4(1), false, 0), ReplicaResult::unchanged);
}

TYPED_TEST(ReplicaTest, ALeecherBecomesASeederAndBack) {
  this->announce(1, v4(1), 10);
  this->advance(2 * unit_s);
  EXPECT_EQ(this->peer(1, v4(1), true, 0), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{1, 0, 0}));
  EXPECT_EQ(this->store_->counters().seeders, 1u);
  EXPECT_EQ(this->store_->counters().leechers, 0u);
  EXPECT_EQ(this->peer(1, v4(1), false, 0), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{0, 1, 0}));
  EXPECT_EQ(this->store_->counters().leechers, 1u);
}

TYPED_TEST(ReplicaTest, AnOlderChangeNeitherAgesNorDemotesAFresherPeer) {
  this->announce(1, v4(1), 0);  // a seeder announcing here now
  // Another node heard it as a leecher 20 units ago: older news.
  EXPECT_EQ(this->peer(1, v4(1), false, 20 * unit_s), ReplicaResult::unchanged);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{1, 0, 0}));
  // Had it been aged by 20 units, it would go 20 units before the timeout.
  this->advance(timeout_s - 10 * unit_s);
  EXPECT_EQ(this->scrape(1).seeders, 1u);
  this->advance(11 * unit_s);
  EXPECT_EQ(this->scrape(1).seeders, 0u);
}

TYPED_TEST(ReplicaTest, AFresherChangeRefreshesAnOlderPeer) {
  this->announce(1, v4(1), 10);
  this->advance(timeout_s - 4 * unit_s);
  EXPECT_EQ(this->peer(1, v4(1), false, unit_s), ReplicaResult::applied);
  // Without the refresh it would have gone 4 units later; now it lasts a timeout from then.
  this->advance(10 * unit_s);
  EXPECT_EQ(this->scrape(1).leechers, 1u);
  this->advance(timeout_s - 10 * unit_s - unit_s);  // exactly the timeout since the change
  EXPECT_EQ(this->scrape(1).leechers, 1u);
  this->advance(unit_s);
  EXPECT_EQ(this->scrape(1).leechers, 0u);
}

TYPED_TEST(ReplicaTest, ARemotePeerPastTheTimeoutIsExpired) {
  EXPECT_EQ(this->peer(1, v4(1), false, timeout_s + unit_s), ReplicaResult::expired);
  EXPECT_EQ(this->peer(1, v4(1), false, timeout_s + 1000), ReplicaResult::expired);
  EXPECT_EQ(this->store_->counters().swarms, 0u);  // nothing made for it
  EXPECT_EQ(this->peer(1, v4(1), false, timeout_s - 2 * unit_s), ReplicaResult::applied);
  this->advance(2 * unit_s);  // exactly the timeout since its announce
  EXPECT_EQ(this->scrape(1).leechers, 1u);
  this->advance(unit_s);
  EXPECT_EQ(this->scrape(1).leechers, 0u);
  EXPECT_EQ(this->store_->counters().swarms, 0u);  // no completions: the swarm went too
  EXPECT_EQ(this->store_->counters().peers_expired, 1u);
}

TYPED_TEST(ReplicaTest, ARemoteStopRemovesThePeer) {
  this->announce(1, v4(1), 10);
  this->announce(1, v4(2), 0);
  EXPECT_EQ(this->removed(1, v4(1)), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{1, 0, 0}));
  EXPECT_EQ(this->removed(1, v4(1)), ReplicaResult::unchanged);
  EXPECT_EQ(this->removed(1, v6(1)), ReplicaResult::unchanged);  // no such IPv6 peer
  EXPECT_EQ(this->removed(2, v4(2)), ReplicaResult::unchanged);  // no such swarm: none made
  EXPECT_EQ(this->store_->counters().swarms, 1u);
  EXPECT_EQ(this->store_->counters().announces, 2u);  // the announces above only
  store::SwarmStatistics statistics;
  ASSERT_TRUE(this->store_->statistics(hash_of(1), this->now_s_, statistics));
  EXPECT_EQ(statistics.leaves_this_window, 0u);
  EXPECT_EQ(this->store_->counters().leechers, 0u);
  EXPECT_EQ(this->store_->counters().seeders, 1u);
}

TYPED_TEST(ReplicaTest, ARemoteStopEmptiesASwarmAsALocalStopWould) {
  this->announce(1, v6(1), 10);  // no completions: goes with its last peer
  EXPECT_EQ(this->removed(1, v6(1)), ReplicaResult::applied);
  EXPECT_EQ(this->store_->counters().swarms, 0u);
  EXPECT_EQ(this->scrape(1), ScrapeEntry{});
  this->announce(2, v4(1), 0, AnnounceEvent::completed);  // completions: kept for the keep time
  EXPECT_EQ(this->removed(2, v4(1)), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(2), (ScrapeEntry{0, 0, 1}));
  EXPECT_EQ(this->store_->counters().swarms, 1u);
  EXPECT_EQ(this->peers_held(), 0u);
  this->advance(this->limits_.completed_keep_s / 2);
  EXPECT_EQ(this->scrape(2).completed, 1u);
  this->advance(this->limits_.completed_keep_s * 2);
  EXPECT_EQ(this->store_->counters().swarms, 0u);
}

TYPED_TEST(ReplicaTest, RemoteCompletionsAddUpMakeASwarmAndSaturate) {
  EXPECT_EQ(this->completed(1, 3), ReplicaResult::applied);  // no swarm yet: one is made
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{0, 0, 3}));
  EXPECT_EQ(this->store_->counters().swarms, 1u);
  this->announce(1, v4(1), 10);
  EXPECT_EQ(this->completed(1, 2), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{0, 1, 5}));
  EXPECT_EQ(this->completed(1, 0), ReplicaResult::unchanged);
  EXPECT_EQ(this->completed(2, 0), ReplicaResult::unchanged);
  EXPECT_EQ(this->store_->counters().swarms, 1u);
  EXPECT_EQ(this->store_->counters().announces, 1u);
  // Saturates: a count just short of the maximum, from a snapshot record, never wraps.
  std::vector<std::uint8_t> record(20 + 16);
  ByteWriter writer{std::span(record)};
  writer.bytes(hash_of(3).bytes);
  writer.u32(UINT32_MAX - 5);
  writer.u32(0);
  writer.u32(0);
  writer.u32(0);
  ASSERT_TRUE(
      this->store_->restore_snapshot(record, this->now_s_, 0, [](auto&) { return true; }).ok());
  EXPECT_EQ(this->completed(3, 4), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(3).completed, UINT32_MAX - 1);
  EXPECT_EQ(this->completed(3, 0xffff), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(3).completed, UINT32_MAX);
  EXPECT_EQ(this->completed(3, 1), ReplicaResult::unchanged);
  EXPECT_EQ(this->scrape(3).completed, UINT32_MAX);
  // Swarm 1's peer expires; its count stays.
  this->advance(this->limits_.completed_keep_s / 2);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{0, 0, 5}));
  EXPECT_EQ(this->scrape(3).completed, UINT32_MAX);
}

TYPED_TEST(ReplicaTest, ASwarmMadeForCompletionsGoesAfterTheKeepTime) {
  EXPECT_EQ(this->completed(1, 7), ReplicaResult::applied);
  this->advance(this->limits_.completed_keep_s / 2);
  EXPECT_EQ(this->scrape(1).completed, 7u);
  this->advance(this->limits_.completed_keep_s * 2);
  EXPECT_EQ(this->scrape(1), ScrapeEntry{});
  EXPECT_EQ(this->store_->counters().swarms, 0u);
  // With no keep time, no swarm is made for a count alone.
  this->limits_.completed_keep_s = 0;
  this->reset();
  EXPECT_EQ(this->completed(1, 7), ReplicaResult::unchanged);
  EXPECT_EQ(this->store_->counters().swarms, 0u);
  this->announce(1, v4(1), 10);  // a swarm with peers takes it
  EXPECT_EQ(this->completed(1, 7), ReplicaResult::applied);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{0, 1, 7}));
}

TYPED_TEST(ReplicaTest, LimitsRefuseAndCount) {
  this->limits_.swarms_max = 2;
  this->limits_.peers_per_swarm_max = 2;
  this->reset();
  EXPECT_EQ(this->peer(1, v4(1), false, 0), ReplicaResult::applied);
  EXPECT_EQ(this->completed(2, 1), ReplicaResult::applied);
  EXPECT_EQ(this->peer(3, v4(1), false, 0), ReplicaResult::swarm_limit);
  EXPECT_EQ(this->completed(3, 1), ReplicaResult::swarm_limit);
  EXPECT_EQ(this->store_->counters().swarms_refused, 2u);
  EXPECT_EQ(this->peer(1, v6(2), true, 0), ReplicaResult::applied);
  EXPECT_EQ(this->peer(1, v4(3), true, 0), ReplicaResult::peer_limit);
  EXPECT_EQ(this->store_->counters().peers_refused, 1u);
  EXPECT_EQ(this->peer(1, v4(1), true, 0), ReplicaResult::applied);  // held peers still update
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{2, 0, 0}));
  EXPECT_EQ(this->store_->counters().swarms, 2u);
  EXPECT_EQ(this->store_->counters().seeders, 2u);
}

TYPED_TEST(ReplicaTest, ACountedCompletionIsRemembered) {
  this->announce(1, v4(1), 10, AnnounceEvent::started);
  EXPECT_TRUE(this->announce(1, v4(1), 0, AnnounceEvent::completed).completion_counted);
  this->advance(3 * unit_s);
  // Another node's news of it (a role change and a fresher time) keeps the mark...
  EXPECT_EQ(this->peer(1, v4(1), false, 0), ReplicaResult::applied);
  EXPECT_EQ(this->peer(1, v4(1), true, 0), ReplicaResult::applied);
  // ...so a repeated completed from it is not counted again.
  const AnnounceReply reply = this->announce(1, v4(1), 0, AnnounceEvent::completed);
  EXPECT_FALSE(reply.completion_counted);
  EXPECT_EQ(reply.completed, 1u);
  // A peer first heard of from another node has no mark: its completed here counts.
  EXPECT_EQ(this->peer(1, v4(2), false, 0), ReplicaResult::applied);
  EXPECT_TRUE(this->announce(1, v4(2), 0, AnnounceEvent::completed).completion_counted);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{2, 0, 2}));
}

// Warm start: a snapshot streamed from another node is restored while replicated changes have
// made some swarms already. Records merge into them: peers absent are added, held ones are not
// replaced, aged or doubled, and the completed count is the larger one.
TYPED_TEST(ReplicaTest, ASnapshotMergesIntoSwarmsReplicasMade) {
  auto source = TypeParam::make(this->limits_);
  auto announce_there = [&](std::uint32_t hash, const PeerEndpoint& peer, std::uint64_t left,
                            AnnounceEvent event) {
    AnnounceRequest request;
    request.info_hash = hash_of(hash);
    request.peer = peer;
    request.left_bytes = left;
    request.event = event;
    source->announce(request, this->now_s_ - 30 * unit_s, this->out_);
  };
  // There, 30 units ago: swarm 1 with v4(1) leeching, v4(2), v6(3), completed 5; swarm 2.
  announce_there(1, v4(1), 10, AnnounceEvent::none);
  announce_there(1, v4(2), 0, AnnounceEvent::none);
  announce_there(1, v6(3), 10, AnnounceEvent::none);
  for (std::uint32_t n = 10; n < 15; ++n) announce_there(1, v4(n), 0, AnnounceEvent::completed);
  for (std::uint32_t n = 10; n < 15; ++n) announce_there(1, v4(n), 0, AnnounceEvent::stopped);
  announce_there(2, v4(1), 0, AnnounceEvent::completed);
  std::vector<std::uint8_t> records;
  ASSERT_EQ(source->append_snapshot(this->now_s_, records), 2u);

  // Here, replicated changes made swarm 1 with v4(1), fresh and seeding, and v4(4); and swarm 2
  // with more completions than the snapshot.
  EXPECT_EQ(this->peer(1, v4(1), true, 0), ReplicaResult::applied);
  EXPECT_EQ(this->peer(1, v4(4), false, 0), ReplicaResult::applied);
  EXPECT_EQ(this->completed(1, 2), ReplicaResult::applied);
  EXPECT_EQ(this->completed(2, 9), ReplicaResult::applied);
  const auto keep_all = [](const InfoHash&) { return true; };
  auto result = this->store_->restore_snapshot(records, this->now_s_, 0, keep_all);
  ASSERT_TRUE(result.ok()) << result.error();
  EXPECT_EQ(result.value().swarms, 0u);      // both held already
  EXPECT_EQ(result.value().peers, 2u + 1u);  // v4(2), v6(3) into swarm 1; v4(1) into swarm 2
  verify(*this->store_);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{2, 2, 5}));  // v4(1) still a seeder; max(2, 5)
  EXPECT_EQ(this->scrape(2), (ScrapeEntry{1, 0, 9}));  // max(9, 1)
  const auto& counters = this->store_->counters();
  EXPECT_EQ(counters.peers_ipv4, 4u);
  EXPECT_EQ(counters.peers_ipv6, 1u);
  EXPECT_EQ(counters.seeders, 3u);
  EXPECT_EQ(counters.leechers, 2u);
  EXPECT_EQ(counters.swarms, 2u);
  // The same records again add nothing.
  result = this->store_->restore_snapshot(records, this->now_s_, 0, keep_all);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value().peers, 0u);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{2, 2, 5}));
  // The restored peers keep their age (30 units) and go first; v4(1) was not aged by its record.
  // (One unit of margin: the sweep visits each of two swarms every other step.)
  this->advance(timeout_s - 30 * unit_s + 2 * unit_s);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{1, 1, 5}));  // v4(1) and v4(4), both fresh here
  EXPECT_EQ(this->scrape(2), (ScrapeEntry{0, 0, 9}));
  this->advance(30 * unit_s);
  EXPECT_EQ(this->scrape(1), (ScrapeEntry{0, 0, 5}));
}

// Announces and changes mixed at random on both stores: the same counts swarm by swarm, and the
// gauges (SwarmStore::verify recounts them) exact throughout.
TEST(ReplicaMix, BothStoresAgreeAndTheGaugesStayExact) {
  StoreLimits limits;
  limits.peer_timeout_s = timeout_s;
  // Kept counts outlive the run: the stores measure the keep time differently (windows, seconds).
  limits.completed_keep_s = 10'000'000;
  limits.swarms_max = 12;
  limits.peers_per_swarm_max = 10;
  SwarmStore memory(limits, HashSecret::from_seed(7), 7);
  testing::ReferenceStore reference(limits);
  std::mt19937 random(20);
  std::vector<std::uint8_t> out(50 * 18);
  std::uint32_t now_s = 100'000;
  const auto pick = [&](std::uint32_t n) { return static_cast<std::uint32_t>(random() % n); };
  for (std::uint32_t step = 0; step < 20'000; ++step) {
    const std::uint32_t hash = pick(16);
    const PeerEndpoint peer = pick(3) == 0 ? v6(pick(14)) : v4(pick(14));
    const std::uint32_t what = pick(10);
    if (what < 4) {
      AnnounceRequest request;
      request.info_hash = hash_of(hash);
      request.peer = peer;
      request.left_bytes = pick(2);
      request.event = static_cast<AnnounceEvent>(pick(4));
      const AnnounceReply a = memory.announce(request, now_s, out);
      const AnnounceReply b = reference.announce(request, now_s, out);
      ASSERT_EQ(a.status, b.status) << step;
      ASSERT_EQ(a.completion_counted, b.completion_counted) << step;
    } else {
      ReplicaChange change;
      change.kind = static_cast<ReplicaChange::Kind>(what < 8 ? 0 : what - 7);
      change.info_hash = hash_of(hash);
      change.peer = peer;
      change.seeder = pick(2) == 0;
      change.announced_s = static_cast<std::int32_t>(now_s - pick(70) * unit_s);  // some expired
      change.completed_count = static_cast<std::uint16_t>(pick(3));
      ASSERT_EQ(memory.apply_replica(change, now_s), reference.apply_replica(change, now_s))
          << step;
    }
    if (step % 50 == 0) {  // a sweep period: SwarmStore sweeps every swarm, as the reference
      now_s += limits.peer_timeout_s / 4;
      memory.expire_step(now_s);
      reference.expire_step(now_s);
    }
    if (step % 100 == 0) memory.verify();
    for (std::uint32_t h = 0; h < 16; ++h) {
      ASSERT_EQ(memory.scrape(hash_of(h), now_s), reference.scrape(hash_of(h), now_s)) << step << " " << h;
    }
    const auto& a = memory.counters();
    const auto& b = reference.counters();
    ASSERT_EQ(a.seeders, b.seeders) << step;
    ASSERT_EQ(a.leechers, b.leechers) << step;
    ASSERT_EQ(a.peers_ipv4, b.peers_ipv4) << step;
    ASSERT_EQ(a.peers_ipv6, b.peers_ipv6) << step;
    ASSERT_EQ(a.swarms_refused, b.swarms_refused) << step;
    ASSERT_EQ(a.peers_refused, b.peers_refused) << step;
  }
  memory.verify();
}

}  // namespace
}  // namespace tyto::swarm
