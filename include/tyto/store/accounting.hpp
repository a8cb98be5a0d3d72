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
  // from_announced_unix_s 0 when nothing was (a first sighting). A cluster's backends compare it
  // with the stored baseline so that credits another node committed meanwhile are not counted
  // again (arbitrate_delta below).
  std::uint64_t from_uploaded = 0;
  std::uint64_t from_downloaded = 0;
  std::uint64_t from_announced_unix_s = 0;
  // The from-baseline is a first sighting on this node (not `started`): the peer may have
  // announced on another node before (arbitrate_delta credits from that node's baseline on).
  bool from_first_sighting = false;
  // Credited bytes per real byte (the torrent's factor × the user's), for that extension.
  double upload_scale = 1.0;
  double download_scale = 1.0;
  bool seeding = false;                // left = 0 at that announce
  bool completed = false;              // a snatch: counted once per (user, torrent) by the sink
  bool closed = false;                 // stopped or expired: the baseline row is deleted
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
// the baseline it holds; a peer that moved between nodes may have had a newer baseline committed
// by another node (its credits up to there counted) that this node had not received yet. Applied
// inside the batch's transaction, with `stored` the tyto_peers row for the key (nullptr: none):
// when stored is newer than the delta's from-baseline (not older, and not that very baseline;
// from_announced_unix_s 0, unknown as in a batch recovered from the journal, is older than any),
// only what the peer moved past the stored
// baseline is credited, each counter on its own (credited bytes scaled in proportion to the real
// ones, so the factors are kept), and the times are cut to the seconds after the stored
// announce. Never credits more than the delta did.
// The other way round: a delta whose from-baseline is a first sighting here (the peer came from
// another node before its baseline did) and older stored baseline, not older than window_s
// before the sighting: what the peer moved from the stored baseline to the sighting is credited
// too (each counter that did not go down, scaled by the delta's factors; the seconds between
// them as seeding or leeching by the stored role), as the node that sighted it never could.
// Returns whether the delta changed.
bool arbitrate_delta(AccountingDelta& delta, const Baseline* stored,
                     std::uint32_t window_s = 0) noexcept;
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

// The sink's effect of one delta, which every backend applies exactly this way:
//  - tyto_transfers (user_id, torrent_id): uploaded, downloaded, uploaded_real, downloaded_real,
//    seed_s, leech_s added; completed_at set to announced_unix_s if completed and still unset;
//    last_announce_at = max(last_announce_at, announced_unix_s). The row is created if absent.
//  - tyto_user_totals (user_id): uploaded and downloaded (credited) added.
//  - tyto_peers (user_id, torrent_id, peer_id): the baseline set; deleted if closed; in both
//    cases only when the delta's baseline is not older than the stored row's
//    (baseline_not_older, on announced_at, uploaded and downloaded; the same rule in SQL).
//  With batch.arbitrate, each delta first goes through arbitrate_delta against the stored row.
// And per completion delta: tyto_completions (info_hash, 40 lowercase hex digits): completed
// increased by count (the row created if absent).
// And once per batch: tyto_batches (node, shard) gets the batch's sequence.

}  // namespace tyto::store
