// CompletionTable: the owner shard's completed counts for its torrents when storage.uri keeps
// them (sqlite:, postgresql:; README "Completed counts"). Per torrent it holds
//  - total: the count persisted when the tracker started plus every completion this shard
//    counted since (a scrape's `downloaded` is max(the swarm's own count, total), so a torrent
//    whose swarm expired, or a restart without a snapshot, still answers the persisted count);
//  - pending: completions counted and not yet taken by the storage bridge. Never dropped:
//    flush() hands them on and clears them only when the bridge took them; what it has no room
//    for stays summed here and is offered again next turn (the accounting deltas' policy).
//
// Owner: its shard's thread only. Entries are never removed (a count is forever). Fixed
// capacity (limits.completions_per_shard_max): the index (16 bytes per entry of capacity, up to
// 32 when it is not a power of two) and the queue of pending entries (4 bytes per entry) are
// allocated at construction; entries (32 bytes) in chunks of 4096, one kept ready ahead by
// prepare() (called once a second) so the announce path allocates only when more than a chunk
// of new torrents complete within a second. When the table is full a new torrent's completion
// is not persisted (refused, counted): the swarm still counts it in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tyto/core/assert.hpp"
#include "tyto/core/hash.hpp"
#include "tyto/store/accounting.hpp"

namespace tyto::shard {

class CompletionTable {
 public:
  CompletionTable(std::uint32_t capacity, const HashSecret& secret);
  ~CompletionTable();
  CompletionTable(const CompletionTable&) = delete;
  CompletionTable& operator=(const CompletionTable&) = delete;

  // At start, before any announce: a count persisted by an earlier run (added to what is held,
  // nothing pending). false when the table is full.
  bool restore(const store::CompletionCount& persisted) noexcept;
  // The announce path: one completion counted for info_hash. false when it cannot be kept (the
  // table is full, or its pending count is at its maximum).
  bool count(const InfoHash& info_hash) noexcept;
  // The persisted base plus completions counted since start; 0 for a torrent not held.
  std::uint64_t completed(const InfoHash& info_hash) const noexcept;

  // Hands pending counts to give(const store::CompletionDelta&) -> bool, oldest first, until it
  // returns false (no room: the rest wait, summed) or `count_max` were given. Returns how many.
  template <class Give>
  std::size_t flush(Give&& give, std::size_t count_max);
  // Once a second, off the announce path: allocates the next chunk of entries when the last is
  // half used.
  void prepare();

  std::size_t size() const noexcept { return positions_used_; }
  std::size_t pending_count() const noexcept { return queued_count_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::uint64_t refused() const noexcept { return refused_; }

 private:
  struct Entry {
    InfoHash info_hash;
    std::uint32_t pending = 0;  // > 0 exactly when the entry is in the queue
    std::uint64_t total = 0;
  };
  static_assert(sizeof(Entry) == 32);
  static constexpr std::uint32_t chunk_entries = 4096;
  static constexpr std::uint32_t absent = UINT32_MAX;

  Entry& entry(std::uint32_t position) const noexcept;
  std::uint32_t find(const InfoHash& info_hash, std::uint32_t& tag) const noexcept;
  std::uint32_t find_or_insert(const InfoHash& info_hash) noexcept;  // absent when full

  std::uint32_t capacity_;
  HashSecret secret_;
  std::vector<std::unique_ptr<Entry[]>> chunks_;
  std::vector<std::uint64_t> index_;  // (tag << 32) | (position + 1); 0 empty; ≤ half full
  std::uint32_t positions_used_ = 0;
  // Positions with pending > 0, oldest first: a ring of capacity_ (each position once at most).
  std::vector<std::uint32_t> queue_;
  std::uint32_t queue_head_ = 0;
  std::uint32_t queued_count_ = 0;
  std::uint64_t refused_ = 0;
};

template <class Give>
std::size_t CompletionTable::flush(Give&& give, std::size_t count_max) {
  std::size_t given = 0;
  while (queued_count_ > 0 && given < count_max) {
    Entry& held = entry(queue_[queue_head_]);
    TYTO_ASSERT(held.pending > 0);
    if (!give(store::CompletionDelta{held.info_hash, held.pending})) break;
    held.pending = 0;
    queue_head_ = queue_head_ + 1 == capacity_ ? 0 : queue_head_ + 1;
    --queued_count_;
    ++given;
  }
  return given;
}

}  // namespace tyto::shard
