// PendingDeltas: the storage thread's sums of one shard's accounting deltas not yet formed into
// a batch (README "Private tracker"), keyed by PeerKey: a delta for a key held already is summed
// into it (credits and times added, baseline and flags the latest). A batch takes them all, in
// the primary key's order (user_id, torrent_id, peer_id).
// Shape: a dense array of sums and an open-addressing index over it (keyed XXH3 of the key's
// 36 bytes, core/open_addressing.hpp), sorted only when a batch is formed. It replaced a
// std::map whose node allocation and 17-deep key compares per delta were the storage thread's
// largest cost after SQLite (perf: KeyLess alone 4 % of the process under the private bench).
// Owner: the storage thread. add() may allocate (growth by doubling), never per delta in
// steady state; take_sorted() keeps the arrays for the next batch up to 4096 rows and gives
// larger ones back (what a burst's batch left is not held per peer until the next burst); a
// burst's rows are sorted in place and handed over as the batch's array, not copied.
#pragma once

#include <cstdint>
#include <vector>

#include "tyto/core/hash.hpp"
#include "tyto/store/accounting.hpp"

namespace tyto::app {

// Sums `later` into `sum` (the same key): credits and times added, the rest the latest.
void merge_delta(store::AccountingDelta& sum, const store::AccountingDelta& later) noexcept;

class PendingDeltas {
 public:
  explicit PendingDeltas(const HashSecret& secret) : secret_(secret) {}

  // true: a new key (a new row); false: summed into the key's row.
  bool add(const store::AccountingDelta& delta);
  // Appends every row to `out` sorted by (user_id, torrent_id, peer_id), then empties itself.
  // May free (arrays over 4096 rows).
  void take_sorted(std::vector<store::AccountingDelta>& out);

  std::size_t size() const noexcept { return rows_.size(); }
  // Rows the arrays hold room for (tests: what take_sorted keeps).
  std::size_t capacity() const noexcept { return rows_.capacity(); }
  bool empty() const noexcept { return rows_.empty(); }

 private:
  std::uint64_t hash(const store::PeerKey& key) const noexcept;
  void rebuild(std::size_t capacity);
  void permute_in_place() noexcept;  // rows_ into order_'s order
  void release_arrays() noexcept;

  HashSecret secret_;
  std::vector<store::AccountingDelta> rows_;
  // TaggedPosition entries; at most half full. Empty until the first add.
  std::vector<std::uint64_t> index_;
  std::vector<std::uint32_t> order_;  // take_sorted's, kept for its capacity
};

}  // namespace tyto::app
