// PendingDeltas: the storage thread's per-key sums (README "Private tracker": each peer once
// per batch, credits added, baseline and flags the latest; a batch in primary-key order).
#include "tyto/app/pending_deltas.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <tuple>
#include <vector>

namespace tyto::app {
namespace {

store::AccountingDelta delta_of(std::uint64_t user, std::uint64_t torrent, std::uint8_t peer) {
  store::AccountingDelta delta;
  delta.key.user_id = user;
  delta.key.torrent_id = torrent;
  delta.key.peer_id.bytes.fill(peer);
  return delta;
}

auto key_tuple(const store::PeerKey& key) {
  return std::tie(key.user_id, key.torrent_id, key.peer_id.bytes);
}

TEST(PendingDeltas, SumsRepeatsOfAKeyAndKeepsTheLatestBaseline) {
  PendingDeltas pending(HashSecret::from_seed(1));
  auto first = delta_of(7, 3, 'a');
  first.uploaded = 100;
  first.seed_s = UINT32_MAX - 5;
  first.baseline_uploaded = 1000;
  first.announced_unix_s = 50;
  first.completed = true;
  auto later = first;
  later.uploaded = 20;
  later.seed_s = 10;  // saturates
  later.baseline_uploaded = 1020;
  later.announced_unix_s = 40;  // older: the latest time stays
  later.completed = false;
  later.closed = true;
  EXPECT_TRUE(pending.add(first));
  EXPECT_FALSE(pending.add(later));
  EXPECT_TRUE(pending.add(delta_of(7, 3, 'b')));  // another peer_id: another row
  EXPECT_EQ(pending.size(), 2u);
  std::vector<store::AccountingDelta> out;
  pending.take_sorted(out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(out[0].key.peer_id.bytes[0], 'a');
  EXPECT_EQ(out[0].uploaded, 120u);
  EXPECT_EQ(out[0].seed_s, UINT32_MAX);
  EXPECT_EQ(out[0].baseline_uploaded, 1020u);
  EXPECT_EQ(out[0].announced_unix_s, 50u);
  EXPECT_TRUE(out[0].completed);
  EXPECT_TRUE(out[0].closed);
  EXPECT_EQ(out[1].uploaded, 0u);
}

// A stop in one delta and a new session in the next: the sum keeps the stop (a cluster's store
// cuts the old session's late batches against it), and a later stop replaces it.
TEST(PendingDeltas, KeepsTheLatestStop) {
  PendingDeltas pending(HashSecret::from_seed(1));
  auto stopped = delta_of(7, 3, 'a');
  stopped.closed = true;
  stopped.stopped_unix_s = 100;
  stopped.stopped_uploaded = 700;
  stopped.stopped_downloaded = 70;
  auto restarted = delta_of(7, 3, 'a');
  restarted.baseline_uploaded = 5;
  restarted.announced_unix_s = 101;
  EXPECT_TRUE(pending.add(stopped));
  EXPECT_FALSE(pending.add(restarted));
  std::vector<store::AccountingDelta> out;
  pending.take_sorted(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].closed);
  EXPECT_EQ(out[0].stopped_unix_s, 100u);
  EXPECT_EQ(out[0].stopped_uploaded, 700u);
  EXPECT_EQ(out[0].stopped_downloaded, 70u);
  auto stopped_again = restarted;
  stopped_again.closed = true;
  stopped_again.stopped_unix_s = 160;
  stopped_again.stopped_uploaded = 9;
  EXPECT_TRUE(pending.add(out[0]));
  EXPECT_FALSE(pending.add(stopped_again));
  out.clear();
  pending.take_sorted(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].stopped_unix_s, 160u);
  EXPECT_EQ(out[0].stopped_uploaded, 9u);
}

// Many keys, repeated, in random order, over several batches and growths: each batch holds each
// key once, in (user_id, torrent_id, peer_id) order, with the sum a std::map would hold.
TEST(PendingDeltas, MatchesAnOrderedMapOverBatches) {
  PendingDeltas pending(HashSecret::from_seed(2));
  std::mt19937_64 random(3);
  for (int batch = 0; batch < 4; ++batch) {
    std::map<std::tuple<std::uint64_t, std::uint64_t, std::uint8_t>, std::uint64_t> expected;
    const int deltas = batch == 2 ? 0 : 5000 << batch;
    for (int i = 0; i < deltas; ++i) {
      const std::uint64_t user = random() % 300, torrent = random() % 40;
      const auto peer = static_cast<std::uint8_t>(random() % 3);
      auto delta = delta_of(user, torrent, peer);
      delta.uploaded = random() % 1000;
      const bool is_new = pending.add(delta);
      auto [at, inserted] = expected.try_emplace({user, torrent, peer}, 0);
      EXPECT_EQ(is_new, inserted);
      at->second += delta.uploaded;
    }
    ASSERT_EQ(pending.size(), expected.size());
    std::vector<store::AccountingDelta> out;
    pending.take_sorted(out);
    ASSERT_EQ(out.size(), expected.size());
    EXPECT_TRUE(pending.empty());
    auto want = expected.begin();
    for (const auto& row : out) {
      EXPECT_EQ(std::make_tuple(row.key.user_id, row.key.torrent_id, row.key.peer_id.bytes[0]),
                want->first);
      EXPECT_EQ(row.uploaded, want->second);
      ++want;
    }
    EXPECT_TRUE(std::is_sorted(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return key_tuple(a.key) < key_tuple(b.key);
    }));
  }
}

// A burst's batch gives its arrays back (a 1 M-peer fill left ~29 B per peer held until the
// next batch); a small batch keeps them, so steady traffic does not allocate per batch.
TEST(PendingDeltas, KeepsSmallArraysAndGivesLargeOnesBack) {
  PendingDeltas pending(HashSecret::from_seed(4));
  std::vector<store::AccountingDelta> out;
  for (std::uint64_t user = 1; user <= 100; ++user) pending.add(delta_of(user, 1, 'a'));
  pending.take_sorted(out);
  EXPECT_GE(pending.capacity(), 100u);
  for (std::uint64_t user = 1; user <= 10000; ++user) pending.add(delta_of(user, 2, 'a'));
  out.clear();
  pending.take_sorted(out);
  EXPECT_EQ(out.size(), 10000u);
  EXPECT_EQ(pending.capacity(), 0u);
  // Summing works again from empty arrays (the index rebuilt on the first add).
  auto delta = delta_of(5, 2, 'a');
  delta.uploaded = 3;
  EXPECT_TRUE(pending.add(delta));
  EXPECT_FALSE(pending.add(delta));
  out.clear();
  pending.take_sorted(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].uploaded, 6u);
  // Appended behind rows `out` holds already (copied, not handed over), in order all the same.
  for (std::uint64_t user = 10000; user >= 1; --user) pending.add(delta_of(user, 3, 'a'));
  pending.take_sorted(out);
  ASSERT_EQ(out.size(), 10001u);
  EXPECT_EQ(out[0].key.torrent_id, 2u);
  for (std::size_t row = 1; row < out.size(); ++row) EXPECT_EQ(out[row].key.user_id, row);
  EXPECT_EQ(pending.capacity(), 0u);
}

}  // namespace
}  // namespace tyto::app
