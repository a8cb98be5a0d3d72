// The accounting-sink role of the storage boundary (DESIGN §9): what a private tracker credits,
// as plain types. The owning shard derives a delta per announce against the peer's baseline (its
// last reported counters, keyed by (user, torrent, peer_id) — never by address, so a dual-stack
// client is one peer), keeps deltas summed until the storage bridge takes them, and the bridge
// writes them in batches through a backend (backend.hpp).
//
// The guarantee (README "Private tracker"): a credited byte is counted at most once, and nothing
// acknowledged is lost.
//  - At most once: every batch carries an id (node, shard, sequence). The backend records the
//    highest sequence applied per (node, shard) in the same transaction as the batch's rows and
//    skips a batch at or below it, so a batch retried after an unclear failure is applied once.
//  - Nothing lost: a delta's new baseline is written in the same transaction as its credit. A
//    crash before the commit loses both, and the peer's next announce re-derives the credit
//    against the older baseline the database still holds (baselines are loaded at start).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tyto/core/types.hpp"

namespace tyto::store {

// Who a peer is for accounting.
struct PeerKey {
  std::uint64_t user_id = 0;
  std::uint64_t torrent_id = 0;
  PeerId peer_id;
  friend bool operator==(const PeerKey&, const PeerKey&) = default;
};

// One peer's change since it was last handed on. Within one batch a PeerKey appears once (the
// bridge sums deltas of the same key: credits and times added, baseline and flags the latest).
struct AccountingDelta {
  PeerKey key;
  // Credited bytes (real bytes × the torrent's and the user's factors, rounded down).
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  // Real bytes, as the client reported them moving.
  std::uint64_t uploaded_real = 0;
  std::uint64_t downloaded_real = 0;
  // Seconds spent seeding / leeching since the previous announce (capped at the peer timeout).
  std::uint32_t seed_s = 0;
  std::uint32_t leech_s = 0;
  // The peer's baseline after this delta: its last reported counters.
  std::uint64_t baseline_uploaded = 0;
  std::uint64_t baseline_downloaded = 0;
  std::uint64_t announced_unix_s = 0;  // the latest announce this delta covers
  // The baseline the credits were derived against (before this delta's first announce):
  // from_announced_unix_s 0 when unknown (a batch recovered from a version-1/2 journal record).
  // A cluster's backends compare it with the stored baseline so that credits another node
  // committed meanwhile are not counted again, and so that what the peer moved between a stored
  // baseline and this one is credited once (arbitrate_delta below).
  std::uint64_t from_uploaded = 0;
  std::uint64_t from_downloaded = 0;
  std::uint64_t from_announced_unix_s = 0;
  // The from-baseline continues the client's session (neither it nor the announce that set the
  // baseline it was derived from was `started`): what the peer moved before it, since an older
  // stored baseline, is real traffic another node may still owe (arbitrate_delta bridges it).
  bool from_continues = false;
  // The latest stop this delta covers (a `stopped`, or the peer's expiry; stopped_unix_s 0:
  // none), with the counters it stopped at. A session may stop and another start within one
  // delta: a cluster's store keeps where the old one stopped (Baseline::stopped_unix_s).
  std::uint64_t stopped_unix_s = 0;
  std::uint64_t stopped_uploaded = 0;
  std::uint64_t stopped_downloaded = 0;
  // Credited bytes per real byte (the torrent's factor × the user's), for that extension.
  double upload_scale = 1.0;
  double download_scale = 1.0;
  bool seeding = false;                // left = 0 at that announce
  bool completed = false;              // a snatch: counted once per (user, torrent) by the sink
  bool closed = false;                 // stopped or expired: the baseline row is deleted
  // Set by arbitrate_delta, never sent: the delta belongs to a session that stopped at or before
  // the stored row's baseline (a tombstone, or a later session's), so its baseline must not
  // replace the row's, whatever its counters say.
  bool keeps_stored_baseline = false;
};

struct BatchId {
  std::string node;  // the tyto node that derived the deltas (storage.node)
  std::uint32_t shard = 0;
  std::uint64_t sequence = 0;  // 1, 2, ... per (node, shard); never reused
};

// Completions a torrent's owner shard counted since it last handed them on (public and private
// mode alike, README "Completed counts"): an announce with event=completed from a peer not
// counted before. Keyed by info_hash, not torrent_id: public torrents have no catalogue row.
struct CompletionDelta {
  InfoHash info_hash;
  std::uint64_t count = 0;  // > 0
  friend bool operator==(const CompletionDelta&, const CompletionDelta&) = default;
};

struct AccountingBatch {
  BatchId id;
  std::vector<AccountingDelta> deltas;  // sorted by (user_id, torrent_id, peer_id)
  // Sorted by info_hash, each once; written in the batch's transaction, so a batch applied at
  // most once adds each completion at most once.
  std::vector<CompletionDelta> completions{};
  // Several tyto nodes credit the same peers (a cluster, README "Cluster"): each delta is
  // arbitrated against the baseline stored when the batch is applied (arbitrate_delta).
  bool arbitrate = false;
  // With arbitrate: how old a stored baseline a first sighting may be credited from (the peer
  // timeout; older, the peer had expired). 0: never.
  std::uint32_t arbitrate_window_s = 0;
};

// A torrent's persisted completed count (tyto_completions), loaded at start: a scrape's
// `downloaded` is at least this much, whether or not the swarm has peers.
struct CompletionCount {
  InfoHash info_hash;
  std::uint64_t completed = 0;
  friend bool operator==(const CompletionCount&, const CompletionCount&) = default;
};

// A persisted baseline (tyto_peers), loaded at start so the next announce derives against it.
struct Baseline {
  PeerKey key;
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t announced_unix_s = 0;
  bool seeding = false;
  // A cluster's tombstone (batch.arbitrate): the peer stopped or expired here. Kept for
  // closed_baseline_keep_s so that a late batch of another node is still cut against it; never
  // loaded (load_baselines) and never bridged from (its session ended).
  bool closed = false;
  // The peer's last stop (stopped_unix_s 0: none), from the deltas' stops (AccountingDelta::stopped_unix_s; a closed delta from an earlier release's
  // journal stops at its baseline), the latest by time: kept when a new session replaces the
  // tombstone, or starts within the delta that stopped the old one, so that a late batch of the
  // session that stopped is still cut against where it stopped (arbitrate_delta).
  std::uint64_t stopped_unix_s = 0;
  std::uint64_t stopped_uploaded = 0;
  std::uint64_t stopped_downloaded = 0;
};

// Credited bytes: real × scale (the torrent's factor × the user's), rounded down. Factors are
// checked to [0, 100] by the backends, so the product stays finite; it is capped at 2^62 all
// the same.
inline std::uint64_t credited_bytes(std::uint64_t real, double scale) noexcept {
  const double scaled = static_cast<double>(real) * scale;
  constexpr double cap = 4611686018427387904.0;  // 2^62
  if (!(scaled > 0)) return 0;
  return scaled >= cap ? std::uint64_t{1} << 62 : static_cast<std::uint64_t>(scaled);
}

// Arbitration between nodes (README "Cluster", private mode). Each node derives credits against
// the baseline it holds, which may be ahead of or behind the stored one (tyto_peers): a peer that
// moved between nodes may have had a newer baseline committed by another node (its credits up to
// there counted) that this node had not received yet, or this node may have received one (or
// sighted the peer first) whose batch has not been committed yet. Applied inside the batch's
// transaction, with `stored` the tyto_peers row for the key (nullptr: none), so that each span of
// a client's counters is credited once, in whichever order the nodes' batches commit:
//  - Stored newer than the delta's from-baseline (not older, and not that very baseline;
//    from_announced_unix_s 0, unknown as in a batch recovered from an old journal record, is
//    older than any): only what the peer moved past the stored baseline is credited, each counter
//    on its own (credited bytes scaled in proportion to the real ones, so the factors are kept),
//    and the times are cut to the seconds after the stored announce. Never credits more than the
//    delta did.
//  - Stored older than the from-baseline, the from-baseline continuing the session
//    (from_continues), the stored row not a tombstone, and not older than window_s before it:
//    the span between them is owed by a batch not committed yet (another node's, holding the
//    client's previous announces) or by nobody (this node sighted the peer before its baseline
//    travelled). It is credited here, now, from the stored baseline to the from-baseline (each
//    counter that did not go down, by the delta's factors; the seconds between them as seeding or
//    leeching by the stored role), and the owing batch, when it lands, finds a newer stored
//    baseline and is cut by the rule above to nothing of that span. That is why a closed peer
//    leaves a tombstone rather than no row in a cluster (Baseline::closed).
//  - Before both, the peer's last stop (Baseline::stopped_unix_s; a tombstone's is its
//    baseline): a delta whose from-baseline comes before it (a session's start by time alone, its
//    counters start over; a continuing one as baseline_not_older orders them) belongs to the
//    session that stopped there and is cut against the stop by the first rule, whatever session
//    the row holds now; one after it, against a tombstone, is a later session's and unchanged.
// Returns whether the delta changed.
bool arbitrate_delta(AccountingDelta& delta, const Baseline* stored,
                     std::uint32_t window_s = 0) noexcept;
// The stop a delta carries: its own, or a closed delta's baseline (an earlier release's journal
// records no stop). stopped_unix_s 0: none.
struct StopPoint {
  std::uint64_t unix_s = 0;
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
};
inline StopPoint stop_of(const AccountingDelta& delta) noexcept {
  if (delta.stopped_unix_s != 0) {
    return {delta.stopped_unix_s, delta.stopped_uploaded, delta.stopped_downloaded};
  }
  if (delta.closed) return {delta.announced_unix_s, delta.baseline_uploaded, delta.baseline_downloaded};
  return {};
}

// How long a cluster keeps a closed peer's tombstone (a day): a node's batch that lands later
// than that (a journal replayed after a day down) may credit again what a tombstoned span's
// bridge credited.
inline constexpr std::uint64_t closed_baseline_keep_s = 86'400;
// Whether a baseline announced at `t` (Unix seconds) with counters (u, d) is at least as recent
// as one at (t0, u0, d0). Counters order a client's announces within its session (they only
// grow), and time orders sessions (a restarted client starts low again); nodes' announce times
// are whole seconds of clocks that may differ a little, so time decides only beyond
// baseline_clock_skew_s, and counters that grew decide only when not clearly earlier. The rule
// for every baseline that meets another: the tyto_peers upsert and the delete of a closed peer
// apply only when not older (another node's later announce of the same peer wins, whichever
// commits last), a ledger adopts a newer one (Ledger::adopt), and arbitrate_delta cuts against a
// stored one newer than its from-baseline.
inline constexpr std::uint64_t baseline_clock_skew_s = 2;
inline bool baseline_not_older(std::uint64_t t, std::uint64_t u, std::uint64_t d,
                               std::uint64_t t0, std::uint64_t u0, std::uint64_t d0) noexcept {
  return (u >= u0 && d >= d0 && t + baseline_clock_skew_s >= t0) ||
         t > t0 + baseline_clock_skew_s;
}
// Whether a delta's baseline (t, u, d) replaces the stored row (its stop already updated by the
// delta's): when not older, or when the row's session has ended (its stop not before its
// baseline: a tombstone, or a row another delta stopped) and the delta's last announce is not
// before the stop (a session started after it, however soon: its counters start low again).
// The same rule in the backends' SQL.
inline bool baseline_replaces(std::uint64_t t, std::uint64_t u, std::uint64_t d,
                              const Baseline& stored) noexcept {
  return baseline_not_older(t, u, d, stored.announced_unix_s, stored.uploaded, stored.downloaded) ||
         (stored.stopped_unix_s != 0 && stored.stopped_unix_s >= stored.announced_unix_s &&
          t >= stored.stopped_unix_s);
}

// The sink's effect of one delta, which every backend applies exactly this way:
//  - tyto_transfers (user_id, torrent_id): uploaded, downloaded, uploaded_real, downloaded_real,
//    seed_s, leech_s added; completed_at set to announced_unix_s if completed and still unset;
//    last_announce_at = max(last_announce_at, announced_unix_s). The row is created if absent.
//  - tyto_user_totals (user_id): uploaded and downloaded (credited) added.
//  - tyto_peers (user_id, torrent_id, peer_id): first the delta's stop (stop_of), if any, into
//    the row's stopped_* when later than the row's; then the baseline set (closed false) when it
//    replaces the row's (baseline_replaces; the same rule in SQL), or a new row with the stop;
//    if closed, the row deleted when not older (baseline_not_older), or with batch.arbitrate set
//    with closed true (a tombstone) when it replaces the row's.
//  With batch.arbitrate, each delta first goes through arbitrate_delta against the stored row
//  (a tombstone included), and tombstones announced more than closed_baseline_keep_s before the
//  batch is written are deleted first.
// And per completion delta: tyto_completions (info_hash, 40 lowercase hex digits): completed
// increased by count (the row created if absent).
// And once per batch: tyto_batches (node, shard) gets the batch's sequence.

}  // namespace tyto::store
