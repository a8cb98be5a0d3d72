// CatalogueCopy: one shard's own copy of the private tracker's catalogue (store/catalogue.hpp),
// which the announce path reads without leaving the shard's memory (DESIGN §9).
//  - Users (passkey → user) and client rules are copied to every shard: any shard may receive
//    an announce and checks its passkey and client before routing it.
//  - Torrents are partitioned like swarms: a shard holds the torrents whose info_hash it owns
//    (shard_of), because only the owner applies the announce.
// Owner: its shard's thread, only. Rows change one at a time between announces (the storage
// bridge's changes, drained each turn); there is nothing to publish and no reader elsewhere.
// Lookups are noexcept and never allocate; a change may allocate (the tables grow by doubling,
// which rehashes the index at once: sized at start from the loaded catalogue, it grows only
// when a site adds more rows than the start-up size left room for).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tyto/core/hash.hpp"
#include "tyto/store/catalogue.hpp"

namespace tyto::shard {

// A dense array of rows and an open-addressing index over them keyed by Key (keyed hash): the
// one table shape of the catalogue copy. Removing moves the last row into the hole.
template <class Row, class Key>
class RowTable {
 public:
  RowTable(const HashSecret& secret, const Key& (*key_of)(const Row&),
           std::span<const std::uint8_t> (*key_bytes)(const Key&))
      : secret_(secret), key_of_(key_of), key_bytes_(key_bytes) {}

  void reserve(std::size_t rows_count);
  const Row* find(const Key& key) const noexcept;
  void put(const Row& row);  // inserts, or replaces the row with the same key
  bool remove(const Key& key) noexcept;
  std::size_t size() const noexcept { return rows_.size(); }
  std::span<const Row> rows() const noexcept { return rows_; }

 private:
  std::uint64_t hash(const Key& key) const noexcept { return hash_bytes(key_bytes_(key), secret_); }
  // The index slot holding `key`, or the empty slot ending its run.
  std::uint32_t slot_of(const Key& key, std::uint64_t hash) const noexcept;
  void rebuild(std::size_t capacity);

  HashSecret secret_;
  // A reference into the row: a probe compares in place (a Passkey is 65 bytes to copy).
  const Key& (*key_of_)(const Row&);
  std::span<const std::uint8_t> (*key_bytes_)(const Key&);
  std::vector<Row> rows_;
  // (tag << 32) | (row position + 1); 0 is empty. At most half full.
  std::vector<std::uint64_t> index_;
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
  // A matching denied prefix refuses; with any allowed prefix held, only matching clients pass.
  bool client_allowed(const PeerId& peer_id) const noexcept;

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
