// Issue 20, "Agreement": peers expire from the time of their last announce wherever it was made,
// so every node drops them together. SwarmStores stand for cluster nodes whose processes began
// at different Unix seconds (StoreLimits::unix_at_zero_s): one hears the announces, another the
// replicated changes, others start late from a warm-up's snapshot records. Every second all
// of them are asked (scrape) and must answer alike once a change has reached them (at rest), although their background sweeps run on
// different schedules: expiry follows from the announces and the time alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "tyto/swarm/swarm_store.hpp"

namespace tyto::swarm {
namespace {

InfoHash hash_of(std::uint32_t n) {
  InfoHash hash;
  for (std::size_t i = 0; i < 20; ++i) hash.bytes[i] = static_cast<std::uint8_t>(n * 29 + i);
  hash.bytes[0] = static_cast<std::uint8_t>(n);
  return hash;
}

PeerEndpoint peer_of(std::uint32_t n) {
  const std::uint8_t address[4] = {10, 2, static_cast<std::uint8_t>(n >> 8),
                                   static_cast<std::uint8_t>(n)};
  return PeerEndpoint::ipv4(address, 6881);
}

// A node: its store on a clock that began at Unix second `zero_s` + 1.
struct Node {
  Node(std::uint64_t zero_s, std::uint64_t seed) : zero_s(zero_s) {
    StoreLimits limits;  // the default peer timeout, 3900 s: 61-second stamp units
    limits.unix_at_zero_s = zero_s;
    store = std::make_unique<SwarmStore>(limits, HashSecret::from_seed(seed), seed);
  }
  std::uint32_t now_s(std::uint64_t unix_s) const { return static_cast<std::uint32_t>(unix_s - zero_s); }
  std::uint64_t zero_s;
  std::unique_ptr<SwarmStore> store;
};

constexpr std::uint32_t swarms = 24;
constexpr std::uint32_t warm_nodes = 8;

TEST(ClusterAgreement, NodesThatBeganAtOtherTimesDropASilentPeerInTheSameSecond) {
  std::mt19937 random(20261207);
  for (int round = 0; round < 3; ++round) {
    const std::uint64_t start_unix_s = 1'796'000'000 + random() % 100'000;
    Node a(start_unix_s - 1'000 - random() % 5'000, 1);    // hears the announces
    Node b(start_unix_s - 50'000 - random() % 50'000, 2);  // their replicated changes
    struct LateNode {  // starts late, warmed from a
      std::unique_ptr<Node> node;
      std::uint64_t cut_unix_s;
      std::vector<std::uint8_t> records;
    };
    std::vector<LateNode> late;
    const std::uint64_t warm_unix_s = start_unix_s + 1'500 + random() % 200;
    // Each swarm's peer announces at its own second (spread over several stamp units), some
    // again later; b applies each change 0-2 s after it was made, as the bridge brings it.
    std::multimap<std::uint64_t, std::uint32_t> announces;  // Unix second -> swarm
    for (std::uint32_t swarm = 0; swarm < swarms; ++swarm) {
      const std::uint64_t first_s = start_unix_s + random() % 400;
      announces.emplace(first_s, swarm);
      if (swarm % 3 == 0) announces.emplace(first_s + 600 + random() % 2'000, swarm);
    }
    std::multimap<std::uint64_t, std::pair<std::uint32_t, std::uint64_t>> replicas;
    std::uint8_t out[60];
    std::uint64_t in_flight_until[swarms] = {};  // a change not yet everywhere: not at rest
    std::uint64_t peers_seen_max = 0;
    const std::uint64_t end_unix_s = start_unix_s + 400 + 2'600 + 3'900 + 200;
    for (std::uint64_t unix_s = start_unix_s; unix_s < end_unix_s; ++unix_s) {
      for (auto [at, end] = announces.equal_range(unix_s); at != end; ++at) {
        AnnounceRequest request;
        request.info_hash = hash_of(at->second);
        request.peer = peer_of(at->second);
        request.left_bytes = at->second % 2;
        ASSERT_EQ(a.store->announce(request, a.now_s(unix_s), out).status, AnnounceStatus::ok);
        const std::uint64_t applied_s = unix_s + random() % 3;
        replicas.emplace(applied_s, std::pair(at->second, unix_s));
        in_flight_until[at->second] = std::max(in_flight_until[at->second], applied_s);
      }
      for (auto [at, end] = replicas.equal_range(unix_s); at != end; ++at) {
        std::vector<Node*> nodes{&b};
        for (LateNode& node : late) nodes.push_back(node.node.get());
        for (Node* node : nodes) {
          ReplicaChange change;
          change.kind = ReplicaChange::Kind::peer;
          change.info_hash = hash_of(at->second.first);
          change.peer = peer_of(at->second.first);
          change.seeder = at->second.first % 2 == 0;
          change.announced_s = static_cast<std::int32_t>(at->second.second - node->zero_s);
          node->store->apply_replica(change, node->now_s(unix_s));
        }
      }
      // Late nodes start (their clocks' second 1) and ask for a's swarms, cut then; they arrive
      // 3 s later, after some live changes: the cut's second on the node's clock says how old
      // they are. Starts 8 s apart put the cuts at every place in a 61-second stamp unit.
      if (unix_s >= warm_unix_s && unix_s < warm_unix_s + warm_nodes * 8 &&
          (unix_s - warm_unix_s) % 8 == 0) {
        late.push_back({std::make_unique<Node>(unix_s - 1, 3 + late.size()), unix_s, {}});
        a.store->append_snapshot(a.now_s(unix_s), late.back().records);
      }
      for (LateNode& node : late) {
        if (unix_s != node.cut_unix_s + 3) continue;
        const std::int64_t cut_s = node.node->now_s(node.cut_unix_s);
        const std::uint32_t now_s = node.node->now_s(unix_s);
        ASSERT_TRUE(node.node->store
                        ->restore_snapshot(node.records, now_s,
                                           static_cast<std::uint32_t>(now_s - cut_s),
                                           [](const InfoHash&) { return true; })
                        .ok());
      }
      // The background sweeps run on their own schedules: a every second, b and c rarely.
      a.store->expire_step(a.now_s(unix_s));
      if (unix_s % 97 == 0) b.store->expire_step(b.now_s(unix_s));
      for (LateNode& node : late) {
        if (unix_s % 89 == 0 && unix_s > node.cut_unix_s + 3) {
          node.node->store->expire_step(node.node->now_s(unix_s));
        }
      }
      std::uint64_t peers = 0;
      for (std::uint32_t swarm = 0; swarm < swarms; ++swarm) {
        const ScrapeEntry at_a = a.store->scrape(hash_of(swarm), a.now_s(unix_s));
        peers += at_a.seeders + at_a.leechers;
        if (unix_s < in_flight_until[swarm]) continue;
        ASSERT_EQ(b.store->scrape(hash_of(swarm), b.now_s(unix_s)), at_a)
            << "round " << round << ", second " << unix_s - start_unix_s << ", swarm " << swarm;
        for (LateNode& node : late) {
          if (unix_s < node.cut_unix_s + 3) continue;
          ASSERT_EQ(node.node->store->scrape(hash_of(swarm), node.node->now_s(unix_s)), at_a)
              << "round " << round << ", second " << unix_s - start_unix_s << ", swarm " << swarm
              << ", warmed at " << node.cut_unix_s - start_unix_s;
        }
      }
      peers_seen_max = std::max(peers_seen_max, peers);
    }
    EXPECT_EQ(peers_seen_max, swarms);  // every peer was there at once, and
    std::vector<Node*> nodes{&a, &b};
    for (LateNode& node : late) nodes.push_back(node.node.get());
    for (Node* node : nodes) {  // by the end every one expired everywhere
      EXPECT_EQ(node->store->counters().peers_ipv4, 0u);
      node->store->verify();
    }
  }
}

// Issue 21 §2: a large swarm's peer set (staged, capacity 1778 or more) is expired in steps, a
// few removals per touch and a bounded share per expiry step, yet every node answers the same
// at every second, no peer goes before its timeout (the stamp rule, StampClock::expired, from
// its last announce) and none stays after it. a hears 12,000 announces over five stamp units
// (some peers again later), b their replicated changes; b's sweep runs every second, a's rarely.
// Each call's expiry work is bounded: one pass over the stamps at most, and a bounded count of
// removals.
TEST(ClusterAgreement, ALargeSwarmExpiresInStepsAndAlikeEverywhere) {
  constexpr std::uint32_t peers_count = 12'000;
  std::mt19937 random(2126);
  const std::uint64_t start_unix_s = 1'796'000'000 + random() % 100'000;
  Node a(start_unix_s - 1'000 - random() % 5'000, 1);
  Node b(start_unix_s - 50'000 - random() % 50'000, 2);
  const StampClock clock_a(StoreLimits{}.peer_timeout_s, a.zero_s);
  const std::uint32_t timeout_s = StoreLimits{}.peer_timeout_s;
  const InfoHash info_hash = hash_of(7);
  std::vector<std::uint64_t> last_unix_s(peers_count, 0);  // each peer's last announce
  std::multimap<std::uint64_t, std::uint32_t> announces;   // Unix second -> peer
  for (std::uint32_t peer = 0; peer < peers_count; ++peer) {
    const std::uint64_t first_s = start_unix_s + random() % 300;
    announces.emplace(first_s, peer);
    if (peer % 5 == 0) announces.emplace(first_s + 400 + random() % 1'500, peer);
  }
  auto endpoint = [](std::uint32_t peer) {
    const std::uint8_t address[4] = {10, 3, static_cast<std::uint8_t>(peer >> 8),
                                     static_cast<std::uint8_t>(peer)};
    return PeerEndpoint::ipv4(address, 6881);
  };
  std::uint8_t out[6 * 50];
  std::uint32_t live_max = 0;
  const std::uint64_t end_unix_s = start_unix_s + 300 + 1'900 + timeout_s + 200;
  for (std::uint64_t unix_s = start_unix_s; unix_s < end_unix_s; ++unix_s) {
    for (auto [at, end] = announces.equal_range(unix_s); at != end; ++at) {
      AnnounceRequest request;
      request.info_hash = info_hash;
      request.peer = endpoint(at->second);
      request.left_bytes = at->second % 3;
      ASSERT_EQ(a.store->announce(request, a.now_s(unix_s), out).status, AnnounceStatus::ok);
      ReplicaChange change;
      change.kind = ReplicaChange::Kind::peer;
      change.info_hash = info_hash;
      change.peer = request.peer;
      change.seeder = request.left_bytes == 0;
      change.announced_s = static_cast<std::int32_t>(unix_s - b.zero_s);
      b.store->apply_replica(change, b.now_s(unix_s));
      last_unix_s[at->second] = unix_s;
    }
    if (unix_s % 131 == 0) a.store->expire_step(a.now_s(unix_s));
    const PeerSetWork before = peer_set_work();
    b.store->expire_step(b.now_s(unix_s));
    const PeerSetWork after_step = peer_set_work();
    const ScrapeEntry at_a = a.store->scrape(info_hash, a.now_s(unix_s));
    const ScrapeEntry at_b = b.store->scrape(info_hash, b.now_s(unix_s));
    const PeerSetWork after = peer_set_work();
    ASSERT_EQ(at_a, at_b) << "second " << unix_s - start_unix_s;
    // The rule, peer by peer: live exactly while its last announce's stamp is not expired.
    std::uint32_t live = 0;
    for (std::uint32_t peer = 0; peer < peers_count; ++peer) {
      if (last_unix_s[peer] == 0) continue;
      live += !clock_a.expired(clock_a.stamp_of(a.now_s(last_unix_s[peer])), a.now_s(unix_s),
                               timeout_s);
    }
    ASSERT_EQ(at_a.seeders + at_a.leechers, live) << "second " << unix_s - start_unix_s;
    live_max = std::max(live_max, live);
    // Bounded work: a step removes at most its share of one followed set, plus a sweep
    // visit's touch; each scrape at most a touch's removals; one pass over the stamps a call.
    ASSERT_LE(after_step.expiry_peers_removed - before.expiry_peers_removed,
              expiry_removals_per_step + expiry_removals_per_touch);
    ASSERT_LE(after.expiry_peers_removed - after_step.expiry_peers_removed,
              2 * expiry_removals_per_touch);
    ASSERT_LE(after_step.expiry_stamps_scanned - before.expiry_stamps_scanned, peers_count);
    ASSERT_LE(after.expiry_stamps_scanned - after_step.expiry_stamps_scanned, 2 * peers_count);
    if (unix_s % 509 == 0) {
      a.store->verify();
      b.store->verify();
    }
  }
  EXPECT_EQ(live_max, peers_count);
  EXPECT_GT(peer_set_work().expiry_peers_removed, 0u);
  for (Node* node : {&a, &b}) {
    EXPECT_EQ(node->store->counters().peers_ipv4, 0u);
    node->store->verify();
  }
}

}  // namespace
}  // namespace tyto::swarm
