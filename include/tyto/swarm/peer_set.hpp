// PeerSet<W>: the peers of one address family in one swarm (DESIGN §5), W = wire size (6 or 18).
//
// One arena block holds, for `capacity` peers: the wire addresses (ip ‖ port, W bytes each,
// dense: a reply is a copy of a window) followed by a one-byte stamp per peer (StampClock). Seeders
// sit at [0, seeders), leechers at [seeders, count); removal swaps the last element into the hole.
// From `index_capacity_min` peers on, the block also holds an open-addressing index from address
// to position (1.25 × capacity slots, so at most 80 % full; keyed hash, linear probing,
// backward-shift deletion, from core/open_addressing.hpp; 16-bit entries up to 65534 peers,
// 32-bit above, all ones = empty); below it a peer is found by scanning.
//
// 16 bytes per set: it sits inline in the swarm record. Capacities come from a fixed geometric
// table (about 1.25× apart) so the class byte says the block's layout.
//
// Class changes of large sets are staged (issue 21 §2): from `staged_capacity_min` peers on, a
// block ends in a Stage header, and a class change allocates the next block and fills it in the
// background, a bounded number of slots and peers per insert or remove, while the old block stays
// the one every operation (find, wire, stamp, copy_window, expire, snapshots) reads. When the next
// block holds every peer it takes the stamps in one copy (1 byte per peer) and replaces the old
// block, which then gives its pages back to the kernel a step at a time before it is freed.
// Smaller sets change class in one step: a copy and an index rebuild of fewer than
// staged_capacity_min peers. Invariants next to the Stage struct in peer_set.cpp.
//
// Expiry of a staged set is in steps as well (issue 21 §2): expire() counts and marks the expired
// peers in one pass over the stamps (a byte per peer, vectorized: 0.17-0.4 ms at 1 M), and from
// then on no read sees them (live counts, find_live, copy_window), while expire_step removes them
// a bounded number at a time. Invariants E1-E4 next to the Stage struct.
//
// bench/swarm/growth_steps peers (one swarm to 1 M IPv4 peers; release, shared 2-core VM): before
// staging, a class change cost under 1 ms of CPU up to about 40 k peers in a set, 2 ms at 79 k,
// 24 ms at 588 k, 41-76 ms at 735 k and 919 k; staged, no operation took over 0.4 ms, and no
// turn of 256 announces into the set over 0.55-0.75 ms of thread CPU once the retired block's
// release was spread (1.1-1.3 ms before: madvise calls, bench/swarm BM_GrowthTurns).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "tyto/core/arena.hpp"
#include "tyto/core/assert.hpp"
#include "tyto/core/hash.hpp"

namespace tyto::swarm {

// A peer's stamp, one byte: bit 7, its completion was counted; bits 0-6, the time of its last
// announce in stamp units, wrapping at 128 units. The unit is 1/64 of the peer timeout (rounded
// up), so a peer expires 65 or 66 units after the start of its last announce's unit
// (StampClock::expired; timeout precision: one unit, 61 s at the default 3900 s; opentracker
// keeps minutes). Units begin on multiples of the unit
// in (frame) Unix time, not at the process's start (StoreLimits::unix_at_zero_s), so a peer's
// stamp, and the moment it expires, are the same on every cluster node that holds it. The
// sweep looks at every peer at least once per timeout / 4, so it sees an age of at most
// 66 + 16 + 1 units < 128: a stale peer is never mistaken for a fresh one.
inline constexpr std::uint8_t stamp_completed_bit = 0x80;
inline constexpr std::uint8_t stamp_time_mask = 0x7f;
inline constexpr std::uint32_t stamp_units_per_timeout = 64;
static_assert(stamp_units_per_timeout + 2 + stamp_units_per_timeout / 4 + 1 < stamp_time_mask + 1);

class StampClock {
 public:
  // unix_at_zero_s: the (frame) Unix second of now_s 0 (StoreLimits::unix_at_zero_s).
  explicit constexpr StampClock(std::uint32_t peer_timeout_s,
                                std::uint64_t unix_at_zero_s = 0) noexcept
      : unit_s_(peer_timeout_s <= stamp_units_per_timeout
                    ? 1
                    : (peer_timeout_s + stamp_units_per_timeout - 1) / stamp_units_per_timeout),
        // Only the Unix second's place in a 128-unit wrap matters to a stamp.
        phase_s_(static_cast<std::uint32_t>(unix_at_zero_s %
                                            (std::uint64_t{unit_s_} * (stamp_time_mask + 1)))) {}
  constexpr std::uint32_t unit_s() const noexcept { return unit_s_; }
  constexpr std::uint8_t stamp_of(std::uint32_t now_s) const noexcept {
    return static_cast<std::uint8_t>(((std::uint64_t{now_s} + phase_s_) / unit_s_) &
                                     stamp_time_mask);
  }
  // The stamp of second `second_s` of the same clock, which may lie before its start (<= 0:
  // another node's announce, or a snapshot's, from before this process began).
  constexpr std::uint8_t stamp_at(std::int64_t second_s) const noexcept {
    const std::int64_t wrap_s = std::int64_t{unit_s_} * (stamp_time_mask + 1);
    std::int64_t since_s = second_s + phase_s_;
    if (since_s < 0) since_s += (-since_s / wrap_s + 1) * wrap_s;  // whole wraps: the same stamp
    return static_cast<std::uint8_t>((since_s / unit_s_) & stamp_time_mask);
  }
  // Seconds since the stamp, in whole units, modulo the 128-unit wrap.
  constexpr std::uint32_t age_s(std::uint8_t stamp, std::uint32_t now_s) const noexcept {
    return ((stamp_of(now_s) - (stamp & stamp_time_mask)) & stamp_time_mask) * unit_s_;
  }
  // Past the timeout: the whole unit of the last announce is at least timeout_s ago, so a peer
  // never goes before its timeout, and goes within one unit after it (at the default 3900 s:
  // between 3900 and 3965 s after its last announce).
  constexpr bool expired(std::uint8_t stamp, std::uint32_t now_s,
                         std::uint32_t timeout_s) const noexcept {
    return units_since(stamp, stamp_of(now_s)) >= expiry_units(timeout_s);
  }
  // The same, in units, for a loop over many stamps: units since `stamp` at `now_stamp`, and the
  // count at which a peer is expired.
  static constexpr std::uint32_t units_since(std::uint8_t stamp, std::uint8_t now_stamp) noexcept {
    return static_cast<std::uint32_t>((now_stamp - (stamp & stamp_time_mask)) & stamp_time_mask);
  }
  constexpr std::uint32_t expiry_units(std::uint32_t timeout_s) const noexcept {
    return (timeout_s + 2 * unit_s_ - 1) / unit_s_;  // units * unit >= timeout + unit
  }

 private:
  std::uint32_t unit_s_;
  std::uint32_t phase_s_;
};

// Peer capacities by class, about 1.25× apart.
std::uint32_t peer_capacity(std::uint8_t capacity_class) noexcept;
std::uint8_t peer_capacity_classes() noexcept;
inline constexpr std::uint32_t index_capacity_min = 64;       // sets this large carry an index
inline constexpr std::uint32_t narrow_capacity_max = 0xfffe;  // 16-bit index entries up to here
// Sets this large change class, and expire, in stages (a Stage header at the block's end).
// Smaller sets expire in one call: a removal per peer while at most 1/8 of the set expired, else
// the survivors moved down and the index rebuilt once (PeerSet::expire_at_once). The longest
// such call (bench/swarm BM_ExpireSmallSet; release, shared 2-core VM at load 2-4, thread CPU,
// median / max of 200): with 4096 here and a removal per peer, 3472 peers all expired took
// 370 / 560 us for IPv4, 525 / 830 us for IPv6, 1.0 / 1.5 ms for a swarm's two sets in one
// touch. 1536 is as low as the staged layout goes (the first staged class's blocks must come
// from mimalloc, peer_set.cpp): 1422 peers, 181 / 259, 198 / 306, 403 / 602 us. With
// expire_at_once the worst is at 12-13 % expired, either side of 1/8: 52-56 / 136 us IPv4,
// 55-65 / 149 us IPv6, 121 / 201 us both sets; all expired, 5-18 / 86 us.
inline constexpr std::uint32_t staged_capacity_min = 1536;
// The first class of capacity >= staged_capacity_min (1778; checked in peer_set.cpp): reads
// of a smaller set's expiry state need no look at its block.
inline constexpr std::uint8_t staged_capacity_class_min = 31;
// A staged class change's work per insert or remove (peer_set.cpp, Stage), at most:
// Per step, not more: a turn may hold 256 inserts into one growing set, and 16 peers a step cost
// 0.9 ms per such turn (bench/swarm/growth_steps, the next index's random slots miss the cache).
inline constexpr std::uint32_t stage_peers_per_step = 8;
// Half a page of empties (a quarter below 65535 peers): the next index's pages fault in as it
// is filled, 128 of them in a turn of 256 steps of one set (1024 slots: 0.83 ms such a turn).
inline constexpr std::uint32_t stage_fill_slots_per_step = 512;
// A madvise call costs about 2 us on the VM besides 0.3 us a page, so the retired block goes
// 32 KB on every 8th step: 4 KB a step on average, 32 calls in a turn of 256 steps of one set.
// (16 KB on every step cost 1.1-1.2 ms per turn that ended a growth at 540 k-840 k peers; 4 KB
// on every step, 0.85 ms; bench/swarm/growth_steps peers.)
inline constexpr std::uint32_t stage_release_bytes = 32 * 1024;
inline constexpr std::uint32_t stage_release_every_steps = 8;
// A staged set's expiry in steps (PeerSet::expire): expired peers removed by a touch (an
// announce, scrape or replica of its swarm), and by the store's expiry step once a second for
// each set it follows. A removal from a set of 1 M peers costs 1-12 us (random index slots, and
// a staging step's 8 copies when a class change is under way), so one a touch adds at most
// about what a growing set's insert costs, and 64 a step stay under 1 ms (128: 1.5 ms under
// load, bench/swarm BM_ExpireLargeSet/100). A set of 1 M expired peers nobody asks for is freed
// in some 4.5 hours, its memory held till then; reads never see them.
inline constexpr std::uint32_t expiry_removals_per_touch = 1;
inline constexpr std::uint32_t expiry_stamps_per_touch = 64;
inline constexpr std::uint32_t expiry_removals_per_step = 64;
inline constexpr std::uint32_t expiry_stamps_per_step = 16 * 1024;
// copy_window looks at this many positions at most while expired peers are held: a reply of a
// set most of whose peers expired at once may hold fewer peers than it could until they go.
inline constexpr std::uint32_t window_positions_max = 512;

// The work this thread's peer sets did, summed: tests bound the work of each operation with
// it (issue 21 §2) instead of timing them. Counted in the rare steps only, never per lookup.
struct PeerSetWork {
  std::uint64_t index_slots_filled = 0;  // a staged class change's next index, emptied
  std::uint64_t peers_copied = 0;        // into a staged class change's next block
  std::uint64_t stamps_copied = 0;       // at a staged class change's end, one byte per peer
  std::uint64_t peers_rehashed = 0;      // a whole class change's index (below staging)
  std::uint64_t release_calls = 0;       // madvise calls on a retired block
  std::uint64_t bytes_released = 0;
  std::uint64_t expiry_stamps_scanned = 0;    // a staged set's expiry: stamps counted, once a unit
  std::uint64_t expiry_stamps_looked = 0;     // stamps looked at for peers to remove
  std::uint64_t expiry_peers_removed = 0;     // expired peers removed from staged sets
  std::uint64_t window_positions_looked = 0;  // copy_window, past expired peers
};
PeerSetWork& peer_set_work() noexcept;  // this thread's

template <std::size_t W>
class PeerSet {
 public:
  static constexpr std::size_t wire_size = W;
  static constexpr std::uint32_t not_found = 0xffffffffu;

  // Positions: every peer held, expired ones waiting for removal included (expire()).
  std::uint32_t count() const noexcept { return count_; }
  std::uint32_t seeders() const noexcept { return seeders_; }
  std::uint32_t leechers() const noexcept { return count_ - seeders_; }
  // The peers a read sees: those not expired (all of them but in a staged set's expiry).
  std::uint32_t live_seeders() const noexcept {
    return expiring_ == 0 ? seeders_ : seeders_ - expired_seeders();
  }
  std::uint32_t live_leechers() const noexcept {
    return expiring_ == 0 ? count_ - seeders_ : count_ - seeders_ - expired_leechers();
  }
  std::uint32_t live_count() const noexcept { return live_seeders() + live_leechers(); }
  // An expired peer is still held (its removal pending): no read may show it. A bit of the set,
  // so that no read of a set that holds none looks at its block's header.
  bool expiry_pending() const noexcept { return expiring_ != 0; }
  bool expired(std::uint32_t position) const noexcept;
  std::uint32_t capacity() const noexcept { return block_ == nullptr ? 0 : peer_capacity(class_); }
  bool empty() const noexcept { return count_ == 0; }

  std::uint32_t find(const std::uint8_t* wire, const HashSecret& secret) const noexcept;
  // find(), for a read or a write: an expired peer found is removed now and not_found returned.
  std::uint32_t find_live(const std::uint8_t* wire, SlabArena& arena,
                          const HashSecret& secret) noexcept {
    const std::uint32_t position = find(wire, secret);
    if (position == not_found || expiring_ == 0) return position;
    return unless_expired(position, arena, secret);
  }
  // Adds a peer (must not be present); returns its position. The set grows by capacity class.
  std::uint32_t insert(const std::uint8_t* wire, bool seeder, std::uint8_t stamp, SlabArena& arena,
                       const HashSecret& secret) noexcept;
  void remove(std::uint32_t position, SlabArena& arena, const HashSecret& secret) noexcept;
  // Moves a peer between the seeder and leecher parts; returns its new position.
  std::uint32_t set_seeder(std::uint32_t position, bool seeder, const HashSecret& secret) noexcept;

  const std::uint8_t* wire(std::uint32_t position) const noexcept {
    TYTO_DEBUG_ASSERT(position < count_);
    return block_ + std::size_t{position} * W;
  }
  std::uint8_t& stamp(std::uint32_t position) noexcept {
    TYTO_DEBUG_ASSERT(position < count_);
    return stamps()[position];
  }
  std::uint8_t stamp(std::uint32_t position) const noexcept {
    TYTO_DEBUG_ASSERT(position < count_);
    return stamps()[position];
  }

  // Copies at most `peers_max` peers from positions [begin, end) into out, starting at a random
  // offset and wrapping, skipping `skip` (the requester) and expired peers (looking at no more
  // than window_positions_max positions). Returns how many were copied.
  std::uint32_t copy_window(std::uint32_t begin, std::uint32_t end, std::uint32_t skip,
                            std::uint32_t peers_max, std::uint64_t random,
                            std::uint8_t* out) const noexcept;

  // Expiry is due once per stamp unit (SwarmStore sweeps a set on its first touch in a unit, so
  // no read ever shows a peer past its timeout, whenever the background sweep comes by).
  bool expiry_due(std::uint8_t now_stamp) const noexcept { return swept_ != now_stamp; }

  // Expires the peers older than timeout_s: calls on_expired(seeders, leechers) with how many
  // of each part expired, and returns their count. From then on no read sees them (live_*(),
  // find_live, copy_window; snapshots write them with an age that restores nothing).
  //  - below staged_capacity_min peers of capacity: all removed at once (at most 1422), one by
  //    one or, when over 1/8 expired, by moving the survivors down (expire_at_once).
  //  - a staged set: one pass over its stamps counts them (and marks them, peer_set.cpp
  //    expire_mark), then expire_step removes at most `expiry_removals_per_touch` of them;
  //    the rest go in later steps, on touches and the store's expiry step (issue 21 §2).
  template <class OnExpired>
  std::uint32_t expire(std::uint32_t now_s, std::uint32_t timeout_s, const StampClock& clock,
                       SlabArena& arena, const HashSecret& secret,
                       OnExpired&& on_expired) noexcept {
    const std::uint8_t now_stamp = clock.stamp_of(now_s);
    const std::uint32_t expiry_units = clock.expiry_units(timeout_s);
    if (block_ != nullptr && class_ >= staged_capacity_class_min) {
      const auto [seeders, leechers] = expire_mark(now_stamp, expiry_units, arena);
      swept_ = now_stamp;
      if (seeders + leechers != 0) on_expired(seeders, leechers);
      expire_step(expiry_removals_per_touch, expiry_stamps_per_touch, arena, secret);
      return seeders + leechers;
    }
    std::uint32_t expired_count = 0;
    for (std::uint32_t position = 0; position < count_; ++position) {
      expired_count += StampClock::units_since(stamps()[position], now_stamp) >= expiry_units;
    }
    std::uint32_t seeders = 0;
    std::uint32_t leechers = 0;
    if (expired_count > count_ / expire_at_once_fraction) {
      const Expired expired = expire_at_once(now_stamp, expiry_units, arena, secret);
      seeders = expired.seeders;
      leechers = expired.leechers;
    } else {
      for (std::uint32_t position = count_; expired_count != 0 && position-- > 0;) {
        if (StampClock::units_since(stamps()[position], now_stamp) < expiry_units) continue;
        ++(position < seeders_ ? seeders : leechers);
        --expired_count;
        remove(position, arena, secret);
      }
    }
    swept_ = now_stamp;
    if (seeders + leechers != 0) on_expired(seeders, leechers);
    return seeders + leechers;
  }
  // Removes up to removals_max expired peers, looking at up to stamps_max stamps; returns how
  // many it removed. Resumes where the last step stopped.
  std::uint32_t expire_step(std::uint32_t removals_max, std::uint32_t stamps_max, SlabArena& arena,
                            const HashSecret& secret) noexcept;

  // Frees the block, the next block of a class change in progress and a retired one.
  void release(SlabArena& arena) noexcept;

  // Whether the next insert or remove may do one of a large set's rare steps (start or end a
  // class change, or a whole class change of a set of staged_capacity_min / 2 peers or more):
  // the store times those, and only those, in CPU time.
  bool class_change_due() const noexcept;
  bool staging() const noexcept;  // a class change is in progress

  void verify(const HashSecret& secret) const noexcept;  // O(n): tests and debug builds
  std::size_t block_bytes() const noexcept;  // both blocks while a class change is in progress

  // Read-ahead: starts loading the first peers and the first stamps, all a lookup in a small
  // set reads. A hint: reads only the set's own fields.
  void prefetch() const noexcept {
    if (block_ == nullptr) return;
    __builtin_prefetch(block_);
    __builtin_prefetch(stamps());
  }

 private:
  std::uint8_t* stamps() const noexcept { return block_ + std::size_t{capacity()} * W; }
  // find_live's end: the position, or not_found once an expired peer there is removed.
  std::uint32_t unless_expired(std::uint32_t position, SlabArena& arena,
                               const HashSecret& secret) noexcept;
  std::uint32_t expired_seeders() const noexcept;
  std::uint32_t expired_leechers() const noexcept;
  struct Expired {
    std::uint32_t seeders = 0;
    std::uint32_t leechers = 0;
  };
  // An unstaged set's expiry when over 1 / expire_at_once_fraction of it expired: the survivors
  // moved down in order (seeders first still), then one index rebuild in the class a removal per
  // peer would have shrunk to. A removal per peer costs 100-165 ns on the VM (index erase,
  // moves, shrinks), a rebuild about 40 ns per survivor.
  static constexpr std::uint32_t expire_at_once_fraction = 8;
  Expired expire_at_once(std::uint8_t now_stamp, std::uint32_t expiry_units, SlabArena& arena,
                         const HashSecret& secret) noexcept;
  // A staged set's expiry at now_stamp: marks and counts the peers newly expired.
  Expired expire_mark(std::uint8_t now_stamp, std::uint32_t expiry_units,
                      SlabArena& arena) noexcept;
  bool indexed() const noexcept { return block_ != nullptr && capacity() >= index_capacity_min; }
  static std::size_t bytes_for(std::uint8_t capacity_class) noexcept;

  void reallocate(std::uint8_t capacity_class, SlabArena& arena, const HashSecret& secret) noexcept;
  void move(std::uint32_t from, std::uint32_t to, const HashSecret& secret) noexcept;
  void swap(std::uint32_t a, std::uint32_t b, const HashSecret& secret) noexcept;
  void index_insert(std::uint32_t position, const HashSecret& secret) noexcept;
  void index_erase(const std::uint8_t* wire, const HashSecret& secret) noexcept;

  // Staged class changes (peer_set.cpp): start, a bounded step, the end, and giving up.
  void stage_start(std::uint8_t capacity_class, SlabArena& arena) noexcept;
  void stage_step(std::uint32_t peers_budget, SlabArena& arena, const HashSecret& secret) noexcept;
  void stage_finish(SlabArena& arena) noexcept;
  void stage_drop(SlabArena& arena) noexcept;
  void retire_step(SlabArena& arena) noexcept;  // releases a step of the previous block
  // Keeps the next block's copy of position `position` equal to this block's after a write.
  void stage_mirror(std::uint32_t position, const HashSecret& secret) noexcept;
  // Position `position` (== count) left the set.
  void stage_forget(std::uint32_t position, const HashSecret& secret) noexcept;
  void verify_stage(const HashSecret& secret) const noexcept;

  std::uint8_t* block_ = nullptr;
  std::uint32_t count_ : 24 = 0;
  std::uint32_t class_ : 8 = 0;
  std::uint32_t seeders_ : 24 = 0;
  // The stamp (time bits) of the unit expire() last ran in. Never older than the sweep's
  // period (timeout / 4, 16 units) when compared: no wrap can fake a match.
  std::uint32_t swept_ : 7 = 0;
  // A staged set holds expired peers: its Stage's counts are not both 0 (peer_set.cpp, E1).
  std::uint32_t expiring_ : 1 = 0;
};

using Ipv4Peers = PeerSet<6>;
using Ipv6Peers = PeerSet<18>;
static_assert(sizeof(Ipv4Peers) == 16);
static_assert(sizeof(Ipv6Peers) == 16);

inline constexpr std::uint32_t peers_per_set_max = (1u << 24) - 1;

}  // namespace tyto::swarm
