#include "tyto/shard/catalogue_copy.hpp"

#include <algorithm>
#include <bit>

#include "tyto/core/assert.hpp"
#include "tyto/core/open_addressing.hpp"

namespace tyto::shard {

namespace oa = open_addressing;
using IndexTraits = oa::TaggedPosition;

namespace {
constexpr std::size_t index_capacity_min = 64;

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
void RowTable<Row, Key>::reserve(std::size_t rows_count) {
  rows_.reserve(rows_count);
  const std::size_t wanted = std::bit_ceil(std::max(index_capacity_min, 2 * rows_count));
  if (wanted > index_.size()) rebuild(wanted);
}

template <class Row, class Key>
std::uint32_t RowTable<Row, Key>::slot_of(const Key& key, std::uint64_t hash) const noexcept {
  const std::uint32_t tag = oa::tag_of(hash);
  const auto capacity = static_cast<std::uint32_t>(index_.size());
  return oa::find<IndexTraits>(std::span<const std::uint64_t>(index_), oa::home_of(tag, capacity),
                               [&](std::uint64_t entry) {
                                 return IndexTraits::tag(entry) == tag &&
                                        key_of_(rows_[IndexTraits::position(entry)]) == key;
                               });
}

template <class Row, class Key>
const Row* RowTable<Row, Key>::find(const Key& key) const noexcept {
  if (index_.empty()) return nullptr;
  const std::uint32_t slot = slot_of(key, hash(key));
  if (IndexTraits::is_empty(index_[slot])) return nullptr;
  return &rows_[IndexTraits::position(index_[slot])];
}

template <class Row, class Key>
void RowTable<Row, Key>::put(const Row& row) {
  if (2 * (rows_.size() + 1) > index_.size()) reserve(std::max<std::size_t>(1, 2 * rows_.size()));
  const Key& key = key_of_(row);
  const std::uint64_t key_hash = hash(key);
  const std::uint32_t slot = slot_of(key, key_hash);
  if (!IndexTraits::is_empty(index_[slot])) {
    rows_[IndexTraits::position(index_[slot])] = row;
    return;
  }
  index_[slot] = IndexTraits::make(oa::tag_of(key_hash), static_cast<std::uint32_t>(rows_.size()));
  rows_.push_back(row);
}

template <class Row, class Key>
bool RowTable<Row, Key>::remove(const Key& key) noexcept {
  if (index_.empty()) return false;
  const std::uint32_t slot = slot_of(key, hash(key));
  if (IndexTraits::is_empty(index_[slot])) return false;
  const std::uint32_t position = IndexTraits::position(index_[slot]);
  const auto capacity = static_cast<std::uint32_t>(index_.size());
  oa::erase<IndexTraits>(std::span<std::uint64_t>(index_), slot, [&](std::uint64_t entry) {
    return oa::home_of(IndexTraits::tag(entry), capacity);
  });
  const std::size_t last = rows_.size() - 1;
  if (position != last) {
    // The last row moves into the hole: its index entry now names the new position.
    const Key moved = key_of_(rows_[last]);
    const std::uint32_t moved_slot = slot_of(moved, hash(moved));
    TYTO_ASSERT(!IndexTraits::is_empty(index_[moved_slot]));
    index_[moved_slot] = IndexTraits::make(IndexTraits::tag(index_[moved_slot]), position);
    rows_[position] = rows_[last];
  }
  rows_.pop_back();
  return true;
}

template <class Row, class Key>
void RowTable<Row, Key>::rebuild(std::size_t capacity) {
  TYTO_ASSERT(capacity > 2 * rows_.size() && capacity < (std::size_t{1} << 32));
  index_.assign(capacity, IndexTraits::empty());
  const auto slots = static_cast<std::uint32_t>(capacity);
  for (std::size_t position = 0; position < rows_.size(); ++position) {
    const std::uint32_t tag = oa::tag_of(hash(key_of_(rows_[position])));
    oa::insert<IndexTraits>(std::span<std::uint64_t>(index_), oa::home_of(tag, slots),
                            IndexTraits::make(tag, static_cast<std::uint32_t>(position)));
  }
}

template class RowTable<store::UserRow, store::Passkey>;
template class RowTable<store::TorrentRow, InfoHash>;

CatalogueCopy::CatalogueCopy(const HashSecret& secret)
    : users_(secret, passkey_of, passkey_bytes), torrents_(secret, info_hash_of, info_hash_bytes) {
  client_rules_.reserve(client_rules_max);
}

void CatalogueCopy::reserve(std::size_t users_count, std::size_t torrents_count) {
  users_.reserve(users_count);
  torrents_.reserve(torrents_count);
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
