// The storage contract (backend.hpp, catalogue.hpp, accounting.hpp), one typed suite run
// against every backend through its fixture (backend_fixtures.hpp).
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "backend_fixtures.hpp"
#include "postgres_fixture.hpp"

namespace tyto::store::testing {
namespace {

std::string describe(const CatalogueChange& change) {
  switch (change.kind) {
    case CatalogueChangeKind::user:
      return fmt::format("user {} {} enabled={} can_leech={} factors={}/{}", change.user.user_id,
                         change.user.passkey.view(), change.user.enabled, change.user.can_leech,
                         change.user.upload_factor, change.user.download_factor);
    case CatalogueChangeKind::user_removed:
      return fmt::format("user_removed {}", change.user.user_id);
    case CatalogueChangeKind::torrent:
      return fmt::format("torrent {} {} factors={}/{}", change.torrent.torrent_id,
                         to_hex(change.torrent.info_hash), change.torrent.upload_factor,
                         change.torrent.download_factor);
    case CatalogueChangeKind::torrent_removed:
      return fmt::format("torrent_removed {}", change.torrent.torrent_id);
    case CatalogueChangeKind::client_rule:
    case CatalogueChangeKind::client_rule_removed: {
      const auto prefix = change.client_rule.prefix_bytes();
      return fmt::format(
          "{} {} allowed={}",
          change.kind == CatalogueChangeKind::client_rule ? "client_rule" : "client_rule_removed",
          std::string(prefix.begin(), prefix.end()), change.client_rule.allowed);
    }
  }
  return "?";
}

template <class Site>
std::vector<std::string> changes_of(Site& site) {
  std::vector<CatalogueChange> changes;
  EXPECT_EQ(site.backend().changes(changes), "");
  std::vector<std::string> described;
  for (const auto& change : changes) described.push_back(describe(change));
  return described;
}

const std::string hash_a = std::string(40, 'a');
const std::string hash_b = "0123456789ABCDEF0123456789abcdef01234567";  // mixed case

PeerId peer(char fill) {
  PeerId id;
  std::memset(id.bytes.data(), fill, id.bytes.size());
  return id;
}

AccountingDelta delta(std::uint64_t user_id, std::uint64_t torrent_id, char peer_fill) {
  AccountingDelta made;
  made.key = {user_id, torrent_id, peer(peer_fill)};
  return made;
}

AccountingBatch batch(std::uint64_t sequence, std::vector<AccountingDelta> deltas,
                      std::string node = "node-a", std::uint32_t shard = 0) {
  return {{std::move(node), shard, sequence}, std::move(deltas)};
}

template <class Site>
class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = site.skip_reason();
    if (reason.empty()) return;
    if (HasFailure()) GTEST_FAIL() << reason;  // present but broken: the body must not run
    GTEST_SKIP() << reason;
  }
  Backend& backend() { return site.backend(); }
  bool write(const AccountingBatch& written) {
    const auto applied = backend().write_batch(written);
    EXPECT_TRUE(applied.ok()) << applied.error();
    return applied.ok() && applied.value();
  }
  std::uint64_t last_sequence(std::string_view node, std::uint32_t shard) {
    const auto sequence = backend().last_sequence(node, shard);
    EXPECT_TRUE(sequence.ok()) << sequence.error();
    return sequence.ok() ? sequence.value() : ~std::uint64_t{0};
  }

  Site site;
};

struct FixtureNames {
  template <class Site>
  static std::string GetName(int) {
    return std::string(Site::name);
  }
};

using Sites = ::testing::Types<MemoryFixture, SqliteFixture, PostgresFixture>;
TYPED_TEST_SUITE(BackendTest, Sites, FixtureNames);

TYPED_TEST(BackendTest, MigrateTwiceIsHarmless) {
  this->site.put_user({1, "key-1"});
  ASSERT_TRUE(this->write(batch(1, {delta(1, 10, 'a')})));
  EXPECT_EQ(this->backend().migrate(), "");
  EXPECT_EQ(this->backend().migrate(), "");
  const auto rows = this->backend().load_catalogue();
  ASSERT_TRUE(rows.ok()) << rows.error();
  ASSERT_EQ(rows.value().users.size(), 1u);
  EXPECT_EQ(this->last_sequence("node-a", 0), 1u);
}

TYPED_TEST(BackendTest, LoadCatalogueReturnsExactlyTheRows) {
  this->site.put_user({2, "Key-Two!", 0, 0, 2.0, 0.5});
  this->site.put_user({1, "key-1"});
  this->site.put_torrent({20, hash_b, 0.0, 2.0});
  this->site.put_torrent({10, hash_a});
  this->site.put_client_rule("-qB", true);
  this->site.put_client_rule("-XX", false);
  const auto loaded = this->backend().load_catalogue();
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  const CatalogueRows& rows = loaded.value();
  ASSERT_EQ(rows.users.size(), 2u);
  EXPECT_EQ(rows.users[0].user_id, 1u);
  EXPECT_EQ(rows.users[0].passkey.view(), "key-1");
  EXPECT_TRUE(rows.users[0].enabled);
  EXPECT_TRUE(rows.users[0].can_leech);
  EXPECT_EQ(rows.users[0].upload_factor, 1.0f);
  EXPECT_EQ(rows.users[1].user_id, 2u);
  EXPECT_EQ(rows.users[1].passkey.view(), "Key-Two!");
  EXPECT_FALSE(rows.users[1].enabled);
  EXPECT_FALSE(rows.users[1].can_leech);
  EXPECT_EQ(rows.users[1].upload_factor, 2.0f);
  EXPECT_EQ(rows.users[1].download_factor, 0.5f);
  ASSERT_EQ(rows.torrents.size(), 2u);
  EXPECT_EQ(rows.torrents[0].torrent_id, 10u);
  EXPECT_EQ(to_hex(rows.torrents[0].info_hash), hash_a);
  EXPECT_EQ(rows.torrents[1].torrent_id, 20u);
  EXPECT_EQ(to_hex(rows.torrents[1].info_hash), "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(rows.torrents[1].upload_factor, 0.0f);
  EXPECT_EQ(rows.torrents[1].download_factor, 2.0f);
  ASSERT_EQ(rows.client_rules.size(), 2u);
  EXPECT_EQ(std::string(rows.client_rules[0].prefix_bytes().begin(),
                        rows.client_rules[0].prefix_bytes().end()),
            "-XX");
  EXPECT_FALSE(rows.client_rules[0].allowed);
  EXPECT_TRUE(rows.client_rules[1].allowed);
  EXPECT_EQ(this->backend().rows_refused(), 0u);
}

TYPED_TEST(BackendTest, InvalidRowsAreRefusedAndCountedTheRestLoad) {
  if (!TypeParam::holds_invalid_rows) GTEST_SKIP() << "typed setters hold valid rows only";
  this->site.put_user({1, "key-1"});
  this->site.put_torrent({10, hash_a});
  this->site.put_client_rule("-qB", true);
  this->site.put_invalid_rows();  // 3 users, 3 torrents, 1 rule
  const auto loaded = this->backend().load_catalogue();
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  ASSERT_EQ(loaded.value().users.size(), 1u);
  EXPECT_EQ(loaded.value().users[0].user_id, 1u);
  ASSERT_EQ(loaded.value().torrents.size(), 1u);
  EXPECT_EQ(loaded.value().torrents[0].torrent_id, 10u);
  ASSERT_EQ(loaded.value().client_rules.size(), 1u);
  EXPECT_EQ(this->backend().rows_refused(), 7u);
}

TYPED_TEST(BackendTest, ChangesReportInsertsUpdatesAndDeletesInOrder) {
  this->site.put_user({5, "five"});
  ASSERT_TRUE(this->backend().load_catalogue().ok());
  EXPECT_EQ(changes_of(this->site), std::vector<std::string>{});

  this->site.put_user({1, "key-1"});
  this->site.put_torrent({10, hash_a});
  this->site.put_client_rule("-qB", true);
  EXPECT_EQ(changes_of(this->site),
            (std::vector<std::string>{"user 1 key-1 enabled=true can_leech=true factors=1/1",
                                      "torrent 10 " + hash_a + " factors=1/1",
                                      "client_rule -qB allowed=true"}));
  EXPECT_EQ(changes_of(this->site), std::vector<std::string>{});

  this->site.put_user({1, "new-key", 1, 0, 1.0, 0.0});  // passkey change
  this->site.remove_torrent(10);
  this->site.put_client_rule("-qB", false);
  this->site.remove_user(5);
  EXPECT_EQ(changes_of(this->site),
            (std::vector<std::string>{"user 1 new-key enabled=true can_leech=false factors=1/0",
                                      "torrent_removed 10", "client_rule -qB allowed=false",
                                      "user_removed 5"}));

  this->site.change_user_id(1, {7, "new-key", 1, 0, 1.0, 0.0});
  this->site.remove_client_rule("-qB");
  EXPECT_EQ(changes_of(this->site),
            (std::vector<std::string>{"user_removed 1",
                                      "user 7 new-key enabled=true can_leech=false factors=1/0",
                                      "client_rule_removed -qB allowed=false"}));
  EXPECT_EQ(changes_of(this->site), std::vector<std::string>{});
}

// A key changed several times is reported once, as it is now, at its last change.
TYPED_TEST(BackendTest, ChangesReportEachKeyOnceAtItsLastChange) {
  ASSERT_TRUE(this->backend().load_catalogue().ok());
  this->site.put_user({1, "first"});
  this->site.put_torrent({10, hash_a});
  this->site.put_user({1, "second"});
  this->site.put_torrent({20, hash_b});
  this->site.remove_torrent(20);
  EXPECT_EQ(changes_of(this->site),
            (std::vector<std::string>{"torrent 10 " + hash_a + " factors=1/1",
                                      "user 1 second enabled=true can_leech=true factors=1/1",
                                      "torrent_removed 20"}));
}

TYPED_TEST(BackendTest, CreditsAreSummedIntoTransfersAndUserTotals) {
  auto first = delta(1, 10, 'a');
  first.uploaded = 1000;
  first.downloaded = 300;
  auto other_torrent = delta(1, 20, 'b');
  other_torrent.uploaded = 5;
  other_torrent.downloaded = 7;
  auto other_user = delta(2, 10, 'c');
  other_user.uploaded = 11;
  ASSERT_TRUE(this->write(batch(1, {first, other_torrent, other_user})));
  auto second = delta(1, 10, 'a');
  second.uploaded = 24;
  second.downloaded = 700;
  auto other_peer = delta(1, 10, 'z');  // same user and torrent, another client
  other_peer.uploaded = 1;
  ASSERT_TRUE(this->write(batch(2, {second, other_peer})));

  const auto transfer = this->site.transfer(1, 10);
  ASSERT_TRUE(transfer.has_value());
  EXPECT_EQ(transfer->uploaded, 1025u);
  EXPECT_EQ(transfer->downloaded, 1000u);
  EXPECT_EQ(this->site.transfer(1, 20)->uploaded, 5u);
  EXPECT_EQ(this->site.transfer(2, 10)->uploaded, 11u);
  EXPECT_FALSE(this->site.transfer(2, 20).has_value());
  EXPECT_EQ(this->site.user_totals(1), (UserTotalsRow{1030, 1007}));
  EXPECT_EQ(this->site.user_totals(2), (UserTotalsRow{11, 0}));
}

// First sightings credit nothing: the user's totals row is created at zero if absent, and an
// existing one keeps its value (SQL backends skip rewriting it; the rows must not differ),
// in batches that mix credited and uncredited users, more than a multi-row statement holds.
TYPED_TEST(BackendTest, AUserCreditedNothingHasTotalsAtZeroOrAsTheyWere) {
  auto credited = delta(1, 10, 'a');
  credited.uploaded = 40;
  credited.downloaded = 2;
  ASSERT_TRUE(this->write(batch(1, {credited})));
  std::vector<AccountingDelta> deltas;
  for (std::uint64_t user = 1; user <= 150; ++user) {
    auto first_sighting = delta(user, 20, 'b');
    first_sighting.baseline_uploaded = 5000;
    first_sighting.announced_unix_s = 100;
    if (user % 7 == 0) first_sighting.downloaded = user;  // some users credited
    deltas.push_back(first_sighting);
  }
  ASSERT_TRUE(this->write(batch(2, deltas)));
  EXPECT_EQ(this->site.user_totals(1), (UserTotalsRow{40, 2}));  // as it was
  EXPECT_EQ(this->site.user_totals(2), (UserTotalsRow{0, 0}));   // created at zero
  EXPECT_EQ(this->site.user_totals(7), (UserTotalsRow{0, 7}));
  EXPECT_EQ(this->site.user_totals(150), (UserTotalsRow{0, 0}));
  EXPECT_EQ(this->site.user_totals(147), (UserTotalsRow{0, 147}));
  EXPECT_FALSE(this->site.user_totals(151).has_value());
  EXPECT_EQ(this->site.transfer(2, 20)->last_announce_at, 100u);  // the transfer row is written
  // Uncredited again: the row stays.
  auto again = delta(1, 10, 'a');
  ASSERT_TRUE(this->write(batch(3, {again})));
  EXPECT_EQ(this->site.user_totals(1), (UserTotalsRow{40, 2}));
}

TYPED_TEST(BackendTest, RealBytesAndSecondsAreKeptApart) {
  auto first = delta(1, 10, 'a');
  first.uploaded = 200;  // double upload
  first.uploaded_real = 100;
  first.downloaded = 0;  // freeleech
  first.downloaded_real = 50;
  first.seed_s = 30;
  first.leech_s = 60;
  ASSERT_TRUE(this->write(batch(1, {first})));
  auto second = delta(1, 10, 'a');
  second.uploaded_real = 1;
  second.downloaded_real = 2;
  second.seed_s = 3;
  second.leech_s = 4;
  ASSERT_TRUE(this->write(batch(2, {second})));
  const auto transfer = this->site.transfer(1, 10);
  ASSERT_TRUE(transfer.has_value());
  EXPECT_EQ(transfer->uploaded, 200u);
  EXPECT_EQ(transfer->downloaded, 0u);
  EXPECT_EQ(transfer->uploaded_real, 101u);
  EXPECT_EQ(transfer->downloaded_real, 52u);
  EXPECT_EQ(transfer->seed_s, 33u);
  EXPECT_EQ(transfer->leech_s, 64u);
  EXPECT_EQ(this->site.user_totals(1), (UserTotalsRow{200, 0}));  // credited bytes only
}

TYPED_TEST(BackendTest, CompletedAtIsSetOnceAndLastAnnounceIsTheLatest) {
  auto leeching = delta(1, 10, 'a');
  leeching.announced_unix_s = 1000;
  ASSERT_TRUE(this->write(batch(1, {leeching})));
  EXPECT_EQ(this->site.transfer(1, 10)->completed_at, std::nullopt);
  EXPECT_EQ(this->site.transfer(1, 10)->last_announce_at, 1000u);

  auto completed = delta(1, 10, 'a');
  completed.completed = true;
  completed.announced_unix_s = 2000;
  ASSERT_TRUE(this->write(batch(2, {completed})));
  EXPECT_EQ(this->site.transfer(1, 10)->completed_at, 2000u);

  auto again = delta(1, 10, 'b');  // a second snatch, from another client
  again.completed = true;
  again.announced_unix_s = 3000;
  auto older = delta(1, 10, 'c');  // a peer whose delta covers an earlier announce
  older.announced_unix_s = 1500;
  ASSERT_TRUE(this->write(batch(3, {again, older})));
  EXPECT_EQ(this->site.transfer(1, 10)->completed_at, 2000u);
  EXPECT_EQ(this->site.transfer(1, 10)->last_announce_at, 3000u);
}

TYPED_TEST(BackendTest, BaselinesAreStoredReplacedAndDeletedWhenClosed) {
  auto a = delta(1, 10, 'a');
  a.baseline_uploaded = 100;
  a.baseline_downloaded = 200;
  a.announced_unix_s = 1000;
  auto b = delta(1, 10, 'b');
  b.baseline_uploaded = 7;
  b.seeding = true;
  b.announced_unix_s = 1001;
  auto huge = delta(2, 10, 'c');  // counters beyond int64 come back unchanged
  huge.baseline_uploaded = ~std::uint64_t{0};
  ASSERT_TRUE(this->write(batch(1, {a, b, huge})));
  auto stored = this->backend().load_baselines();
  ASSERT_TRUE(stored.ok()) << stored.error();
  ASSERT_EQ(stored.value().size(), 3u);
  EXPECT_EQ(stored.value()[0].key, a.key);
  EXPECT_EQ(stored.value()[0].uploaded, 100u);
  EXPECT_EQ(stored.value()[0].downloaded, 200u);
  EXPECT_EQ(stored.value()[0].announced_unix_s, 1000u);
  EXPECT_FALSE(stored.value()[0].seeding);
  EXPECT_EQ(stored.value()[1].key, b.key);
  EXPECT_TRUE(stored.value()[1].seeding);
  EXPECT_EQ(stored.value()[2].uploaded, ~std::uint64_t{0});

  a.baseline_uploaded = 150;
  a.seeding = true;
  a.announced_unix_s = 2000;
  b.closed = true;
  b.uploaded = 9;  // a stop still credits its last bytes
  ASSERT_TRUE(this->write(batch(2, {a, b})));
  stored = this->backend().load_baselines();
  ASSERT_TRUE(stored.ok()) << stored.error();
  ASSERT_EQ(stored.value().size(), 2u);
  EXPECT_EQ(stored.value()[0].key, a.key);
  EXPECT_EQ(stored.value()[0].uploaded, 150u);
  EXPECT_EQ(stored.value()[0].announced_unix_s, 2000u);
  EXPECT_TRUE(stored.value()[0].seeding);
  EXPECT_EQ(stored.value()[1].key, huge.key);
  EXPECT_EQ(this->site.transfer(1, 10)->uploaded, 9u);
}

// Two cluster nodes write one peer's baselines: the later announce's stays, whichever batch
// commits last; a close deletes only a baseline not newer than itself.
TYPED_TEST(BackendTest, AnOlderBaselineNeverReplacesANewerOne) {
  auto later = delta(1, 10, 'a');
  later.baseline_uploaded = 150;
  later.announced_unix_s = 2000;
  ASSERT_TRUE(this->write(batch(1, {later}, "node-b")));
  auto earlier = delta(1, 10, 'a');
  earlier.baseline_uploaded = 120;
  earlier.announced_unix_s = 1500;
  ASSERT_TRUE(this->write(batch(1, {earlier}, "node-a")));
  auto stored = this->backend().load_baselines();
  ASSERT_TRUE(stored.ok()) << stored.error();
  ASSERT_EQ(stored.value().size(), 1u);
  EXPECT_EQ(stored.value()[0].uploaded, 150u);
  EXPECT_EQ(stored.value()[0].announced_unix_s, 2000u);
  earlier.closed = true;
  earlier.announced_unix_s = 1800;
  ASSERT_TRUE(this->write(batch(2, {earlier}, "node-a")));
  stored = this->backend().load_baselines();
  ASSERT_TRUE(stored.ok()) << stored.error();
  ASSERT_EQ(stored.value().size(), 1u);  // an older close leaves the newer baseline
  later.closed = true;
  ASSERT_TRUE(this->write(batch(2, {later}, "node-b")));
  stored = this->backend().load_baselines();
  ASSERT_TRUE(stored.ok()) << stored.error();
  EXPECT_TRUE(stored.value().empty());
}

// A peer that announced at node A (1000 -> 1500) and then at node B (-> 1800) before A's
// baseline reached B: both derived from 1000. Arbitrated, every byte is credited once, in
// either commit order, the credited bytes keeping each node's factor, and seconds too.
TYPED_TEST(BackendTest, ArbitratedBatchesCreditEachByteOnceAcrossNodes) {
  for (const bool a_first : {true, false}) {
    const std::uint64_t user = a_first ? 1 : 2;
    auto first = delta(user, 10, 'a');  // the first sighting, written by A
    first.baseline_uploaded = 1000;
    first.announced_unix_s = 1000;
    first.from_uploaded = 1000;
    first.from_announced_unix_s = 1000;
    auto first_batch = batch(a_first ? 1 : 3, {first}, "node-a");
    first_batch.arbitrate = true;
    ASSERT_TRUE(this->write(first_batch));
    auto at_a = first;  // 1000 -> 1500 at A, factor 1
    at_a.uploaded = at_a.uploaded_real = 500;
    at_a.seed_s = 100;
    at_a.baseline_uploaded = 1500;
    at_a.announced_unix_s = 1100;
    auto at_b = first;  // 1000 -> 1800 at B (A's baseline not there yet), factor 2
    at_b.uploaded_real = 800;
    at_b.uploaded = 1600;
    at_b.seed_s = 200;
    at_b.baseline_uploaded = 1800;
    at_b.announced_unix_s = 1200;
    auto batch_a = batch(a_first ? 2 : 4, {at_a}, "node-a");
    auto batch_b = batch(a_first ? 1 : 2, {at_b}, "node-b");
    batch_a.arbitrate = batch_b.arbitrate = true;
    ASSERT_TRUE(this->write(a_first ? batch_a : batch_b));
    ASSERT_TRUE(this->write(a_first ? batch_b : batch_a));
    const auto transfer = this->site.transfer(user, 10);
    ASSERT_TRUE(transfer.has_value());
    EXPECT_EQ(transfer->uploaded_real, 800u) << "A first: " << a_first;
    // A first: A's 500 at factor 1, then B's last 300 at factor 2; B first: B's 800 at 2.
    EXPECT_EQ(transfer->uploaded, a_first ? 500u + 600u : 1600u) << "A first: " << a_first;
    EXPECT_EQ(this->site.user_totals(user)->uploaded, transfer->uploaded);
    EXPECT_EQ(transfer->seed_s, 200u) << "A first: " << a_first;
    auto stored = this->backend().load_baselines();
    ASSERT_TRUE(stored.ok()) << stored.error();
    const auto held = std::find_if(stored.value().begin(), stored.value().end(),
                                   [&](const Baseline& b) { return b.key == first.key; });
    ASSERT_NE(held, stored.value().end());
    EXPECT_EQ(held->uploaded, 1800u);  // the later announce's, whatever the order
  }
}

// A peer that reached node B before its baseline did is a first sighting there (nothing credited
// by the shard); the store credits it from A's stored baseline to the sighting, by B's factors,
// once, and only within the window (older, the peer had expired).
TYPED_TEST(BackendTest, AFirstSightingIsCreditedFromAnotherNodesStoredBaseline) {
  auto at_a = delta(3, 10, 'a');  // A's baseline: 1000 up, 50 down, leeching
  at_a.baseline_uploaded = 1000;
  at_a.baseline_downloaded = 50;
  at_a.announced_unix_s = 5000;
  ASSERT_TRUE(this->write(batch(1, {at_a}, "node-a")));
  auto sighted = delta(3, 10, 'a');  // B: first seen at 1600 up, 40 down (a counter went down)
  sighted.baseline_uploaded = sighted.from_uploaded = 1600;
  sighted.baseline_downloaded = sighted.from_downloaded = 40;
  sighted.announced_unix_s = sighted.from_announced_unix_s = 5030;
  sighted.from_continues = true;
  sighted.upload_scale = 2.0;
  auto late = sighted;  // the same, but past the window
  late.key = delta(3, 10, 'b').key;
  auto late_a = at_a;
  late_a.key = late.key;
  ASSERT_TRUE(this->write(batch(2, {late_a}, "node-a")));
  auto b_batch = batch(1, {sighted, late}, "node-b");
  b_batch.arbitrate = true;
  b_batch.arbitrate_window_s = 29;  // 'b' was seen 30 s after A's announce: too late...
  b_batch.deltas[0].from_announced_unix_s = b_batch.deltas[0].announced_unix_s = 5029;  // ...'a' not
  ASSERT_TRUE(this->write(b_batch));
  const auto transfer = this->site.transfer(3, 10);
  ASSERT_TRUE(transfer.has_value());
  EXPECT_EQ(transfer->uploaded_real, 600u);
  EXPECT_EQ(transfer->uploaded, 1200u);
  EXPECT_EQ(transfer->downloaded_real, 0u);
  EXPECT_EQ(transfer->leech_s, 29u);
  // Written again (a retry under another id would be a bug; the same batch is skipped).
  EXPECT_FALSE(this->write(b_batch));
  // Without arbitration (one node) a first sighting credits nothing, as before.
  auto alone = sighted;
  alone.key = delta(3, 10, 'c').key;
  auto alone_a = at_a;
  alone_a.key = alone.key;
  ASSERT_TRUE(this->write(batch(3, {alone_a}, "node-a")));
  ASSERT_TRUE(this->write(batch(2, {alone}, "node-b")));
  EXPECT_EQ(this->site.transfer(3, 10)->uploaded_real, 600u);
}

// The client's counters at one announce, as a from-baseline continuing its session.
void continue_from(AccountingDelta& made, std::uint64_t uploaded, std::uint64_t announced_unix_s) {
  made.from_uploaded = uploaded;
  made.from_announced_unix_s = announced_unix_s;
  made.from_continues = true;
}

AccountingBatch arbitrated(AccountingBatch made, std::uint32_t window_s = 3900) {
  made.arbitrate = true;
  made.arbitrate_window_s = window_s;
  return made;
}

std::uint64_t unix_now() { return static_cast<std::uint64_t>(std::time(nullptr)); }

// A's batch with the client's announce at 1500 is slow to commit (its database was out of reach,
// or its journal is replayed after a crash), and its baseline reached node B meanwhile (published
// once journalled), which credits 1500 -> 1800 and commits first. The stored baseline is then
// behind B's from-baseline: B's batch credits the span A owes (1000 -> 1500), and A's, landing
// after, is cut to nothing. Whichever commits first, and whether B's peer then stopped (a
// tombstone stays for A's batch to be cut against), each byte is credited once.
TYPED_TEST(BackendTest, ABaselineAheadOfTheStoreIsCreditedOnceInEitherOrder) {
  const std::uint64_t t0 = unix_now() - 600;
  std::uint64_t round = 0;  // batch sequences rise from round to round
  for (const bool b_first : {true, false}) {
    for (const bool b_stopped : {false, true}) {
      ++round;
      const std::uint64_t user = 10 + round;
      auto stored = delta(user, 10, 'a');  // A's committed baseline: 1000 at t0, seeding
      stored.baseline_uploaded = 1000;
      stored.announced_unix_s = t0;
      stored.seeding = true;
      ASSERT_TRUE(this->write(arbitrated(batch(1 + 2 * round, {stored}, "node-a"))));
      auto at_a = stored;  // 1000 -> 1500 at A, 60 s seeding
      continue_from(at_a, 1000, t0);
      at_a.uploaded = at_a.uploaded_real = 500;
      at_a.seed_s = 60;
      at_a.baseline_uploaded = 1500;
      at_a.announced_unix_s = t0 + 60;
      auto at_b = stored;  // 1500 -> 1800 at B, from A's journalled baseline, factor 2
      continue_from(at_b, 1500, t0 + 60);
      at_b.uploaded_real = 300;
      at_b.uploaded = 600;
      at_b.upload_scale = 2.0;
      at_b.seed_s = 30;
      at_b.baseline_uploaded = 1800;
      at_b.announced_unix_s = t0 + 90;
      at_b.closed = b_stopped;
      const auto batch_a = arbitrated(batch(2 + 2 * round, {at_a}, "node-a"));
      const auto batch_b = arbitrated(batch(1 + round, {at_b}, "node-b"));
      ASSERT_TRUE(this->write(b_first ? batch_b : batch_a));
      ASSERT_TRUE(this->write(b_first ? batch_a : batch_b));
      const auto transfer = this->site.transfer(user, 10);
      ASSERT_TRUE(transfer.has_value());
      const std::string order = fmt::format("B first: {}, B stopped: {}", b_first, b_stopped);
      EXPECT_EQ(transfer->uploaded_real, 800u) << order;
      // B first: the whole span at B's factor; A first: A's 500 at 1, B's 300 at 2.
      EXPECT_EQ(transfer->uploaded, b_first ? 1600u : 1100u) << order;
      EXPECT_EQ(transfer->seed_s, 90u) << order;
      EXPECT_EQ(this->site.user_totals(user)->uploaded, transfer->uploaded) << order;
      auto held = this->backend().load_baselines();
      ASSERT_TRUE(held.ok()) << held.error();
      const auto found = std::find_if(held.value().begin(), held.value().end(),
                                      [&](const Baseline& b) { return b.key == stored.key; });
      if (b_stopped) {
        EXPECT_EQ(found, held.value().end()) << order;  // a tombstone is never loaded
      } else {
        ASSERT_NE(found, held.value().end()) << order;
        EXPECT_EQ(found->uploaded, 1800u) << order;
      }
    }
  }
}

// B sighted the client first (its baseline had not travelled) at 1600 and then it stopped there
// at 1700; B's batch commits first and credits 1000 -> 1700 (the first sighting bridged from A's
// stored baseline). A's batch with the announce at 1400 lands later: the tombstone B left cuts it
// to nothing, where no row at all would have credited 1000 -> 1400 twice.
TYPED_TEST(BackendTest, ALateBatchIsCutAgainstATombstone) {
  const std::uint64_t t0 = unix_now() - 600;
  auto stored = delta(20, 10, 'a');
  stored.baseline_uploaded = 1000;
  stored.announced_unix_s = t0;
  ASSERT_TRUE(this->write(arbitrated(batch(1, {stored}, "node-a"))));
  auto at_b = stored;  // sighted at 1600 (t0 + 40), stopped at 1700 (t0 + 50)
  continue_from(at_b, 1600, t0 + 40);
  at_b.uploaded = at_b.uploaded_real = 100;
  at_b.leech_s = 10;
  at_b.baseline_uploaded = 1700;
  at_b.announced_unix_s = t0 + 50;
  at_b.closed = true;
  ASSERT_TRUE(this->write(arbitrated(batch(1, {at_b}, "node-b"))));
  EXPECT_EQ(this->site.transfer(20, 10)->uploaded_real, 700u);
  EXPECT_EQ(this->site.transfer(20, 10)->leech_s, 50u);
  auto at_a = stored;  // 1000 -> 1400 at A (t0 + 30)
  continue_from(at_a, 1000, t0);
  at_a.uploaded = at_a.uploaded_real = 400;
  at_a.leech_s = 30;
  at_a.baseline_uploaded = 1400;
  at_a.announced_unix_s = t0 + 30;
  ASSERT_TRUE(this->write(arbitrated(batch(2, {at_a}, "node-a"))));
  EXPECT_EQ(this->site.transfer(20, 10)->uploaded_real, 700u);
  EXPECT_EQ(this->site.transfer(20, 10)->leech_s, 50u);
  auto held = this->backend().load_baselines();
  ASSERT_TRUE(held.ok()) << held.error();
  EXPECT_TRUE(held.value().empty());  // A's older baseline does not revive the closed peer
  // A new session after the stop (`started`, its counters from zero) is not the tombstone's
  // business, however soon it comes: credited in full.
  auto restarted = stored;
  restarted.from_uploaded = 0;
  restarted.from_announced_unix_s = t0 + 51;
  restarted.from_continues = false;
  restarted.uploaded = restarted.uploaded_real = 40;
  restarted.baseline_uploaded = 40;
  restarted.announced_unix_s = t0 + 52;
  ASSERT_TRUE(this->write(arbitrated(batch(2, {restarted}, "node-b"))));
  EXPECT_EQ(this->site.transfer(20, 10)->uploaded_real, 740u);
  held = this->backend().load_baselines();
  ASSERT_TRUE(held.ok()) << held.error();
  ASSERT_EQ(held.value().size(), 1u);  // the new session's baseline replaced the tombstone
  EXPECT_EQ(held.value()[0].uploaded, 40u);
  // A still later batch of A's, of the session that stopped (1400 -> 1500): its lower counters
  // are no longer behind the new session's, but the stop point the row keeps cuts it.
  auto at_a_again = at_a;
  continue_from(at_a_again, 1400, t0 + 30);
  at_a_again.uploaded = at_a_again.uploaded_real = 100;
  at_a_again.leech_s = 15;
  at_a_again.baseline_uploaded = 1500;
  at_a_again.announced_unix_s = t0 + 45;
  ASSERT_TRUE(this->write(arbitrated(batch(3, {at_a_again}, "node-a"))));
  EXPECT_EQ(this->site.transfer(20, 10)->uploaded_real, 740u);
  EXPECT_EQ(this->site.transfer(20, 10)->leech_s, 50u);
  held = this->backend().load_baselines();
  ASSERT_TRUE(held.ok()) << held.error();
  ASSERT_EQ(held.value().size(), 1u);
  EXPECT_EQ(held.value()[0].uploaded, 40u);
}

// At B the client stopped at 1700 and started again at once (a new session from 40): one
// pending delta, credited 1400 -> 1700, its baseline the new session's, its stop 1700. A's
// batch with the announce at 1400 lands after it: cut against the stop the row keeps, where the
// new session's lower counters alone would have let it credit 1000 -> 1400 again; and its
// baseline, 2 s before the new session's, does not replace it.
TYPED_TEST(BackendTest, AStopAndANewSessionInOneDeltaKeepTheStop) {
  const std::uint64_t t0 = unix_now() - 600;
  auto stored = delta(21, 10, 'a');
  stored.baseline_uploaded = 1000;
  stored.announced_unix_s = t0;
  ASSERT_TRUE(this->write(arbitrated(batch(1, {stored}, "node-a"))));
  auto at_b = stored;
  continue_from(at_b, 1400, t0 + 50);  // A's journalled baseline, adopted
  at_b.uploaded = at_b.uploaded_real = 300;
  at_b.stopped_unix_s = t0 + 51;
  at_b.stopped_uploaded = 1700;
  at_b.baseline_uploaded = 40;
  at_b.announced_unix_s = t0 + 52;
  ASSERT_TRUE(this->write(arbitrated(batch(1, {at_b}, "node-b"))));
  EXPECT_EQ(this->site.transfer(21, 10)->uploaded_real, 700u);  // 400 bridged
  auto at_a = stored;
  continue_from(at_a, 1000, t0);
  at_a.uploaded = at_a.uploaded_real = 400;
  at_a.baseline_uploaded = 1400;
  at_a.announced_unix_s = t0 + 50;
  ASSERT_TRUE(this->write(arbitrated(batch(2, {at_a}, "node-a"))));
  EXPECT_EQ(this->site.transfer(21, 10)->uploaded_real, 700u);
  auto held = this->backend().load_baselines();
  ASSERT_TRUE(held.ok()) << held.error();
  ASSERT_EQ(held.value().size(), 1u);
  // The new session's: A's higher counters within the 2 s clock allowance do not replace it.
  EXPECT_EQ(held.value()[0].uploaded, 40u);
}

// A tombstone lasts closed_baseline_keep_s; a from-baseline that starts a session (`started`) is
// never bridged from an older stored one, nor is one older than the window.
TYPED_TEST(BackendTest, TombstonesAgeOutAndOnlyContinuingSessionsAreBridged) {
  const std::uint64_t old_s = unix_now() - closed_baseline_keep_s - 100;
  auto stopped = delta(30, 10, 'a');  // a tombstone a day and 100 s old
  stopped.baseline_uploaded = 5000;
  stopped.announced_unix_s = old_s;
  stopped.closed = true;
  ASSERT_TRUE(this->write(arbitrated(batch(1, {stopped}, "node-b"))));
  auto late = stopped;  // an older announce of the same session, landing after it
  late.closed = false;
  continue_from(late, 4000, old_s - 20);
  late.uploaded = late.uploaded_real = 900;
  late.baseline_uploaded = 4900;
  late.announced_unix_s = old_s - 10;
  ASSERT_TRUE(this->write(arbitrated(batch(1, {late}, "node-a"))));
  // The tombstone was deleted before this batch was arbitrated: nothing cut it.
  EXPECT_EQ(this->site.transfer(30, 10)->uploaded_real, 900u);

  const std::uint64_t t0 = unix_now() - 600;
  auto base = delta(31, 10, 'a');
  base.baseline_uploaded = 1000;
  base.announced_unix_s = t0;
  ASSERT_TRUE(this->write(arbitrated(batch(2, {base}, "node-a"))));
  auto started = base;  // a new session at B: from 1200, not continuing
  started.from_uploaded = 1200;
  started.from_announced_unix_s = t0 + 10;
  started.uploaded = started.uploaded_real = 50;
  started.baseline_uploaded = 1250;
  started.announced_unix_s = t0 + 20;
  ASSERT_TRUE(this->write(arbitrated(batch(2, {started}, "node-b"))));
  EXPECT_EQ(this->site.transfer(31, 10)->uploaded_real, 50u);
  auto beyond = delta(32, 10, 'a');  // continuing, but 3901 s after the stored baseline
  beyond.baseline_uploaded = 1000;
  beyond.announced_unix_s = t0 - 4000;
  ASSERT_TRUE(this->write(arbitrated(batch(3, {beyond}, "node-a"))));
  continue_from(beyond, 1200, t0 - 4000 + 3901);
  beyond.uploaded = beyond.uploaded_real = 50;
  beyond.baseline_uploaded = 1250;
  beyond.announced_unix_s = t0 - 4000 + 3950;
  ASSERT_TRUE(this->write(arbitrated(batch(3, {beyond}, "node-b"))));
  EXPECT_EQ(this->site.transfer(32, 10)->uploaded_real, 50u);
}

TYPED_TEST(BackendTest, ABatchIsAppliedAtMostOnce) {
  auto credit = delta(1, 10, 'a');
  credit.uploaded = 100;
  EXPECT_TRUE(this->write(batch(5, {credit})));
  EXPECT_FALSE(this->write(batch(5, {credit})));  // the same batch again
  EXPECT_FALSE(this->write(batch(3, {credit})));  // a lower sequence
  EXPECT_EQ(this->site.transfer(1, 10)->uploaded, 100u);
  EXPECT_EQ(this->site.user_totals(1)->uploaded, 100u);
  EXPECT_EQ(this->last_sequence("node-a", 0), 5u);
  EXPECT_TRUE(this->write(batch(6, {credit})));
  EXPECT_EQ(this->site.transfer(1, 10)->uploaded, 200u);
}

TYPED_TEST(BackendTest, LastSequenceIsPerNodeAndShard) {
  EXPECT_EQ(this->last_sequence("node-a", 0), 0u);
  ASSERT_TRUE(this->write(batch(4, {}, "node-a", 0)));
  ASSERT_TRUE(this->write(batch(2, {}, "node-a", 1)));
  ASSERT_TRUE(this->write(batch(1, {}, "node-b", 0)));
  EXPECT_EQ(this->last_sequence("node-a", 0), 4u);
  EXPECT_EQ(this->last_sequence("node-a", 1), 2u);
  EXPECT_EQ(this->last_sequence("node-b", 0), 1u);
  EXPECT_EQ(this->last_sequence("node-b", 1), 0u);
  // Shard 1's mark does not stop shard 0's lower sequences, nor the other way round.
  EXPECT_TRUE(this->write(batch(3, {}, "node-a", 1)));
  EXPECT_FALSE(this->write(batch(4, {}, "node-a", 0)));
}

TYPED_TEST(BackendTest, AFailedWriteWritesNothingAndItsRetryAppliesOnce) {
  auto credit = delta(1, 10, 'a');
  credit.uploaded = 100;
  credit.baseline_uploaded = 100;
  const auto retried = batch(1, {credit, delta(2, 10, 'b')});
  this->site.make_next_write_fail();
  const auto failed = this->backend().write_batch(retried);
  ASSERT_FALSE(failed.ok());
  EXPECT_FALSE(failed.error().empty());
  this->site.end_write_failure();
  EXPECT_FALSE(this->site.transfer(1, 10).has_value());
  EXPECT_FALSE(this->site.user_totals(1).has_value());
  EXPECT_EQ(this->last_sequence("node-a", 0), 0u);
  const auto baselines = this->backend().load_baselines();
  ASSERT_TRUE(baselines.ok());
  EXPECT_TRUE(baselines.value().empty());

  EXPECT_TRUE(this->write(retried));
  EXPECT_FALSE(this->write(retried));
  EXPECT_EQ(this->site.transfer(1, 10)->uploaded, 100u);
  EXPECT_EQ(this->site.user_totals(1)->uploaded, 100u);
  EXPECT_EQ(this->last_sequence("node-a", 0), 1u);
}

// Several rows of one user, and several clients of one user on one torrent, in one batch: the
// tables end as if each delta had been applied alone in batch order (the memory backend does
// exactly that), whatever a backend sums before writing. The first completed delta in batch
// order sets completed_at even when a later one announced earlier.
TYPED_TEST(BackendTest, ManyRowsOfOneUserInABatchEndAsIfAppliedOneByOne) {
  auto first_snatch = delta(1, 10, 'a');
  first_snatch.completed = true;
  first_snatch.announced_unix_s = 3000;
  first_snatch.uploaded = 5;
  first_snatch.seed_s = 10;
  auto second_snatch = delta(1, 10, 'b');
  second_snatch.completed = true;
  second_snatch.announced_unix_s = 2000;
  second_snatch.uploaded = 7;
  second_snatch.downloaded_real = 3;
  second_snatch.leech_s = 20;
  auto stopped = delta(1, 10, 'c');
  stopped.closed = true;
  stopped.uploaded = 1;
  stopped.downloaded = 2;
  stopped.announced_unix_s = 3500;
  auto idle = delta(1, 20, 'a');  // nothing credited: the rows exist all the same
  idle.announced_unix_s = 100;
  auto other_user = delta(2, 10, 'a');
  other_user.downloaded = 9;
  ASSERT_TRUE(this->write(batch(1, {first_snatch, second_snatch, stopped, idle, other_user})));

  EXPECT_EQ(this->site.transfer(1, 10), (TransferRow{13, 2, 0, 3, 10, 20, 3000, 3500}));
  EXPECT_EQ(this->site.transfer(1, 20), (TransferRow{0, 0, 0, 0, 0, 0, std::nullopt, 100}));
  EXPECT_EQ(this->site.transfer(2, 10), (TransferRow{0, 9, 0, 0, 0, 0, std::nullopt, 0}));
  EXPECT_EQ(this->site.user_totals(1), (UserTotalsRow{13, 2}));
  EXPECT_EQ(this->site.user_totals(2), (UserTotalsRow{0, 9}));
  const auto stored = this->backend().load_baselines();
  ASSERT_TRUE(stored.ok()) << stored.error();
  ASSERT_EQ(stored.value().size(), 4u);  // 'c' was closed
  EXPECT_EQ(stored.value()[0].key, first_snatch.key);
  EXPECT_EQ(stored.value()[1].key, second_snatch.key);
  EXPECT_EQ(stored.value()[2].key, idle.key);
  EXPECT_EQ(stored.value()[3].key, other_user.key);
}

// Random batches (seeded) over few torrents and clients, so keys share users and pairs,
// with snatches, stops and zero deltas; the last batch out of key order. Every row is compared
// with the memory backend's, which applies delta by delta.
TYPED_TEST(BackendTest, RandomBatchesEndAsTheMemoryBackendDeltaByDelta) {
  std::mt19937_64 random(7);
  auto reference = make_memory_backend();
  // Enough users, pairs and baselines for a backend's multi-row statements (SQLite's take 64
  // rows) to run full and partly full.
  constexpr std::uint64_t users_count = 80, torrents_count = 2;
  constexpr int batches_count = 4;
  for (int b = 1; b <= batches_count; ++b) {
    std::vector<AccountingDelta> deltas;
    for (std::uint64_t user = 1; user <= users_count; ++user) {
      for (std::uint64_t torrent = 1; torrent <= torrents_count; ++torrent) {
        for (char client = 'a'; client < 'e'; ++client) {
          if (random() % 3 == 0) continue;
          auto made = delta(user, torrent, client);
          made.uploaded = random() % 4 == 0 ? 0 : random() % 100000;
          made.downloaded = random() % 100000;
          made.uploaded_real = random() % 1000;
          made.downloaded_real = random() % 1000;
          made.seed_s = static_cast<std::uint32_t>(random() % 1800);
          made.leech_s = static_cast<std::uint32_t>(random() % 1800);
          made.baseline_uploaded = random();
          made.baseline_downloaded = random() % 1000000;
          made.announced_unix_s = 1000 * static_cast<std::uint64_t>(b) + random() % 1000;
          made.seeding = random() % 2 == 0;
          made.completed = random() % 5 == 0;
          made.closed = random() % 6 == 0;
          deltas.push_back(made);
        }
      }
    }
    if (b == batches_count) std::shuffle(deltas.begin(), deltas.end(), random);
    const auto written = batch(static_cast<std::uint64_t>(b), deltas);
    ASSERT_TRUE(this->write(written));
    ASSERT_TRUE(reference->write_batch(written).ok());
  }
  for (std::uint64_t user = 1; user <= users_count; ++user) {
    EXPECT_EQ(this->site.user_totals(user), reference->user_totals(user)) << "user " << user;
    for (std::uint64_t torrent = 1; torrent <= torrents_count; ++torrent) {
      EXPECT_EQ(this->site.transfer(user, torrent), reference->transfer(user, torrent))
          << "user " << user << " torrent " << torrent;
    }
  }
  const auto stored = this->backend().load_baselines();
  ASSERT_TRUE(stored.ok()) << stored.error();
  const std::vector<Baseline> expected = reference->baselines();
  ASSERT_EQ(stored.value().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(stored.value()[i].key, expected[i].key) << i;
    EXPECT_EQ(stored.value()[i].uploaded, expected[i].uploaded) << i;
    EXPECT_EQ(stored.value()[i].downloaded, expected[i].downloaded) << i;
    EXPECT_EQ(stored.value()[i].announced_unix_s, expected[i].announced_unix_s) << i;
    EXPECT_EQ(stored.value()[i].seeding, expected[i].seeding) << i;
  }
}

// --- Completed counts (tyto_completions) ---

InfoHash info_hash_of(char fill) {
  InfoHash made;
  std::memset(made.bytes.data(), fill, made.bytes.size());
  return made;
}

AccountingBatch completions_batch(std::uint64_t sequence, std::vector<CompletionDelta> completions,
                                  std::string node = "node-a", std::uint32_t shard = 0) {
  AccountingBatch made = batch(sequence, {}, std::move(node), shard);
  made.completions = std::move(completions);
  return made;
}

std::vector<CompletionCount> completions_of(Backend& backend) {
  const auto loaded = backend.load_completions();
  EXPECT_TRUE(loaded.ok()) << loaded.error();
  return loaded.ok() ? loaded.value() : std::vector<CompletionCount>{};
}

TYPED_TEST(BackendTest, CompletionsAreAddedPerTorrentAndLoadedBackInInfoHashOrder) {
  EXPECT_TRUE(completions_of(this->backend()).empty());
  ASSERT_TRUE(
      this->write(completions_batch(1, {{info_hash_of(0x22), 2}, {info_hash_of(0x7f), 1}})));
  // Another shard's batch, and one with accounting rows beside its completions.
  ASSERT_TRUE(this->write(completions_batch(1, {{info_hash_of(0x01), 4}}, "node-a", 1)));
  auto with_delta = completions_batch(2, {{info_hash_of(0x22), 3}});
  with_delta.deltas.push_back(delta(1, 10, 'a'));
  with_delta.deltas.back().uploaded = 9;
  ASSERT_TRUE(this->write(with_delta));
  EXPECT_EQ(this->site.transfer(1, 10)->uploaded, 9u);
  const std::vector<CompletionCount> expected = {
      {info_hash_of(0x01), 4}, {info_hash_of(0x22), 5}, {info_hash_of(0x7f), 1}};
  EXPECT_EQ(completions_of(this->backend()), expected);
}

TYPED_TEST(BackendTest, ARetriedBatchAddsItsCompletionsOnce) {
  const auto counted = completions_batch(1, {{info_hash_of(0x33), 2}});
  this->site.make_next_write_fail();
  ASSERT_FALSE(this->backend().write_batch(counted).ok());
  this->site.end_write_failure();
  EXPECT_TRUE(completions_of(this->backend()).empty());  // the failed write wrote nothing
  EXPECT_TRUE(this->write(counted));
  EXPECT_FALSE(this->write(counted));  // applied before: the count is not doubled
  EXPECT_FALSE(this->write(completions_batch(1, {{info_hash_of(0x44), 1}})));  // at the mark
  const std::vector<CompletionCount> expected = {{info_hash_of(0x33), 2}};
  EXPECT_EQ(completions_of(this->backend()), expected);
}

TYPED_TEST(BackendTest, InvalidCompletionRowsAreRefusedAndCountedTheRestLoad) {
  ASSERT_TRUE(this->write(completions_batch(1, {{info_hash_of(0x10), 3}})));
  const std::uint64_t refused_before = this->backend().rows_refused();
  const int invalid = this->site.put_completion_rows();
  const auto loaded = completions_of(this->backend());
  EXPECT_EQ(this->backend().rows_refused() - refused_before, static_cast<std::uint64_t>(invalid));
  std::vector<CompletionCount> expected = {{info_hash_of(0x10), 3}};
  if (invalid > 0) expected.push_back({info_hash_of(static_cast<char>(0xff)), 7});
  EXPECT_EQ(loaded, expected);
}

}  // namespace
}  // namespace tyto::store::testing
