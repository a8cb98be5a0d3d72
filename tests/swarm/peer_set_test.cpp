// PeerSet on its own (issue 21 §2): class changes of large sets are staged over many operations
// (peer_set.cpp, Stage). Checked here: growth to a million peers and back with verify() at each
// class change; lookups, removals, seeder moves, copies, expiry and release in the middle of a
// class change; and a randomized differential test against a std::unordered_map model crossing
// many class changes both ways, for IPv4 (W = 6) and IPv6 (W = 18) peers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "tyto/swarm/peer_set.hpp"

namespace tyto::swarm {
namespace {

const HashSecret secret = HashSecret::from_seed(21);

template <std::size_t W>
std::string address_of(std::uint32_t n) {
  std::string wire(W, '\0');
  for (std::size_t i = 0; i < 4; ++i) wire[i] = static_cast<char>(n >> (8 * (3 - i)));
  wire[W - 1] = static_cast<char>(n * 7);
  return wire;
}

const std::uint8_t* bytes(const std::string& wire) {
  return reinterpret_cast<const std::uint8_t*>(wire.data());
}

// A change of the set's block or of its staging: where verify() is worth an O(n) pass.
template <std::size_t W>
struct Shape {
  std::uint32_t capacity = 0;
  bool staging = false;
  explicit Shape(const PeerSet<W>& peers) : capacity(peers.capacity()), staging(peers.staging()) {}
  bool operator==(const Shape&) const = default;
};

TEST(PeerSetStaging, GrowsToAMillionAndShrinksBackVerifyingEachStep) {
  SlabArena arena;
  PeerSet<6> peers;
  constexpr std::uint32_t peers_wanted = 1u << 20;
  std::uint32_t class_changes = 0;
  std::uint32_t stages = 0;
  Shape<6> shape(peers);
  for (std::uint32_t n = 0; n < peers_wanted; ++n) {
    ASSERT_EQ(peers.count(), n);
    peers.insert(bytes(address_of<6>(n)), n % 4 == 0, 1, arena, secret);
    const Shape<6> now(peers);
    if (now == shape) continue;
    class_changes += now.capacity != shape.capacity;
    stages += now.staging && !shape.staging;
    shape = now;
    peers.verify(secret);
  }
  EXPECT_GE(stages, 20u);  // 1778 .. 1 M, about 1.25x apart
  EXPECT_GE(class_changes, 50u);
  for (std::uint32_t n = 0; n < peers_wanted; n += 4093) {
    ASSERT_NE(peers.find(bytes(address_of<6>(n)), secret), PeerSet<6>::not_found) << n;
  }
  EXPECT_EQ(peers.find(bytes(address_of<6>(peers_wanted)), secret), PeerSet<6>::not_found);
  stages = 0;
  for (std::uint32_t n = 0; n < peers_wanted; ++n) {
    const std::uint32_t position = peers.find(bytes(address_of<6>(n)), secret);
    ASSERT_NE(position, PeerSet<6>::not_found) << n;
    peers.remove(position, arena, secret);
    const Shape<6> now(peers);
    if (now == shape) continue;
    stages += now.staging && !shape.staging;
    shape = now;
    peers.verify(secret);
  }
  EXPECT_GE(stages, 6u);  // a shrink at half full, staged from 1778
  EXPECT_TRUE(peers.empty());
  EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
}

// Issue 21 §2: no insert does more than a bounded step of a class change, and a turn of 256
// inserts into one set growing to 1 M peers no more than 256 such steps (peer_set_work(): work
// counted, not timed; bench/swarm's BM_GrowthTurns times the turns). The whole class changes
// below staging rehash fewer than staged_capacity_min peers; a staged one's end copies the
// stamps, one byte per peer, once per class change.
TEST(PeerSetStaging, EachInsertOfAGrowthToAMillionDoesBoundedWork) {
  constexpr std::uint32_t turn_inserts = 256;
  SlabArena arena;
  PeerSet<6> peers;
  PeerSetWork before = peer_set_work();
  PeerSetWork turn_start = before;
  std::uint64_t stage_ends = 0;
  std::uint64_t release_calls_turn_max = 0;
  for (std::uint32_t n = 0; n < (1u << 20); ++n) {
    if (n % turn_inserts == 0) {
      release_calls_turn_max = std::max<std::uint64_t>(
          release_calls_turn_max, peer_set_work().release_calls - turn_start.release_calls);
      turn_start = peer_set_work();
    }
    peers.insert(bytes(address_of<6>(n)), n % 4 == 0, 1, arena, secret);
    const PeerSetWork after = peer_set_work();
    ASSERT_LE(after.index_slots_filled - before.index_slots_filled, stage_fill_slots_per_step) << n;
    ASSERT_LE(after.peers_copied - before.peers_copied, stage_peers_per_step) << n;
    ASSERT_LE(after.peers_rehashed - before.peers_rehashed, staged_capacity_min) << n;
    ASSERT_LE(after.release_calls - before.release_calls, 1u) << n;
    ASSERT_LE(after.bytes_released - before.bytes_released, stage_release_bytes) << n;
    const std::uint64_t stamps_copied = after.stamps_copied - before.stamps_copied;
    ASSERT_LE(stamps_copied, peers.count()) << n;
    stage_ends += stamps_copied != 0;
    before = after;
  }
  // A madvise call on at most one step in stage_release_every_steps.
  EXPECT_LE(release_calls_turn_max, turn_inserts / stage_release_every_steps + 1);
  EXPECT_GT(release_calls_turn_max, 0u);
  EXPECT_GE(stage_ends, 20u);  // 1778 .. 1 M, about 1.25x apart
  peers.release(arena);
  EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
}

// Grows a set until a class change is in progress, with seeders and leechers.
template <std::size_t W>
std::uint32_t grow_until_staging(PeerSet<W>& peers, SlabArena& arena) {
  std::uint32_t n = 0;
  while (!peers.staging()) {
    peers.insert(bytes(address_of<W>(n)), n % 3 == 0, static_cast<std::uint8_t>(n & 0x7f), arena,
                 secret);
    ++n;
  }
  return n;
}

TEST(PeerSetStaging, EveryOperationInTheMiddleOfAGrowthKeepsBothBlocksRight) {
  SlabArena arena;
  PeerSet<18> peers;
  std::uint32_t inserted = grow_until_staging(peers, arena);
  EXPECT_GE(peers.count(), staged_capacity_min * 4 / 5);
  // Lookups see every peer at once, and no stranger.
  for (std::uint32_t n = 0; n < inserted; ++n) {
    const std::uint32_t position = peers.find(bytes(address_of<18>(n)), secret);
    ASSERT_NE(position, PeerSet<18>::not_found) << n;
    ASSERT_EQ(std::memcmp(peers.wire(position), address_of<18>(n).data(), 18), 0);
  }
  EXPECT_EQ(peers.find(bytes(address_of<18>(inserted)), secret), PeerSet<18>::not_found);
  std::mt19937 random(5);
  std::vector<std::uint8_t> out(18 * 50);
  std::uint32_t checked = 0;
  // Seeder moves, removals (of seeders, leechers and the last peer) and inserts, verified
  // after each, until the class change ends.
  for (std::uint32_t step = 0; peers.staging(); ++step) {
    const std::uint32_t position = random() % peers.count();
    switch (step % 4) {
      case 0:
        peers.set_seeder(position, position >= peers.seeders(), secret);
        break;
      case 1:
        peers.remove(step % 8 == 1 ? peers.count() - 1 : position, arena, secret);
        break;
      default:
        peers.insert(bytes(address_of<18>(inserted)), step % 3 == 0, 9, arena, secret);
        ++inserted;
    }
    peers.verify(secret);
    ++checked;
    const std::uint32_t copied =
        peers.copy_window(0, peers.count(), PeerSet<18>::not_found, 50, random(), out.data());
    ASSERT_EQ(copied, std::min<std::uint32_t>(50, peers.count()));
    for (std::uint32_t i = 0; i < copied; ++i) {
      ASSERT_NE(peers.find(out.data() + std::size_t{i} * 18, secret), PeerSet<18>::not_found);
    }
  }
  EXPECT_GE(checked, 100u);
  EXPECT_GT(peers.capacity(), staged_capacity_min);
  peers.release(arena);
  EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
}

TEST(PeerSetStaging, ReleaseAndExpiryInTheMiddleOfAClassChange) {
  SlabArena arena;
  {
    PeerSet<6> peers;
    grow_until_staging(peers, arena);
    EXPECT_GT(peers.block_bytes(), SlabArena::block_size(peers.capacity() * 7));
    peers.release(arena);  // both blocks
    EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
  }
  {
    // Stamps 0..127 by position: the ones older than the timeout go, the class change
    // goes on (or ends, or a shrink starts) under the removals.
    PeerSet<6> peers;
    const std::uint32_t inserted = grow_until_staging(peers, arena);
    const StampClock clock(64);  // one unit per second
    std::uint32_t expected = 0;
    for (std::uint32_t n = 0; n < inserted; ++n) expected += (n & 0x7f) < 64;
    std::uint32_t reported = 0;
    const std::uint32_t removed = peers.expire(
        127, 63, clock, arena, secret,
        [&](std::uint32_t seeders, std::uint32_t leechers) { reported += seeders + leechers; });
    EXPECT_EQ(removed, expected);
    EXPECT_EQ(reported, expected);
    EXPECT_EQ(peers.live_count(), inserted - expected);  // at once, though held until removed
    peers.verify(secret);
    while (peers.expiry_pending()) {
      ASSERT_LE(peers.expire_step(expiry_removals_per_step, expiry_stamps_per_step, arena, secret),
                expiry_removals_per_step);
      peers.verify(secret);
    }
    EXPECT_EQ(peers.count(), inserted - expected);
    for (std::uint32_t n = 0; n < inserted; ++n) {
      const bool kept = (n & 0x7f) >= 64;
      ASSERT_EQ(peers.find(bytes(address_of<6>(n)), secret) != PeerSet<6>::not_found, kept) << n;
    }
    peers.release(arena);
    EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
  }
}

// Issue 21 §2: expiring a set of 1 M peers is one pass over its stamps and a bounded number of
// removals per call, the rest in bounded steps; reads never see an expired peer meanwhile.
TEST(PeerSetExpiry, AMillionPeerSetExpiresInBoundedSteps) {
  SlabArena arena;
  PeerSet<6> peers;
  const StampClock clock(64);  // one unit per second
  constexpr std::uint32_t peers_wanted = 1u << 20;
  // Every third peer announced at second 0 (stamp 0), the rest at second 60.
  auto stamp_of = [](std::uint32_t n) -> std::uint8_t { return n % 3 == 0 ? 0 : 60; };
  for (std::uint32_t n = 0; n < peers_wanted; ++n) {
    peers.insert(bytes(address_of<6>(n)), n % 4 == 0, stamp_of(n), arena, secret);
  }
  std::uint32_t old_peers = 0;
  for (std::uint32_t n = 0; n < peers_wanted; ++n) old_peers += stamp_of(n) == 0;
  // At second 70 (timeout 63 s: 64 units) the stamp-0 peers are expired, the others not.
  const PeerSetWork before = peer_set_work();
  std::uint32_t reported = 0;
  const std::uint32_t expired = peers.expire(
      70, 63, clock, arena, secret,
      [&](std::uint32_t seeders, std::uint32_t leechers) { reported += seeders + leechers; });
  const PeerSetWork after = peer_set_work();
  EXPECT_EQ(expired, old_peers);
  EXPECT_EQ(reported, old_peers);
  EXPECT_EQ(peers.live_count(), peers_wanted - old_peers);
  EXPECT_TRUE(peers.expiry_pending());
  // One pass over the stamps, and no more removals than a touch's.
  EXPECT_EQ(after.expiry_stamps_scanned - before.expiry_stamps_scanned, peers_wanted);
  EXPECT_LE(after.expiry_peers_removed - before.expiry_peers_removed, expiry_removals_per_touch);
  EXPECT_LE(after.expiry_stamps_looked - before.expiry_stamps_looked, expiry_stamps_per_touch);
  // Reads: a window holds live peers only, an expired peer is not found (and goes).
  std::vector<std::uint8_t> out(6 * 50);
  std::mt19937 random(9);
  for (int k = 0; k < 100; ++k) {
    const std::uint32_t copied =
        peers.copy_window(0, peers.count(), PeerSet<6>::not_found, 50, random(), out.data());
    ASSERT_GT(copied, 0u);
    for (std::uint32_t i = 0; i < copied; ++i) {
      const std::uint32_t position = peers.find(out.data() + std::size_t{i} * 6, secret);
      ASSERT_NE(position, PeerSet<6>::not_found);
      ASSERT_EQ(peers.stamp(position), 60);
    }
  }
  EXPECT_EQ(peers.find_live(bytes(address_of<6>(0)), arena, secret), PeerSet<6>::not_found);
  EXPECT_EQ(peers.find(bytes(address_of<6>(0)), secret), PeerSet<6>::not_found);
  EXPECT_NE(peers.find_live(bytes(address_of<6>(1)), arena, secret), PeerSet<6>::not_found);
  // Steps, with inserts of new peers and removals of live ones between them: each within its
  // bounds, until every expired peer is gone.
  std::uint32_t next = peers_wanted;
  std::uint32_t steps = 0;
  while (peers.expiry_pending()) {
    const PeerSetWork step_before = peer_set_work();
    const std::uint32_t removed =
        peers.expire_step(expiry_removals_per_step, expiry_stamps_per_step, arena, secret);
    const PeerSetWork step_after = peer_set_work();
    ASSERT_LE(removed, expiry_removals_per_step);
    ASSERT_LE(step_after.expiry_stamps_looked - step_before.expiry_stamps_looked,
              expiry_stamps_per_step);
    ASSERT_LE(step_after.peers_copied - step_before.peers_copied,
              std::uint64_t{expiry_removals_per_step} * stage_peers_per_step);
    ASSERT_EQ(step_after.expiry_stamps_scanned, step_before.expiry_stamps_scanned);
    peers.insert(bytes(address_of<6>(next)), next % 2 == 0, 70, arena, secret);
    ++next;
    // A live peer: one inserted 7 steps ago, or at first one of the old set's live ones.
    const std::uint32_t victim = next - 7 >= peers_wanted ? next - 7 : 3 * steps + 1;
    const std::uint32_t live = peers.find_live(bytes(address_of<6>(victim)), arena, secret);
    ASSERT_NE(live, PeerSet<6>::not_found);
    peers.remove(live, arena, secret);
    ++steps;
    ASSERT_LT(steps, 100'000u);
  }
  EXPECT_GT(steps, old_peers / expiry_removals_per_step / 2);
  EXPECT_EQ(peers.count(), peers.live_count());
  EXPECT_EQ(peers.count(), peers_wanted - old_peers);  // one insert and one removal a step
  peers.verify(secret);
  peers.release(arena);
  EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
}

// A set below staging expires in one call: a removal per peer while few expired, else the
// survivors moved down and one index rebuild (PeerSet::expire_at_once). On both sides of that
// fraction and at every share: the reported counts by part, every survivor found where it is
// and still a seeder or a leecher as before, no expired one found, verify() after each.
template <std::size_t W>
void expire_below_staging_at_every_share() {
  const StampClock clock(64);  // one unit per second
  const std::uint32_t peers_count = peer_capacity(staged_capacity_class_min - 1);
  for (const std::uint32_t percent : {0u, 1u, 12u, 13u, 50u, 99u, 100u}) {
    SlabArena arena;
    PeerSet<W> peers;
    std::mt19937 random(percent);
    std::vector<bool> old(peers_count);
    std::uint32_t old_seeders = 0;
    std::uint32_t old_leechers = 0;
    for (std::uint32_t n = 0; n < peers_count; ++n) {
      old[n] = random() % 100 < percent;
      const bool seeder = n % 3 == 0;
      if (old[n]) ++(seeder ? old_seeders : old_leechers);
      peers.insert(bytes(address_of<W>(n)), seeder, old[n] ? 0 : 60, arena, secret);
    }
    ASSERT_FALSE(peers.staging());
    std::uint32_t reported_seeders = 0;
    std::uint32_t reported_leechers = 0;
    const std::uint32_t expired = peers.expire(70, 63, clock, arena, secret,
                                               [&](std::uint32_t seeders, std::uint32_t leechers) {
                                                 reported_seeders += seeders;
                                                 reported_leechers += leechers;
                                               });
    EXPECT_EQ(expired, old_seeders + old_leechers) << percent;
    EXPECT_EQ(reported_seeders, old_seeders) << percent;
    EXPECT_EQ(reported_leechers, old_leechers) << percent;
    ASSERT_EQ(peers.count(), peers_count - expired) << percent;
    EXPECT_FALSE(peers.expiry_pending());
    if (!peers.empty()) peers.verify(secret);
    for (std::uint32_t n = 0; n < peers_count; ++n) {
      const std::uint32_t position = peers.find(bytes(address_of<W>(n)), secret);
      if (old[n]) {
        ASSERT_EQ(position, PeerSet<W>::not_found) << percent << " " << n;
        continue;
      }
      ASSERT_NE(position, PeerSet<W>::not_found) << percent << " " << n;
      ASSERT_EQ(std::memcmp(peers.wire(position), address_of<W>(n).data(), W), 0);
      ASSERT_EQ(position < peers.seeders(), n % 3 == 0) << percent << " " << n;
    }
    // The survivors kept their own ages: at 100 s (40 after their announce, under the timeout)
    // none of them expires.
    EXPECT_EQ(peers.expire(100, 63, clock, arena, secret, [](std::uint32_t, std::uint32_t) {}),
              0u)
        << percent;
    peers.release(arena);
    EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
  }
}

TEST(PeerSetExpiry, BelowStagingOneCallAtEveryShareIpv4) {
  expire_below_staging_at_every_share<6>();
}
TEST(PeerSetExpiry, BelowStagingOneCallAtEveryShareIpv6) {
  expire_below_staging_at_every_share<18>();
}

// Expiry in the middle of everything: a staged set takes random inserts (some already expired),
// removals, seeder moves and expiries at advancing seconds, with steps between; verify() (E1-E4
// included) after each, and the live counts against a model.
TEST(PeerSetExpiry, StepsInterleavedWithEveryOperationKeepTheCountsRight) {
  SlabArena arena;
  PeerSet<18> peers;
  const StampClock clock(64);
  std::unordered_map<std::string, std::uint32_t> announced_s;  // live peers: last second
  std::mt19937 random(77);
  std::uint32_t now_s = 1;
  std::uint32_t next = 0;
  std::uint32_t inserts_while_expiring = 0;
  const PeerSetWork before = peer_set_work();
  auto is_live = [&](std::uint32_t second) {
    return !clock.expired(clock.stamp_of(second), now_s, 63);
  };
  for (std::uint32_t op = 0; op < 60'000; ++op) {
    const std::uint32_t dice = random() % 100;
    if (dice < 55 || peers.count() < 5000) {
      const std::string key = address_of<18>(next++);
      // Announced up to a minute ago; while expired peers are held, up to 80 s ago: some
      // expired already at insert, which the set counts as such (the store inserts none).
      const std::uint32_t back_s = peers.expiry_pending() ? 80 : 60;
      inserts_while_expiring += peers.expiry_pending();
      const std::uint32_t second = now_s > back_s ? now_s - random() % back_s : now_s;
      peers.insert(bytes(key), random() % 2 == 0, clock.stamp_of(second), arena, secret);
      if (is_live(second)) announced_s[key] = second;
    } else if (dice < 75) {
      const std::string key = address_of<18>(random() % next);
      const std::uint32_t position = peers.find_live(bytes(key), arena, secret);
      ASSERT_EQ(position != PeerSet<18>::not_found, announced_s.count(key) != 0) << op;
      if (position != PeerSet<18>::not_found) {
        if (dice < 65) {
          peers.remove(position, arena, secret);
          announced_s.erase(key);
        } else {
          peers.set_seeder(position, position >= peers.seeders(), secret);
        }
      }
    } else if (dice < 95) {
      peers.expire_step(random() % 40, random() % 2000, arena, secret);
    } else {
      now_s += 1 + random() % 3;
      if (peers.expiry_due(clock.stamp_of(now_s))) {
        peers.expire(now_s, 63, clock, arena, secret, [](std::uint32_t, std::uint32_t) {});
      }
      for (auto at = announced_s.begin(); at != announced_s.end();) {
        at = is_live(at->second) ? std::next(at) : announced_s.erase(at);
      }
      ASSERT_EQ(peers.live_count(), announced_s.size()) << op;
    }
    if (op % 997 == 0) peers.verify(secret);
  }
  EXPECT_GT(inserts_while_expiring, 1000u);  // the staged expiry was under way, often
  EXPECT_GT(peer_set_work().expiry_peers_removed - before.expiry_peers_removed, 1000u);
  peers.verify(secret);
  peers.release(arena);
  EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
}

struct ModelPeer {
  bool seeder = false;
  std::uint8_t stamp = 0;
};

// Random inserts, removals, seeder moves, stamp writes and lookups against a map, the count
// swinging between a few and tens of thousands so that it crosses staged class changes up and
// down many times. verify() at each change of block or staging, the whole model every 4096 ops.
template <std::size_t W>
void differential(std::uint32_t seed, std::uint32_t operations) {
  SlabArena arena;
  PeerSet<W> peers;
  std::unordered_map<std::string, ModelPeer> model;
  std::vector<std::string> keys;  // the model's keys, for picking one at random
  std::mt19937 random(seed);
  Shape<W> shape(peers);
  std::uint32_t stages = 0;
  std::uint32_t target = 0;  // the first phase grows
  auto check_all = [&] {
    ASSERT_EQ(peers.count(), model.size());
    std::uint32_t seeders = 0;
    for (const auto& [key, peer] : model) {
      const std::uint32_t position = peers.find(bytes(key), secret);
      ASSERT_NE(position, PeerSet<W>::not_found);
      ASSERT_EQ(position < peers.seeders(), peer.seeder);
      ASSERT_EQ(peers.stamp(position), peer.stamp);
      seeders += peer.seeder;
    }
    ASSERT_EQ(peers.seeders(), seeders);
  };
  for (std::uint32_t op = 0; op < operations; ++op) {
    if (op % 100'000 == 0)
      target = target > 1000 ? 100 + random() % 200 : 20'000 + random() % 20'000;
    const bool grow = model.size() < target;
    const std::uint32_t dice = random() % 100;
    if (dice < (grow ? 60u : 20u)) {
      const std::string key = address_of<W>(random());
      if (model.count(key) != 0) continue;
      const bool seeder = random() % 2 == 0;
      const auto stamp = static_cast<std::uint8_t>(random());
      const std::uint32_t position = peers.insert(bytes(key), seeder, stamp, arena, secret);
      ASSERT_EQ(std::memcmp(peers.wire(position), key.data(), W), 0);
      model[key] = {seeder, stamp};
      keys.push_back(key);
    } else if (!keys.empty()) {
      const std::size_t k = random() % keys.size();
      const std::string key = keys[k];
      const std::uint32_t position = peers.find(bytes(key), secret);
      ASSERT_NE(position, PeerSet<W>::not_found);
      ModelPeer& peer = model[key];
      ASSERT_EQ(position < peers.seeders(), peer.seeder);
      ASSERT_EQ(peers.stamp(position), peer.stamp);
      if (dice < 80) {
        peers.remove(position, arena, secret);
        model.erase(key);
        keys[k] = keys.back();
        keys.pop_back();
      } else if (dice < 90) {
        peer.seeder = !peer.seeder;
        const std::uint32_t moved = peers.set_seeder(position, peer.seeder, secret);
        ASSERT_EQ(std::memcmp(peers.wire(moved), key.data(), W), 0);
      } else {
        peer.stamp = static_cast<std::uint8_t>(random());
        peers.stamp(position) = peer.stamp;
      }
    }
    ASSERT_EQ(peers.find(bytes(address_of<W>(0xffffffffu)), secret), PeerSet<W>::not_found);
    const Shape<W> now(peers);
    if (!(now == shape)) {
      stages += now.staging && !shape.staging;
      shape = now;
      peers.verify(secret);
    }
    if (op % 4096 == 0) check_all();
  }
  check_all();
  EXPECT_GE(stages, 8u) << "the run should cross staged class changes both ways";
  peers.release(arena);
  EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
}

TEST(PeerSetDifferential, Ipv4AgainstAMapAcrossClassChanges) {
  differential<6>(1, 400'000);
}
TEST(PeerSetDifferential, Ipv6AgainstAMapAcrossClassChanges) {
  differential<18>(2, 400'000);
}

}  // namespace
}  // namespace tyto::swarm
