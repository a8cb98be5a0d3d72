// After warm-up, an announce with peer selection on an existing swarm makes no heap allocation:
// global operator new is replaced to count, and the store's arena must take no new slab.
#include <gtest/gtest.h>

#include <vector>

#include "support/counting_allocator.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace tyto::swarm {
namespace {

TEST(SwarmStoreAllocations, AnnounceOnAnExistingSwarmAllocatesNothing) {
  SwarmStore store(StoreLimits{}, HashSecret::from_seed(4), 4);
  std::vector<std::uint8_t> out(200 * 18);
  AnnounceRequest request;
  auto endpoint = [](std::uint32_t n) {
    const std::uint8_t address[4] = {10, 0, static_cast<std::uint8_t>(n >> 8),
                                     static_cast<std::uint8_t>(n)};
    return PeerEndpoint::ipv4(address, 6881);
  };
  // Warm-up: 100 swarms of 0..299 peers each (some indexed), churned once.
  for (std::uint32_t swarm = 0; swarm < 100; ++swarm) {
    request.info_hash.bytes[0] = static_cast<std::uint8_t>(swarm);
    for (std::uint32_t peer = 0; peer < swarm * 3; ++peer) {
      request.peer = endpoint(peer);
      request.left_bytes = peer % 4 == 0 ? 0 : 1;
      store.announce(request, 10, out);
    }
  }
  const std::uint64_t allocations_before = testing::allocations_count();
  const std::uint64_t slabs_before = store.memory_bytes();
  std::uint64_t peers_returned = 0;
  for (std::uint32_t i = 0; i < 100'000; ++i) {
    request.info_hash.bytes[0] = static_cast<std::uint8_t>(1 + i % 99);
    request.peer = endpoint(i % (1 + i % 99 * 3));
    request.left_bytes = i % 5 == 0 ? 0 : 1;  // seeders and leechers flip role
    request.event = i % 7 == 0 ? AnnounceEvent::completed : AnnounceEvent::none;
    peers_returned += store.announce(request, 20, std::span(out).first(50 * 6)).peers_count;
  }
  EXPECT_EQ(testing::allocations_count() - allocations_before, 0u);
  EXPECT_EQ(store.memory_bytes(), slabs_before);
  EXPECT_GT(peers_returned, 100'000u);  // selections really happened
}

// Another node's changes on existing swarms (issue 20): updates of held peers (time, role) and
// completions make no heap allocation either.
TEST(SwarmStoreAllocations, ReplicaChangesOnExistingSwarmsAllocateNothing) {
  SwarmStore store(StoreLimits{}, HashSecret::from_seed(5), 5);
  auto endpoint = [](std::uint32_t n) {
    const std::uint8_t address[4] = {10, 0, static_cast<std::uint8_t>(n >> 8),
                                     static_cast<std::uint8_t>(n)};
    return PeerEndpoint::ipv4(address, 6881);
  };
  ReplicaChange change;
  change.announced_s = 10'000;
  for (std::uint32_t swarm = 0; swarm < 100; ++swarm) {
    change.info_hash.bytes[0] = static_cast<std::uint8_t>(swarm);
    for (std::uint32_t peer = 0; peer < swarm * 3; ++peer) {
      change.peer = endpoint(peer);
      change.seeder = peer % 4 == 0;
      ASSERT_EQ(store.apply_replica(change, 10'000), ReplicaResult::applied);
    }
  }
  const std::uint64_t allocations_before = testing::allocations_count();
  const std::uint64_t slabs_before = store.memory_bytes();
  std::uint64_t applied = 0;
  for (std::uint32_t i = 0; i < 100'000; ++i) {
    change.info_hash.bytes[0] = static_cast<std::uint8_t>(1 + i % 99);
    change.kind = i % 7 == 0 ? ReplicaChange::Kind::completed : ReplicaChange::Kind::peer;
    change.peer = endpoint(i % (1 + i % 99 * 3));
    change.seeder = i % 5 == 0;  // seeders and leechers flip role
    change.announced_s = static_cast<std::int32_t>(10'020 - i % 3 * 100);
    change.completed_count = 1;
    applied += store.apply_replica(change, 10'020) == ReplicaResult::applied;
  }
  EXPECT_EQ(testing::allocations_count() - allocations_before, 0u);
  EXPECT_EQ(store.memory_bytes(), slabs_before);
  EXPECT_GT(applied, 10'000u);              // changes really happened
  EXPECT_EQ(store.counters().swarms, 99u);  // swarm 0 had no peers
  store.verify();
}

}  // namespace
}  // namespace tyto::swarm
