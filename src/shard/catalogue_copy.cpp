#include "tyto/shard/catalogue_copy.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <type_traits>

#include "tyto/core/assert.hpp"
#include "tyto/core/open_addressing.hpp"

namespace tyto::shard {

namespace oa = open_addressing;
using IndexTraits = oa::TaggedPosition;

namespace {
constexpr std::uint32_t index_capacity_min = 64;
// Bounded growth work per put (see RowTable): a growth starts at half load, so the old index's
// C / 2 entries are migrated within C / 32 puts, long before the new one (2 C) is half full.
constexpr std::uint32_t migrate_entries_per_put = 16;
// The next index (16 bytes per entry of the current one: C / 256 pages) is faulted in from
// 40 % load at a page per 16 puts: within C / 16 puts, before the growth at 50 %. A first
// touch costs some 4 us on a VM; random puts into an untouched index would take one each.
constexpr std::uint32_t prefault_puts_per_page = 16;
constexpr std::uint32_t release_chunk_entries = 8192;  // 64 KiB of entries, page aligned

std::size_t page_size() noexcept {
  static const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

std::uint64_t* map_entries(std::uint32_t capacity) {
  void* memory = mmap(nullptr, std::size_t{capacity} * sizeof(std::uint64_t),
                      PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::bad_alloc();  // a change may allocate: as the heap does
  return static_cast<std::uint64_t*>(memory);
}

void unmap_entries(std::uint64_t* entries, std::uint32_t capacity) noexcept {
  if (entries != nullptr) munmap(entries, std::size_t{capacity} * sizeof(std::uint64_t));
}

const store::Passkey& passkey_of(const store::UserRow& row) {
  return row.passkey;
}
std::span<const std::uint8_t> passkey_bytes(const store::Passkey& key) {
  return {reinterpret_cast<const std::uint8_t*>(key.text.data()), key.size};
}
const InfoHash& info_hash_of(const store::TorrentRow& row) {
  return row.info_hash;
}
std::span<const std::uint8_t> info_hash_bytes(const InfoHash& key) {
  return key.bytes;
}
}  // namespace

template <class Row, class Key>
RowTable<Row, Key>::RowTable(const HashSecret& secret, const Key& (*key_of)(const Row&),
                             std::span<const std::uint8_t> (*key_bytes)(const Key&))
    : secret_(secret), key_of_(key_of), key_bytes_(key_bytes) {
  static_assert(std::is_trivially_copyable_v<Row> && std::is_trivially_destructible_v<Row>);
  current_.capacity = index_capacity_min;
  current_.entries = map_entries(index_capacity_min);
}

template <class Row, class Key>
RowTable<Row, Key>::~RowTable() {
  for (Row* segment : segments_) ::operator delete(segment);
  unmap_entries(current_.entries, current_.capacity);
  unmap_entries(previous_.entries, previous_.capacity);
  unmap_entries(next_.entries, next_.capacity);
}

template <class Row, class Key>
void RowTable<Row, Key>::reserve(std::size_t rows_count) {
  // Room to spare: loading rows_count rows does not even prepare a growth (40 % load).
  const std::size_t wanted =
      std::bit_ceil(std::max<std::size_t>(index_capacity_min, rows_count * 5 / 2 + 1));
  if (size_ != 0 || wanted <= current_.capacity) return;
  TYTO_ASSERT(wanted <= (std::size_t{1} << 31) && !growing() && next_.entries == nullptr);
  unmap_entries(current_.entries, current_.capacity);
  current_.entries = nullptr;
  current_.entries = map_entries(static_cast<std::uint32_t>(wanted));
  current_.capacity = static_cast<std::uint32_t>(wanted);
  segments_.reserve((rows_count + rows_per_segment - 1) / rows_per_segment + 2);
}

template <class Row, class Key>
bool RowTable<Row, Key>::migrated(std::uint32_t slot) const noexcept {
  const std::uint32_t start = oa::next_slot(migrate_stop_, previous_.capacity);
  return migrate_cursor_ >= start ? slot >= start && slot < migrate_cursor_
                                  : slot >= start || slot < migrate_cursor_;
}

template <class Row, class Key>
const Row* RowTable<Row, Key>::find(const Key& key) const noexcept {
  return find(key, hash(key));
}

template <class Row, class Key>
std::uint64_t RowTable<Row, Key>::start_find(const Key& key) const noexcept {
  const std::uint64_t key_hash = hash(key);
  __builtin_prefetch(&current_.entries[oa::home_of(oa::tag_of(key_hash), current_.capacity)]);
  return key_hash;
}

template <class Row, class Key>
void RowTable<Row, Key>::prefetch_row(std::uint64_t key_hash) const noexcept {
  // The home's cache line or so: further entries are misses start_find did not overlap.
  constexpr std::uint32_t entries_looked_at_max = 8;
  const std::uint32_t tag = oa::tag_of(key_hash);
  const std::uint32_t slot = oa::find_near<IndexTraits>(
      std::span<const std::uint64_t>(current_.entries, current_.capacity),
      oa::home_of(tag, current_.capacity), entries_looked_at_max,
      [tag](std::uint64_t entry) { return IndexTraits::tag(entry) == tag; });
  if (slot == current_.capacity) return;
  const auto* bytes = reinterpret_cast<const char*>(&row(IndexTraits::position(current_.entries[slot])));
  __builtin_prefetch(bytes);
  if constexpr (sizeof(Row) > 64) __builtin_prefetch(bytes + sizeof(Row) - 1);  // straddles
}

template <class Row, class Key>
const Row* RowTable<Row, Key>::find(const Key& key, std::uint64_t key_hash) const noexcept {
  TYTO_DEBUG_ASSERT(key_hash == hash(key));
  // entry_of changes nothing; it is non-const only to hand out entries put and remove write.
  const std::uint64_t* entry = const_cast<RowTable*>(this)->entry_of(key, key_hash).second;
  return entry == nullptr ? nullptr : &row(IndexTraits::position(*entry));
}

template <class Row, class Key>
std::pair<typename RowTable<Row, Key>::Index*, std::uint64_t*> RowTable<Row, Key>::entry_of(
    const Key& key, std::uint64_t key_hash) noexcept {
  const std::uint32_t tag = oa::tag_of(key_hash);
  const auto matches = [&](std::uint64_t entry) {
    return IndexTraits::tag(entry) == tag && key_of_(row(IndexTraits::position(entry))) == key;
  };
  for (Index* index : {&current_, &previous_}) {
    if (index->count == 0) continue;
    const std::uint32_t home = oa::home_of(tag, index->capacity);
    // A migrated home is empty, so the run ends there; its page may be released: not read.
    if (index == &previous_ && migrated(home)) continue;
    const std::uint32_t slot = oa::find<IndexTraits>(
        std::span<const std::uint64_t>(index->entries, index->capacity), home, matches);
    if (!IndexTraits::is_empty(index->entries[slot])) return {index, &index->entries[slot]};
  }
  return {nullptr, nullptr};
}

// From 40 % load the next index is mapped and faulted in (see prefault_puts_per_page).
template <class Row, class Key>
void RowTable<Row, Key>::prepare_growth() {
  if (std::uint64_t{size_} * 5 < std::uint64_t{current_.capacity} * 2) return;
  if (next_.entries == nullptr) {
    TYTO_ASSERT(current_.capacity <= (std::uint32_t{1} << 30));
    next_.capacity = current_.capacity * 2;
    next_.entries = map_entries(next_.capacity);
    next_faulted_ = 0;
    prefault_puts_ = 0;
  }
  if (next_faulted_ >= next_.capacity || ++prefault_puts_ < prefault_puts_per_page) return;
  prefault_puts_ = 0;
  // A write of the empty value it already holds: the page becomes resident, nothing changes.
  *static_cast<volatile std::uint64_t*>(&next_.entries[next_faulted_]) = 0;
  next_faulted_ += static_cast<std::uint32_t>(page_size() / sizeof(std::uint64_t));
}

template <class Row, class Key>
void RowTable<Row, Key>::start_growth() {
  TYTO_ASSERT(previous_.entries == nullptr);
  if (next_.entries == nullptr) {
    next_.capacity = current_.capacity * 2;
    next_.entries = map_entries(next_.capacity);
  }
  TYTO_ASSERT(next_.capacity == current_.capacity * 2 && next_.count == 0);
  previous_ = current_;
  current_ = next_;
  next_ = {};
  next_faulted_ = 0;
  // The first empty entry (one exists: at most half full).
  migrate_stop_ = oa::find<IndexTraits>(previous_.slots(), 0, [](std::uint64_t) { return false; });
  migrate_cursor_ = oa::next_slot(migrate_stop_, previous_.capacity);
  previous_released_ = std::min(
      (migrate_cursor_ + release_chunk_entries - 1) / release_chunk_entries * release_chunk_entries,
      previous_.capacity);
}

// [previous_released_, cursor) was migrated: empty for good (nothing inserts into previous_;
// erasing shifts only within runs ahead of the cursor) and never read (migrated()).
template <class Row, class Key>
void RowTable<Row, Key>::release_migrated() noexcept {
  const std::uint32_t end = migrate_cursor_ == 0 ? previous_.capacity : migrate_cursor_;
  if (end > previous_released_) {
    TYTO_ASSERT(previous_released_ % release_chunk_entries == 0);
    madvise(previous_.entries + previous_released_,
            std::size_t{end - previous_released_} * sizeof(std::uint64_t), MADV_DONTNEED);
  }
  previous_released_ = migrate_cursor_;  // 0 after the wrap
}

// Moves at least `entries_budget` entries' worth from previous_ into current_, stopping only on
// an empty entry of previous_ (no probe run left there straddles the cursor). Homes come from
// the tags: no row is read.
template <class Row, class Key>
void RowTable<Row, Key>::migrate(std::uint32_t entries_budget) noexcept {
  if (previous_.entries == nullptr) return;
  for (;;) {
    if (migrate_cursor_ == migrate_stop_) {
      TYTO_ASSERT(previous_.count == 0);
      unmap_entries(previous_.entries, previous_.capacity);  // mostly released already
      previous_ = {};
      return;
    }
    std::uint64_t& entry = previous_.entries[migrate_cursor_];
    if (IndexTraits::is_empty(entry)) {
      if (entries_budget == 0) return;
    } else {
      oa::insert<IndexTraits>(current_.slots(),
                              oa::home_of(IndexTraits::tag(entry), current_.capacity), entry);
      ++current_.count;
      entry = IndexTraits::empty();
      --previous_.count;
    }
    if (entries_budget > 0) --entries_budget;
    migrate_cursor_ = oa::next_slot(migrate_cursor_, previous_.capacity);
    if (migrate_cursor_ % release_chunk_entries == 0) release_migrated();
  }
}

template <class Row, class Key>
void RowTable<Row, Key>::put(const Row& row_in) {
  migrate(migrate_entries_per_put);
  const Key& key = key_of_(row_in);
  const std::uint64_t key_hash = hash(key);
  if (const auto [index, entry] = entry_of(key, key_hash); entry != nullptr) {
    row(IndexTraits::position(*entry)) = row_in;
    return;
  }
  if (2 * (std::uint64_t{size_} + 1) > current_.capacity) {
    if (previous_.entries != nullptr) migrate(previous_.capacity);  // finish (never expected)
    start_growth();
    migrate(migrate_entries_per_put);
  } else {
    prepare_growth();
  }
  if (size_ == segments_.size() * rows_per_segment) {
    segments_.push_back(static_cast<Row*>(::operator new(rows_per_segment * sizeof(Row))));
  }
  TYTO_ASSERT(size_ < 0xffffffffu);
  const auto position = static_cast<std::uint32_t>(size_);
  std::memcpy(static_cast<void*>(&row(position)), &row_in, sizeof(Row));  // starts its lifetime
  ++size_;
  const std::uint32_t tag = oa::tag_of(key_hash);
  oa::insert<IndexTraits>(current_.slots(), oa::home_of(tag, current_.capacity),
                          IndexTraits::make(tag, position));
  ++current_.count;
}

template <class Row, class Key>
bool RowTable<Row, Key>::remove(const Key& key) noexcept {
  const auto [index, entry] = entry_of(key, hash(key));
  if (entry == nullptr) return false;
  const std::uint32_t position = IndexTraits::position(*entry);
  const std::uint32_t capacity = index->capacity;
  oa::erase<IndexTraits>(
      index->slots(), static_cast<std::uint32_t>(entry - index->entries),
      [capacity](std::uint64_t moved) { return oa::home_of(IndexTraits::tag(moved), capacity); });
  --index->count;
  const std::size_t last = size_ - 1;
  if (position != last) {
    // The last row moves into the hole: its index entry now names the new position.
    const Key moved = key_of_(row(last));
    const auto [moved_index, moved_entry] = entry_of(moved, hash(moved));
    TYTO_ASSERT(moved_entry != nullptr);
    *moved_entry = IndexTraits::make(IndexTraits::tag(*moved_entry), position);
    row(position) = row(last);
  }
  --size_;
  // A spare segment stays (no allocation back and forth at a boundary); more go back.
  while (segments_.size() > size_ / rows_per_segment + 2) {
    ::operator delete(segments_.back());
    segments_.pop_back();
  }
  return true;
}

template <class Row, class Key>
void RowTable<Row, Key>::verify() const noexcept {
  std::size_t entries = 0;
  for (const Index* index : {&current_, &previous_}) {
    std::uint32_t count = 0;
    for (std::uint32_t slot = 0; slot < index->capacity; ++slot) {
      if (index == &previous_ && migrated(slot)) continue;
      const std::uint64_t entry = index->entries[slot];
      if (IndexTraits::is_empty(entry)) continue;
      ++count;
      const std::uint32_t position = IndexTraits::position(entry);
      TYTO_ASSERT(position < size_);
      TYTO_ASSERT(IndexTraits::tag(entry) == oa::tag_of(hash(key_of_(row(position)))));
    }
    TYTO_ASSERT(count == index->count);
    entries += count;
  }
  TYTO_ASSERT(entries == size_);
  for (std::size_t position = 0; position < size_; ++position) {
    TYTO_ASSERT(find(key_of_(row(position))) == &row(position));
  }
}

template class RowTable<store::UserRow, store::Passkey>;
template class RowTable<store::TorrentRow, InfoHash>;

void CatalogueCopy::reserve(std::size_t users_count, std::size_t torrents_count) {
  users_.reserve(users_count);
  torrents_.reserve(torrents_count);
}

CatalogueCopy::CatalogueCopy(const HashSecret& secret)
    : users_(secret, passkey_of, passkey_bytes), torrents_(secret, info_hash_of, info_hash_bytes) {
  client_rules_.reserve(client_rules_max);
}

void CatalogueCopy::put_user(const store::UserRow& row) {
  TYTO_ASSERT(row.passkey.size > 0);
  users_.put(row);
}

void CatalogueCopy::remove_user(const store::Passkey& passkey) noexcept {
  users_.remove(passkey);
}

void CatalogueCopy::put_torrent(const store::TorrentRow& row) {
  torrents_.put(row);
}

void CatalogueCopy::remove_torrent(const InfoHash& info_hash) noexcept {
  torrents_.remove(info_hash);
}

namespace {
bool same_prefix(const store::ClientRuleRow& a, const store::ClientRuleRow& b) noexcept {
  return a.prefix_size == b.prefix_size &&
         std::equal(a.prefix.begin(), a.prefix.begin() + a.prefix_size, b.prefix.begin());
}
}  // namespace

bool CatalogueCopy::put_client_rule(const store::ClientRuleRow& row) {
  TYTO_ASSERT(row.prefix_size > 0 && row.prefix_size <= store::client_prefix_size_max);
  for (store::ClientRuleRow& held : client_rules_) {
    if (same_prefix(held, row)) {
      allowed_rules_count_ += static_cast<std::uint32_t>(row.allowed) - held.allowed;
      held.allowed = row.allowed;
      return true;
    }
  }
  if (client_rules_.size() == client_rules_max) return false;
  client_rules_.push_back(row);
  allowed_rules_count_ += row.allowed;
  return true;
}

void CatalogueCopy::remove_client_rule(const store::ClientRuleRow& row) noexcept {
  for (std::size_t i = 0; i < client_rules_.size(); ++i) {
    if (!same_prefix(client_rules_[i], row)) continue;
    allowed_rules_count_ -= client_rules_[i].allowed;
    client_rules_[i] = client_rules_.back();
    client_rules_.pop_back();
    return;
  }
}

bool CatalogueCopy::client_allowed(const PeerId& peer_id) const noexcept {
  bool allowed_match = false;
  for (const store::ClientRuleRow& rule : client_rules_) {
    if (!rule.matches(peer_id)) continue;
    if (!rule.allowed) return false;
    allowed_match = true;
  }
  return allowed_match || allowed_rules_count_ == 0;
}

}  // namespace tyto::shard
