// What only the SQLite backend has: its URI, its file, its schema table, a failure inside a
// transaction, and rows a site can write that typed setters cannot.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend_fixtures.hpp"

namespace tyto::store::testing {
namespace {

TEST(OpenBackend, KnowsItsSchemesAndSqliteOptions) {
  EXPECT_TRUE(open_backend("memory:").ok());
  EXPECT_EQ(open_backend("memory:").value()->describe(), "memory:");
  EXPECT_FALSE(open_backend("sqlite:").ok());
  EXPECT_FALSE(open_backend("mysql://user:secret@host/db").ok());
  EXPECT_EQ(open_backend("mysql://user:secret@host/db").error().find("secret"), std::string::npos);
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?busy_timeout=5").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?busy_timeout_ms=").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?busy_timeout_ms=5x").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?busy_timeout_ms=600001").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?cache_mib=").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?cache_mib=65537").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?busy_timeout_ms=50&cache_mib=x").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?busy_timeout_ms=50&").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?busy_timeout_ms").ok());
  EXPECT_FALSE(open_backend("sqlite:/nonexistent-dir/tyto.db").ok());
}

TEST(SqliteBackend, UsesWalAndRecordsEachMigrationOnce) {
  SqliteFixture site;
  EXPECT_EQ(site.backend().describe(), "sqlite:" + site.path());
  EXPECT_EQ(site.backend().migrate(), "");
  EXPECT_EQ(site.count("tyto_schema_migrations"), 5);
  EXPECT_EQ(site.count("tyto_schema_migrations WHERE version IN (1, 2, 3, 4, 5)"), 5);
  auto reopened = site.reopen();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->migrate(), "");
  EXPECT_EQ(site.count("tyto_schema_migrations"), 5);
  EXPECT_EQ(site.count("pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
}

TEST(SqliteBackend, ACommittedBatchIsThereAfterReopening) {
  SqliteFixture site;
  AccountingDelta delta;
  delta.key = {1, 10, {}};
  delta.uploaded = 5;
  delta.baseline_uploaded = 500;
  ASSERT_TRUE(site.backend().write_batch({{"node-a", 2, 9}, {delta}}).ok());
  auto reopened = site.reopen();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->last_sequence("node-a", 2).value(), 9u);
  const auto baselines = reopened->load_baselines();
  ASSERT_TRUE(baselines.ok());
  ASSERT_EQ(baselines.value().size(), 1u);
  EXPECT_EQ(baselines.value()[0].uploaded, 500u);
  EXPECT_FALSE(reopened->write_batch({{"node-a", 2, 9}, {delta}}).value());
}

TEST(SqliteBackend, ABatchFailingHalfwayLeavesNothing) {
  SqliteFixture site;
  // The site's own trigger refuses the second delta's baseline, after the first was written.
  site.sql(
      "CREATE TRIGGER refuse_user_99 BEFORE INSERT ON tyto_peers WHEN NEW.user_id = 99 "
      "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  AccountingDelta first;
  first.key = {1, 10, {}};
  first.uploaded = 5;
  AccountingDelta second;
  second.key = {99, 10, {}};
  const AccountingBatch batch{{"node-a", 0, 1}, {first, second}};
  const auto failed = site.backend().write_batch(batch);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().find("refused by the test"), std::string::npos) << failed.error();
  EXPECT_EQ(site.count("tyto_transfers"), 0);
  EXPECT_EQ(site.count("tyto_user_totals"), 0);
  EXPECT_EQ(site.count("tyto_peers"), 0);
  EXPECT_EQ(site.count("tyto_batches"), 0);
  site.sql("DROP TRIGGER refuse_user_99");
  EXPECT_TRUE(site.backend().write_batch(batch).value());
  EXPECT_EQ(site.transfer(1, 10)->uploaded, 5u);
  EXPECT_EQ(site.count("tyto_peers"), 2);
}

TEST(SqliteBackend, ARowMadeInvalidIsReportedRemovedAndRefused) {
  SqliteFixture site;
  site.put_user({1, "key-1"});
  site.put_torrent({10, std::string(40, 'a')});
  ASSERT_TRUE(site.backend().load_catalogue().ok());
  site.sql("UPDATE tyto_users SET passkey = 'has space' WHERE user_id = 1");
  site.sql("UPDATE tyto_torrents SET upload_factor = 1000 WHERE torrent_id = 10");
  site.sql("INSERT INTO tyto_client_rules(peer_id_prefix, allowed) VALUES (NULL, 1)");
  std::vector<CatalogueChange> changes;
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, CatalogueChangeKind::user_removed);
  EXPECT_EQ(changes[0].user.user_id, 1u);
  EXPECT_EQ(changes[1].kind, CatalogueChangeKind::torrent_removed);
  EXPECT_EQ(changes[1].torrent.torrent_id, 10u);
  EXPECT_EQ(site.backend().rows_refused(), 3u);  // the user, the torrent, the NULL prefix
}

TEST(SqliteBackend, ReadChangeRowsAreDeleted) {
  SqliteFixture site;
  ASSERT_TRUE(site.backend().load_catalogue().ok());
  site.put_user({1, "key-1"});
  site.put_user({2, "key-2"});
  EXPECT_EQ(site.count("tyto_catalogue_changes"), 2);
  std::vector<CatalogueChange> changes;
  ASSERT_EQ(site.backend().changes(changes), "");
  EXPECT_EQ(changes.size(), 2u);
  EXPECT_EQ(site.count("tyto_catalogue_changes"), 0);
  site.put_user({3, "key-3"});
  changes.clear();
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user.user_id, 3u);
}

TEST(SqliteBackend, ChangesWaitForTheSitesOpenTransaction) {
  SqliteFixture site;
  ASSERT_TRUE(site.backend().load_catalogue().ok());
  site.sql("BEGIN");
  site.put_user({1, "key-1"});
  std::vector<CatalogueChange> changes;
  ASSERT_EQ(site.backend().changes(changes), "");
  EXPECT_TRUE(changes.empty());  // not committed yet: not seen
  site.sql("COMMIT");
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, CatalogueChangeKind::user);
}

}  // namespace
}  // namespace tyto::store::testing
