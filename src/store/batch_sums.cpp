#include "store/batch_sums.hpp"

#include <algorithm>
#include <numeric>
#include <tuple>

#include "tyto/core/assert.hpp"

namespace tyto::store {
namespace {

bool pair_before(const AccountingDelta& a, const AccountingDelta& b) noexcept {
  return std::tie(a.key.user_id, a.key.torrent_id) < std::tie(b.key.user_id, b.key.torrent_id);
}

void add_to(TransferSum& sum, const AccountingDelta& delta) noexcept {
  sum.uploaded += delta.uploaded;
  sum.downloaded += delta.downloaded;
  sum.uploaded_real += delta.uploaded_real;
  sum.downloaded_real += delta.downloaded_real;
  sum.seed_s += delta.seed_s;
  sum.leech_s += delta.leech_s;
  if (delta.completed && !sum.completed) {  // the first snatch in batch order is the one kept
    sum.completed = true;
    sum.completed_unix_s = delta.announced_unix_s;
  }
  sum.last_announce_unix_s = std::max(sum.last_announce_unix_s, delta.announced_unix_s);
}

template <class DeltaAt>
void sum_in_order(std::size_t count, DeltaAt delta_at, BatchSums& out) {
  for (std::size_t i = 0; i < count; ++i) {
    const AccountingDelta& delta = delta_at(i);
    if (out.transfers.empty() || out.transfers.back().user_id != delta.key.user_id ||
        out.transfers.back().torrent_id != delta.key.torrent_id) {
      out.transfers.push_back({.user_id = delta.key.user_id, .torrent_id = delta.key.torrent_id});
    }
    add_to(out.transfers.back(), delta);
    if (out.users.empty() || out.users.back().user_id != delta.key.user_id) {
      out.users.push_back({.user_id = delta.key.user_id});
    }
    out.users.back().uploaded += delta.uploaded;
    out.users.back().downloaded += delta.downloaded;
  }
}

}  // namespace

void sum_batch(std::span<const AccountingDelta> deltas, BatchSums& out) {
  out.transfers.clear();
  out.users.clear();
  if (std::is_sorted(deltas.begin(), deltas.end(), pair_before)) {
    sum_in_order(
        deltas.size(), [&](std::size_t i) -> const AccountingDelta& { return deltas[i]; }, out);
  } else {
    std::vector<std::size_t> order(deltas.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return pair_before(deltas[a], deltas[b]);
    });
    sum_in_order(
        deltas.size(), [&](std::size_t i) -> const AccountingDelta& { return deltas[order[i]]; },
        out);
  }
  TYTO_ASSERT(out.transfers.size() <= deltas.size());
  TYTO_ASSERT(out.users.size() <= out.transfers.size());
}

}  // namespace tyto::store
