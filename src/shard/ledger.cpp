#include "tyto/shard/ledger.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "tyto/core/assert.hpp"
#include "tyto/core/open_addressing.hpp"

namespace tyto::shard {

namespace oa = open_addressing;
using IndexTraits = oa::TaggedPosition;

namespace {
// Expiry visits this many positions per call (once a second): 1 M entries in under 5 minutes,
// far below the peer timeout.
constexpr std::uint32_t expire_positions_per_step = 4096;

std::uint32_t add_capped(std::uint32_t a, std::uint32_t b) noexcept {
  return b > UINT32_MAX - a ? UINT32_MAX : a + b;
}
}  // namespace

template <class Record, std::uint32_t chunk_records>
Ledger::Pool<Record, chunk_records>::Pool(std::uint32_t capacity)
    : chunks_((capacity + chunk_records - 1) / chunk_records) {
  free_.reserve(capacity);
}

template <class Record, std::uint32_t chunk_records>
std::uint32_t Ledger::Pool<Record, chunk_records>::take() noexcept {
  std::uint32_t index = 0;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    TYTO_ASSERT(used_ < chunks_.size() * chunk_records);  // more in use than the capacity
    index = used_++;
    auto& chunk = chunks_[index / chunk_records];
    if (chunk == nullptr) chunk = std::make_unique<Record[]>(chunk_records);
  }
  (*this)[index] = Record{};
  return index;
}

template <class Record, std::uint32_t chunk_records>
void Ledger::Pool<Record, chunk_records>::give_back(std::uint32_t index) noexcept {
  TYTO_ASSERT(index < used_ && free_.size() < used_);
  free_.push_back(index);  // within the reserve: at most `capacity` were handed out
}

Ledger::Ledger(const LedgerLimits& limits, const HashSecret& secret)
    : limits_(limits), secret_(secret), pendings_(limits.peers_max), stoppings_(limits.peers_max) {
  // What a peer costs (issue 19: the entry was 192 B with its pending delta inside).
  static_assert(sizeof(Entry) == 112 && sizeof(Pending) == 40 && sizeof(Stopping) == 72);
  TYTO_ASSERT(limits.peers_max > 0 && limits.peers_max <= (1u << 30));
  TYTO_ASSERT(limits.peers_per_user_torrent_max > 0);
  index_.assign(std::bit_ceil(std::size_t{2} * limits.peers_max), IndexTraits::empty());
  chunks_.resize((limits.peers_max + chunk_entries - 1) / chunk_entries);
  dirty_.reserve(limits.peers_max);
  free_positions_.reserve(limits.peers_max);
}

Ledger::~Ledger() = default;

Ledger::Entry& Ledger::entry(std::uint32_t position) const noexcept {
  TYTO_DEBUG_ASSERT(position < positions_used_);
  return chunks_[position / chunk_entries][position % chunk_entries];
}

Ledger::Pending& Ledger::pending_of(const Entry& held) const noexcept {
  TYTO_DEBUG_ASSERT(held.dirty());
  return held.stopping ? stoppings_[held.pending_index].sums : pendings_[held.pending_index];
}

std::uint64_t Ledger::ticket_of(const Entry& held) const noexcept {
  TYTO_DEBUG_ASSERT(held.dirty());
  return held.stopping ? stoppings_[held.pending_index].ticket : 0;
}

std::uint32_t Ledger::tag_of(const store::PeerKey& key) const noexcept {
  std::uint8_t pair[16];
  std::memcpy(pair, &key.user_id, 8);
  std::memcpy(pair + 8, &key.torrent_id, 8);
  return oa::tag_of(hash_bytes(pair, secret_));
}

std::uint32_t Ledger::home(const store::PeerKey& key, std::uint32_t& tag) const noexcept {
  tag = tag_of(key);
  return oa::home_of(tag, static_cast<std::uint32_t>(index_.size()));
}

std::uint32_t Ledger::find(const store::PeerKey& key) const noexcept {
  std::uint32_t tag = 0;
  const std::uint32_t start = home(key, tag);
  const std::uint32_t slot =
      oa::find<IndexTraits>(std::span<const std::uint64_t>(index_), start, [&](std::uint64_t e) {
        return IndexTraits::tag(e) == tag && entry(IndexTraits::position(e)).holds(key);
      });
  return IndexTraits::is_empty(index_[slot]) ? absent : IndexTraits::position(index_[slot]);
}

Ledger::Spot Ledger::locate(const store::PeerKey& key) const noexcept {
  Spot spot;
  spot.home = home(key, spot.tag);
  spot.position = find(key);
  return spot;
}

LedgerVerdict Ledger::admit(const store::PeerKey& key, Spot& spot,
                            std::uint32_t tag) const noexcept {
  TYTO_DEBUG_ASSERT(tag == tag_of(key));
  std::uint32_t slot = oa::home_of(tag, static_cast<std::uint32_t>(index_.size()));
  spot = Spot{absent, tag, slot};
  std::uint32_t same_pair_active = 0;
  const auto capacity = static_cast<std::uint32_t>(index_.size());
  // The whole run from the home: every entry of this (user, torrent) is in it.
  for (std::uint32_t probes = 0; probes < capacity && !IndexTraits::is_empty(index_[slot]);
       ++probes, slot = oa::next_slot(slot, capacity)) {
    if (IndexTraits::tag(index_[slot]) != tag) continue;
    const Entry& held = entry(IndexTraits::position(index_[slot]));
    if (held.holds(key)) {
      spot.position = IndexTraits::position(index_[slot]);
      return LedgerVerdict::ok;  // known peer
    }
    same_pair_active +=
        held.user_id == key.user_id && held.torrent_id == key.torrent_id && !held.closed;
  }
  if (same_pair_active >= limits_.peers_per_user_torrent_max) {
    return LedgerVerdict::user_torrent_full;
  }
  return entries_count_ >= limits_.peers_max ? LedgerVerdict::full : LedgerVerdict::ok;
}

std::uint32_t Ledger::insert(const store::PeerKey& key) noexcept {
  std::uint32_t tag = 0;
  const std::uint32_t start = home(key, tag);
  return insert(key, tag, start);
}

std::uint32_t Ledger::insert(const store::PeerKey& key, std::uint32_t tag,
                             std::uint32_t start) noexcept {
  TYTO_DEBUG_ASSERT(start == home(key, tag));
  if (entries_count_ >= limits_.peers_max) return absent;
  std::uint32_t position = 0;
  if (!free_positions_.empty()) {
    position = free_positions_.back();
    free_positions_.pop_back();
  } else {
    position = positions_used_++;
    auto& chunk = chunks_[position / chunk_entries];
    if (chunk == nullptr) chunk = std::make_unique<Entry[]>(chunk_entries);
  }
  oa::insert<IndexTraits>(std::span<std::uint64_t>(index_), start,
                          IndexTraits::make(tag, position));
  ++entries_count_;
  Entry& fresh = entry(position);
  TYTO_ASSERT(!fresh.live && !fresh.dirty());  // erased clean, its pending record given back
  fresh = Entry{};
  fresh.user_id = key.user_id;
  fresh.torrent_id = key.torrent_id;
  fresh.peer_id = key.peer_id;
  fresh.live = true;
  return position;
}

void Ledger::erase(std::uint32_t position) noexcept {
  Entry& gone = entry(position);
  TYTO_ASSERT(gone.live && !gone.dirty());
  std::uint32_t tag = 0;
  std::uint32_t slot = home(gone.key(), tag);
  const auto capacity = static_cast<std::uint32_t>(index_.size());
  while (IndexTraits::position(index_[slot]) != position) {
    TYTO_ASSERT(!IndexTraits::is_empty(index_[slot]));
    slot = oa::next_slot(slot, capacity);
  }
  oa::erase<IndexTraits>(std::span<std::uint64_t>(index_), slot, [&](std::uint64_t e) {
    return oa::home_of(IndexTraits::tag(e), capacity);
  });
  gone.live = false;
  free_positions_.push_back(position);
  --entries_count_;
}

void Ledger::drop_flushed() noexcept {
  dirty_.erase(dirty_.begin(), dirty_.begin() + static_cast<std::ptrdiff_t>(dirty_head_));
  dirty_head_ = 0;
}

Ledger::Pending& Ledger::mark_dirty(std::uint32_t position, Entry& held) noexcept {
  if (held.dirty()) return pending_of(held);
  // One record per dirty entry, so a pool never holds more than peers_max.
  TYTO_DEBUG_ASSERT(!held.stopping && !held.completed);  // clean: nothing pending
  held.pending_index = pendings_.take();
  Pending& fresh = pendings_[held.pending_index];
  // Each entry is queued at most once, so the live part never passes peers_max (the reserve).
  if (dirty_.size() == dirty_.capacity()) drop_flushed();
  dirty_.push_back(position);
  return fresh;
}

std::uint64_t Ledger::record(const Spot& spot, const store::PeerKey& key,
                             const AnnounceRequest& request, const store::TorrentRow& torrent,
                             const Member& member, std::uint32_t now_s, std::uint64_t now_unix_s,
                             bool ticket_stopped) noexcept {
  TYTO_ASSERT(key.user_id == member.user_id && key.torrent_id == torrent.torrent_id);
  // The spot is admit's for this key, and nothing changed the ledger since (paired: admit).
  TYTO_DEBUG_ASSERT(spot.position == find(key));
  TYTO_ASSERT(spot.position == absent || entry(spot.position).holds(key));
  std::uint32_t position = spot.position;
  const bool first_sighting = position == absent || entry(position).closed;
  if (position == absent) {
    if (request.event == AnnounceEvent::stopped) return 0;  // never seen: nothing to close
    position = insert(key, spot.tag, spot.home);
    if (position == absent) return 0;  // admit() said full first; the caller refused it
  }
  Entry* held = &entry(position);
  const bool fresh_baseline = first_sighting || request.event == AnnounceEvent::started;
  if (!held->dirty()) {  // a new pending delta: its credits start from here
    held->from_uploaded = fresh_baseline ? request.uploaded_bytes : held->baseline_uploaded;
    held->from_downloaded = fresh_baseline ? request.downloaded_bytes : held->baseline_downloaded;
    held->from_announced_unix_s = fresh_baseline ? now_unix_s : held->announced_unix_s;
    // What came before the from-baseline is this session's, owed by another node's batch or by
    // nobody, unless a `started` set it (now, or as the baseline held).
    held->from_continues =
        fresh_baseline ? request.event != AnnounceEvent::started : !held->baseline_starts_session;
  }
  Pending& pending = mark_dirty(position, *held);
  held->upload_scale = static_cast<double>(torrent.upload_factor) * member.upload_factor;
  held->download_scale = static_cast<double>(torrent.download_factor) * member.download_factor;
  if (fresh_baseline) {
    // A new baseline, nothing credited (a restarted client or a re-added torrent).
    held->closed = false;
  } else {
    const std::uint32_t elapsed_s = std::min(now_s - held->announced_s, limits_.peer_timeout_s);
    if (held->seeding) {
      pending.seed_s = add_capped(pending.seed_s, elapsed_s);
    } else {
      pending.leech_s = add_capped(pending.leech_s, elapsed_s);
    }
    // Each counter on its own: one that went down resets its baseline and credits nothing.
    if (request.uploaded_bytes >= held->baseline_uploaded) {
      const std::uint64_t real = request.uploaded_bytes - held->baseline_uploaded;
      pending.uploaded_real += real;
      pending.uploaded += store::credited_bytes(real, held->upload_scale);
    }
    if (request.downloaded_bytes >= held->baseline_downloaded) {
      const std::uint64_t real = request.downloaded_bytes - held->baseline_downloaded;
      pending.downloaded_real += real;
      pending.downloaded += store::credited_bytes(real, held->download_scale);
    }
  }
  held->baseline_uploaded = request.uploaded_bytes;
  held->baseline_downloaded = request.downloaded_bytes;
  held->announced_s = now_s;
  held->announced_unix_s = now_unix_s;
  held->seeding = request.left_bytes == 0;
  held->completed = held->completed || request.event == AnnounceEvent::completed;
  held->closed = request.event == AnnounceEvent::stopped;
  held->baseline_starts_session = request.event == AnnounceEvent::started;
  held->remote = false;
  if (!held->closed) return 0;
  Stopping& stop = set_stop(*held);
  if (ticket_stopped && stop.ticket == 0) stop.ticket = ++tickets_issued_;
  return stop.ticket;
}

bool Ledger::restore(const store::Baseline& baseline, std::uint32_t now_s,
                     std::uint64_t now_unix_s) noexcept {
  std::uint32_t position = find(baseline.key);
  if (position == absent) position = insert(baseline.key);
  if (position == absent) return false;
  Entry* held = &entry(position);
  held->baseline_uploaded = baseline.uploaded;
  held->baseline_downloaded = baseline.downloaded;
  held->seeding = baseline.seeding;
  held->baseline_starts_session = false;
  set_announced(*held, baseline.announced_unix_s, now_s, now_unix_s);
  return true;
}

// The session stops at the entry's baseline (a `stopped`, or an expiry): the pending delta
// carries where, even if another session starts before it is handed on. Its sums move to a
// Stopping record the first time.
Ledger::Stopping& Ledger::set_stop(Entry& held) noexcept {
  TYTO_ASSERT(held.dirty());
  if (!held.stopping) {
    const std::uint32_t sums_index = held.pending_index;
    held.pending_index = stoppings_.take();
    stoppings_[held.pending_index].sums = pendings_[sums_index];
    pendings_.give_back(sums_index);
    held.stopping = true;
  }
  Stopping& stop = stoppings_[held.pending_index];
  stop.stopped_unix_s = held.announced_unix_s;
  stop.stopped_uploaded = held.baseline_uploaded;
  stop.stopped_downloaded = held.baseline_downloaded;
  return stop;
}

void Ledger::set_announced(Entry& held, std::uint64_t announced_unix_s, std::uint32_t now_s,
                           std::uint64_t now_unix_s) noexcept {
  held.announced_unix_s = announced_unix_s;
  // Seconds since that announce, on the shard clock (never before its start).
  const std::uint64_t ago_s = now_unix_s > announced_unix_s ? now_unix_s - announced_unix_s : 0;
  held.announced_s = ago_s >= now_s ? 0 : now_s - static_cast<std::uint32_t>(ago_s);
}

Ledger::Adopted Ledger::adopt(const store::Baseline& baseline, bool closed, std::uint32_t now_s,
                              std::uint64_t now_unix_s) noexcept {
  std::uint32_t position = find(baseline.key);
  if (position == absent) {
    if (closed) return Adopted::unchanged;  // nothing here to close
    position = insert(baseline.key);
    if (position == absent) return Adopted::full;
  } else {
    const Entry& held = entry(position);
    const bool same = baseline.announced_unix_s == held.announced_unix_s &&
                      baseline.uploaded == held.baseline_uploaded &&
                      baseline.downloaded == held.baseline_downloaded;
    if ((same && !closed) ||
        !store::baseline_not_older(baseline.announced_unix_s, baseline.uploaded,
                                   baseline.downloaded, held.announced_unix_s,
                                   held.baseline_uploaded, held.baseline_downloaded)) {
      return Adopted::unchanged;
    }
  }
  Entry& held = entry(position);
  if (closed && !held.dirty()) {
    erase(position);
    return Adopted::adopted;
  }
  held.baseline_uploaded = baseline.uploaded;
  held.baseline_downloaded = baseline.downloaded;
  held.seeding = baseline.seeding;
  held.baseline_starts_session = false;  // another node's: a session's start is not replicated
  set_announced(held, baseline.announced_unix_s, now_s, now_unix_s);
  held.closed = closed;  // dirty and closed: leaves once its pending delta was handed on
  held.remote = true;
  return Adopted::adopted;
}

store::AccountingDelta Ledger::take_delta(const Entry& held) const noexcept {
  const Pending& summed = pending_of(held);
  store::AccountingDelta delta;
  delta.key = held.key();
  delta.uploaded = summed.uploaded;
  delta.downloaded = summed.downloaded;
  delta.uploaded_real = summed.uploaded_real;
  delta.downloaded_real = summed.downloaded_real;
  delta.seed_s = summed.seed_s;
  delta.leech_s = summed.leech_s;
  delta.baseline_uploaded = held.baseline_uploaded;
  delta.baseline_downloaded = held.baseline_downloaded;
  delta.announced_unix_s = held.announced_unix_s;
  delta.from_uploaded = held.from_uploaded;
  delta.from_downloaded = held.from_downloaded;
  delta.from_announced_unix_s = held.from_announced_unix_s;
  delta.from_continues = held.from_continues;
  if (held.stopping) {
    const Stopping& stop = stoppings_[held.pending_index];
    delta.stopped_unix_s = stop.stopped_unix_s;
    delta.stopped_uploaded = stop.stopped_uploaded;
    delta.stopped_downloaded = stop.stopped_downloaded;
  }
  delta.upload_scale = held.upload_scale;
  delta.download_scale = held.download_scale;
  delta.seeding = held.seeding;
  delta.completed = held.completed;
  delta.closed = held.closed;
  return delta;
}

// The delta was handed on: its record goes back to its pool.
void Ledger::clear_delta(std::uint32_t position, Entry& held) noexcept {
  TYTO_ASSERT(held.dirty());
  if (held.stopping) {
    stoppings_.give_back(held.pending_index);
  } else {
    pendings_.give_back(held.pending_index);
  }
  held.pending_index = Entry::no_pending;
  held.stopping = false;
  held.completed = false;
  if (held.closed) erase(position);
}

void Ledger::expire_step(std::uint32_t now_s) noexcept {
  if (positions_used_ == 0) return;
  for (std::uint32_t visited = 0; visited < expire_positions_per_step; ++visited) {
    if (expire_cursor_ >= positions_used_) expire_cursor_ = 0;
    const std::uint32_t position = expire_cursor_++;
    Entry& held = entry(position);
    if (!held.live || held.closed || now_s - held.announced_s <= limits_.peer_timeout_s) continue;
    if (held.remote) {  // the node it announced at last closes it in the database
      if (!held.dirty()) erase(position);
      continue;
    }
    held.closed = true;
    mark_dirty(position, held);
    set_stop(held);
  }
}

}  // namespace tyto::shard
