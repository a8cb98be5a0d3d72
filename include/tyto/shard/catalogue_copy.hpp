// CatalogueCopy: one shard's own copy of the private tracker's catalogue (store/catalogue.hpp),
// which the announce path reads without leaving the shard's memory (DESIGN §9).
//  - Users (passkey → user) and client rules are copied to every shard: any shard may receive
//    an announce and checks its passkey and client before routing it.
//  - Torrents are partitioned like swarms: a shard holds the torrents whose info_hash it owns
//    (shard_of), because only the owner applies the announce.
// Owner: its shard's thread, only. Rows change one at a time between announces (the storage
// bridge's changes, drained each turn); there is nothing to publish and no reader elsewhere.
// Lookups are noexcept and never allocate; a change may allocate (a segment of rows, a mapping
// for the next index), and no change stalls the shard's turn however large the table grows
// (issue 21): rows sit in fixed segments that never move, and the index grows incrementally.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "tyto/core/hash.hpp"
#include "tyto/store/catalogue.hpp"

namespace tyto::shard {

// Rows in segments of rows_per_segment that never move, and an open-addressing index over them
// keyed by Key (keyed hash): the one table shape of the catalogue copy. Removing moves the last
// row into the hole.
// Index entries (open_addressing::TaggedPosition) in mapped arrays of a power-of-two capacity,
// at most half full. A growth doubles it as the swarm table's does: the next index is mapped at
// 40 % load and faulted in a page per prefault_puts_per_page puts, the old one is migrated a
// bounded number of entries per put (lookups look in both, skipping its migrated part) and
// its migrated pages go back to the kernel chunk by chunk.
template <class Row, class Key>
class RowTable {
 public:
  static constexpr std::size_t rows_per_segment = 4096;

  RowTable(const HashSecret& secret, const Key& (*key_of)(const Row&),
           std::span<const std::uint8_t> (*key_bytes)(const Key&));
  ~RowTable();
  RowTable(const RowTable&) = delete;
  RowTable& operator=(const RowTable&) = delete;

  // Start-up, on an empty table: an index for rows_count rows that needs no growth on the way.
  void reserve(std::size_t rows_count);
  const Row* find(const Key& key) const noexcept;
  // Read-ahead over a batch of lookups (the misses of a table far larger than the cache
  // overlap): start_find hashes the key and prefetches its home entry; prefetch_row, once that
  // entry has had time to arrive, prefetches the row of the first entry near the home whose
  // tag matches (the key is not compared); find(key, hash) then finds without hashing again.
  // Only the current index is read ahead: a growing table's previous one is left to find().
  std::uint64_t start_find(const Key& key) const noexcept;
  void prefetch_row(std::uint64_t key_hash) const noexcept;
  const Row* find(const Key& key, std::uint64_t key_hash) const noexcept;
  void put(const Row& row);  // inserts, or replaces the row with the same key
  bool remove(const Key& key) noexcept;
  std::size_t size() const noexcept { return size_; }
  bool growing() const noexcept { return previous_.entries != nullptr; }
  void verify() const noexcept;  // O(n) consistency check for tests

 private:
  struct Index {
    std::uint64_t* entries = nullptr;  // mapped: zero pages are empty entries
    std::uint32_t capacity = 0;        // a power of two
    std::uint32_t count = 0;
    std::span<std::uint64_t> slots() const noexcept { return {entries, capacity}; }
  };

  std::uint64_t hash(const Key& key) const noexcept { return hash_bytes(key_bytes_(key), secret_); }
  Row& row(std::size_t position) noexcept {
    return segments_[position / rows_per_segment][position % rows_per_segment];
  }
  const Row& row(std::size_t position) const noexcept {
    return segments_[position / rows_per_segment][position % rows_per_segment];
  }
  // The entry holding `key` in either index (and which index), or {nullptr, nullptr}.
  std::pair<Index*, std::uint64_t*> entry_of(const Key& key, std::uint64_t hash) noexcept;
  bool migrated(std::uint32_t slot) const noexcept;
  void prepare_growth();
  void start_growth();
  void migrate(std::uint32_t entries_budget) noexcept;
  void release_migrated() noexcept;

  HashSecret secret_;
  // A reference into the row: a probe compares in place (a Passkey is 65 bytes to copy).
  const Key& (*key_of_)(const Row&);
  std::span<const std::uint8_t> (*key_bytes_)(const Key&);
  std::vector<Row*> segments_;  // each rows_per_segment rows, allocated uninitialised
  std::size_t size_ = 0;
  Index current_;
  Index previous_;  // being migrated into current_ (empty when not growing)
  Index next_;      // mapped ahead of the growth, count 0 (else empty)
  std::uint32_t next_faulted_ = 0;
  std::uint32_t prefault_puts_ = 0;
  std::uint32_t migrate_cursor_ = 0;     // next entry of previous_ to migrate
  std::uint32_t migrate_stop_ = 0;       // the empty entry where migration started and ends
  std::uint32_t previous_released_ = 0;  // previous_'s pages from here to the cursor: released
};

class CatalogueCopy {
 public:
  static constexpr std::size_t client_rules_max = 1024;

  explicit CatalogueCopy(const HashSecret& secret);

  // --- Changes (the storage bridge's, between announces; at start, the loaded rows) ---
  void reserve(std::size_t users_count, std::size_t torrents_count);
  void put_user(const store::UserRow& row);
  void remove_user(const store::Passkey& passkey) noexcept;
  void put_torrent(const store::TorrentRow& row);
  void remove_torrent(const InfoHash& info_hash) noexcept;
  // false when client_rules_max rules are held already (the rule is not added).
  bool put_client_rule(const store::ClientRuleRow& row);
  void remove_client_rule(const store::ClientRuleRow& row) noexcept;

  // --- The announce path ---
  const store::UserRow* user(const store::Passkey& passkey) const noexcept {
    return users_.find(passkey);
  }
  const store::TorrentRow* torrent(const InfoHash& info_hash) const noexcept {
    return torrents_.find(info_hash);
  }
  // Read-ahead (RowTable::start_find, prefetch_row) for a batch of announces.
  const RowTable<store::UserRow, store::Passkey>& users() const noexcept { return users_; }
  const RowTable<store::TorrentRow, InfoHash>& torrents() const noexcept { return torrents_; }
  // A matching denied prefix refuses; with any allowed prefix held, only matching clients pass.
  bool client_allowed(const PeerId& peer_id) const noexcept;

  // Tests: whether either table is migrating to a grown index; an O(n) consistency check.
  bool growing() const noexcept { return users_.growing() || torrents_.growing(); }
  void verify() const noexcept {
    users_.verify();
    torrents_.verify();
  }

  std::size_t users_count() const noexcept { return users_.size(); }
  std::size_t torrents_count() const noexcept { return torrents_.size(); }
  std::size_t client_rules_count() const noexcept { return client_rules_.size(); }

 private:
  RowTable<store::UserRow, store::Passkey> users_;
  RowTable<store::TorrentRow, InfoHash> torrents_;
  std::vector<store::ClientRuleRow> client_rules_;
  std::uint32_t allowed_rules_count_ = 0;
};

}  // namespace tyto::shard
