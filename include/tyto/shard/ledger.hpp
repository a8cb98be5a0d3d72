// Ledger: the owning shard's accounting table for the private tracker (store/accounting.hpp
// says what is credited and the guarantee). One entry per peer keyed by (user, torrent,
// peer_id), never by address: a client announcing over IPv4 and IPv6 with one peer_id is one
// entry and is credited once.
//
// Per announce (record): the first sighting, or `started`, sets the baseline and credits nothing;
// otherwise each counter is credited against its baseline on its own (a counter that went down —
// a client restart — resets that counter's baseline and credits nothing for it), scaled by the
// torrent's and the user's factors, the real bytes kept beside; the time since the previous
// announce accrues as seeding or leeching time (capped at the peer timeout); `completed` marks a
// snatch; `stopped` closes the entry. The change is summed into the entry's pending delta and the
// entry is marked dirty.
//
// Nothing acknowledged is dropped: flush() hands each dirty entry's pending delta to the storage
// bridge and clears it only when the bridge took it; what the bridge has no room for stays summed
// in the entry (never replaced) and is offered again next turn. A closed entry leaves the table
// once its last delta was taken. Entries are never evicted for room: when the table is full a
// new peer is refused (the announce gets a failure and nothing is recorded).
//
// Owner: its shard's thread only. Fixed capacity, allocated at construction (entries and pending
// deltas in chunks allocated as they are first used, the index whole); nothing allocates
// afterwards except a new chunk. The index hashes (user, torrent) only, so one user's peers in
// one torrent sit in one probe run: the per-(user, torrent) peer limit counts them without a
// second table.
//
// Memory (issue 19; the entry was 192 B with its pending delta inside): an entry holds what a
// peer needs between deltas (112 B). What only a pending delta needs sits in a record taken from
// a pool when the entry turns dirty and given back when the bridge took the delta: its credits
// and times (Pending, 40 B), or, once the delta holds a stop, those with the stop and its ticket
// (Stopping, 72 B; a stop is rare beside announces). A pool is as large as the most records ever
// in use at once, not as the table.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tyto/core/hash.hpp"
#include "tyto/core/open_addressing.hpp"
#include "tyto/core/request.hpp"
#include "tyto/store/accounting.hpp"
#include "tyto/store/catalogue.hpp"

namespace tyto::shard {

// Who announced, as the receiving shard found them by passkey (user_id 0: a public announce).
struct Member {
  std::uint64_t user_id = 0;
  float upload_factor = 1.0f;
  float download_factor = 1.0f;
};

struct LedgerLimits {
  std::uint32_t peers_max = 1u << 20;  // entries per shard
  std::uint32_t peers_per_user_torrent_max = 3;
  std::uint32_t peer_timeout_s = limits::peer_timeout_s;
};

enum class LedgerVerdict : std::uint8_t {
  ok,
  user_torrent_full,  // the user has peers_per_user_torrent_max active peers in the torrent
  full,               // the table holds peers_max entries
};

class Ledger {
 public:
  Ledger(const LedgerLimits& limits, const HashSecret& secret);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Where admit() found the key (or the run it would join): record() takes it instead of
  // hashing and probing again. Valid only until the ledger next changes (a record, flush,
  // expire_step or restore); between admit and record only the peer store runs.
  struct Spot {
    std::uint32_t position = UINT32_MAX;  // the entry's, or UINT32_MAX when the key has none
    std::uint32_t tag = 0;
    std::uint32_t home = 0;
  };

  // Before the announce is applied: may this peer be recorded? Known peers always may.
  LedgerVerdict admit(const store::PeerKey& key) const noexcept {
    Spot spot;
    return admit(key, spot);
  }
  LedgerVerdict admit(const store::PeerKey& key, Spot& spot) const noexcept {
    return admit(key, spot, tag_of(key));
  }
  // The same with the key's tag from prefetch() (the key hashed once; the index's size is fixed
  // at construction, so the tag's home is the same whenever admit runs).
  LedgerVerdict admit(const store::PeerKey& key, Spot& spot, std::uint32_t tag) const noexcept;
  // Read-ahead over a batch of announces (UdpFront::apply_queued): the index entry where the
  // key's run starts, so admit's first probe finds it in the cache. Returns the key's tag.
  std::uint32_t prefetch(const store::PeerKey& key) const noexcept {
    const std::uint32_t tag = tag_of(key);
    const auto capacity = static_cast<std::uint32_t>(index_.size());
    __builtin_prefetch(&index_[open_addressing::home_of(tag, capacity)]);
    return tag;
  }
  // After the peer store accepted the announce (admit said ok). now_s is the shard clock,
  // now_unix_s Unix time (written to the database). With `ticket_stopped`, a `stopped` that
  // closes an entry gets a durability ticket (returned; 0 otherwise): its delta carries it to
  // the storage bridge, which confirms it once the delta is durable. A second `stopped` before
  // the first was handed on shares its ticket.
  std::uint64_t record(const store::PeerKey& key, const AnnounceRequest& request,
                       const store::TorrentRow& torrent, const Member& member, std::uint32_t now_s,
                       std::uint64_t now_unix_s, bool ticket_stopped = false) noexcept {
    return record(locate(key), key, request, torrent, member, now_s, now_unix_s, ticket_stopped);
  }
  // The same with the spot admit(key, spot) gave for this key (one hash and probe in all).
  std::uint64_t record(const Spot& spot, const store::PeerKey& key, const AnnounceRequest& request,
                       const store::TorrentRow& torrent, const Member& member, std::uint32_t now_s,
                       std::uint64_t now_unix_s, bool ticket_stopped = false) noexcept;
  // At start, before any announce: a baseline persisted by an earlier run. Its announce time
  // maps onto the shard clock (now_s at now_unix_s). false when the table is full.
  bool restore(const store::Baseline& baseline, std::uint32_t now_s,
               std::uint64_t now_unix_s) noexcept;

  // A baseline another cluster node made durable (its batch committed or journalled): the peer
  // announced there last (README "Cluster", private mode). Taken when newer than what the entry
  // holds (store::baseline_not_older, and not the same baseline): the entry's baseline,
  // role and announce time become the other node's, so this node's next announce of the peer
  // derives against it and credits only what came after; a `closed` one closes the entry. An
  // entry made or updated this way is `remote`: it expires silently (the node where the peer
  // announced writes its close), and the per-(user, torrent) limit counts it, as the peer is
  // active in the cluster. Nothing is credited or marked dirty. A pending delta of this node's
  // own earlier announces stays and is handed on as usual.
  enum class Adopted : std::uint8_t { adopted, unchanged, full };
  Adopted adopt(const store::Baseline& baseline, bool closed, std::uint32_t now_s,
                std::uint64_t now_unix_s) noexcept;

  // Hands dirty entries' deltas to give(const AccountingDelta&, std::uint64_t ticket) -> bool,
  // oldest first, until it returns false (no room: the rest wait, summed) or `count_max` were
  // given. Returns how many.
  template <class Give>
  std::size_t flush(Give&& give, std::size_t count_max);
  // About once a second: closes entries silent for longer than the peer timeout (a slice per
  // call); their close reaches the database like a `stopped`, without credit.
  void expire_step(std::uint32_t now_s) noexcept;

  std::size_t entries_count() const noexcept { return entries_count_; }
  std::size_t dirty_count() const noexcept { return dirty_.size() - dirty_head_; }
  std::size_t capacity() const noexcept { return limits_.peers_max; }
  // Whether the entry for key exists (tests).
  bool holds(const store::PeerKey& key) const noexcept { return find(key) != absent; }

 private:
  struct Entry;
  struct Pending;
  struct Stopping;
  // Records in chunks allocated as they are first used; the latest given back is reused first
  // (warm). At most `capacity` in use; nothing allocates but a new chunk.
  template <class Record, std::uint32_t chunk_records>
  class Pool {
   public:
    explicit Pool(std::uint32_t capacity);
    std::uint32_t take() noexcept;  // a zeroed record's index
    void give_back(std::uint32_t index) noexcept;
    Record& operator[](std::uint32_t index) const noexcept {
      return chunks_[index / chunk_records][index % chunk_records];
    }

   private:
    std::vector<std::unique_ptr<Record[]>> chunks_;
    std::vector<std::uint32_t> free_;
    std::uint32_t used_ = 0;  // records ever handed out
  };
  static constexpr std::uint32_t chunk_entries = 4096;

  static constexpr std::uint32_t absent = UINT32_MAX;
  // The entry's position, or absent.
  std::uint32_t find(const store::PeerKey& key) const noexcept;
  Spot locate(const store::PeerKey& key) const noexcept;
  Entry& entry(std::uint32_t position) const noexcept;
  Pending& pending_of(const Entry& entry) const noexcept;      // the entry is dirty
  std::uint64_t ticket_of(const Entry& entry) const noexcept;  // the entry is dirty
  std::uint32_t tag_of(const store::PeerKey& key) const noexcept;
  std::uint32_t home(const store::PeerKey& key, std::uint32_t& tag) const noexcept;
  std::uint32_t insert(const store::PeerKey& key) noexcept;  // absent when full
  std::uint32_t insert(const store::PeerKey& key, std::uint32_t tag, std::uint32_t start) noexcept;
  void erase(std::uint32_t position) noexcept;
  // The entry's pending delta, taken from the pool (and the entry queued) if it had none.
  Pending& mark_dirty(std::uint32_t position, Entry& entry) noexcept;
  store::AccountingDelta take_delta(const Entry& entry) const noexcept;
  void clear_delta(std::uint32_t position, Entry& entry) noexcept;
  // The pending delta's stop: the baseline (its record moves to the Stopping pool). Returns the
  // record, for its ticket.
  Stopping& set_stop(Entry& entry) noexcept;
  // The announce time (Unix) and its place on the shard clock (never before the clock's start).
  static void set_announced(Entry& entry, std::uint64_t announced_unix_s, std::uint32_t now_s,
                            std::uint64_t now_unix_s) noexcept;

  LedgerLimits limits_;
  HashSecret secret_;
  std::vector<std::unique_ptr<Entry[]>> chunks_;
  // The pending deltas: one record per dirty entry, in one pool or the other (Entry::stopping).
  Pool<Pending, 1024> pendings_;
  Pool<Stopping, 256> stoppings_;
  std::vector<std::uint64_t> index_;  // (tag << 32) | (position + 1); 0 empty; ≤ half full
  std::vector<std::uint32_t> free_positions_;
  std::uint32_t positions_used_ = 0;  // positions ever handed out (free ones are reused first)
  std::size_t entries_count_ = 0;
  // Positions with a pending delta, oldest first, from dirty_head_ (a flush advances the head
  // instead of moving the rest forward each turn; the handed-on front is dropped once it is
  // half the vector, or when a push would otherwise reallocate).
  std::vector<std::uint32_t> dirty_;
  std::size_t dirty_head_ = 0;
  void drop_flushed() noexcept;
  std::uint32_t expire_cursor_ = 0;
  std::uint64_t tickets_issued_ = 0;
};

// Each dirty entry appears once in dirty_, so a flush visits each once. What every entry holds,
// dirty or not, packed to 112 B: the key without PeerKey's padding, the clock in its place.
struct Ledger::Entry {
  static constexpr std::uint32_t no_pending = UINT32_MAX;
  std::uint64_t user_id = 0;  // the key (store::PeerKey's fields)
  std::uint64_t torrent_id = 0;
  PeerId peer_id;
  std::uint32_t announced_s = 0;  // shard clock
  std::uint64_t baseline_uploaded = 0;
  std::uint64_t baseline_downloaded = 0;
  std::uint64_t announced_unix_s = 0;
  // The baseline the pending delta's credits start from (AccountingDelta::from_*), set when an
  // announce turns the entry dirty. Kept after the delta was handed on: a delta that an expiry
  // opens carries the last one's, as it did when these sat beside the credits.
  std::uint64_t from_uploaded = 0;
  std::uint64_t from_downloaded = 0;
  std::uint64_t from_announced_unix_s = 0;
  // The torrent's factor × the user's, at the last announce (exact: two floats' product fits a
  // double's 53 bits). Kept between deltas, for the delta an expiry opens.
  double upload_scale = 1.0;
  double download_scale = 1.0;
  // The pending delta's record (in stoppings_ when `stopping`, else in pendings_); no_pending:
  // clean.
  std::uint32_t pending_index = no_pending;
  bool live : 1 = false;      // in use
  bool stopping : 1 = false;  // the pending delta holds a stop
  bool seeding : 1 = false;
  bool completed : 1 = false;  // the pending delta's snatch (false while clean)
  bool closed : 1 = false;
  bool remote : 1 = false;          // last announced on another cluster node (adopt)
  bool from_continues : 1 = false;  // AccountingDelta::from_continues
  // Set by a `started` announce: nothing before it is owed.
  bool baseline_starts_session : 1 = false;

  bool dirty() const noexcept { return pending_index != no_pending; }
  store::PeerKey key() const noexcept { return {user_id, torrent_id, peer_id}; }
  bool holds(const store::PeerKey& key) const noexcept {
    return user_id == key.user_id && torrent_id == key.torrent_id && peer_id == key.peer_id;
  }
};
static_assert(sizeof(PeerId) == 20 && alignof(PeerId) == 1);  // announced_s fits after it

// A dirty entry's pending delta, summed since the bridge last took this entry's; zeroed when it
// is taken from its pool.
struct Ledger::Pending {
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t uploaded_real = 0;
  std::uint64_t downloaded_real = 0;
  std::uint32_t seed_s = 0;
  std::uint32_t leech_s = 0;
};

// A pending delta that holds a stop: kept until the delta is handed on, even when another session
// starts before (the stop and the new baseline travel in one delta).
struct Ledger::Stopping {
  Pending sums;
  // The latest stop (AccountingDelta::stopped_*).
  std::uint64_t stopped_unix_s = 0;
  std::uint64_t stopped_uploaded = 0;
  std::uint64_t stopped_downloaded = 0;
  // A `stopped` reply waits until this delta is durable (0: none). Only a stop has one.
  std::uint64_t ticket = 0;
};

template <class Give>
std::size_t Ledger::flush(Give&& give, std::size_t count_max) {
  std::size_t given = 0;
  while (dirty_head_ < dirty_.size() && given < count_max) {
    const std::uint32_t position = dirty_[dirty_head_];
    Entry& held = entry(position);
    if (!give(take_delta(held), ticket_of(held))) break;
    ++given;
    ++dirty_head_;
    clear_delta(position, held);
  }
  if (2 * dirty_head_ >= dirty_.size()) drop_flushed();
  return given;
}

}  // namespace tyto::shard
