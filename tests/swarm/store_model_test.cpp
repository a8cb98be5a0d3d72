// SwarmStore against a simple reference model: a seeded run of over a million mixed operations
// (announce started/none/completed/stopped, IPv4 and IPv6, scrape, expiry with a manual clock),
// comparing every result. Plus targeted tests of each announce rule.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "tyto/core/clock.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace tyto::swarm {
namespace {

InfoHash hash_number(std::uint32_t n) {
  InfoHash hash;
  for (std::size_t i = 0; i < 20; ++i)
    hash.bytes[i] =
        static_cast<std::uint8_t>((n * 2654435761u) >> (i % 4 * 8)) ^ static_cast<std::uint8_t>(i);
  hash.bytes[0] = static_cast<std::uint8_t>(n);
  hash.bytes[1] = static_cast<std::uint8_t>(n >> 8);
  hash.bytes[2] = static_cast<std::uint8_t>(n >> 16);
  return hash;
}

PeerEndpoint endpoint_number(std::uint32_t n, bool ipv6) {
  const std::uint16_t port = static_cast<std::uint16_t>(1000 + n % 50);
  if (!ipv6) {
    const std::uint8_t address[4] = {10, static_cast<std::uint8_t>(n >> 16),
                                     static_cast<std::uint8_t>(n >> 8),
                                     static_cast<std::uint8_t>(n)};
    return PeerEndpoint::ipv4(address, port);
  }
  std::uint8_t address[16] = {0x20, 0x01, 0x0d, 0xb8};
  address[13] = static_cast<std::uint8_t>(n >> 16);
  address[14] = static_cast<std::uint8_t>(n >> 8);
  address[15] = static_cast<std::uint8_t>(n);
  return PeerEndpoint::ipv6(address, port);
}

AnnounceRequest request_for(const InfoHash& hash, const PeerEndpoint& peer, std::uint64_t left,
                            AnnounceEvent event) {
  AnnounceRequest request;
  request.info_hash = hash;
  request.peer = peer;
  request.left_bytes = left;
  request.event = event;
  return request;
}

using Wire = std::vector<std::uint8_t>;

struct ModelPeer {
  bool seeder;
  std::uint32_t last_s;
};
struct ModelSwarm {
  std::map<Wire, ModelPeer> peers[2];  // [0] IPv4, [1] IPv6
  std::set<Wire> completed[2];         // addresses whose completion was counted
  std::uint32_t family_seeders[2] = {0, 0};
  std::uint32_t completed_count = 0;
  std::uint32_t seeders() const { return family_seeders[0] + family_seeders[1]; }
  std::uint32_t total() const {
    return static_cast<std::uint32_t>(peers[0].size() + peers[1].size());
  }
  void erase(int family, std::map<Wire, ModelPeer>::iterator peer) {
    family_seeders[family] -= peer->second.seeder;
    completed[family].erase(peer->first);
    peers[family].erase(peer);
  }
};

class Model {
 public:
  // The store keeps ages in whole stamp units of 1/64 of the timeout (rounded up): so does the
  // model.
  explicit Model(std::uint32_t timeout_s) : timeout_s_(timeout_s), unit_s_((timeout_s + 63) / 64) {}

  // Returns the expected counts (seeders, leechers, completed) after the announce.
  ScrapeEntry announce(const AnnounceRequest& request, std::uint32_t now_s) {
    const int family = request.peer.family == AddressFamily::ipv6;
    const Wire wire(request.peer.wire_bytes().begin(), request.peer.wire_bytes().end());
    auto found = swarms_.find(request.info_hash);
    if (found != swarms_.end()) expire_swarm(found->second, now_s);  // no read shows one
    if (request.event == AnnounceEvent::stopped) {
      if (found == swarms_.end()) return {};
      const auto peer = found->second.peers[family].find(wire);
      if (peer != found->second.peers[family].end()) found->second.erase(family, peer);
      const ScrapeEntry entry = entry_of(found->second);
      if (gone(found->second)) swarms_.erase(found);
      return entry;
    }
    ModelSwarm& swarm = swarms_[request.info_hash];
    const bool seeder = request.left_bytes == 0;
    auto [peer, is_new] = swarm.peers[family].try_emplace(wire, ModelPeer{seeder, now_s});
    if (!is_new) swarm.family_seeders[family] -= peer->second.seeder;
    peer->second = {seeder, now_s};
    swarm.family_seeders[family] += seeder;
    if (request.event == AnnounceEvent::completed && swarm.completed[family].insert(wire).second) {
      ++swarm.completed_count;
    }
    return entry_of(swarm);
  }

  void expire(std::uint32_t now_s) {
    for (auto it = swarms_.begin(); it != swarms_.end();) {
      expire_swarm(it->second, now_s);
      it = gone(it->second) ? swarms_.erase(it) : std::next(it);
    }
  }

  ScrapeEntry scrape(const InfoHash& hash, std::uint32_t now_s) {
    const auto found = swarms_.find(hash);
    if (found == swarms_.end()) return {};
    expire_swarm(found->second, now_s);
    const ScrapeEntry entry = entry_of(found->second);
    if (gone(found->second)) swarms_.erase(found);
    return entry;
  }

  const ModelSwarm* swarm(const InfoHash& hash) const {
    const auto found = swarms_.find(hash);
    return found == swarms_.end() ? nullptr : &found->second;
  }
  std::size_t swarms_count() const { return swarms_.size(); }

 private:
  // An empty swarm keeps its completed count (the runs below stay far inside completed_keep_s,
  // whose end store_rules_test checks).
  void expire_swarm(ModelSwarm& swarm, std::uint32_t now_s) {
    for (int family = 0; family < 2; ++family) {
      auto& peers = swarm.peers[family];
      for (auto peer = peers.begin(); peer != peers.end();) {
        const auto next = std::next(peer);
        const std::uint32_t age_s = (now_s / unit_s_ - peer->second.last_s / unit_s_) * unit_s_;
        if (age_s >= timeout_s_ + unit_s_) swarm.erase(family, peer);  // StampClock::expired
        peer = next;
      }
    }
  }
  static bool gone(const ModelSwarm& swarm) {
    return swarm.total() == 0 && swarm.completed_count == 0;
  }
  static ScrapeEntry entry_of(const ModelSwarm& swarm) {
    const std::uint32_t seeders = swarm.seeders();
    return {seeders, swarm.total() - seeders, swarm.completed_count};
  }

  std::uint32_t timeout_s_;
  std::uint32_t unit_s_;
  std::map<InfoHash, ModelSwarm> swarms_;
};

// Checks a selection against the model state before the announce was applied... the model after
// it: every returned peer is in the swarm, of the requester's family, not the requester, unique,
// a leecher when the requester seeds, and as many as min(wanted, eligible).
void check_selection(const ModelSwarm& swarm, const AnnounceRequest& request,
                     std::span<const std::uint8_t> out, std::uint32_t count, std::uint32_t wanted) {
  const int family = request.peer.family == AddressFamily::ipv6;
  const std::size_t size = request.peer.wire_size();
  const Wire self(request.peer.wire_bytes().begin(), request.peer.wire_bytes().end());
  const bool seeder = request.left_bytes == 0;
  const auto self_entry = swarm.peers[family].find(self);
  const std::uint32_t family_size = static_cast<std::uint32_t>(swarm.peers[family].size());
  const std::uint32_t eligible = seeder ? family_size - swarm.family_seeders[family]
                                        : family_size - (self_entry != swarm.peers[family].end());
  ASSERT_EQ(count, std::min(wanted, eligible));
  std::set<Wire> seen;
  for (std::uint32_t i = 0; i < count; ++i) {
    const Wire wire(out.begin() + i * size, out.begin() + (i + 1) * size);
    ASSERT_NE(wire, self);
    const auto found = swarm.peers[family].find(wire);
    ASSERT_NE(found, swarm.peers[family].end());
    if (seeder) {
      ASSERT_FALSE(found->second.seeder);
    }
    ASSERT_TRUE(seen.insert(wire).second);
  }
}

TEST(SwarmStoreModel, MillionMixedOperationsMatchTheModel) {
  constexpr std::uint32_t timeout_s = 600;
  StoreLimits limits;
  limits.peer_timeout_s = timeout_s;
  // Empty swarms keep their completed counts longer than this run's clock goes (the model keeps
  // them for ever): the most windows the store can count.
  limits.completed_keep_s = 0x7fff * limits.statistics_window_s;
  SwarmStore store(limits, HashSecret::from_seed(7), 99);
  Model model(timeout_s);
  std::mt19937_64 random(20261124);
  ManualClock clock(1000);  // a multiple of 4
  std::vector<std::uint8_t> out(200 * 18);
  constexpr std::uint32_t operations = 1'050'000;
  constexpr std::uint32_t hashes = 3000;
  constexpr std::uint32_t endpoints = 4000;
  std::uint64_t announces = 0;
  std::uint32_t swept_s = clock.now_s();
  for (std::uint32_t op = 0; op < operations; ++op) {
    const std::uint32_t kind = static_cast<std::uint32_t>(random() % 1000);
    // A full sweep period passes: the store's incremental expiry is now exact. The store is
    // swept at least every timeout / 2 here (a shard sweeps every second), as its one-byte
    // stamps ask (peer_set.hpp: every peer seen within 128 stamp units).
    if (kind < 1 || clock.now_s() - swept_s >= timeout_s / 2) {
      clock.advance(4 * (38 + static_cast<std::uint32_t>(random() % 40)));
      store.expire_step(clock.now_s());
      model.expire(clock.now_s());
      swept_s = clock.now_s();
      ASSERT_EQ(store.swarms_count(), model.swarms_count()) << "op " << op;
      continue;
    }
    if (kind < 4) {  // time passes
      clock.advance(4 * (1 + static_cast<std::uint32_t>(random() % 10)));
      continue;
    }
    // Hot swarms get more traffic: a skewed hash choice.
    const std::uint32_t hash_n =
        static_cast<std::uint32_t>(random() % (random() % 8 == 0 ? hashes : 40));
    const InfoHash hash = hash_number(hash_n);
    if (kind < 60) {
      ASSERT_EQ(store.scrape(hash, clock.now_s()), model.scrape(hash, clock.now_s())) << "op " << op;
      continue;
    }
    const bool ipv6 = random() % 4 == 0;
    const PeerEndpoint peer =
        endpoint_number(static_cast<std::uint32_t>(random() % endpoints), ipv6);
    const std::uint32_t event_draw = static_cast<std::uint32_t>(random() % 100);
    const AnnounceEvent event = event_draw < 10   ? AnnounceEvent::stopped
                                : event_draw < 18 ? AnnounceEvent::completed
                                : event_draw < 40 ? AnnounceEvent::started
                                                  : AnnounceEvent::none;
    const std::uint64_t left = random() % 3 == 0 ? 0 : 1 + random() % 1000;
    const AnnounceRequest request = request_for(hash, peer, left, event);
    const std::uint32_t wanted = static_cast<std::uint32_t>(random() % 60);
    const AnnounceReply reply = store.announce(
        request, clock.now_s(), std::span(out).first(wanted * request.peer.wire_size()));
    const auto* before = model.swarm(hash);
    const std::uint32_t completed_before = before != nullptr ? before->completed_count : 0;
    const ScrapeEntry expected = model.announce(request, clock.now_s());
    ++announces;
    ASSERT_EQ(reply.status, AnnounceStatus::ok);
    // The flag the storage bridge counts by: set exactly when the count went up.
    ASSERT_EQ(reply.completion_counted, expected.completed > completed_before) << "op " << op;
    ASSERT_EQ((ScrapeEntry{reply.seeders, reply.leechers, reply.completed}), expected)
        << "op " << op;
    if (event == AnnounceEvent::stopped) {
      ASSERT_EQ(reply.peers_count, 0u);
    } else {
      check_selection(*model.swarm(hash), request, out, reply.peers_count, wanted);
    }
    if (op % 100'000 == 0) store.verify();
  }
  // Expiry is incremental: after a full timeout plus a sweep period everything is checked.
  store.verify();
  for (std::uint32_t s = 0; s < timeout_s + timeout_s / 4 + 8; ++s) {
    clock.advance(1);
    store.expire_step(clock.now_s());
  }
  model.expire(clock.now_s());
  store.verify();
  ASSERT_LT(clock.now_s(), limits.completed_keep_s);
  // Every peer is gone; what is left are the swarms with completions, holding only their count.
  EXPECT_EQ(store.counters().peers_ipv4 + store.counters().peers_ipv6, 0u);
  EXPECT_EQ(store.swarms_count(), model.swarms_count());
  EXPECT_GT(model.swarms_count(), 0u);
  for (std::uint32_t h = 0; h < hashes; ++h) {
    ASSERT_EQ(store.scrape(hash_number(h), clock.now_s()), model.scrape(hash_number(h), clock.now_s()))
        << "hash " << h;
  }
  EXPECT_EQ(store.counters().announces, announces);
}

// The model's expiry is exact; the store's is incremental. Compare them where both agree: after
// every swarm has been swept at least once past the timeout.
TEST(SwarmStoreModel, ExpiryMatchesAfterASweep) {
  StoreLimits limits;
  limits.peer_timeout_s = 400;
  SwarmStore store(limits, HashSecret::from_seed(3), 5);
  Model model(400);
  ManualClock clock(50);
  std::mt19937_64 random(42);
  std::vector<std::uint8_t> out(50 * 18);
  for (int round = 0; round < 30; ++round) {
    for (int i = 0; i < 2000; ++i) {
      const InfoHash hash = hash_number(static_cast<std::uint32_t>(random() % 500));
      const PeerEndpoint peer =
          endpoint_number(static_cast<std::uint32_t>(random() % 3000), random() % 3 == 0);
      const AnnounceRequest request = request_for(hash, peer, random() % 2, AnnounceEvent::none);
      store.announce(request, clock.now_s(), out);
      model.announce(request, clock.now_s());
    }
    for (int s = 0; s < 50; ++s) {
      clock.advance(1);
      store.expire_step(clock.now_s());
    }
  }
  // Quiet for timeout + a full sweep: both are empty.
  for (int s = 0; s < 400 + 100 + 2; ++s) {
    clock.advance(1);
    store.expire_step(clock.now_s());
  }
  model.expire(clock.now_s());
  store.verify();
  EXPECT_EQ(store.swarms_count(), model.swarms_count());
  EXPECT_EQ(store.counters().peers_ipv4 + store.counters().peers_ipv6, 0u);
  EXPECT_GT(store.counters().peers_expired, 1000u);
}

}  // namespace
}  // namespace tyto::swarm
