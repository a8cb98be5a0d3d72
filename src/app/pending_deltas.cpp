#include "tyto/app/pending_deltas.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <span>

#include "tyto/core/assert.hpp"
#include "tyto/core/open_addressing.hpp"

namespace tyto::app {

namespace oa = open_addressing;
using IndexTraits = oa::TaggedPosition;

namespace {
constexpr std::size_t index_capacity_min = 1024;
// Arrays up to this many rows are kept for the next batch; larger ones (a fill's 100 000-row
// batches held ~29 B per peer of a 1 M fill: rows, index and order) go back to the allocator.
constexpr std::size_t rows_kept_max = 4096;
// The key's bytes without the padding after peer_id: user_id, torrent_id, peer_id.
constexpr std::size_t key_bytes_size = 16 + sizeof(PeerId);
static_assert(offsetof(store::PeerKey, torrent_id) == 8 && offsetof(store::PeerKey, peer_id) == 16);
static_assert(sizeof(PeerId) == 20 && sizeof(store::PeerKey) >= key_bytes_size);

bool key_less(const store::PeerKey& a, const store::PeerKey& b) noexcept {
  if (a.user_id != b.user_id) return a.user_id < b.user_id;
  if (a.torrent_id != b.torrent_id) return a.torrent_id < b.torrent_id;
  return std::memcmp(a.peer_id.bytes.data(), b.peer_id.bytes.data(), a.peer_id.bytes.size()) < 0;
}
}  // namespace

void merge_delta(store::AccountingDelta& sum, const store::AccountingDelta& later) noexcept {
  TYTO_ASSERT(sum.key == later.key);
  sum.uploaded += later.uploaded;
  sum.downloaded += later.downloaded;
  sum.uploaded_real += later.uploaded_real;
  sum.downloaded_real += later.downloaded_real;
  sum.seed_s = later.seed_s > UINT32_MAX - sum.seed_s ? UINT32_MAX : sum.seed_s + later.seed_s;
  sum.leech_s = later.leech_s > UINT32_MAX - sum.leech_s ? UINT32_MAX : sum.leech_s + later.leech_s;
  sum.baseline_uploaded = later.baseline_uploaded;
  sum.baseline_downloaded = later.baseline_downloaded;
  sum.announced_unix_s = std::max(sum.announced_unix_s, later.announced_unix_s);
  sum.seeding = later.seeding;
  sum.upload_scale = later.upload_scale;  // from_* stay the first delta's: the sum starts there
  sum.download_scale = later.download_scale;
  sum.completed |= later.completed;
  sum.closed = later.closed;
  if (later.stopped_unix_s != 0 && later.stopped_unix_s >= sum.stopped_unix_s) {  // the latest stop
    sum.stopped_unix_s = later.stopped_unix_s;
    sum.stopped_uploaded = later.stopped_uploaded;
    sum.stopped_downloaded = later.stopped_downloaded;
  }
}

std::uint64_t PendingDeltas::hash(const store::PeerKey& key) const noexcept {
  return hash_bytes({reinterpret_cast<const std::uint8_t*>(&key), key_bytes_size}, secret_);
}

bool PendingDeltas::add(const store::AccountingDelta& delta) {
  if (2 * (rows_.size() + 1) > index_.size()) {
    rebuild(std::bit_ceil(std::max(index_capacity_min, 4 * (rows_.size() + 1))));
  }
  const std::uint32_t tag = oa::tag_of(hash(delta.key));
  const auto capacity = static_cast<std::uint32_t>(index_.size());
  const std::uint32_t slot = oa::find<IndexTraits>(
      std::span<const std::uint64_t>(index_), oa::home_of(tag, capacity), [&](std::uint64_t entry) {
        return IndexTraits::tag(entry) == tag &&
               rows_[IndexTraits::position(entry)].key == delta.key;
      });
  if (!IndexTraits::is_empty(index_[slot])) {
    merge_delta(rows_[IndexTraits::position(index_[slot])], delta);
    return false;
  }
  TYTO_ASSERT(rows_.size() < UINT32_MAX - 1);
  index_[slot] = IndexTraits::make(tag, static_cast<std::uint32_t>(rows_.size()));
  rows_.push_back(delta);
  return true;
}

void PendingDeltas::take_sorted(std::vector<store::AccountingDelta>& out) {
  order_.resize(rows_.size());
  std::iota(order_.begin(), order_.end(), std::uint32_t{0});
  std::sort(order_.begin(), order_.end(),
            [&](std::uint32_t a, std::uint32_t b) { return key_less(rows_[a].key, rows_[b].key); });
  if (rows_.capacity() > rows_kept_max && out.empty()) {
    // A burst's rows become the batch in place (no second array of them), and every array goes.
    permute_in_place();
    out.swap(rows_);
    release_arrays();
    return;
  }
  out.reserve(out.size() + rows_.size());
  for (const std::uint32_t position : order_) out.push_back(rows_[position]);
  if (rows_.capacity() > rows_kept_max) {
    release_arrays();
    return;
  }
  rows_.clear();
  std::fill(index_.begin(), index_.end(), IndexTraits::empty());
}

// A burst's arrays go back to the heap; add() rebuilds the index from index_capacity_min.
void PendingDeltas::release_arrays() noexcept {
  std::vector<store::AccountingDelta>().swap(rows_);
  std::vector<std::uint64_t>().swap(index_);
  std::vector<std::uint32_t>().swap(order_);
}

// rows_[k] becomes rows_[order_[k]] for every k, one cycle of the permutation at a time (each
// row moved once); order_ is left as the identity.
void PendingDeltas::permute_in_place() noexcept {
  TYTO_ASSERT(order_.size() == rows_.size());
  for (std::uint32_t start = 0; start < order_.size(); ++start) {
    if (order_[start] == start) continue;
    const store::AccountingDelta first = rows_[start];
    std::uint32_t to = start;
    for (;;) {
      const std::uint32_t from = order_[to];
      order_[to] = to;
      if (from == start) {
        rows_[to] = first;
        break;
      }
      rows_[to] = rows_[from];
      to = from;
    }
  }
}

void PendingDeltas::rebuild(std::size_t capacity) {
  TYTO_ASSERT(capacity > 2 * rows_.size() && capacity < (std::size_t{1} << 32));
  index_.assign(capacity, IndexTraits::empty());
  const auto slots = static_cast<std::uint32_t>(capacity);
  for (std::size_t position = 0; position < rows_.size(); ++position) {
    const std::uint32_t tag = oa::tag_of(hash(rows_[position].key));
    oa::insert<IndexTraits>(std::span<std::uint64_t>(index_), oa::home_of(tag, slots),
                            IndexTraits::make(tag, static_cast<std::uint32_t>(position)));
  }
}

}  // namespace tyto::app
