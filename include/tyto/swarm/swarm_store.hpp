// SwarmStore: one shard's in-memory peer store (DESIGN §5, §9) — the default implementation of
// the PeerStore boundary. Callers see announce / scrape / expire_step on core's plain request and
// reply types, never the table, the peer sets or the arena.
//
// Swarm table: the 64-byte swarm records sit in one dense array, found through an
// open-addressing index of 8-byte entries {tag, position + 1} (after ankerl::unordered_dense):
//  - records: mapped once for swarms_max of them (address space only; pages become resident as
//    the array grows, so a growth never copies or re-touches a record). Erasing a swarm moves the
//    last record into its place. Dense records cost no slack per empty slot and make the sweep,
//    snapshots and top lists a walk over [0, count).
//  - index: tag = the high 32 bits of the keyed XXH3 hash (never unkeyed), position_plus_one
//    (0 = empty, so freshly mapped pages need no initialisation pass). Linear probing from
//    home = (tag × capacity) >> 32, backward-shift deletion (no tombstones), all in
//    core/open_addressing.hpp. Home and probe order come from the tag alone, so moving an
//    entry never reads its record. Growth by 1.5×
//    at 80 % load migrates a bounded number of entries per operation (lookups see both indexes
//    meanwhile; a migration step always stops on an empty entry, so no probe run straddles it).
//  - no growth step stalls a turn (issue 21): the next index is mapped at 70 % load and its
//    pages faulted in a few per insert before it is needed; the old index's migrated pages go
//    back to the kernel chunk by chunk as the migration passes them, and lookups never read
//    them. counters().index_growth_step_max_us is the longest step seen, this growth's or a large
//    peer set's class change (PeerSet stages those; the store times their rare steps).
//
// Ownership: one store per shard, used only on that shard's thread. Peer arrays live in the
// store's SlabArena; in steady state an announce makes no heap call.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tyto/core/arena.hpp"
#include "tyto/core/counter_field.hpp"
#include "tyto/core/hash.hpp"
#include "tyto/core/limits.hpp"
#include "tyto/core/owner.hpp"
#include "tyto/core/replica.hpp"
#include "tyto/core/request.hpp"
#include "tyto/core/result.hpp"
#include "tyto/store/peer_store.hpp"
#include "tyto/swarm/peer_set.hpp"

namespace tyto::swarm {

// The boundary's vocabulary, which this store implements.
using store::address_concentration;
using store::announce_flood;
using store::completions_without_leechers;
using store::leecher_surge;
using store::StoreCounters;
using store::StoreLimits;
using store::SwarmLookup;
using store::SwarmStatistics;
using store::TopOrder;

struct SwarmActivity {
  std::uint32_t created_s = 0;
  std::uint16_t window = 0;  // number (mod 2^16) of the window the current counters belong to
  std::uint16_t announces = 0;
  std::uint16_t joins = 0;                  // new peers
  std::uint16_t leaves = 0;                 // stopped or expired peers
  std::uint16_t unmatched_completions = 0;  // by peers not leeching here before (see below)
  std::uint16_t last_announces = 0;         // the previous window's counters
  std::uint16_t last_joins = 0;
  std::uint16_t last_leaves = 0;
  std::uint16_t leechers_average = 0;  // moving average of leechers at window ends (weight 1/4)
  std::uint8_t flags : 7 = 0;          // SwarmFlag bits
  // Not activity, a bit of room: the swarm has an IPv6 set (SwarmStore::ipv6_sets_).
  std::uint8_t has_ipv6 : 1 = 0;
  std::uint8_t prefix_share = 0;  // majority /24 (/48) share of peers in 1/255, 0 = none
};
static_assert(sizeof(SwarmActivity) == 24);
static_assert(announce_flood < (1 << 7), "SwarmFlag bits fit SwarmActivity::flags");

// The record: 64 bytes, the per-swarm memory cost besides its peers and index entry (at 10
// IPv4 peers a swarm, 6.4 of the bytes per peer). The IPv6 set, which most swarms lack, is not
// in it: SwarmStore keeps it in a side array by position, read only when has_ipv6 says so.
struct Swarm {
  InfoHash info_hash;
  std::uint32_t completed = 0;
  Ipv4Peers ipv4;
  SwarmActivity activity;
};
static_assert(sizeof(Swarm) == 64, "the record is the per-swarm memory cost");

class SwarmStore final : public store::PeerStore {
 public:
  SwarmStore(const StoreLimits& limits, const HashSecret& secret, std::uint64_t random_seed);
  ~SwarmStore() override;
  SwarmStore(const SwarmStore&) = delete;
  SwarmStore& operator=(const SwarmStore&) = delete;

  // Applies one announce at now_s, then writes up to peers_out.size() / wire_size peers of the
  // requester's family (never mixed, never the requester; seeders get leechers only) into
  // peers_out. Counts are after the announce. event=stopped removes the peer, selects nothing.
  AnnounceReply announce(const AnnounceRequest& request, std::uint32_t now_s,
                         std::span<std::uint8_t> peers_out) noexcept override;
  // The same with the lookup start_lookup() made: the info_hash is not hashed again.
  AnnounceReply announce(const AnnounceRequest& request, const SwarmLookup& lookup,
                         std::uint32_t now_s, std::span<std::uint8_t> peers_out) noexcept override;
  // A change another cluster node made (PeerStore's contract): as an announce without reply,
  // counted in no statistics window and not in counters().announces.
  ReplicaResult apply_replica(const ReplicaChange& change, std::uint32_t now_s) noexcept override;
  ScrapeEntry scrape(const InfoHash& info_hash, std::uint32_t now_s) noexcept override;

  // Read-ahead for a batch about to be served, so its cache misses overlap instead of coming
  // one after another. start_lookup: the keyed hash, and a load of the index entry where the
  // lookup begins. prefetch, over the batch: the records those entries name (remembered in
  // each lookup's position_hint, so announce() does not probe the index again), then the first
  // IPv4 peers of each (where a small swarm's lookup reads). Hints: change nothing in the store.
  // More than prefetch_batch_max are ignored.
  SwarmLookup start_lookup(const InfoHash& info_hash) const noexcept override;
  void prefetch(std::span<SwarmLookup> lookups) const noexcept override;
  // Incremental expiry; call about once a second. Sweeps the table in slices so the whole of it
  // is visited within peer_timeout_s / 4, removes peers silent for longer than peer_timeout_s
  // and frees empty swarms; trims the peer arena (SlabArena::trim).
  void expire_step(std::uint32_t now_s) noexcept override;

  const StoreCounters& counters() const noexcept override { return counters_; }
  // The swarm limit in force: limits.swarms_max, or fewer where the address space for that many
  // records could not be reserved (ulimit -v); new swarms beyond it are refused and counted.
  std::uint32_t swarms_max() const noexcept override { return limits_.swarms_max; }
  std::size_t memory_bytes() const noexcept override;
  const ArenaStats& arena_stats() const noexcept { return arena_.stats(); }  // the peers' blocks
  std::size_t swarms_count() const noexcept { return records_count_; }

  template <class Visit>  // visit(const InfoHash&, const ScrapeEntry&); not for the hot path
  void for_each_swarm(Visit&& visit) const {
    for (const Swarm& swarm : records()) visit(swarm.info_hash, entry_of(swarm));
  }

  // Statistics of one swarm (closing its window first, so flags are current); false if absent.
  bool statistics(const InfoHash& info_hash, std::uint32_t now_s,
                  SwarmStatistics& out) noexcept override;
  // This store's best out.size() swarms by `order`, best first; returns how many were written.
  // O(swarms): an operator's query, not for the hot path.
  std::uint32_t top(TopOrder order, std::uint32_t now_s,
                    std::span<SwarmStatistics> out) noexcept override;

  // Snapshots (src/swarm/snapshot.cpp; app/snapshot frames and checksums them). Every swarm
  // with its peers as records appended to `out`; returns the number of swarms. Reads only: any
  // thread may call it once the owning shard has stopped.
  std::uint64_t append_snapshot(std::uint32_t now_s, std::vector<std::uint8_t>& out) const override;
  // A bounded slice of the same records, on the owner's thread (PeerStore's contract; the
  // cursor's walk is explained in src/swarm/snapshot.cpp).
  bool append_snapshot_slice(store::SnapshotCursor& cursor, std::uint32_t now_s,
                             std::vector<std::uint8_t>& out,
                             std::size_t budget_bytes) const override;
  using Restored = store::Restored;
  // Reads records back, restoring the swarms `keep` accepts (each shard keeps its own) and
  // aging every peer by `extra_age_s` (the time the tracker was down); peers past the timeout
  // and swarms or peers over the limits are skipped. Structure errors leave the store with what
  // was restored before them. On the owner's thread (or a fresh store).
  Result<Restored, std::string> restore_snapshot(
      std::span<const std::uint8_t> records, std::uint32_t now_s, std::uint32_t extra_age_s,
      const std::function<bool(const InfoHash&)>& keep) override;

  void verify() const noexcept;  // O(n) consistency check for tests

 private:
  struct IndexEntry {
    std::uint32_t tag = 0;  // high 32 bits of the record's keyed hash
    // Its position in records_ + 1, so that 0 is the empty entry: zero pages need no pass.
    std::uint32_t position_plus_one = 0;
  };
  static_assert(sizeof(IndexEntry) == 8);
  struct IndexTraits {  // for core/open_addressing.hpp
    using Entry = IndexEntry;
    static bool is_empty(const IndexEntry& entry) noexcept { return entry.position_plus_one == 0; }
    static IndexEntry empty() noexcept { return {}; }
  };
  struct Index {
    IndexEntry* entries = nullptr;  // mapped: zero pages are empty entries
    std::uint32_t capacity = 0;
    std::uint32_t count = 0;
    std::span<IndexEntry> slots() const noexcept { return {entries, capacity}; }
  };

  std::span<Swarm> records() noexcept { return {records_, records_count_}; }
  std::span<const Swarm> records() const noexcept { return {records_, records_count_}; }
  ScrapeEntry entry_of(const Swarm& swarm) const noexcept;
  std::uint32_t position_of(const Swarm& swarm) const noexcept {
    TYTO_DEBUG_ASSERT(&swarm >= records_ && &swarm < records_ + records_count_);
    return static_cast<std::uint32_t>(&swarm - records_);
  }
  // The swarm's IPv6 set, or nullptr: the side array is read only for a swarm that has one.
  Ipv6Peers* ipv6_of(const Swarm& swarm) const noexcept {
    return swarm.activity.has_ipv6 ? ipv6_sets_[position_of(swarm)] : nullptr;
  }
  Ipv6Peers& make_ipv6(Swarm& swarm) noexcept;  // the swarm's IPv6 set, made on first use
  // A lookup that finds nothing sets *empty_slot (when asked) to the empty entry of current_
  // where its probe ended, or no_slot: an insert of that key before current_ changes (only
  // insert() starts a growth) goes there without probing again (find-or-insert).
  static constexpr std::uint32_t no_slot = UINT32_MAX;
  Swarm* find(const InfoHash& info_hash, std::uint64_t hash,
              std::uint32_t* empty_slot = nullptr) noexcept;
  const Swarm* find(const InfoHash& info_hash, std::uint64_t hash,
                    std::uint32_t* empty_slot = nullptr) const noexcept;
  // The swarm of a lookup whose prefetch saw its record (SwarmLookup::position_hint), checked,
  // else found through the index.
  Swarm* find(const InfoHash& info_hash, const SwarmLookup& lookup,
              std::uint32_t* empty_slot) noexcept;
  // The index and entry position that point at record `position` (which must exist).
  std::pair<Index*, std::uint32_t> entry_of_record(std::uint32_t position) noexcept;
  // empty_slot: what find() said for this key, or no_slot.
  Swarm* insert(const InfoHash& info_hash, std::uint64_t hash,
                std::uint32_t empty_slot = no_slot) noexcept;
  // A new swarm at now_s, or nullptr (counted in swarms_refused) when the shard holds swarms_max.
  Swarm* create(const InfoHash& info_hash, std::uint64_t hash, std::uint32_t now_s,
                std::uint32_t empty_slot = no_slot) noexcept;
  // Erases the swarm if it is empty and keeps no completed count.
  void erase_if_done(Swarm& swarm) noexcept;
  void erase(std::uint32_t position) noexcept;  // the last record moves into `position`
  void release_record_pages() noexcept;
  void free_swarm(Swarm& swarm) noexcept;
  void prepare_growth() noexcept;  // from 70 % load: maps and faults in next_
  void start_growth() noexcept;
  void migrate(std::uint32_t entries_budget) noexcept;
  // Whether `slot` of previous_ was migrated (empty for good, its page perhaps released).
  bool migrated(std::uint32_t slot) const noexcept;
  void release_migrated() noexcept;  // gives back [previous_released_, migrate_cursor_)
  void note_growth_step(std::int64_t start_ns) noexcept;  // start_ns: thread CPU time
  // Runs change() (an insert into or a removal from `peers`), timed as a growth step when the
  // set says it may start or end a class change (PeerSet::class_change_due).
  template <class Peers, class Change>
  auto peer_set_step(const Peers& peers, Change&& change) noexcept;
  void expire_due(Swarm& swarm, std::uint32_t now_s) noexcept;  // on first touch in a unit
  void expire_touch_step(Swarm& swarm) noexcept;  // a few of a large set's expired peers out
  void follow_expiry(const InfoHash& info_hash) noexcept;  // into expiring_, if room
  void expire_followed() noexcept;                         // the expiry step's share
  // The stamp of now_s, worked out once a second (a division) rather than per announce.
  std::uint8_t stamp_now(std::uint32_t now_s) noexcept {
    if (now_s != stamp_second_) {
      stamp_second_ = now_s;
      stamp_now_ = stamps_.stamp_of(now_s);
    }
    return stamp_now_;
  }
  bool sweep_swarm(Swarm& swarm, std::uint32_t now_s) noexcept;  // true: erase it
  bool keeps_completed(const Swarm& swarm) const noexcept;
  bool empty_expired(const Swarm& swarm, std::uint32_t now_s) const noexcept;
  std::uint16_t window_of(std::uint32_t now_s) const noexcept;
  void close_window(Swarm& swarm, std::uint32_t now_s) noexcept;  // when now_s is past it
  SwarmStatistics statistics_of(const Swarm& swarm, std::uint32_t now_s) const noexcept;
  std::uint64_t next_random() noexcept;

  ReplicaResult replica_peer(const ReplicaChange& change, std::uint32_t now_s) noexcept;
  ReplicaResult replica_removed(const ReplicaChange& change, std::uint32_t now_s) noexcept;
  ReplicaResult replica_completed(const ReplicaChange& change, std::uint32_t now_s) noexcept;
  template <class Peers>
  ReplicaResult upsert_replica(Swarm& swarm, Peers& peers, const ReplicaChange& change,
                               std::uint8_t announced, std::uint32_t now_s,
                               std::uint64_t& family_gauge) noexcept;

  template <class Peers>
  AnnounceReply apply(Swarm& swarm, Peers& peers, const AnnounceRequest& request,
                      std::uint32_t now_s, std::span<std::uint8_t> peers_out,
                      std::uint64_t& family_gauge) noexcept;

  StoreLimits limits_;
  StampClock stamps_;
  std::uint32_t stamp_second_ = 0;  // stamp_now()'s cache: now_s is never 0
  std::uint8_t stamp_now_ = 0;
  HashSecret secret_;
  std::uint64_t random_state_;
  SlabArena arena_;
  Swarm* records_ = nullptr;  // mapped for records_capacity_ swarms
  std::uint32_t records_capacity_ = 0;
  std::uint32_t records_count_ = 0;
  std::size_t records_resident_bytes_ = 0;  // high-water of the array since pages were released
  // IPv6 sets by record position. Invariant (verify() checks it): ipv6_sets_[p] is non-null
  // exactly when p < records_count_ and records_[p].activity.has_ipv6, and is then that
  // swarm's set (arena-allocated, never empty); it moves with its record (erase), and every other
  // entry is null, so a position a new record takes holds no set. Read only behind has_ipv6.
  // Mapped for records_capacity_ pointers, address space only: a page becomes resident when a
  // swarm among its 512 positions gets an IPv6 set, so a table of IPv4 swarms spends nothing
  // here, and one where IPv6 is common spends the 8 bytes a swarm the record's pointer cost.
  Ipv6Peers** ipv6_sets_ = nullptr;
  std::size_t ipv6_sets_resident_bytes_ = 0;  // high-water, as records_resident_bytes_
  Index current_;
  Index previous_;                       // being migrated into current_ (empty when not growing)
  Index next_;                           // mapped ahead of the growth, count 0 (else empty)
  std::uint32_t next_faulted_ = 0;       // entries of next_ whose pages were touched
  std::uint32_t prefault_inserts_ = 0;   // inserts since next_ was last touched
  std::uint32_t migrate_cursor_ = 0;     // next entry of previous_ to migrate
  std::uint32_t migrate_stop_ = 0;       // the empty entry where migration started and ends
  std::uint32_t previous_released_ = 0;  // previous_'s pages before it (from the start) released
  std::uint32_t sweep_cursor_ = 0;       // next record the expiry sweep visits
  // Swarms with a large set whose expired peers are being removed (expire_due).
  static constexpr std::uint32_t expiring_swarms_max = 16;
  std::array<InfoHash, expiring_swarms_max> expiring_{};
  std::uint32_t expiring_count_ = 0;
  std::uint32_t last_expire_s_ = 0;
  StoreCounters counters_;
  OwnerThread owner_;  // the shard's thread; debug builds check every operation
};

}  // namespace tyto::swarm
