// The private tracker's accounting rules (shard/ledger.hpp), one announce at a time on a manual
// clock: baselines, counters that go down, factors, time, snatches, closing, the per-user limit,
// and that a delta the bridge has no room for is kept summed, never dropped or replaced.
#include "tyto/shard/ledger.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace tyto::shard {
namespace {

store::PeerKey key_of(std::uint64_t user, std::uint64_t torrent, std::uint8_t peer) {
  store::PeerKey key;
  key.user_id = user;
  key.torrent_id = torrent;
  key.peer_id.bytes.fill(peer);
  return key;
}

AnnounceRequest announce(std::uint64_t uploaded, std::uint64_t downloaded, std::uint64_t left,
                         AnnounceEvent event = AnnounceEvent::none) {
  AnnounceRequest request;
  request.uploaded_bytes = uploaded;
  request.downloaded_bytes = downloaded;
  request.left_bytes = left;
  request.event = event;
  return request;
}

class LedgerTest : public ::testing::Test {
 protected:
  LedgerTest() : ledger_(limits(), HashSecret::from_seed(7)) {
    torrent_.torrent_id = 10;
    member_.user_id = 1;
  }
  static LedgerLimits limits() {
    LedgerLimits limits;
    limits.peers_max = 64;
    limits.peers_per_user_torrent_max = 3;
    limits.peer_timeout_s = 3900;
    return limits;
  }
  void record(const store::PeerKey& key, const AnnounceRequest& request) {
    // As the shard does: admit's spot goes to record (one hash and probe).
    Ledger::Spot spot;
    ASSERT_EQ(ledger_.admit(key, spot), LedgerVerdict::ok);
    ASSERT_EQ(spot.position == UINT32_MAX, !ledger_.holds(key));
    // The key's user and torrent, with the factors the test set.
    store::TorrentRow torrent = torrent_;
    torrent.torrent_id = key.torrent_id;
    Member member = member_;
    member.user_id = key.user_id;
    ledger_.record(spot, key, request, torrent, member, now_s_, 1'700'000'000 + now_s_);
  }
  // Everything the bridge would take now.
  std::vector<store::AccountingDelta> take() {
    std::vector<store::AccountingDelta> deltas;
    ledger_.flush(
        [&](const store::AccountingDelta& delta, std::uint64_t) {
          deltas.push_back(delta);
          return true;
        },
        SIZE_MAX);
    return deltas;
  }

  Ledger ledger_;
  store::TorrentRow torrent_;
  Member member_;
  std::uint32_t now_s_ = 100;
};

TEST_F(LedgerTest, FirstSightingSetsTheBaselineAndCreditsNothing) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(5000, 7000, 100));
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);  // the baseline is written with the next batch
  EXPECT_EQ(deltas[0].key, key);
  EXPECT_EQ(deltas[0].uploaded, 0u);
  EXPECT_EQ(deltas[0].downloaded, 0u);
  EXPECT_EQ(deltas[0].baseline_uploaded, 5000u);
  EXPECT_EQ(deltas[0].baseline_downloaded, 7000u);
  EXPECT_FALSE(deltas[0].seeding);
  EXPECT_FALSE(deltas[0].closed);
  EXPECT_TRUE(take().empty());  // handed on: nothing waits
}

// The UDP batch's read-ahead hashes a key once (prefetch) and admits by that tag: held keys
// are found where record() put them, a pair's fourth peer is refused, a new key joins its pair's
// run; and a record through that spot is found by the next admit. (A tag that is not the key's
// fails the debug assertion in admit; one that shifts the home misses held keys here.)
TEST_F(LedgerTest, AdmitByTheReadAheadsTagFindsWhatRecordPut) {
  for (std::uint8_t peer = 1; peer <= 3; ++peer) record(key_of(1, 10, peer), announce(0, 0, 10));
  for (std::uint64_t user = 2; user <= 20; ++user) record(key_of(user, 11, 'a'), announce(0, 0, 1));
  for (std::uint64_t user = 1; user <= 20; ++user) {
    const auto key = user == 1 ? key_of(1, 10, 2) : key_of(user, 11, 'a');
    Ledger::Spot spot;
    EXPECT_EQ(ledger_.admit(key, spot, ledger_.prefetch(key)), LedgerVerdict::ok);
    ASSERT_NE(spot.position, UINT32_MAX) << user;
    EXPECT_TRUE(ledger_.holds(key));
  }
  Ledger::Spot spot;
  const auto fourth = key_of(1, 10, 4);
  EXPECT_EQ(ledger_.admit(fourth, spot, ledger_.prefetch(fourth)),
            LedgerVerdict::user_torrent_full);
  const auto fresh = key_of(21, 11, 'a');
  ASSERT_EQ(ledger_.admit(fresh, spot, ledger_.prefetch(fresh)), LedgerVerdict::ok);
  EXPECT_EQ(spot.position, UINT32_MAX);
  store::TorrentRow torrent = torrent_;
  torrent.torrent_id = 11;
  Member member = member_;
  member.user_id = 21;
  ledger_.record(spot, fresh, announce(0, 0, 1), torrent, member, now_s_, 1'700'000'000);
  EXPECT_TRUE(ledger_.holds(fresh));
  EXPECT_EQ(ledger_.admit(fresh, spot, ledger_.prefetch(fresh)), LedgerVerdict::ok);
  EXPECT_NE(spot.position, UINT32_MAX);
}

TEST_F(LedgerTest, CreditsTheGrowthScaledByBothFactorsAndKeepsRealBytes) {
  const auto key = key_of(1, 10, 'a');
  torrent_.upload_factor = 2.0f;    // double upload
  torrent_.download_factor = 0.0f;  // freeleech
  member_.upload_factor = 1.5f;
  record(key, announce(1000, 1000, 500));
  take();
  now_s_ += 60;
  record(key, announce(3000, 1800, 100));
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded_real, 2000u);
  EXPECT_EQ(deltas[0].downloaded_real, 800u);
  EXPECT_EQ(deltas[0].uploaded, 6000u);  // 2000 × 2 × 1.5
  EXPECT_EQ(deltas[0].downloaded, 0u);
  EXPECT_EQ(deltas[0].leech_s, 60u);
  EXPECT_EQ(deltas[0].seed_s, 0u);
  EXPECT_EQ(deltas[0].baseline_uploaded, 3000u);
}

TEST_F(LedgerTest, ACounterThatWentDownResetsOnlyItself) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(1000, 1000, 0));
  take();
  record(key, announce(200, 1500, 0));  // the client restarted its upload count only
  auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 0u);
  EXPECT_EQ(deltas[0].downloaded, 500u);
  EXPECT_EQ(deltas[0].baseline_uploaded, 200u);
  record(key, announce(700, 1500, 0));
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 500u);  // against the reset baseline
}

TEST_F(LedgerTest, StartedSetsANewBaseline) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(1000, 1000, 0));
  take();
  record(key, announce(5000, 5000, 0, AnnounceEvent::started));
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 0u);
  EXPECT_EQ(deltas[0].baseline_uploaded, 5000u);
}

// Deltas the bridge cannot take are summed in the entry, never replaced nor dropped.
TEST_F(LedgerTest, RefusedDeltasStaySummedUntilTaken) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(0, 0, 10));
  take();
  auto refuse = [](const store::AccountingDelta&, std::uint64_t) { return false; };
  for (std::uint64_t step = 1; step <= 5; ++step) {
    now_s_ += 10;
    record(key, announce(100 * step, 10 * step, 10));
    EXPECT_EQ(ledger_.flush(refuse, SIZE_MAX), 0u);
  }
  EXPECT_EQ(ledger_.dirty_count(), 1u);
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 500u);
  EXPECT_EQ(deltas[0].downloaded, 50u);
  EXPECT_EQ(deltas[0].leech_s, 50u);
}

TEST_F(LedgerTest, SeedingTimeAccruesForTheStateBeforeTheAnnounceCappedAtTheTimeout) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(0, 0, 0));  // a seeder
  take();
  now_s_ += 100'000;  // silent far past the timeout (not yet swept)
  record(key, announce(0, 0, 0));
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].seed_s, 3900u);
  EXPECT_EQ(deltas[0].leech_s, 0u);
  EXPECT_TRUE(deltas[0].seeding);
}

TEST_F(LedgerTest, StoppedClosesTheEntryOnceItsDeltaIsTaken) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(0, 0, 10));
  take();
  record(key, announce(300, 0, 10, AnnounceEvent::stopped));
  EXPECT_TRUE(ledger_.holds(key));  // until the close is handed on
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_TRUE(deltas[0].closed);
  EXPECT_EQ(deltas[0].uploaded, 300u);
  EXPECT_FALSE(ledger_.holds(key));
  EXPECT_EQ(ledger_.entries_count(), 0u);
  // A stopped announce of a peer never seen records nothing.
  record(key_of(1, 10, 'z'), announce(1, 1, 1, AnnounceEvent::stopped));
  EXPECT_TRUE(take().empty());
}

// storage.sync = "always": a stopped that closes an entry gets a ticket its delta carries.
TEST_F(LedgerTest, AStoppedWithTicketsCarriesItsTicketToTheBridge) {
  const auto key = key_of(1, 10, 'a');
  store::TorrentRow torrent = torrent_;
  EXPECT_EQ(ledger_.record(key, announce(0, 0, 1), torrent, member_, now_s_, 0, true), 0u);
  take();
  const std::uint64_t ticket = ledger_.record(key, announce(10, 0, 1, AnnounceEvent::stopped),
                                              torrent, member_, now_s_, 0, true);
  EXPECT_NE(ticket, 0u);
  std::vector<std::uint64_t> tickets;
  ledger_.flush(
      [&](const store::AccountingDelta& delta, std::uint64_t carried) {
        EXPECT_TRUE(delta.closed);
        tickets.push_back(carried);
        return true;
      },
      SIZE_MAX);
  EXPECT_EQ(tickets, std::vector<std::uint64_t>{ticket});
  // Without the flag (storage.sync = "batch") nothing is ticketed.
  EXPECT_EQ(ledger_.record(key_of(1, 10, 'b'), announce(0, 0, 1), torrent, member_, now_s_, 0), 0u);
  EXPECT_EQ(ledger_.record(key_of(1, 10, 'b'), announce(0, 0, 1, AnnounceEvent::stopped), torrent,
                           member_, now_s_, 0),
            0u);
}

TEST_F(LedgerTest, CompletedIsASnatch) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(0, 0, 10));
  take();
  record(key, announce(0, 10, 0, AnnounceEvent::completed));
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_TRUE(deltas[0].completed);
  record(key, announce(0, 10, 0));
  EXPECT_FALSE(take().at(0).completed);  // once handed on, not repeated
}

// A dual-stack client (IPv4 and IPv6, one peer_id) is one entry: its second family's announce
// with the same counters credits nothing.
TEST_F(LedgerTest, OnePeerIdIsOnePeerWhateverItsAddress) {
  const auto key = key_of(1, 10, 'a');
  AnnounceRequest v4 = announce(0, 0, 10);
  v4.peer = PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{127, 0, 0, 1}, 1000);
  AnnounceRequest v6 = v4;
  v6.peer = PeerEndpoint::ipv6(std::array<std::uint8_t, 16>{}, 1000);
  record(key, v4);
  record(key, v6);
  take();
  v4.uploaded_bytes = v6.uploaded_bytes = 4000;
  record(key, v4);
  record(key, v6);
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 4000u);
  EXPECT_EQ(ledger_.entries_count(), 1u);
}

TEST_F(LedgerTest, PeersPerUserTorrentAreLimitedAndClosedOnesDoNotCount) {
  for (std::uint8_t peer = 'a'; peer < 'a' + 3; ++peer)
    record(key_of(1, 10, peer), announce(0, 0, 1));
  EXPECT_EQ(ledger_.admit(key_of(1, 10, 'd')), LedgerVerdict::user_torrent_full);
  EXPECT_EQ(ledger_.admit(key_of(1, 10, 'a')), LedgerVerdict::ok);  // known peers go on
  EXPECT_EQ(ledger_.admit(key_of(2, 10, 'd')), LedgerVerdict::ok);  // another user
  EXPECT_EQ(ledger_.admit(key_of(1, 11, 'd')), LedgerVerdict::ok);  // another torrent
  record(key_of(1, 10, 'a'), announce(0, 0, 1, AnnounceEvent::stopped));
  EXPECT_EQ(ledger_.admit(key_of(1, 10, 'd')), LedgerVerdict::ok);
}

TEST_F(LedgerTest, AFullTableRefusesNewPeersOnly) {
  for (std::uint64_t user = 1; user <= 64; ++user) {
    member_.user_id = user;
    record(key_of(user, 10, 'a'), announce(0, 0, 1));
  }
  EXPECT_EQ(ledger_.entries_count(), 64u);
  EXPECT_EQ(ledger_.admit(key_of(65, 10, 'a')), LedgerVerdict::full);
  EXPECT_EQ(ledger_.admit(key_of(64, 10, 'a')), LedgerVerdict::ok);
}

TEST_F(LedgerTest, SilentPeersAreClosedByTheSweepWithoutCredit) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(100, 0, 1));
  take();
  ledger_.expire_step(now_s_ + 3900);  // not yet past the timeout
  EXPECT_TRUE(take().empty());
  ledger_.expire_step(now_s_ + 3901);
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_TRUE(deltas[0].closed);
  EXPECT_EQ(deltas[0].uploaded, 0u);
  EXPECT_EQ(deltas[0].stopped_unix_s, 1'700'000'000u + now_s_);  // stopped where it was last
  EXPECT_EQ(deltas[0].stopped_uploaded, 100u);
  EXPECT_FALSE(ledger_.holds(key));
}

// A client that stops and starts again before its delta is handed on: one delta, the old
// session's credit, the new session's baseline, and where the old one stopped (a cluster's store
// cuts a late batch of the old session against it).
TEST_F(LedgerTest, AStopAndARestartInOneDeltaCarryTheStop) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(100, 10, 1));
  take();
  now_s_ += 60;
  record(key, announce(400, 30, 1, AnnounceEvent::stopped));
  const std::uint32_t stopped_s = now_s_;
  now_s_ += 1;
  record(key, announce(5, 0, 1, AnnounceEvent::started));
  auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_FALSE(deltas[0].closed);
  EXPECT_EQ(deltas[0].uploaded, 300u);
  EXPECT_EQ(deltas[0].baseline_uploaded, 5u);
  EXPECT_EQ(deltas[0].stopped_unix_s, 1'700'000'000u + stopped_s);
  EXPECT_EQ(deltas[0].stopped_uploaded, 400u);
  EXPECT_EQ(deltas[0].stopped_downloaded, 30u);
  now_s_ += 60;
  record(key, announce(50, 0, 1));
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].stopped_unix_s, 0u);  // handed on once
}

// The same with credits summed before the stop, the stop's ticket and credits of the new session,
// all in one delta while the bridge refuses it: the stop keeps what was summed (its record moves
// to the stops' pool), and the records given back are clean when another peer takes them.
TEST_F(LedgerTest, AStopKeepsWhatWasSummedBeforeItAndItsTicket) {
  const auto key = key_of(1, 10, 'a');
  const std::uint64_t unix_origin = 1'700'000'000;
  auto refuse = [](const store::AccountingDelta&, std::uint64_t) { return false; };
  record(key, announce(100, 10, 1));
  take();
  now_s_ += 60;
  record(key, announce(300, 20, 1));  // 200 and 10 pending
  EXPECT_EQ(ledger_.flush(refuse, SIZE_MAX), 0u);
  now_s_ += 60;
  const std::uint64_t ticket =
      ledger_.record(key, announce(400, 30, 1, AnnounceEvent::stopped), torrent_, member_, now_s_,
                     unix_origin + now_s_, true);
  EXPECT_NE(ticket, 0u);
  const std::uint32_t stopped_s = now_s_;
  EXPECT_EQ(ledger_.flush(refuse, SIZE_MAX), 0u);
  now_s_ += 1;
  record(key, announce(0, 0, 1, AnnounceEvent::started));
  now_s_ += 60;
  record(key, announce(50, 5, 1));
  std::vector<std::uint64_t> tickets;
  std::vector<store::AccountingDelta> deltas;
  ledger_.flush(
      [&](const store::AccountingDelta& delta, std::uint64_t carried) {
        deltas.push_back(delta);
        tickets.push_back(carried);
        return true;
      },
      SIZE_MAX);
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(tickets, std::vector<std::uint64_t>{ticket});  // the reply still waits on it
  EXPECT_EQ(deltas[0].uploaded, 350u);
  EXPECT_EQ(deltas[0].downloaded, 25u);
  EXPECT_EQ(deltas[0].uploaded_real, 350u);
  EXPECT_EQ(deltas[0].leech_s, 180u);
  EXPECT_EQ(deltas[0].stopped_unix_s, unix_origin + stopped_s);
  EXPECT_EQ(deltas[0].stopped_uploaded, 400u);
  EXPECT_EQ(deltas[0].stopped_downloaded, 30u);
  EXPECT_EQ(deltas[0].baseline_uploaded, 50u);
  EXPECT_FALSE(deltas[0].closed);
  EXPECT_EQ(deltas[0].from_uploaded, 100u);  // the delta starts before the first announce it sums
  EXPECT_TRUE(deltas[0].from_continues);
  // Other peers take the records back: nothing of the first peer's delta is left in them.
  for (std::uint8_t peer : {'b', 'c'}) {
    record(key_of(1, 10, peer), announce(7, 7, 1));
    now_s_ += 10;
    record(key_of(1, 10, peer), announce(8, 7, 1, AnnounceEvent::stopped));
  }
  ledger_.flush(
      [&](const store::AccountingDelta& delta, std::uint64_t carried) {
        EXPECT_EQ(carried, 0u);
        EXPECT_EQ(delta.uploaded, 1u);
        EXPECT_EQ(delta.downloaded, 0u);
        EXPECT_EQ(delta.leech_s, 10u);
        EXPECT_EQ(delta.stopped_uploaded, 8u);
        EXPECT_TRUE(delta.closed);
        return true;
      },
      SIZE_MAX);
  record(key, announce(60, 5, 1));
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 10u);
  EXPECT_EQ(deltas[0].stopped_unix_s, 0u);
}

// A delta that an expiry opens carries no credit, and the from-baseline and factors of the
// peer's last delta (the entry keeps them between deltas; a cluster's store arbitrates by them).
TEST_F(LedgerTest, ADeltaAnExpiryOpensCarriesTheLastDeltasFromBaselineAndFactors) {
  const auto key = key_of(1, 10, 'a');
  torrent_.upload_factor = 2.0f;
  member_.download_factor = 0.5f;
  record(key, announce(100, 200, 1));
  take();
  now_s_ += 60;
  record(key, announce(150, 260, 1));
  const std::uint32_t from_s = now_s_ - 60;
  auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 100u);
  EXPECT_EQ(deltas[0].downloaded, 30u);
  ledger_.expire_step(now_s_ + 3901);
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_TRUE(deltas[0].closed);
  EXPECT_EQ(deltas[0].uploaded + deltas[0].downloaded + deltas[0].seed_s + deltas[0].leech_s, 0u);
  EXPECT_EQ(deltas[0].from_uploaded, 100u);
  EXPECT_EQ(deltas[0].from_downloaded, 200u);
  EXPECT_EQ(deltas[0].from_announced_unix_s, 1'700'000'000u + from_s);
  EXPECT_TRUE(deltas[0].from_continues);
  EXPECT_EQ(deltas[0].upload_scale, 2.0);
  EXPECT_EQ(deltas[0].download_scale, 0.5);
  EXPECT_EQ(deltas[0].stopped_uploaded, 150u);
  EXPECT_FALSE(ledger_.holds(key));
}

// A baseline persisted by an earlier run: the next announce credits against it (what a crash
// left unwritten is re-derived).
TEST_F(LedgerTest, RestoredBaselinesAreCreditedAgainst) {
  store::Baseline baseline;
  baseline.key = key_of(1, 10, 'a');
  baseline.uploaded = 1000;
  baseline.downloaded = 2000;
  baseline.announced_unix_s = 1'700'000'000 + now_s_ - 30;
  ASSERT_TRUE(ledger_.restore(baseline, now_s_, 1'700'000'000 + now_s_));
  EXPECT_TRUE(take().empty());  // nothing to write: the database has it
  record(baseline.key, announce(1500, 2100, 1));
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 500u);
  EXPECT_EQ(deltas[0].downloaded, 100u);
  EXPECT_EQ(deltas[0].leech_s, 30u);
}

// Each delta says which baseline its credits start from: the first sighting's own counters, then
// the baseline before the first announce it sums (a cluster's backends arbitrate against it).
TEST_F(LedgerTest, DeltasCarryTheBaselineTheyStartFrom) {
  const auto key = key_of(1, 10, 'a');
  record(key, announce(100, 200, 1));
  auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].from_uploaded, 100u);
  EXPECT_EQ(deltas[0].from_downloaded, 200u);
  EXPECT_EQ(deltas[0].from_announced_unix_s, 1'700'000'000u + now_s_);
  EXPECT_TRUE(deltas[0].from_continues);  // it may come from another node
  const std::uint32_t first_s = now_s_;
  now_s_ += 60;
  record(key, announce(150, 300, 1));
  now_s_ += 60;
  record(key, announce(190, 320, 1));  // summed into the same pending delta
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 90u);
  EXPECT_EQ(deltas[0].from_uploaded, 100u);
  EXPECT_EQ(deltas[0].from_downloaded, 200u);
  EXPECT_EQ(deltas[0].from_announced_unix_s, 1'700'000'000u + first_s);
  EXPECT_EQ(deltas[0].baseline_uploaded, 190u);
  EXPECT_TRUE(deltas[0].from_continues);  // another node's batch may still owe what came before
  // A `started` first sighting is a new session: nothing to credit from anywhere.
  record(key_of(1, 10, 'b'), announce(5, 5, 1, AnnounceEvent::started));
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_FALSE(deltas[0].from_continues);
  EXPECT_EQ(deltas[0].upload_scale, 1.0);
  // So is a `started` announce of a peer held here: its delta starts there, owing nothing.
  now_s_ += 60;
  record(key, announce(3, 4, 1, AnnounceEvent::started));
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_FALSE(deltas[0].from_continues);
  EXPECT_EQ(deltas[0].from_uploaded, 3u);
  // And the next delta of that session starts at the `started` announce: nothing before it.
  now_s_ += 60;
  record(key, announce(9, 4, 1));
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_FALSE(deltas[0].from_continues);
  EXPECT_EQ(deltas[0].from_uploaded, 3u);
  now_s_ += 60;
  record(key, announce(12, 4, 1));  // then it continues
  deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_TRUE(deltas[0].from_continues);
}

// Cluster, private mode: a baseline another node made durable is taken when newer; the next
// announce here credits only what came after it; older ones change nothing.
TEST_F(LedgerTest, AdoptedBaselinesAreCreditedAgainstAndOlderOnesIgnored) {
  const std::uint64_t unix_origin = 1'700'000'000;
  const auto key = key_of(1, 10, 'a');
  record(key, announce(1000, 0, 1));
  take();
  store::Baseline there{key, 1600, 50, unix_origin + now_s_ + 20, true};
  now_s_ += 30;
  const std::uint64_t now_unix = unix_origin + now_s_;
  EXPECT_EQ(ledger_.adopt(there, false, now_s_, now_unix), Ledger::Adopted::adopted);
  EXPECT_TRUE(take().empty());  // nothing to write: the other node wrote it
  store::Baseline older = there;
  older.uploaded = 1200;
  older.announced_unix_s -= 10;
  EXPECT_EQ(ledger_.adopt(older, false, now_s_, now_unix), Ledger::Adopted::unchanged);
  store::Baseline same_second_lower = there;
  same_second_lower.uploaded = 1500;
  EXPECT_EQ(ledger_.adopt(same_second_lower, false, now_s_, now_unix), Ledger::Adopted::unchanged);
  record(key, announce(1700, 50, 0));
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 100u);  // 1700 - 1600, not 1700 - 1000
  EXPECT_EQ(deltas[0].downloaded, 0u);
  EXPECT_EQ(deltas[0].seed_s, 10u);  // seeding there, since its announce 10 s ago
  EXPECT_EQ(deltas[0].from_uploaded, 1600u);
  EXPECT_EQ(deltas[0].from_announced_unix_s, there.announced_unix_s);
}

// A peer only seen elsewhere: its entry is made from the baseline, counts towards the user's
// limit in the torrent, expires silently (the other node closes it in the database), and a
// closed baseline removes it.
TEST_F(LedgerTest, RemoteEntriesCountExpireSilentlyAndCloseWithTheOtherNode) {
  const std::uint64_t unix_origin = 1'700'000'000;
  for (std::uint8_t peer : {'a', 'b', 'c'}) {
    store::Baseline there{key_of(1, 10, peer), 10, 10, unix_origin + now_s_, false};
    EXPECT_EQ(ledger_.adopt(there, false, now_s_, unix_origin + now_s_), Ledger::Adopted::adopted);
  }
  EXPECT_EQ(ledger_.admit(key_of(1, 10, 'd')), LedgerVerdict::user_torrent_full);
  store::Baseline closed{key_of(1, 10, 'c'), 20, 20, unix_origin + now_s_ + 1, false};
  EXPECT_EQ(ledger_.adopt(closed, true, now_s_, unix_origin + now_s_), Ledger::Adopted::adopted);
  EXPECT_FALSE(ledger_.holds(key_of(1, 10, 'c')));
  EXPECT_EQ(ledger_.admit(key_of(1, 10, 'd')), LedgerVerdict::ok);
  // A closed baseline of a peer not held here is nothing to do.
  EXPECT_EQ(ledger_.adopt(closed, true, now_s_, unix_origin + now_s_), Ledger::Adopted::unchanged);
  ledger_.expire_step(now_s_ + 3901);
  EXPECT_TRUE(take().empty());  // no close written from here
  EXPECT_FALSE(ledger_.holds(key_of(1, 10, 'a')));
  EXPECT_FALSE(ledger_.holds(key_of(1, 10, 'b')));
}

// A local announce's pending delta survives a newer baseline from elsewhere (it is this node's
// credit, handed on as usual); a closed one then closes the entry once the delta is taken.
TEST_F(LedgerTest, APendingDeltaIsKeptWhenAnotherNodesBaselineArrives) {
  const std::uint64_t unix_origin = 1'700'000'000;
  const auto key = key_of(1, 10, 'a');
  record(key, announce(0, 0, 1));
  take();
  record(key, announce(300, 0, 1));  // pending: 300
  store::Baseline there{key, 500, 0, unix_origin + now_s_ + 5, false};
  EXPECT_EQ(ledger_.adopt(there, true, now_s_ + 5, unix_origin + now_s_ + 5),
            Ledger::Adopted::adopted);
  const auto deltas = take();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].uploaded, 300u);
  EXPECT_TRUE(deltas[0].closed);
  EXPECT_FALSE(ledger_.holds(key));
}

// Entries removed and added again reuse positions; every key stays findable.
TEST_F(LedgerTest, ManyOpensAndClosesKeepEveryKeyFindable) {
  std::vector<store::PeerKey> open;
  for (int round = 0; round < 200; ++round) {
    const auto user = static_cast<std::uint64_t>(round % 50 + 1);
    member_.user_id = user;
    const auto key = key_of(user, 10 + round % 7, static_cast<std::uint8_t>(round));
    if (ledger_.admit(key) != LedgerVerdict::ok) continue;
    record(key, announce(0, 0, 1));
    open.push_back(key);
    if (open.size() > 40) {
      member_.user_id = open.front().user_id;
      record(open.front(), announce(0, 0, 1, AnnounceEvent::stopped));
      open.erase(open.begin());
    }
    take();
    for (const auto& held : open) ASSERT_TRUE(ledger_.holds(held));
  }
  EXPECT_EQ(ledger_.entries_count(), open.size());
}

}  // namespace
}  // namespace tyto::shard
