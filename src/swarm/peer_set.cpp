#include "tyto/swarm/peer_set.hpp"

#include <algorithm>
#include <array>

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

std::uint8_t class_for(std::uint32_t peers) noexcept {
  std::uint8_t c = 0;
  while (capacity_table.capacities[c] < peers) ++c;
  return c;
}

}  // namespace

std::uint32_t peer_capacity(std::uint8_t capacity_class) noexcept {
  TYTO_ASSERT(capacity_class < capacity_table.count);
  return capacity_table.capacities[capacity_class];
}

std::uint8_t peer_capacity_classes() noexcept {
  return capacity_table.count;
}

template <std::size_t W>
std::uint32_t PeerSet<W>::index_slots_for(std::uint32_t capacity) noexcept {
  return capacity + capacity / 4;
}

template <std::size_t W>
std::size_t PeerSet<W>::bytes_for(std::uint8_t capacity_class) noexcept {
  const std::size_t capacity = peer_capacity(capacity_class);
  std::size_t bytes = (capacity * (W + 1) + 3) / 4 * 4;
  if (capacity >= index_capacity_min) {
    bytes += std::size_t{index_slots_for(static_cast<std::uint32_t>(capacity))} *
             (capacity <= narrow_capacity_max ? 2 : 4);
  }
  return bytes;
}

template <std::size_t W>
std::size_t PeerSet<W>::block_bytes() const noexcept {
  return block_ == nullptr ? 0 : SlabArena::block_size(bytes_for(class_));
}

template <std::size_t W>
template <class Visit>
auto PeerSet<W>::with_index(Visit&& visit) const noexcept {
  const std::uint32_t capacity = this->capacity();
  std::uint8_t* index = block_ + (std::size_t{capacity} * (W + 1) + 3) / 4 * 4;
  const std::uint32_t slots = index_slots_for(capacity);
  if (capacity <= narrow_capacity_max) {
    return visit(std::span(reinterpret_cast<std::uint16_t*>(index), slots));
  }
  return visit(std::span(reinterpret_cast<std::uint32_t*>(index), slots));
}

template <std::size_t W>
std::uint32_t PeerSet<W>::find(const std::uint8_t* wire, const HashSecret& secret) const noexcept {
  if (block_ == nullptr) return not_found;
  if (indexed()) {
    return with_index([&](auto entries) -> std::uint32_t {
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
  with_index([&](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    const std::uint8_t* wire = block_ + std::size_t{position} * W;
    const auto slots = static_cast<std::uint32_t>(entries.size());
    TYTO_DEBUG_ASSERT(position < IndexTraits<Entry>::empty());
    open_addressing::insert<IndexTraits<Entry>>(entries, index_home<W>(wire, secret, slots),
                                                static_cast<Entry>(position));
  });
}

template <std::size_t W>
void PeerSet<W>::index_erase(const std::uint8_t* wire, const HashSecret& secret) noexcept {
  with_index([&](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    const auto slots = static_cast<std::uint32_t>(entries.size());
    open_addressing::erase<IndexTraits<Entry>>(
        entries, index_slot<W>(entries, block_, wire, secret),
        [&](Entry entry) { return index_home<W>(block_ + std::size_t{entry} * W, secret, slots); });
  });
}

template <std::size_t W>
void PeerSet<W>::index_rebuild(const HashSecret& secret) noexcept {
  with_index([](auto entries) {
    using Entry = typename decltype(entries)::value_type;
    std::fill(entries.begin(), entries.end(), IndexTraits<Entry>::empty());
  });
  for (std::uint32_t i = 0; i < count_; ++i) index_insert(i, secret);
}

template <std::size_t W>
void PeerSet<W>::reallocate(std::uint8_t capacity_class, SlabArena& arena,
                            const HashSecret& secret) noexcept {
  const std::uint32_t capacity_new = peer_capacity(capacity_class);
  TYTO_ASSERT(capacity_new >= count_);
  auto* block_new = static_cast<std::uint8_t*>(arena.allocate(bytes_for(capacity_class)));
  if (block_ != nullptr) {
    std::memcpy(block_new, block_, std::size_t{count_} * W);
    std::memcpy(block_new + std::size_t{capacity_new} * W, stamps(), count_);
    arena.deallocate(block_, bytes_for(class_));
  }
  block_ = block_new;
  class_ = capacity_class;
  if (indexed()) index_rebuild(secret);
}

template <std::size_t W>
void PeerSet<W>::move(std::uint32_t from, std::uint32_t to, const HashSecret& secret) noexcept {
  // Point the index entry at `to` while the peer is still at `from` (where the probe finds it).
  if (indexed()) {
    with_index([&](auto entries) {
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
    with_index([&](auto entries) {
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
}

template <std::size_t W>
std::uint32_t PeerSet<W>::insert(const std::uint8_t* wire, bool seeder, std::uint8_t stamp,
                                 SlabArena& arena, const HashSecret& secret) noexcept {
  TYTO_ASSERT(count_ < peers_per_set_max);
  if (block_ == nullptr) {
    reallocate(0, arena, secret);
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
  return position;
}

template <std::size_t W>
void PeerSet<W>::remove(std::uint32_t position, SlabArena& arena,
                        const HashSecret& secret) noexcept {
  TYTO_ASSERT(position < count_);
  if (indexed()) index_erase(block_ + std::size_t{position} * W, secret);
  const std::uint32_t last = count_ - 1;
  if (position < seeders_) {
    const std::uint32_t last_seeder = seeders_ - 1;
    if (position != last_seeder) move(last_seeder, position, secret);
    if (last != last_seeder) move(last, last_seeder, secret);
    --seeders_;
  } else if (position != last) {
    move(last, position, secret);
  }
  --count_;
  if (count_ == 0) {
    release(arena);
  } else if (count_ * 2 < capacity() && class_ > 0) {
    // Shrink with hysteresis: to about 1.25× the count, only once half empty.
    const std::uint8_t smaller = class_for(count_ + count_ / 4);
    if (smaller < class_) reallocate(smaller, arena, secret);
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
std::uint32_t PeerSet<W>::copy_window(std::uint32_t begin, std::uint32_t end, std::uint32_t skip,
                                      std::uint32_t peers_max, std::uint64_t random,
                                      std::uint8_t* out) const noexcept {
  TYTO_ASSERT(begin <= end && end <= count_);
  const std::uint32_t size = end - begin;
  if (size == 0 || peers_max == 0) return 0;
  std::uint32_t at =
      begin + static_cast<std::uint32_t>((static_cast<unsigned __int128>(random) * size) >> 64);
  std::uint32_t copied = 0;
  for (std::uint32_t k = 0; k < size; ++k, ++at) {
    if (at == end) at = begin;
    if (at == skip) continue;
    std::memcpy(out + std::size_t{copied} * W, block_ + std::size_t{at} * W, W);
    if (++copied == peers_max) break;
  }
  return copied;
}

template <std::size_t W>
void PeerSet<W>::release(SlabArena& arena) noexcept {
  if (block_ != nullptr) arena.deallocate(block_, bytes_for(class_));
  block_ = nullptr;
  count_ = 0;
  seeders_ = 0;
  class_ = 0;
}

template <std::size_t W>
void PeerSet<W>::verify(const HashSecret& secret) const noexcept {
  TYTO_ASSERT(seeders_ <= count_);
  TYTO_ASSERT(count_ <= capacity());
  TYTO_ASSERT(block_ != nullptr || count_ == 0);
  for (std::uint32_t i = 0; i < count_; ++i) {
    for (std::uint32_t j = i + 1; j < count_; ++j) {
      TYTO_ASSERT(std::memcmp(block_ + std::size_t{i} * W, block_ + std::size_t{j} * W, W) != 0);
    }
    if (indexed()) TYTO_ASSERT(find(block_ + std::size_t{i} * W, secret) == i);
  }
  if (indexed()) {
    const std::uint32_t entries_count = with_index([](auto entries) {
      using Entry = typename decltype(entries)::value_type;
      return static_cast<std::uint32_t>(
          std::count_if(entries.begin(), entries.end(),
                        [](Entry entry) { return !IndexTraits<Entry>::is_empty(entry); }));
    });
    TYTO_ASSERT(entries_count == count_);
  }
}

template class PeerSet<6>;
template class PeerSet<18>;

}  // namespace tyto::swarm
