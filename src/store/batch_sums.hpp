// What one accounting batch adds to tyto_transfers and tyto_user_totals, summed per key before
// any SQL runs, so a SQL backend writes each (user, torrent) and each user once per batch
// instead of once per delta. Applying the sums has exactly the effect of applying the deltas
// one by one in batch order (accounting.hpp): counters add up, completed_at is the first
// completed delta's announce (the first one sets it, coalesce keeps it), last_announce_at the
// latest. Baselines (tyto_peers) stay per delta: each key appears once in a batch.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tyto/store/accounting.hpp"

namespace tyto::store {

struct TransferSum {
  std::uint64_t user_id = 0;
  std::uint64_t torrent_id = 0;
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t uploaded_real = 0;
  std::uint64_t downloaded_real = 0;
  std::uint64_t seed_s = 0;
  std::uint64_t leech_s = 0;
  bool completed = false;
  std::uint64_t completed_unix_s = 0;  // meaningful when completed
  std::uint64_t last_announce_unix_s = 0;
};

struct UserSum {
  std::uint64_t user_id = 0;
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
};

struct BatchSums {
  std::vector<TransferSum> transfers;  // (user_id, torrent_id) ascending, each pair once
  std::vector<UserSum> users;          // user_id ascending, each user once
};

// Replaces `out`'s contents (its capacity is reused). Deltas in batch order; a batch not sorted
// by (user, torrent) is summed correctly too, by a stable sort of a copy of the order.
void sum_batch(std::span<const AccountingDelta> deltas, BatchSums& out);

}  // namespace tyto::store
