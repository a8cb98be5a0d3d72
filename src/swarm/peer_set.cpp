#include "tyto/swarm/peer_set.hpp"

#include <algorithm>
#include <array>
#include <new>

#include <sys/mman.h>
#include <unistd.h>

#include "tyto/core/open_addressing.hpp"

namespace tyto::swarm {

namespace {

// Index entries are positions; all ones (the largest value of the width) is the empty entry.
template <class Entry>
using IndexTraits = open_addressing::SentinelTraits<Entry, static_cast<Entry>(~Entry{0})>;

template <std::size_t W>
std::uint32_t index_home(const std::uint8_t* wire, const HashSecret& secret,
                         std::uint32_t slots) noexcept {
  return open_addressing::home_of(open_addressing::tag_of(hash_bytes({wire, W}, secret)), slots);
}

// The slot holding the position of the peer at `wire`, or the empty slot that ends its run.
template <std::size_t W, class Entry>
std::uint32_t index_slot(std::span<Entry> entries, const std::uint8_t* peers,
                         const std::uint8_t* wire, const HashSecret& secret) noexcept {
  const auto slots = static_cast<std::uint32_t>(entries.size());
  return open_addressing::find<IndexTraits<Entry>>(
      entries, index_home<W>(wire, secret, slots), [peers, wire](Entry entry) {
        return std::memcmp(peers + std::size_t{entry} * W, wire, W) == 0;
      });
}

struct CapacityTable {
  std::array<std::uint32_t, 128> capacities{};
  std::uint8_t count = 0;
};

// 1..8, then about 1.25× apart (even numbers), up to the largest set.
constexpr CapacityTable make_capacity_table() {
  CapacityTable table;
  std::uint32_t capacity = 1;
  while (true) {
    table.capacities[table.count++] = capacity;
    if (capacity >= peers_per_set_max) break;
    std::uint32_t next = capacity < 8 ? capacity + 1 : (capacity + capacity / 4 + 1) / 2 * 2;
    capacity = next > peers_per_set_max ? peers_per_set_max : next;
  }
  return table;
}

constexpr CapacityTable capacity_table = make_capacity_table();

constexpr std::uint8_t class_for(std::uint32_t peers) noexcept {
  std::uint8_t c = 0;
  while (capacity_table.capacities[c] < peers) ++c;
  return c;
}

// Classes from this one on have capacity >= staged_capacity_min (the table only grows).
constexpr std::uint8_t staged_class_min = class_for(staged_capacity_min);
static_assert(capacity_table.capacities[staged_class_min] >= staged_capacity_min);
static_assert(staged_class_min == staged_capacity_class_min);

// A block's layout for `capacity` peers: addresses, stamps, the index (4-byte aligned) from
// index_capacity_min peers on, then the Stage header (8-byte aligned) from staged_capacity_min on.
constexpr std::uint32_t index_slots_for(std::uint32_t capacity) noexcept {
  return capacity + capacity / 4;
}

constexpr std::size_t index_offset(std::size_t capacity, std::size_t wire_size) noexcept {
  return (capacity * (wire_size + 1) + 3) / 4 * 4;
}

std::size_t stage_offset(std::size_t capacity, std::size_t wire_size) noexcept {
  const std::size_t entry_bytes = capacity <= narrow_capacity_max ? 2 : 4;
  return (index_offset(capacity, wire_size) +
          index_slots_for(static_cast<std::uint32_t>(capacity)) * entry_bytes + 7) /
         8 * 8;
}

// Calls visit(entries): the index of the block as a span of its entry type, std::uint16_t or
// std::uint32_t (one width test per operation, not one per entry read).
template <std::size_t W, class Visit>
auto with_index(std::uint8_t* block, std::uint32_t capacity, Visit&& visit) noexcept {
  TYTO_DEBUG_ASSERT(capacity >= index_capacity_min);
  std::uint8_t* index = block + index_offset(capacity, W);
  const std::uint32_t slots = index_slots_for(capacity);
  if (capacity <= narrow_capacity_max) {
    return visit(std::span(reinterpret_cast<std::uint16_t*>(index), slots));
  }
  return visit(std::span(reinterpret_cast<std::uint32_t*>(index), slots));
}

// Adds position `position` of the block to the block's index (its address read from the block).
template <std::size_t W>
void block_index_insert(std::uint8_t* block, std::uint32_t capacity, std::uint32_t position,
                        const HashSecret& secret) noexcept {
  with_index<W>(block, capacity, [&](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    const auto slots = static_cast<std::uint32_t>(entries.size());
    TYTO_DEBUG_ASSERT(position < IndexTraits<Entry>::empty());
    open_addressing::insert<IndexTraits<Entry>>(
        entries, index_home<W>(block + std::size_t{position} * W, secret, slots),
        static_cast<Entry>(position));
  });
}

// The slot of the entry naming `position`, on the run from the home of the address the block
// holds there; the slot count when there is none. By position, not by address: a stage's index
// may name one address at two positions for the length of a remove.
template <std::size_t W, class Entry>
std::uint32_t position_slot(std::span<Entry> entries, const std::uint8_t* block,
                            std::uint32_t position, const HashSecret& secret) noexcept {
  const auto slots = static_cast<std::uint32_t>(entries.size());
  const std::uint32_t slot = open_addressing::find<IndexTraits<Entry>>(
      entries, index_home<W>(block + std::size_t{position} * W, secret, slots),
      [position](Entry entry) { return entry == position; });
  return IndexTraits<Entry>::is_empty(entries[slot]) ? slots : slot;
}

// Removes the entry naming `position` from the block's index; it must be there.
template <std::size_t W>
void block_index_erase_position(std::uint8_t* block, std::uint32_t capacity, std::uint32_t position,
                                const HashSecret& secret) noexcept {
  with_index<W>(block, capacity, [&](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    const auto slots = static_cast<std::uint32_t>(entries.size());
    const std::uint32_t slot = position_slot<W>(entries, block, position, secret);
    TYTO_ASSERT(slot < slots);
    open_addressing::erase<IndexTraits<Entry>>(entries, slot, [&](Entry entry) {
      return index_home<W>(block + std::size_t{entry} * W, secret, slots);
    });
  });
}

// A staged class change (sets of staged_capacity_min peers or more). The set's block (the "old"
// one) stays complete and is the only block any read uses; `block` (the "next" one, of class
// `capacity_class`) is filled a bounded amount per insert or remove:
//  1. slots_filled: the next index's slots [0, slots_filled) are empty (the rest is
//     uninitialised memory), filled `stage_fill_slots_per_step` per step. No peer is copied before
//     the whole index is empty (peers_copied == 0 until then).
//  2. peers_copied: positions [0, peers_copied) of the next block hold the same addresses as the
//     old block's, and the next index holds exactly one entry for each of them, on the run from
//     the home of that address (read from the next block). Every write to an old position below
//     peers_copied is mirrored (stage_mirror); a position below it that leaves the set lowers it
//     (stage_forget): peers_copied <= count always. Stamps are not mirrored (callers write them
//     through stamp()): the copy writes each one once only to fault its page in (1 MB of fresh
//     pages cost 0.6 ms on the VM), and the end copies them all again, one byte per peer.
//  3. the end (stage_finish), at the start of an insert or remove once both cursors are complete:
//     stamps copied, the next block becomes the set's block, the old one is retired in it.
//  4. retired: the old block, dead, gives its pages back to the kernel `stage_release_bytes`
//     every `stage_release_every_steps` steps (madvise), then goes back to the arena, whose free
//     is then cheap (an 18 MB free unmapping resident pages cost 1 ms). No class change starts
//     before it is gone (if one must, the rest is freed at once: never expected, some 13 bytes
//     per peer of capacity at 4 KB a step, 0.3 % of a capacity in steps, against the 8.6 % of
//     inserts between the end of one growth and the start of the next).
// Growth starts at 80 % of the capacity and copies `stage_peers_per_step` (8) peers per insert or
// remove while a count grows by at most one per insert, so it ends long before the old block is
// full (capacity 4096: it starts at 3277 peers, then 7 fill steps and about 470 copy steps in 819
// inserts of room; the static_assert below holds it for every capacity); an insert
// that finds the old block full all the same ends it at once (never expected). Shrinking starts
// when a remove leaves the set under half full, to the class for 1.25 × count; if inserts push
// the count past the next block's capacity first, it is given up (stage_drop) and the next block
// freed. No shrink starts during a growth. release() frees every block (the set's, the next, a
// retired one); snapshots, expire and copy_window read the old block only, which is complete
// throughout (expire's removals are steps like any other).
//
// The same header carries a staged set's expiry in steps (PeerSet::expire, issue 21 §2):
//  E1. expired_seeders / expired_leechers: how many peers of each part are expired and still
//      held. A held peer is expired exactly when units_since(its stamp, swept_) >=
//      expiry_units; expire_mark rewrites an expired peer's stamp to exactly expiry_units
//      before swept_ (no completed bit), so its age grows from there with swept_ and never
//      wraps into a fresh one (the sweep comes by every 16 units, 66 + 16 < 128), while a live
//      peer's stamp is newer than that (the store stamps at swept_'s unit, and never inserts an
//      expired peer; insert counts one all the same).
//  E2. Parts never change under an expired peer: moves keep a peer in its part, and
//      set_seeder is only called on live peers (find_live). So the counts change only at
//      expire_mark (up) and when an expired peer is removed (down, in remove()).
//  E3. expiry_cursor: expire_step walks positions down from it, in laps from count to 0, and
//      removes the expired peers it meets. Not every expired peer is below it: expire_mark may
//      mark some above it, and an insert of a seeder moves the first leecher to the end (a
//      removal only moves peers down into the hole); the next lap finds them. Each lap looks at
//      every position, so the counts reach 0 (the cursor is not restarted at a mark: a set of
//      1 M peers marked once a unit would then walk its live peers again and again).
//  E4. No shrink below staging starts while any expired peer is held, and one in progress into
//      such a class (which has no header to carry E1-E3) is given up when expiry starts: the
//      counts always have a header. A class change's end carries the fields into the next
//      header. Shrinks to staged classes go on: a set of 1 M peers that all expired gives its
//      blocks back a step at a time as it empties, not 14 MB at once at its last removal.
struct Stage {
  std::uint8_t* block = nullptr;    // the next block; nullptr: no class change in progress
  std::uint8_t* retired = nullptr;  // the previous block, being released; or nullptr
  std::uint32_t slots_filled = 0;
  std::uint32_t peers_copied = 0;
  std::uint32_t retired_released_bytes = 0;  // from the retired block's first whole page
  std::uint8_t capacity_class = 0;
  std::uint8_t retired_class = 0;
  std::uint16_t retire_steps = 0;  // steps since the retired block last gave pages back
  std::uint8_t expiry_units = 0;   // E1: the age, in stamp units, of an expired peer
  std::uint32_t expired_seeders = 0;
  std::uint32_t expired_leechers = 0;
  std::uint32_t expiry_cursor = 0;  // E3
};

// Carries a staged set's expiry (E1-E3) into the header of its next block.
void carry_expiry(const Stage& from, Stage& to) noexcept {
  to.expiry_units = from.expiry_units;
  to.expired_seeders = from.expired_seeders;
  to.expired_leechers = from.expired_leechers;
  to.expiry_cursor = from.expiry_cursor;
}

// The per-step bounds (stage_peers_per_step and the rest) are in peer_set.hpp.
// Staged blocks come from mimalloc, not from shared slabs: their pages are theirs to release.
// The smallest is the first staged class's IPv4 block (1778 peers: 16,890 bytes with its index).
static_assert(index_offset(capacity_table.capacities[staged_class_min], 6) +
                  index_slots_for(capacity_table.capacities[staged_class_min]) * 2 >
              SlabArena::block_size_max);
// A growth starts this close to full: (capacity - count) inserts of room, each a step.
constexpr std::uint32_t stage_growth_room(std::uint32_t capacity) noexcept {
  return capacity / 5;
}
static_assert(stage_growth_room(staged_capacity_min) * (stage_peers_per_step - 1) >
              staged_capacity_min + (stage_peers_per_step - 1) *
                                        (staged_capacity_min * 2 / stage_fill_slots_per_step + 1));

template <std::size_t W>
Stage& stage_of(std::uint8_t* block, std::uint32_t capacity) noexcept {
  TYTO_DEBUG_ASSERT(capacity >= staged_capacity_min);
  return *std::launder(reinterpret_cast<Stage*>(block + stage_offset(capacity, W)));
}

// The class change in progress in a set's block, or nullptr.
template <std::size_t W>
Stage* stage_in_progress(std::uint8_t* block, std::uint8_t capacity_class) noexcept {
  if (block == nullptr || capacity_class < staged_class_min) return nullptr;
  Stage& stage = stage_of<W>(block, peer_capacity(capacity_class));
  return stage.block != nullptr ? &stage : nullptr;
}

std::uint32_t index_slots_of_class(std::uint8_t capacity_class) noexcept {
  const std::uint32_t capacity = peer_capacity(capacity_class);
  return capacity >= index_capacity_min ? index_slots_for(capacity) : 0;
}

}  // namespace

PeerSetWork& peer_set_work() noexcept {
  thread_local PeerSetWork work;
  return work;
}

std::uint32_t peer_capacity(std::uint8_t capacity_class) noexcept {
  TYTO_ASSERT(capacity_class < capacity_table.count);
  return capacity_table.capacities[capacity_class];
}

std::uint8_t peer_capacity_classes() noexcept {
  return capacity_table.count;
}

template <std::size_t W>
std::size_t PeerSet<W>::bytes_for(std::uint8_t capacity_class) noexcept {
  const std::uint32_t capacity = peer_capacity(capacity_class);
  if (capacity >= staged_capacity_min) return stage_offset(capacity, W) + sizeof(Stage);
  if (capacity >= index_capacity_min) {
    return index_offset(capacity, W) +
           std::size_t{index_slots_for(capacity)} * (capacity <= narrow_capacity_max ? 2 : 4);
  }
  return index_offset(capacity, W);
}

template <std::size_t W>
std::size_t PeerSet<W>::block_bytes() const noexcept {
  if (block_ == nullptr) return 0;
  std::size_t bytes = SlabArena::block_size(bytes_for(class_));
  if (class_ < staged_class_min) return bytes;
  const Stage& stage = stage_of<W>(block_, capacity());
  if (stage.block != nullptr) bytes += SlabArena::block_size(bytes_for(stage.capacity_class));
  if (stage.retired != nullptr) bytes += SlabArena::block_size(bytes_for(stage.retired_class));
  return bytes;
}

template <std::size_t W>
bool PeerSet<W>::staging() const noexcept {
  return stage_in_progress<W>(block_, static_cast<std::uint8_t>(class_)) != nullptr;
}

template <std::size_t W>
std::uint32_t PeerSet<W>::find(const std::uint8_t* wire, const HashSecret& secret) const noexcept {
  if (block_ == nullptr) return not_found;
  if (indexed()) {
    return with_index<W>(block_, capacity(), [&](auto entries) -> std::uint32_t {
      using Entry = typename decltype(entries)::value_type;
      const Entry entry = entries[index_slot<W>(entries, block_, wire, secret)];
      return IndexTraits<Entry>::is_empty(entry) ? not_found : entry;
    });
  }
  for (std::uint32_t i = 0; i < count_; ++i) {
    if (std::memcmp(block_ + std::size_t{i} * W, wire, W) == 0) return i;
  }
  return not_found;
}

template <std::size_t W>
void PeerSet<W>::index_insert(std::uint32_t position, const HashSecret& secret) noexcept {
  block_index_insert<W>(block_, capacity(), position, secret);
}

template <std::size_t W>
void PeerSet<W>::index_erase(const std::uint8_t* wire, const HashSecret& secret) noexcept {
  with_index<W>(block_, capacity(), [&](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    const auto slots = static_cast<std::uint32_t>(entries.size());
    open_addressing::erase<IndexTraits<Entry>>(
        entries, index_slot<W>(entries, block_, wire, secret),
        [&](Entry entry) { return index_home<W>(block_ + std::size_t{entry} * W, secret, slots); });
  });
}

template <std::size_t W>
void PeerSet<W>::reallocate(std::uint8_t capacity_class, SlabArena& arena,
                            const HashSecret& secret) noexcept {
  const std::uint32_t capacity_new = peer_capacity(capacity_class);
  TYTO_ASSERT(capacity_new >= count_);
  TYTO_ASSERT(!staging());
  auto* block_new = static_cast<std::uint8_t*>(arena.allocate(bytes_for(capacity_class)));
  // E1-E3, carried into the new block's header.
  Stage expiry;
  if (block_ != nullptr && class_ >= staged_class_min) {  // a full set's growth: never expected
    Stage& stage = stage_of<W>(block_, capacity());
    if (stage.retired != nullptr) arena.deallocate(stage.retired, bytes_for(stage.retired_class));
    carry_expiry(stage, expiry);
  }
  if (block_ != nullptr) {
    std::memcpy(block_new, block_, std::size_t{count_} * W);
    std::memcpy(block_new + std::size_t{capacity_new} * W, stamps(), count_);
    arena.deallocate(block_, bytes_for(class_));
  }
  block_ = block_new;
  class_ = capacity_class;
  if (capacity_new >= staged_capacity_min) {
    carry_expiry(expiry, *new (&stage_of<W>(block_, capacity_new)) Stage{});
  }
  TYTO_ASSERT(expiry.expired_seeders + expiry.expired_leechers == 0 ||
              capacity_new >= staged_capacity_min);  // E4
  if (!indexed()) return;
  with_index<W>(block_, capacity_new, [](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    std::fill(entries.begin(), entries.end(), IndexTraits<Entry>::empty());
  });
  for (std::uint32_t i = 0; i < count_; ++i) index_insert(i, secret);
  peer_set_work().peers_rehashed += count_;
}

template <std::size_t W>
void PeerSet<W>::stage_start(std::uint8_t capacity_class, SlabArena& arena) noexcept {
  TYTO_ASSERT(!staging() && capacity_class != class_);
  Stage& stage = stage_of<W>(block_, capacity());
  if (stage.retired != nullptr) {  // never expected (Stage)
    arena.deallocate(stage.retired, bytes_for(stage.retired_class));
    stage.retired = nullptr;
  }
  stage.block = static_cast<std::uint8_t*>(arena.allocate(bytes_for(capacity_class)));
  stage.slots_filled = 0;
  stage.peers_copied = 0;
  stage.capacity_class = capacity_class;
}

// One bounded step: fill up to stage_fill_slots_per_step slots of the next index, or else copy
// up to peers_budget peers; then end the class change if the next block is complete.
template <std::size_t W>
void PeerSet<W>::stage_step(std::uint32_t peers_budget, SlabArena& arena,
                            const HashSecret& secret) noexcept {
  Stage& stage = stage_of<W>(block_, capacity());
  if (stage.retired != nullptr) {
    retire_step(arena);
    return;
  }
  if (stage.block == nullptr) return;
  const std::uint32_t capacity_next = peer_capacity(stage.capacity_class);
  if (count_ > capacity_next) {  // a shrink overtaken by inserts
    stage_drop(arena);
    return;
  }
  const std::uint32_t slots_next = index_slots_of_class(stage.capacity_class);
  if (stage.slots_filled < slots_next) {
    const std::uint32_t fill = std::min(slots_next - stage.slots_filled, stage_fill_slots_per_step);
    with_index<W>(stage.block, capacity_next, [&](auto entries) {
      using Entry = typename decltype(entries)::value_type;
      std::fill_n(entries.begin() + stage.slots_filled, fill, IndexTraits<Entry>::empty());
    });
    stage.slots_filled += fill;
    peer_set_work().index_slots_filled += fill;
    return;
  }
  for (std::uint32_t k = 0; k < peers_budget && stage.peers_copied < count_; ++k) {
    const std::uint32_t position = stage.peers_copied++;
    std::memcpy(stage.block + std::size_t{position} * W, block_ + std::size_t{position} * W, W);
    stage.block[std::size_t{capacity_next} * W + position] = stamps()[position];  // page in
    if (slots_next != 0) block_index_insert<W>(stage.block, capacity_next, position, secret);
    ++peer_set_work().peers_copied;
  }
  if (stage.peers_copied == count_) stage_finish(arena);
}

template <std::size_t W>
void PeerSet<W>::stage_finish(SlabArena& arena) noexcept {
  const Stage stage = stage_of<W>(block_, capacity());
  const std::uint32_t capacity_next = peer_capacity(stage.capacity_class);
  TYTO_ASSERT(stage.peers_copied == count_ && count_ <= capacity_next);
  TYTO_ASSERT(stage.slots_filled == index_slots_of_class(stage.capacity_class));
  std::memcpy(stage.block + std::size_t{capacity_next} * W, stamps(), count_);
  peer_set_work().stamps_copied += count_;
  std::uint8_t* const retired = block_;
  const auto retired_class = static_cast<std::uint8_t>(class_);
  block_ = stage.block;
  class_ = stage.capacity_class;
  if (capacity_next < staged_capacity_min) {                           // no Stage to retire it in
    TYTO_ASSERT(stage.expired_seeders + stage.expired_leechers == 0);  // E4
    arena.deallocate(retired, bytes_for(retired_class));
    return;
  }
  Stage& next = *new (&stage_of<W>(block_, capacity_next)) Stage{};
  carry_expiry(stage, next);
  next.retired = retired;
  next.retired_class = retired_class;
}

template <std::size_t W>
void PeerSet<W>::retire_step(SlabArena& arena) noexcept {
  Stage& stage = stage_of<W>(block_, capacity());
  // The retired block's whole pages: [first, last).
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(stage.retired);
  const std::uintptr_t first = (begin + page - 1) / page * page;
  const std::uintptr_t last = (begin + bytes_for(stage.retired_class)) / page * page;
  const std::size_t bytes = last > first ? last - first : 0;
  if (stage.retired_released_bytes < bytes) {
    if (++stage.retire_steps < stage_release_every_steps) return;
    stage.retire_steps = 0;
    const std::size_t release =
        std::min<std::size_t>(bytes - stage.retired_released_bytes, stage_release_bytes);
    madvise(reinterpret_cast<void*>(first + stage.retired_released_bytes), release, MADV_DONTNEED);
    stage.retired_released_bytes += static_cast<std::uint32_t>(release);
    ++peer_set_work().release_calls;
    peer_set_work().bytes_released += release;
    return;
  }
  arena.deallocate(stage.retired, bytes_for(stage.retired_class));
  stage.retired = nullptr;
  stage.retired_released_bytes = 0;
  stage.retire_steps = 0;
}

template <std::size_t W>
void PeerSet<W>::stage_drop(SlabArena& arena) noexcept {
  Stage& stage = stage_of<W>(block_, capacity());
  arena.deallocate(stage.block, bytes_for(stage.capacity_class));
  Stage dropped{};
  carry_expiry(stage, dropped);
  stage = dropped;
}

template <std::size_t W>
void PeerSet<W>::stage_mirror(std::uint32_t position, const HashSecret& secret) noexcept {
  Stage* stage = stage_in_progress<W>(block_, static_cast<std::uint8_t>(class_));
  if (stage == nullptr || position >= stage->peers_copied) return;
  const std::uint32_t capacity_next = peer_capacity(stage->capacity_class);
  const bool indexed_next = capacity_next >= index_capacity_min;
  // Out under the address it was entered with, in under the new one.
  if (indexed_next) block_index_erase_position<W>(stage->block, capacity_next, position, secret);
  std::memcpy(stage->block + std::size_t{position} * W, block_ + std::size_t{position} * W, W);
  if (indexed_next) block_index_insert<W>(stage->block, capacity_next, position, secret);
}

template <std::size_t W>
void PeerSet<W>::stage_forget(std::uint32_t position, const HashSecret& secret) noexcept {
  Stage* stage = stage_in_progress<W>(block_, static_cast<std::uint8_t>(class_));
  if (stage == nullptr || position >= stage->peers_copied) return;
  TYTO_ASSERT(position == count_ && stage->peers_copied == position + 1);
  const std::uint32_t capacity_next = peer_capacity(stage->capacity_class);
  if (capacity_next >= index_capacity_min) {
    block_index_erase_position<W>(stage->block, capacity_next, position, secret);
  }
  stage->peers_copied = position;
}

template <std::size_t W>
void PeerSet<W>::move(std::uint32_t from, std::uint32_t to, const HashSecret& secret) noexcept {
  // Point the index entry at `to` while the peer is still at `from` (where the probe finds it).
  if (indexed()) {
    with_index<W>(block_, capacity(), [&](auto entries) {
      entries[index_slot<W>(entries, block_, block_ + std::size_t{from} * W, secret)] =
          static_cast<typename decltype(entries)::value_type>(to);
    });
  }
  std::memcpy(block_ + std::size_t{to} * W, block_ + std::size_t{from} * W, W);
  stamps()[to] = stamps()[from];
}

template <std::size_t W>
void PeerSet<W>::swap(std::uint32_t a, std::uint32_t b, const HashSecret& secret) noexcept {
  if (a == b) return;
  if (indexed()) {
    with_index<W>(block_, capacity(), [&](auto entries) {
      // Both slots first: once one entry is repointed, a probe for the other could stop there.
      const std::uint32_t slot_a =
          index_slot<W>(entries, block_, block_ + std::size_t{a} * W, secret);
      const std::uint32_t slot_b =
          index_slot<W>(entries, block_, block_ + std::size_t{b} * W, secret);
      std::swap(entries[slot_a], entries[slot_b]);
    });
  }
  std::uint8_t wire[W];
  std::memcpy(wire, block_ + std::size_t{a} * W, W);
  std::memcpy(block_ + std::size_t{a} * W, block_ + std::size_t{b} * W, W);
  std::memcpy(block_ + std::size_t{b} * W, wire, W);
  std::swap(stamps()[a], stamps()[b]);
  stage_mirror(a, secret);
  stage_mirror(b, secret);
}

template <std::size_t W>
std::uint32_t PeerSet<W>::insert(const std::uint8_t* wire, bool seeder, std::uint8_t stamp,
                                 SlabArena& arena, const HashSecret& secret) noexcept {
  TYTO_ASSERT(count_ < peers_per_set_max);
  if (block_ == nullptr) {
    reallocate(0, arena, secret);
  } else if (class_ >= staged_class_min) {
    stage_step(stage_peers_per_step, arena, secret);
    if (count_ == capacity()) {  // never expected: a growth ends long before (Stage)
      while (staging()) stage_step(count_, arena, secret);
      if (count_ == capacity()) reallocate(static_cast<std::uint8_t>(class_ + 1), arena, secret);
    }
  } else if (count_ == capacity()) {
    reallocate(static_cast<std::uint8_t>(class_ + 1), arena, secret);
  }
  std::uint32_t position = count_;
  if (seeder) {
    if (seeders_ < count_) move(seeders_, count_, secret);  // first leecher to the end
    position = seeders_++;
  }
  ++count_;
  std::memcpy(block_ + std::size_t{position} * W, wire, W);
  stamps()[position] = stamp;
  if (indexed()) index_insert(position, secret);
  if (class_ >= staged_class_min) {
    if (expired(position)) {  // E1: never from the store, which inserts no expired peer
      ++(seeder ? stage_of<W>(block_, capacity()).expired_seeders
                : stage_of<W>(block_, capacity()).expired_leechers);
    }
    stage_mirror(position, secret);  // the position `count_ - 1` moved to is past the copy
    const std::uint32_t capacity = this->capacity();
    if (!staging() && count_ >= capacity - stage_growth_room(capacity) &&
        class_ + 1 < peer_capacity_classes()) {
      stage_start(static_cast<std::uint8_t>(class_ + 1), arena);
    }
  }
  return position;
}

template <std::size_t W>
void PeerSet<W>::remove(std::uint32_t position, SlabArena& arena,
                        const HashSecret& secret) noexcept {
  TYTO_ASSERT(position < count_);
  if (class_ >= staged_class_min) {
    stage_step(stage_peers_per_step, arena, secret);
    if (expired(position)) {  // E2: its part's count
      Stage& stage = stage_of<W>(block_, capacity());
      std::uint32_t& expired_count =
          position < seeders_ ? stage.expired_seeders : stage.expired_leechers;
      TYTO_ASSERT(expired_count > 0);
      --expired_count;
      expiring_ = stage.expired_seeders + stage.expired_leechers != 0;
    }
  }
  if (indexed()) index_erase(block_ + std::size_t{position} * W, secret);
  const std::uint32_t last = count_ - 1;
  std::uint32_t refilled = last;  // a second position written, if any
  if (position < seeders_) {
    const std::uint32_t last_seeder = seeders_ - 1;
    if (position != last_seeder) move(last_seeder, position, secret);
    if (last != last_seeder) move(last, last_seeder, secret);
    refilled = last_seeder;
    --seeders_;
  } else if (position != last) {
    move(last, position, secret);
  }
  --count_;
  if (class_ >= staged_class_min) {
    if (position < count_) stage_mirror(position, secret);
    if (refilled < count_) stage_mirror(refilled, secret);
    stage_forget(count_, secret);
  }
  if (count_ == 0) {
    release(arena);
  } else if (count_ * 2 < capacity() && class_ > 0 && !staging()) {
    // Shrink with hysteresis: to about 1.25× the count, only once half empty; not below staging
    // while expired peers are held (E4).
    std::uint8_t smaller = class_for(count_ + count_ / 4);
    if (expiry_pending()) smaller = std::max(smaller, staged_class_min);
    if (smaller >= class_) return;
    if (class_ >= staged_class_min) {
      stage_start(smaller, arena);
    } else {
      reallocate(smaller, arena, secret);
    }
  }
}

template <std::size_t W>
std::uint32_t PeerSet<W>::set_seeder(std::uint32_t position, bool seeder,
                                     const HashSecret& secret) noexcept {
  TYTO_ASSERT(position < count_);
  if (seeder && position >= seeders_) {
    swap(position, seeders_, secret);
    return seeders_++;
  }
  if (!seeder && position < seeders_) {
    swap(position, seeders_ - 1, secret);
    return --seeders_;
  }
  return position;
}

template <std::size_t W>
bool PeerSet<W>::class_change_due() const noexcept {
  if (block_ == nullptr) return false;
  const std::uint32_t capacity = this->capacity();
  if (capacity < staged_capacity_min / 2) return false;
  const std::uint32_t count = count_;  // >= 1: an empty set has no block
  const bool shrink_due = (count - 1) * 2 < capacity;
  if (class_ < staged_class_min) return count == capacity || shrink_due;
  const Stage& stage = stage_of<W>(block_, capacity);
  if (stage.retired != nullptr) return true;  // each release step: 0.3 % of the capacity
  if (stage.block == nullptr) {
    return count + 1 >= capacity - stage_growth_room(capacity) || shrink_due;
  }
  // The end, or giving a shrink up.
  return (stage.slots_filled == index_slots_of_class(stage.capacity_class) &&
          count <= stage.peers_copied + stage_peers_per_step) ||
         count + 1 > peer_capacity(stage.capacity_class);
}

template <std::size_t W>
std::uint32_t PeerSet<W>::copy_window(std::uint32_t begin, std::uint32_t end, std::uint32_t skip,
                                      std::uint32_t peers_max, std::uint64_t random,
                                      std::uint8_t* out) const noexcept {
  TYTO_ASSERT(begin <= end && end <= count_);
  const std::uint32_t size = end - begin;
  if (size == 0 || peers_max == 0) return 0;
  std::uint32_t at =
      begin + static_cast<std::uint32_t>((static_cast<unsigned __int128>(random) * size) >> 64);
  std::uint32_t copied = 0;
  if (!expiry_pending()) {
    for (std::uint32_t k = 0; k < size; ++k, ++at) {
      if (at == end) at = begin;
      if (at == skip) continue;
      std::memcpy(out + std::size_t{copied} * W, block_ + std::size_t{at} * W, W);
      if (++copied == peers_max) break;
    }
    return copied;
  }
  // Expired peers still held are passed over: at most window_positions_max looked at, so a
  // window of a set that is mostly expired may hold fewer peers than it could (issue 21 §2).
  const std::uint32_t looked_max = std::min(size, window_positions_max);
  const std::uint32_t units = stage_of<W>(block_, capacity()).expiry_units;
  const auto swept = static_cast<std::uint8_t>(swept_);
  const std::uint8_t* const stamps = this->stamps();
  std::uint32_t looked = 0;
  for (; looked < looked_max; ++looked, ++at) {
    if (at == end) at = begin;
    if (at == skip || StampClock::units_since(stamps[at], swept) >= units) continue;  // E1
    std::memcpy(out + std::size_t{copied} * W, block_ + std::size_t{at} * W, W);
    if (++copied == peers_max) break;
  }
  peer_set_work().window_positions_looked += looked;
  return copied;
}

template <std::size_t W>
std::uint32_t PeerSet<W>::expired_seeders() const noexcept {
  if (block_ == nullptr || class_ < staged_class_min) return 0;
  return stage_of<W>(block_, capacity()).expired_seeders;
}

template <std::size_t W>
std::uint32_t PeerSet<W>::expired_leechers() const noexcept {
  if (block_ == nullptr || class_ < staged_class_min) return 0;
  return stage_of<W>(block_, capacity()).expired_leechers;
}

template <std::size_t W>
bool PeerSet<W>::expired(std::uint32_t position) const noexcept {
  TYTO_DEBUG_ASSERT(position < count_);
  if (expiring_ == 0) return false;
  const Stage& stage = stage_of<W>(block_, capacity());
  return StampClock::units_since(stamps()[position], static_cast<std::uint8_t>(swept_)) >=
         stage.expiry_units;
}

template <std::size_t W>
std::uint32_t PeerSet<W>::unless_expired(std::uint32_t position, SlabArena& arena,
                                         const HashSecret& secret) noexcept {
  if (!expired(position)) return position;
  remove(position, arena, secret);  // counted as expired already: only its removal was pending
  ++peer_set_work().expiry_peers_removed;
  return not_found;
}

namespace {

// Marks the peers of stamps [0, count) expired at now_stamp (E1); returns how many are.
// Branch-free, so the compiler vectorizes it: one pass over a byte per peer, once a unit.
std::uint32_t mark_expired(std::uint8_t* stamps, std::uint32_t count, std::uint8_t now_stamp,
                           std::uint32_t expiry_units) noexcept {
  const auto marked = static_cast<std::uint8_t>((now_stamp - expiry_units) & stamp_time_mask);
  const auto units = static_cast<std::uint8_t>(expiry_units);
  std::uint32_t expired_count = 0;
  const auto is_expired = [&](std::uint8_t stamp) {
    return static_cast<std::uint8_t>((now_stamp - stamp) & stamp_time_mask) >= units;
  };
  // In chunks of 255 with a byte-wide count (16 stamps an SSE2 instruction, not 4), read
  // first: a chunk with no expired peer is not written (most, in a set's usual unit).
  for (std::uint32_t first = 0; first < count; first += 255) {
    const std::uint32_t end = std::min(count, first + 255);
    std::uint8_t chunk_count = 0;
    for (std::uint32_t i = first; i < end; ++i) {
      chunk_count = static_cast<std::uint8_t>(chunk_count + is_expired(stamps[i]));
    }
    if (chunk_count == 0) continue;
    expired_count += chunk_count;
    for (std::uint32_t i = first; i < end; ++i) {
      stamps[i] = is_expired(stamps[i]) ? marked : stamps[i];
    }
  }
  return expired_count;
}

}  // namespace

template <std::size_t W>
typename PeerSet<W>::Expired PeerSet<W>::expire_mark(std::uint8_t now_stamp,
                                                     std::uint32_t expiry_units,
                                                     SlabArena& arena) noexcept {
  TYTO_ASSERT(class_ >= staged_class_min && expiry_units > 0 && expiry_units <= stamp_time_mask);
  Stage& stage = stage_of<W>(block_, capacity());
  // E1 holds for a fixed expiry_units only (one store, one timeout).
  TYTO_ASSERT(!expiry_pending() || stage.expiry_units == expiry_units);
  const std::uint32_t seeders = mark_expired(stamps(), seeders_, now_stamp, expiry_units);
  const std::uint32_t leechers =
      mark_expired(stamps() + seeders_, count_ - seeders_, now_stamp, expiry_units);
  peer_set_work().expiry_stamps_scanned += count_;
  // Those expired before are expired still (E1: marked, their age only grew).
  TYTO_ASSERT(seeders >= stage.expired_seeders && leechers >= stage.expired_leechers);
  const Expired newly{seeders - stage.expired_seeders, leechers - stage.expired_leechers};
  stage.expiry_units = static_cast<std::uint8_t>(expiry_units);
  stage.expired_seeders = seeders;
  stage.expired_leechers = leechers;
  expiring_ = seeders + leechers != 0;
  if (seeders + leechers != 0 && staging() &&
      peer_capacity(stage.capacity_class) < staged_capacity_min) {
    stage_drop(arena);  // E4: a shrink below staging, given up
  }
  return newly;
}

template <std::size_t W>
std::uint32_t PeerSet<W>::expire_step(std::uint32_t removals_max, std::uint32_t stamps_max,
                                      SlabArena& arena, const HashSecret& secret) noexcept {
  std::uint32_t removed = 0;
  std::uint32_t looked = 0;
  while (removed < removals_max && looked < stamps_max && expiry_pending()) {
    // Each time: a removal may end a class change, and so move the header.
    Stage& stage = stage_of<W>(block_, capacity());
    if (stage.expiry_cursor == 0 || stage.expiry_cursor > count_) stage.expiry_cursor = count_;
    const std::uint32_t position = stage.expiry_cursor - 1;
    ++looked;
    if (!expired(position)) {
      stage.expiry_cursor = position;
      continue;
    }
    // The peer moved into `position` (if any) is looked at next: the cursor stays.
    remove(position, arena, secret);
    ++removed;
  }
  peer_set_work().expiry_stamps_looked += looked;
  peer_set_work().expiry_peers_removed += removed;
  return removed;
}

template <std::size_t W>
typename PeerSet<W>::Expired PeerSet<W>::expire_at_once(std::uint8_t now_stamp,
                                                        std::uint32_t expiry_units,
                                                        SlabArena& arena,
                                                        const HashSecret& secret) noexcept {
  TYTO_ASSERT(block_ != nullptr && class_ < staged_class_min);
  Expired expired;
  std::uint8_t* const stamps = this->stamps();
  std::uint32_t kept = 0;
  std::uint32_t seeders_kept = 0;
  for (std::uint32_t position = 0; position < count_; ++position) {
    if (StampClock::units_since(stamps[position], now_stamp) >= expiry_units) {
      ++(position < seeders_ ? expired.seeders : expired.leechers);
      continue;
    }
    if (kept != position) {
      std::memcpy(block_ + std::size_t{kept} * W, block_ + std::size_t{position} * W, W);
      stamps[kept] = stamps[position];
    }
    seeders_kept += position < seeders_;
    ++kept;
  }
  TYTO_ASSERT(kept + expired.seeders + expired.leechers == count_);
  TYTO_ASSERT(seeders_kept + expired.seeders == seeders_);
  if (kept == count_) return expired;
  count_ = kept;
  seeders_ = seeders_kept;
  if (count_ == 0) {
    release(arena);
    return expired;
  }
  // The index still names the old positions: rebuilt by the copy into the new block.
  auto capacity_class = static_cast<std::uint8_t>(class_);
  if (count_ * 2 < capacity() && class_ > 0) {
    capacity_class = std::min(capacity_class, class_for(count_ + count_ / 4));
  }
  reallocate(capacity_class, arena, secret);
  return expired;
}

template <std::size_t W>
void PeerSet<W>::release(SlabArena& arena) noexcept {
  if (staging()) stage_drop(arena);
  if (block_ != nullptr && class_ >= staged_class_min) {
    const Stage& stage = stage_of<W>(block_, capacity());
    if (stage.retired != nullptr) arena.deallocate(stage.retired, bytes_for(stage.retired_class));
  }
  if (block_ != nullptr) arena.deallocate(block_, bytes_for(class_));
  block_ = nullptr;
  count_ = 0;
  seeders_ = 0;
  class_ = 0;
  expiring_ = 0;
}

template <std::size_t W>
void PeerSet<W>::verify(const HashSecret& secret) const noexcept {
  TYTO_ASSERT(seeders_ <= count_);
  TYTO_ASSERT(count_ <= capacity());
  TYTO_ASSERT(block_ != nullptr || count_ == 0);
  if (!indexed()) {
    for (std::uint32_t i = 0; i < count_; ++i) {
      for (std::uint32_t j = i + 1; j < count_; ++j) {
        TYTO_ASSERT(std::memcmp(block_ + std::size_t{i} * W, block_ + std::size_t{j} * W, W) != 0);
      }
    }
    return;
  }
  // Each peer found at its own position: no two positions hold one address.
  for (std::uint32_t i = 0; i < count_; ++i) {
    TYTO_ASSERT(find(block_ + std::size_t{i} * W, secret) == i);
  }
  const std::uint32_t entries_count = with_index<W>(block_, capacity(), [](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    return static_cast<std::uint32_t>(
        std::count_if(entries.begin(), entries.end(),
                      [](Entry entry) { return !IndexTraits<Entry>::is_empty(entry); }));
  });
  TYTO_ASSERT(entries_count == count_);
  verify_stage(secret);
  // E1: the counts of expired peers held, by part.
  std::uint32_t expired_counts[2] = {0, 0};
  for (std::uint32_t i = 0; i < count_; ++i) expired_counts[i < seeders_ ? 0 : 1] += expired(i);
  TYTO_ASSERT(expired_counts[0] == expired_seeders() && expired_counts[1] == expired_leechers());
  TYTO_ASSERT((expiring_ != 0) == (expired_seeders() + expired_leechers() != 0));
}

// The Stage invariants (see the struct).
template <std::size_t W>
void PeerSet<W>::verify_stage(const HashSecret& secret) const noexcept {
  if (class_ < staged_class_min) return;
  const Stage& state = stage_of<W>(block_, capacity());
  if (state.retired != nullptr) {
    TYTO_ASSERT(state.retired != block_ && state.retired != state.block);
    TYTO_ASSERT(state.retired_class < peer_capacity_classes());
    TYTO_ASSERT(state.retired_released_bytes <= bytes_for(state.retired_class));
    TYTO_ASSERT(state.block == nullptr);  // no class change before the last one is released
  } else {
    TYTO_ASSERT(state.retired_released_bytes == 0);
  }
  const Stage* stage = state.block != nullptr ? &state : nullptr;
  if (stage == nullptr) return;
  TYTO_ASSERT(stage->capacity_class < peer_capacity_classes());
  TYTO_ASSERT(stage->capacity_class != class_);
  const std::uint32_t capacity_next = peer_capacity(stage->capacity_class);
  const std::uint32_t slots_next = index_slots_of_class(stage->capacity_class);
  TYTO_ASSERT(stage->slots_filled <= slots_next);
  TYTO_ASSERT(stage->peers_copied <= count_);
  TYTO_ASSERT(stage->peers_copied <= capacity_next);
  TYTO_ASSERT(stage->peers_copied == 0 || stage->slots_filled == slots_next);
  for (std::uint32_t p = 0; p < stage->peers_copied; ++p) {
    TYTO_ASSERT(std::memcmp(stage->block + std::size_t{p} * W, block_ + std::size_t{p} * W, W) ==
                0);
  }
  if (slots_next == 0 || stage->slots_filled < slots_next) return;
  with_index<W>(stage->block, capacity_next, [&](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    std::uint32_t entries_count = 0;
    for (const Entry entry : entries) {
      if (IndexTraits<Entry>::is_empty(entry)) continue;
      TYTO_ASSERT(entry < stage->peers_copied);
      ++entries_count;
    }
    TYTO_ASSERT(entries_count == stage->peers_copied);
    // Each copied position is entered once, reachable from the home of its address.
    for (std::uint32_t p = 0; p < stage->peers_copied; ++p) {
      TYTO_ASSERT(position_slot<W>(entries, stage->block, p, secret) < entries.size());
    }
  });
}

template class PeerSet<6>;
template class PeerSet<18>;

}  // namespace tyto::swarm
