#include "tyto/shard/completion_table.hpp"

#include <bit>

#include "tyto/core/assert.hpp"
#include "tyto/core/open_addressing.hpp"

namespace tyto::shard {

namespace oa = open_addressing;
using IndexTraits = oa::TaggedPosition;

CompletionTable::CompletionTable(std::uint32_t capacity, const HashSecret& secret)
    : capacity_(capacity), secret_(secret) {
  TYTO_ASSERT(capacity > 0 && capacity <= (1u << 30));
  index_.assign(std::bit_ceil(std::size_t{2} * capacity), IndexTraits::empty());
  chunks_.resize((capacity + chunk_entries - 1) / chunk_entries);
  queue_.assign(capacity, 0);
  prepare();
}

CompletionTable::~CompletionTable() = default;

CompletionTable::Entry& CompletionTable::entry(std::uint32_t position) const noexcept {
  TYTO_DEBUG_ASSERT(position < positions_used_);
  return chunks_[position / chunk_entries][position % chunk_entries];
}

std::uint32_t CompletionTable::find(const InfoHash& info_hash, std::uint32_t& tag) const noexcept {
  tag = oa::tag_of(hash_info_hash(info_hash, secret_));
  const std::uint32_t home = oa::home_of(tag, static_cast<std::uint32_t>(index_.size()));
  const std::uint32_t slot =
      oa::find<IndexTraits>(std::span<const std::uint64_t>(index_), home, [&](std::uint64_t e) {
        return IndexTraits::tag(e) == tag && entry(IndexTraits::position(e)).info_hash == info_hash;
      });
  return IndexTraits::is_empty(index_[slot]) ? absent : IndexTraits::position(index_[slot]);
}

std::uint32_t CompletionTable::find_or_insert(const InfoHash& info_hash) noexcept {
  std::uint32_t tag = 0;
  if (const std::uint32_t found = find(info_hash, tag); found != absent) return found;
  if (positions_used_ >= capacity_) return absent;
  const std::uint32_t position = positions_used_++;
  auto& chunk = chunks_[position / chunk_entries];
  if (chunk == nullptr) chunk = std::make_unique<Entry[]>(chunk_entries);  // see prepare()
  const std::uint32_t home = oa::home_of(tag, static_cast<std::uint32_t>(index_.size()));
  oa::insert<IndexTraits>(std::span<std::uint64_t>(index_), home, IndexTraits::make(tag, position));
  Entry& fresh = entry(position);
  fresh = Entry{};
  fresh.info_hash = info_hash;
  return position;
}

bool CompletionTable::restore(const store::CompletionCount& persisted) noexcept {
  const std::uint32_t position = find_or_insert(persisted.info_hash);
  if (position == absent) {
    ++refused_;
    return false;
  }
  Entry& held = entry(position);
  held.total += persisted.completed;
  TYTO_ASSERT(held.pending == 0);  // before any announce
  return true;
}

bool CompletionTable::count(const InfoHash& info_hash) noexcept {
  const std::uint32_t position = find_or_insert(info_hash);
  if (position == absent || entry(position).pending == UINT32_MAX) {
    ++refused_;
    return false;
  }
  Entry& held = entry(position);
  if (held.pending++ == 0) {
    TYTO_ASSERT(queued_count_ < capacity_);
    const std::uint32_t tail = queue_head_ + queued_count_;
    queue_[tail >= capacity_ ? tail - capacity_ : tail] = position;
    ++queued_count_;
  }
  ++held.total;
  return true;
}

std::uint64_t CompletionTable::completed(const InfoHash& info_hash) const noexcept {
  std::uint32_t tag = 0;
  const std::uint32_t position = find(info_hash, tag);
  return position == absent ? 0 : entry(position).total;
}

void CompletionTable::prepare() {
  const std::uint32_t next = positions_used_ + chunk_entries / 2;
  const std::uint32_t chunk = next / chunk_entries;
  if (next < capacity_ && chunk < chunks_.size() && chunks_[chunk] == nullptr) {
    chunks_[chunk] = std::make_unique<Entry[]>(chunk_entries);
  }
}

}  // namespace tyto::shard
