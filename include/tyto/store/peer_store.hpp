// PeerStore: the peer-store role of the storage boundary (DESIGN §9). A shard keeps the swarms it
// owns in one PeerStore and reaches them only through this interface, on core's plain request and
// reply types: a backend author implements it from this header alone, knowing nothing of rings,
// sockets or shards. swarm::SwarmStore is the default (and the fast) implementation;
// tests/support/reference_store.hpp is a deliberately simple second one that runs the shard's
// tests, so the boundary is proven by use.
//
// Contract for every implementation:
//  - One store per shard, used only on that shard's thread (no locking), except that
//    append_snapshot may be called from another thread once the shard has stopped.
//    append_snapshot_slice runs on the shard's thread, a bounded slice per loop turn.
//  - announce, apply_replica, scrape, prefetch, expire_step and the read-outs are the announce
//    path: noexcept, no blocking call, no outside round trip, no general-heap allocation in
//    steady state.
//  - Time is the caller's coarse clock in seconds (now_s), never read by the store itself.
//  - Expiry follows from a peer's last announce and now_s alone: no read (an announce's counts
//    and peers, scrape, statistics, top lists) shows a peer past the timeout as the store
//    counts it, whenever its background expiry comes by. Cluster nodes holding the same peers
//    then answer the same and drop a silent peer at the same moment (StoreLimits::
//    unix_at_zero_s aligns a store's time units).
//  - Every limit in StoreLimits is enforced and every refusal counted in StoreCounters.
//  - A swarm's completed count outlives its peers for limits.completed_keep_s (scrape still
//    says `downloaded`), then the swarm goes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tyto/core/counter_field.hpp"
#include "tyto/core/hash.hpp"
#include "tyto/core/limits.hpp"
#include "tyto/core/replica.hpp"
#include "tyto/core/request.hpp"
#include "tyto/core/result.hpp"

namespace tyto::store {

struct StoreLimits {
  std::uint32_t swarms_max = limits::swarms_per_shard_max;
  std::uint32_t peers_per_swarm_max = limits::peers_per_swarm_max;
  std::uint32_t peer_timeout_s = limits::peer_timeout_s;
  // Per-swarm statistics count in windows of this length (the announce interval: "per interval").
  std::uint32_t statistics_window_s = limits::announce_interval_s;
  // How long a swarm with completions outlives its last peer (limits.hpp); it counts against
  // swarms_max meanwhile.
  std::uint32_t completed_keep_s = limits::completed_keep_s;
  // The caller's clock: the (frame) Unix second its now_s 0 stands for (core/clock.hpp
  // TimeFrame). Expiry depends on nothing but a peer's last announce and now_s (see the
  // contract), and a store that counts time in coarser units aligns them to Unix time, so every
  // cluster node drops a peer at the same moment, whenever each started.
  std::uint64_t unix_at_zero_s = 0;
};

// Every field is a std::uint64_t, exported by its row (core/counter_field.hpp).
struct StoreCounters {
  std::uint64_t swarms = 0;
  std::uint64_t peers_ipv4 = 0;
  std::uint64_t peers_ipv6 = 0;
  std::uint64_t seeders = 0;  // both families
  std::uint64_t leechers = 0;
  std::uint64_t announces = 0;
  std::uint64_t swarms_refused = 0;  // a new swarm over swarms_max
  std::uint64_t peers_refused = 0;   // a new peer over peers_per_swarm_max
  std::uint64_t peers_expired = 0;
  std::uint64_t swarms_freed = 0;
  // The longest single step of a swarm table growth (mapping the next index, an expiry step's
  // migration slice, unmapping the old one) or of a large peer set's class change (starting or
  // ending one, or a whole one of a set below staging, swarm/peer_set.hpp), in the shard
  // thread's CPU time, since the start; 0 for stores that do not grow.
  std::uint64_t index_growth_step_max_us = 0;

  static constexpr CounterField<StoreCounters> fields[] = {
      {&StoreCounters::swarms, "swarms", "swarms held", CounterKind::gauge},
      {&StoreCounters::peers_ipv4, "peers_ipv4", "IPv4 peers held", CounterKind::gauge},
      {&StoreCounters::peers_ipv6, "peers_ipv6", "IPv6 peers held", CounterKind::gauge},
      {&StoreCounters::seeders, "seeders", "seeders held", CounterKind::gauge},
      {&StoreCounters::leechers, "leechers", "leechers held", CounterKind::gauge},
      {&StoreCounters::announces, "store_announces",
       "announces given to the store (refused ones included)"},
      {&StoreCounters::swarms_refused, "swarms_refused", "new swarms refused: shard full"},
      {&StoreCounters::peers_refused, "peers_refused", "new peers refused: swarm full"},
      {&StoreCounters::peers_expired, "peers_expired", "peers expired"},
      {&StoreCounters::swarms_freed, "swarms_freed", "empty swarms freed"},
      {&StoreCounters::index_growth_step_max_us, "index_growth_step_max_us",
       "the longest single step of a swarm table or peer set growth since the start, in us of "
       "thread CPU time",
       CounterKind::maximum},
  };
};
static_assert(counter_fields_complete<StoreCounters>(), "each field has exactly one row in fields");

// Anomaly flags (README "Swarm statistics" documents each method and threshold). All but
// address_concentration are decided when a window closes, from that window's counters;
// address_concentration by the expiry sweep, which visits every swarm's peers anyway.
enum SwarmFlag : std::uint8_t {
  // The window's joins >= 32 and leechers now > 4 x max(8, moving average of leechers).
  leecher_surge = 1 << 0,
  // One IPv4 /24 or IPv6 /48 holds more than half of a family's peers (>= 16 of them).
  address_concentration = 1 << 1,
  // The window's unmatched completions (event=completed from a peer that was not a leecher of
  // the swarm: a new peer, or a seeder already) >= 8 and above the average leechers.
  completions_without_leechers = 1 << 2,
  // The window's announces >= 64 and > 4 x (peers + leaves): peers announcing far more often
  // than once per interval.
  announce_flood = 1 << 3,
};
inline constexpr const char* swarm_flag_names[] = {
    "leecher_surge", "address_concentration", "completions_without_leechers", "announce_flood"};

// One swarm's statistics as a statistics query sees them. A store that keeps no activity windows
// leaves those fields 0.
struct SwarmStatistics {
  InfoHash info_hash;
  std::uint32_t seeders = 0;
  std::uint32_t leechers = 0;
  std::uint32_t completed = 0;  // downloads ever ("downloaded")
  std::uint32_t age_s = 0;
  std::uint32_t window_s = 0;
  // The last complete window (rates are these per window_s) and the current, partial one.
  std::uint32_t announces_last_window = 0;
  std::uint32_t joins_last_window = 0;
  std::uint32_t leaves_last_window = 0;
  std::uint32_t announces_this_window = 0;
  std::uint32_t joins_this_window = 0;
  std::uint32_t leaves_this_window = 0;
  std::uint32_t unmatched_completions_this_window = 0;
  std::uint32_t leechers_average = 0;
  std::uint32_t prefix_share_permille = 0;  // majority /24 (/48) share, 0 when none
  std::uint8_t flags = 0;
};

enum class TopOrder : std::uint8_t { peers, seeders, leechers, completed, announces, churn };
inline constexpr const char* top_order_names[] = {"peers",     "seeders",   "leechers",
                                                  "completed", "announces", "churn"};
// The value a top list sorts by (descending).
std::uint64_t top_key(const SwarmStatistics& statistics, TopOrder order) noexcept;

struct Restored {
  std::uint64_t swarms = 0;
  std::uint64_t peers = 0;
};

// Where an incremental snapshot (PeerStore::append_snapshot_slice) goes on from. Each store
// gives the fields its own meaning; a fresh cursor (started false) starts a snapshot.
struct SnapshotCursor {
  bool started = false;
  std::uint64_t position = 0;    // the store's key space (SwarmStore: positions left to visit)
  std::uint32_t peers_done = 0;  // peers already written of the swarm being split
  InfoHash info_hash;            // that swarm (or the last swarm written)
  std::uint64_t swarms = 0;      // swarms begun so far (the file header's count)
};

// An announce's swarm lookup begun ahead of it (the read-ahead over a batch): the store's keyed
// hash of the info_hash, worked out once by start_lookup() and carried into announce() so the
// info_hash is hashed once per announce. Made by the store that applies the announce, on its
// shard (its secret; never from another shard or from the wire). prefetch() may add where it saw
// the swarm's record: a hint announce() checks (the record's info_hash) before it trusts it, so
// a record moved or erased since costs one index probe, never a wrong swarm.
struct SwarmLookup {
  static constexpr std::uint32_t no_position = UINT32_MAX;
  std::uint64_t hash = 0;
  std::uint32_t position_hint = no_position;
};

class PeerStore {
 public:
  virtual ~PeerStore() = default;

  // Applies one announce at now_s (BEP 3/15 rules: event=stopped removes the peer and selects
  // nothing; left = 0 makes a seeder; completed counts once per peer), then writes up to
  // peers_out.size() / wire_size peers of the requester's family into peers_out: never mixed
  // families, never the requester, seeders get leechers only. Counts are after the announce.
  virtual AnnounceReply announce(const AnnounceRequest& request, std::uint32_t now_s,
                                 std::span<std::uint8_t> peers_out) noexcept = 0;
  // The same, with the lookup start_lookup(request.info_hash) returned (on this store).
  virtual AnnounceReply announce(const AnnounceRequest& request, const SwarmLookup& lookup,
                                 std::uint32_t now_s,
                                 std::span<std::uint8_t> peers_out) noexcept = 0;
  // Applies one change another cluster node made (issue 20) as if announced here at now_s, with
  // no reply. Another node's announces are not this store's: StoreCounters::announces and the
  // swarm's statistics windows (announces, joins, leaves, unmatched completions) do not count
  // them, so the anomaly flags judge what this node's clients do. Limits, refusals and the
  // gauges (swarms, peers, seeders, leechers) are as for announce.
  //  - peer: last announced at announced_s (a second after now_s counts as now_s: clock skew
  //    between nodes); past the timeout is `expired` (nothing changes). Otherwise the peer is
  //    added (and its swarm, if absent) with the change's role, last announced then.
  //    An existing peer takes the role and that time unless its own last announce is more
  //    recent (in whole stamp units, SwarmStore): then the change is older news and the peer
  //    stays as it is (`unchanged`); nothing ever makes a peer older. Its completion-counted
  //    mark is kept either way (a new peer has none).
  //  - peer_removed: removes the peer (`unchanged` if absent); an emptied swarm goes as after a
  //    local event=stopped (kept for completed_keep_s if it has completions).
  //  - completed: adds completed_count to the swarm's completed count, saturating; an absent
  //    swarm is made to hold it (within swarms_max) and kept as any swarm with completions and
  //    no peers; with completed_keep_s = 0 an absent swarm is not made (`unchanged`).
  virtual ReplicaResult apply_replica(const ReplicaChange& change,
                                      std::uint32_t now_s) noexcept = 0;
  // A swarm's counts at now_s (expired peers gone first, see the contract).
  virtual ScrapeEntry scrape(const InfoHash& info_hash, std::uint32_t now_s) noexcept = 0;
  // Read-ahead before a batch of announces (at most prefetch_batch_max): start_lookup() as each
  // is queued (the hash, and the first load of its lookup), then prefetch() over the batch
  // (loads what their lookups read next). Both change nothing; a store may ignore the hint.
  static constexpr std::size_t prefetch_batch_max = 64;
  virtual SwarmLookup start_lookup(const InfoHash& info_hash) const noexcept = 0;
  virtual void prefetch(std::span<SwarmLookup> lookups) const noexcept = 0;
  // About once a second: remove peers silent for longer than peer_timeout_s (a bounded slice of
  // the work per call, never a pause proportional to the store's size).
  virtual void expire_step(std::uint32_t now_s) noexcept = 0;

  virtual const StoreCounters& counters() const noexcept = 0;
  virtual std::size_t memory_bytes() const noexcept = 0;
  // The swarm limit in force (at most limits.swarms_max; less where memory could not be had).
  virtual std::uint32_t swarms_max() const noexcept = 0;

  // Operators' queries, not the announce path. statistics: false when the swarm is absent.
  virtual bool statistics(const InfoHash& info_hash, std::uint32_t now_s,
                          SwarmStatistics& out) noexcept = 0;
  // The best out.size() swarms by `order`, best first; returns how many were written.
  virtual std::uint32_t top(TopOrder order, std::uint32_t now_s,
                            std::span<SwarmStatistics> out) noexcept = 0;

  // Snapshots, in the record format of src/swarm/snapshot.cpp (app/snapshot frames and
  // checksums them): append every swarm and its peers, returning how many swarms; restore the
  // swarms `keep` accepts, aging every peer by extra_age_s (the records were cut at now_s -
  // extra_age_s: a store that counts in units gives each peer the unit it had at the cut),
  // skipping what is past the timeout or
  // over the limits. A record of a swarm the store holds already (another record of it, or a
  // warm start while replicated changes made swarms: apply_replica) is merged: the record's
  // peers the swarm lacks are added, a peer it holds stays as it is (never replaced, never
  // aged, never twice), and the completed count is the larger of the two. Restored counts what
  // was added. Records are hostile input: a structure error returns its reason and leaves
  // what was restored before it.
  virtual std::uint64_t append_snapshot(std::uint32_t now_s,
                                        std::vector<std::uint8_t>& out) const = 0;
  virtual Result<Restored, std::string> restore_snapshot(
      std::span<const std::uint8_t> records, std::uint32_t now_s, std::uint32_t extra_age_s,
      const std::function<bool(const InfoHash&)>& keep) = 0;

  // Periodic snapshots, on the owner's thread between announces: appends the next slice of the
  // records (the same format) to `out`, about budget_bytes of them, and returns true once every
  // swarm has been visited. The snapshot is fuzzy: swarms change between slices, so a record
  // holds the swarm as it was at its own slice. Guarantees, whatever announces, expiry and table
  // growth do between slices:
  //  - every swarm present from the first slice to the last is written (possibly changed);
  //  - a swarm may be written more than once, and a large one split over several records of the
  //    same info_hash: restore_snapshot merges records of one info_hash (a peer listed twice is
  //    kept once), so duplicates cost bytes, never correctness;
  //  - a call's work is bounded by budget_bytes (plus one record header and one peer for
  //    SwarmStore, which splits a swarm; a store that does not split may overshoot by one
  //    swarm, as the reference store does), never by the store's size.
  virtual bool append_snapshot_slice(SnapshotCursor& cursor, std::uint32_t now_s,
                                     std::vector<std::uint8_t>& out,
                                     std::size_t budget_bytes) const = 0;
};

// How a shard makes its store: the shard's limits, the process's hash secret (keyed tables: never
// an unkeyed hash of attacker-chosen info_hashes) and a per-shard random seed.
using PeerStoreFactory = std::function<std::unique_ptr<PeerStore>(
    const StoreLimits& limits, const HashSecret& secret, std::uint64_t random_seed)>;

// The default: the in-memory swarm::SwarmStore.
std::unique_ptr<PeerStore> make_memory_peer_store(const StoreLimits& limits,
                                                  const HashSecret& secret,
                                                  std::uint64_t random_seed);

}  // namespace tyto::store
