// Open addressing with linear probing and backward-shift deletion (no tombstones): the one
// probing core under the swarm table's index, the peer sets' indexes and the access list.
//
// The core owns nothing: it works on the caller's array of entries (a span; its size is the
// capacity, at most 2^32 - 1 slots) and never allocates. Entries are the caller's small PODs;
// Traits says which entry is empty (`Traits::is_empty(entry)`, `Traits::empty()`), the caller's
// lambdas say which entry matches a lookup and where an entry's home is. Erasing asks for the
// home of each entry it may move, never for the key behind it, so a caller that keeps a tag in
// the entry (the swarm index) moves entries without reading a record.
//
// The caller keeps at least one entry empty (a probe ends only on an empty entry) and keeps
// its own count. Every probe run is contiguous from its home, wrapping at the table's end.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>

#include "tyto/core/assert.hpp"

namespace tyto::open_addressing {

template <class T>
concept EntryTraits = requires(const typename T::Entry& entry) {
  { T::is_empty(entry) } -> std::same_as<bool>;
  { T::empty() } -> std::same_as<typename T::Entry>;
};

// Traits for integral entries with one reserved value meaning empty (e.g. all ones).
template <std::unsigned_integral T, T empty_value>
struct SentinelTraits {
  using Entry = T;
  static constexpr bool is_empty(T entry) noexcept { return entry == empty_value; }
  static constexpr T empty() noexcept { return empty_value; }
};

// Entries naming a row of a dense array by a 32-bit tag (the high half of the key's keyed
// hash) and its position + 1, in 64 bits; 0 is empty. The catalogue copy's tables and the
// ledger index with these.
struct TaggedPosition {
  using Entry = std::uint64_t;
  static constexpr bool is_empty(Entry entry) noexcept { return entry == 0; }
  static constexpr Entry empty() noexcept { return 0; }
  static constexpr Entry make(std::uint32_t tag, std::uint32_t position) noexcept {
    return (std::uint64_t{tag} << 32) | (std::uint64_t{position} + 1);
  }
  static constexpr std::uint32_t tag(Entry entry) noexcept {
    return static_cast<std::uint32_t>(entry >> 32);
  }
  static constexpr std::uint32_t position(Entry entry) noexcept {
    return static_cast<std::uint32_t>(entry) - 1;
  }
};
static_assert(TaggedPosition::position(TaggedPosition::make(7, 0xfffffffe)) == 0xfffffffe);

// The home of a 32-bit tag (the high half of a keyed hash) in `capacity` slots: a multiply and
// a shift instead of a division (Lemire's fast range), uniform for uniform tags.
constexpr std::uint32_t home_of(std::uint32_t tag, std::uint32_t capacity) noexcept {
  return static_cast<std::uint32_t>((std::uint64_t{tag} * capacity) >> 32);
}

constexpr std::uint32_t tag_of(std::uint64_t hash) noexcept {
  return static_cast<std::uint32_t>(hash >> 32);
}

constexpr std::uint32_t next_slot(std::uint32_t slot, std::uint32_t capacity) noexcept {
  return slot + 1 == capacity ? 0 : slot + 1;
}

// Slots from `from` forward to `to`, wrapping (a compare, no division).
constexpr std::uint32_t distance(std::uint32_t from, std::uint32_t to,
                                 std::uint32_t capacity) noexcept {
  return to >= from ? to - from : to + capacity - from;
}

// The slot of the first entry of the run from `home` for which matches(entry) holds, or of the
// empty entry that ends the run (test it with Traits::is_empty). matches never sees an empty,
// and gets the entry in place: &entry - entries.data() is its slot, for keys kept alongside.
template <EntryTraits Traits, class Matches>
inline std::uint32_t find(std::span<const typename Traits::Entry> entries, std::uint32_t home,
                          Matches&& matches) noexcept {
  const auto capacity = static_cast<std::uint32_t>(entries.size());
  TYTO_DEBUG_ASSERT(home < capacity);
  std::uint32_t slot = home;
  while (!Traits::is_empty(entries[slot]) && !matches(entries[slot])) {
    slot = next_slot(slot, capacity);
  }
  return slot;
}

// As find, but looks at no more than `probes_max` entries (read-ahead: only what is near the
// home). Returns the capacity when it stops on an empty entry or the bound.
template <EntryTraits Traits, class Matches>
inline std::uint32_t find_near(std::span<const typename Traits::Entry> entries, std::uint32_t home,
                               std::uint32_t probes_max, Matches&& matches) noexcept {
  const auto capacity = static_cast<std::uint32_t>(entries.size());
  std::uint32_t slot = home;
  for (std::uint32_t probe = 0; probe < probes_max; ++probe) {
    if (Traits::is_empty(entries[slot])) break;
    if (matches(entries[slot])) return slot;
    slot = next_slot(slot, capacity);
  }
  return capacity;
}

// Stores `entry` in the first empty slot from `home` and returns that slot. The caller knows the
// key is absent (or accepts a second entry for it) and that an empty slot exists.
template <EntryTraits Traits>
inline std::uint32_t insert(std::span<typename Traits::Entry> entries, std::uint32_t home,
                            const typename Traits::Entry& entry) noexcept {
  TYTO_DEBUG_ASSERT(!Traits::is_empty(entry));
  const auto capacity = static_cast<std::uint32_t>(entries.size());
  TYTO_DEBUG_ASSERT(home < capacity);
  std::uint32_t slot = home;
  while (!Traits::is_empty(entries[slot])) slot = next_slot(slot, capacity);
  entries[slot] = entry;
  return slot;
}

// Empties `slot` and pulls later entries of its run back so that every entry stays reachable
// from its home without crossing an empty slot. home_of(entry) is asked once per entry after
// the slot, up to the run's end.
template <EntryTraits Traits, class HomeOf>
inline void erase(std::span<typename Traits::Entry> entries, std::uint32_t slot,
                  HomeOf&& home_of) noexcept {
  const auto capacity = static_cast<std::uint32_t>(entries.size());
  TYTO_ASSERT(slot < capacity && !Traits::is_empty(entries[slot]));
  std::uint32_t hole = slot;
  for (std::uint32_t j = next_slot(hole, capacity); !Traits::is_empty(entries[j]);
       j = next_slot(j, capacity)) {
    // Entry j may fill the hole unless its home lies after the hole (between it and j): then
    // the hole is not on its probe path and moving it there would lose it.
    const std::uint32_t home = home_of(entries[j]);
    if (distance(home, j, capacity) >= distance(hole, j, capacity)) {
      entries[hole] = entries[j];
      hole = j;
    }
  }
  entries[hole] = Traits::empty();
}

}  // namespace tyto::open_addressing
