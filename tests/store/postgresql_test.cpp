// What only the PostgreSQL backend has: its URI and options, LISTEN/NOTIFY, changes committed
// out of seq order, a batch failing halfway, a dropped connection, and a server killed with -9
// in the middle of batches.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "postgres_fixture.hpp"
#include "store/postgresql/postgresql_backend.hpp"

namespace tyto::store::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

#define SKIP_WITHOUT_SERVER(site)                                            \
  if (!(site).skip_reason().empty()) {                                       \
    if (::testing::Test::HasFailure()) GTEST_FAIL() << (site).skip_reason(); \
    GTEST_SKIP() << (site).skip_reason();                                    \
  }

bool readable_within(int fd, int timeout_ms) {
  if (fd < 0) return false;
  pollfd ready{fd, POLLIN, 0};
  return ::poll(&ready, 1, timeout_ms) > 0;
}

AccountingDelta credit(std::uint64_t user_id, std::uint64_t torrent_id, std::uint8_t peer,
                       std::uint64_t uploaded) {
  AccountingDelta delta;
  delta.key.user_id = user_id;
  delta.key.torrent_id = torrent_id;
  std::memset(delta.key.peer_id.bytes.data(), peer, delta.key.peer_id.bytes.size());
  delta.uploaded = uploaded;
  delta.downloaded = uploaded / 2;
  delta.baseline_uploaded = uploaded;
  delta.announced_unix_s = 1000;
  return delta;
}

TEST(PostgresqlUri, TimeoutOptionIsTytosAndStripped) {
  auto plain = postgresql::parse_location("postgresql://u@h/db");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain.value().libpq_uri, "postgresql://u@h/db");
  EXPECT_EQ(plain.value().timeout_ms, postgresql::timeout_ms_default);
  auto set = postgresql::parse_location("postgres://h/db?sslmode=disable&tyto_timeout_ms=250&a=b");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set.value().libpq_uri, "postgres://h/db?sslmode=disable&a=b");
  EXPECT_EQ(set.value().timeout_ms, 250u);
  EXPECT_FALSE(postgresql::parse_location("postgresql://h/db?tyto_timeout_ms=0").ok());
  EXPECT_FALSE(postgresql::parse_location("postgresql://h/db?tyto_timeout_ms=").ok());
  EXPECT_FALSE(postgresql::parse_location("postgresql://h/db?tyto_timeout_ms=5x").ok());
  EXPECT_FALSE(postgresql::parse_location("postgresql://h/db?tyto_timeout_ms=600001").ok());
}

TEST(PostgresqlUri, DescribeNeverShowsThePassword) {
  EXPECT_EQ(postgresql::describe_uri("postgresql://alice:s3cret@db.example:5433/tyto"),
            "postgresql://alice@db.example:5433/tyto");
  EXPECT_EQ(postgresql::describe_uri("postgres://alice@h/db?password=s3cret&sslmode=require"),
            "postgres://alice@h/db?sslmode=require");
  EXPECT_EQ(postgresql::describe_uri("postgresql://alice:s3/cr@t@h/db?tyto_timeout_ms=9"),
            "postgresql://alice@h/db");
  EXPECT_EQ(postgresql::describe_uri("postgresql:///db?host=/tmp/x"),
            "postgresql:///db?host=/tmp/x");
  // Opening fails (no server there), and the error does not show it either.
  const auto failed =
      open_backend("postgresql://alice:s3cret@/db?host=/nonexistent-dir&tyto_timeout_ms=2000");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().find("s3cret"), std::string::npos) << failed.error();
  EXPECT_FALSE(open_backend("postgresql://h/db?tyto_timeout_ms=x").ok());
}

TEST(PostgresqlBackend, OpensWithAPasswordItNeverDescribes) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  auto backend = site.reopen("password=s3cret&tyto_timeout_ms=3000");
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->describe().find("s3cret"), std::string::npos) << backend->describe();
  EXPECT_EQ(backend->describe().find("tyto_timeout_ms"), std::string::npos);
  EXPECT_EQ(backend->describe().rfind("postgresql:///tyto_test_", 0), 0u) << backend->describe();
}

TEST(PostgresqlBackend, RecordsEachMigrationOnce) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  EXPECT_EQ(site.backend().migrate(), "");
  auto reopened = site.reopen();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->migrate(), "");
  EXPECT_EQ(site.count("tyto_schema_migrations"), 5);
  EXPECT_EQ(site.count("tyto_schema_migrations WHERE version IN (1, 2, 3, 4, 5)"), 5);
  EXPECT_EQ(site.value("SELECT data_type FROM information_schema.columns WHERE table_name = "
                       "'tyto_peers' AND column_name = 'peer_id'"),
            "bytea");
}

TEST(PostgresqlBackend, NotifyMakesChangeFdReadableWithinTwoSeconds) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  ASSERT_TRUE(site.backend().load_catalogue().ok());
  std::vector<CatalogueChange> changes;
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_TRUE(changes.empty());
  const int fd = site.backend().change_fd();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(readable_within(fd, 0));
  site.put_user({1, "key-1"});
  const auto start = Clock::now();
  EXPECT_TRUE(readable_within(fd, 2000));
  EXPECT_LT(Clock::now() - start, 2s);
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, CatalogueChangeKind::user);
  EXPECT_EQ(changes[0].user.user_id, 1u);
  EXPECT_FALSE(readable_within(site.backend().change_fd(), 0));  // consumed
}

TEST(PostgresqlBackend, ChangesAreReadFromTheLogWhenTheNotificationIsMissed) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  ASSERT_TRUE(site.backend().load_catalogue().ok());
  // The listening connection dies; the change made meanwhile notifies nobody.
  site.sql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
      "datname = current_database() AND query LIKE 'LISTEN%'");
  site.put_user({1, "key-1"});
  std::vector<CatalogueChange> changes;
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user.user_id, 1u);
  // And it listens again.
  const int fd = site.backend().change_fd();
  ASSERT_GE(fd, 0);
  site.put_user({2, "key-2"});
  EXPECT_TRUE(readable_within(fd, 2000));
  changes.clear();
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user.user_id, 2u);
}

// PostgreSQL numbers change rows at insert, not at commit: a change with a lower seq can
// commit after one with a higher seq was read, and must still be reported.
TEST(PostgresqlBackend, AChangeCommittedAfterALaterOneIsStillReported) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  ASSERT_TRUE(site.backend().load_catalogue().ok());
  site.sql("BEGIN");
  site.put_user({1, "slow"});  // the lower seq, not committed yet
  // A second site connection commits a later change first.
  PGconn* fast = PQconnectdb(site.server().conninfo(site.database()).c_str());
  ASSERT_EQ(PQstatus(fast), CONNECTION_OK) << PQerrorMessage(fast);
  PGresult* inserted = PQexec(fast, "INSERT INTO tyto_users(user_id, passkey) VALUES (2, 'fast')");
  EXPECT_EQ(PQresultStatus(inserted), PGRES_COMMAND_OK) << PQresultErrorMessage(inserted);
  PQclear(inserted);
  PQfinish(fast);
  std::vector<CatalogueChange> changes;
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user.user_id, 2u);
  site.sql("COMMIT");
  changes.clear();
  ASSERT_EQ(site.backend().changes(changes), "");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user.user_id, 1u);
  changes.clear();
  ASSERT_EQ(site.backend().changes(changes), "");
  EXPECT_TRUE(changes.empty());  // neither again
}

TEST(PostgresqlBackend, ABatchFailingHalfwayLeavesNothing) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  // The site's own trigger refuses the second delta's baseline, after the first was written.
  site.sql(
      "CREATE FUNCTION refuse_user_99() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF NEW.user_id = 99 THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; "
      "END $$");
  site.sql(
      "CREATE TRIGGER refuse_user_99 BEFORE INSERT ON tyto_peers FOR EACH ROW "
      "EXECUTE FUNCTION refuse_user_99()");
  const AccountingBatch batch{{"node-a", 0, 1}, {credit(1, 10, 'a', 5), credit(99, 10, 'b', 7)}};
  const auto failed = site.backend().write_batch(batch);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().find("refused by the test"), std::string::npos) << failed.error();
  EXPECT_EQ(site.count("tyto_transfers"), 0);
  EXPECT_EQ(site.count("tyto_user_totals"), 0);
  EXPECT_EQ(site.count("tyto_peers"), 0);
  EXPECT_EQ(site.count("tyto_batches"), 0);
  site.sql("DROP TRIGGER refuse_user_99 ON tyto_peers");
  const auto applied = site.backend().write_batch(batch);
  ASSERT_TRUE(applied.ok()) << applied.error();
  EXPECT_TRUE(applied.value());
  EXPECT_EQ(site.transfer(1, 10)->uploaded, 5u);
  EXPECT_EQ(site.count("tyto_peers"), 2);
}

TEST(PostgresqlBackend, ADroppedConnectionFailsOneCallAndTheNextReconnects) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  ASSERT_TRUE(site.backend().write_batch({{"node-a", 0, 1}, {credit(1, 10, 'a', 5)}}).ok());
  site.sql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
      "datname = current_database() AND application_name = 'tyto' AND query NOT LIKE "
      "'LISTEN%'");
  const AccountingBatch second{{"node-a", 0, 2}, {credit(1, 10, 'a', 7)}};
  const auto failed = site.backend().write_batch(second);
  EXPECT_FALSE(failed.ok());
  const auto retried = site.backend().write_batch(second);
  ASSERT_TRUE(retried.ok()) << retried.error();
  EXPECT_TRUE(retried.value());
  EXPECT_EQ(site.transfer(1, 10)->uploaded, 12u);
}

TEST(PostgresqlBackend, ALargeBatchIsOnePipeline) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  AccountingBatch batch{{"node-a", 0, 1}, {}};
  constexpr std::uint64_t users = 100, torrents = 50;  // 5000 deltas, 15002 statements
  for (std::uint64_t user = 1; user <= users; ++user) {
    for (std::uint64_t torrent = 1; torrent <= torrents; ++torrent) {
      batch.deltas.push_back(credit(user, torrent, 'p', user * torrent));
    }
  }
  const auto applied = site.backend().write_batch(batch);
  ASSERT_TRUE(applied.ok()) << applied.error();
  EXPECT_TRUE(applied.value());
  EXPECT_EQ(site.count("tyto_transfers"), 5000);
  EXPECT_EQ(site.value("SELECT sum(uploaded) FROM tyto_user_totals"),
            std::to_string((users * (users + 1) / 2) * (torrents * (torrents + 1) / 2)));
}

}  // namespace
}  // namespace tyto::store::testing

namespace tyto::store::testing {
namespace {

// kill -9 of the server (postmaster and backends) twice while a writer sends batches with
// growing sequences, retrying each failed batch with the same id until it is applied: every
// delta is counted exactly once and the mark is the last sequence.
TEST(PostgresqlBackend, KillNineMidBatchesLosesNothingAndDoublesNothing) {
  PostgresFixture site;
  SKIP_WITHOUT_SERVER(site);
  auto backend = site.reopen("tyto_timeout_ms=5000");
  ASSERT_NE(backend, nullptr);
  constexpr std::uint64_t batches = 120;
  constexpr std::uint64_t deltas_per_batch = 300;
  constexpr auto writer_time_max = 120s;
  constexpr int attempts_max = 2000;
  std::atomic<std::uint64_t> sequence_written{0};
  std::atomic<int> failures{0};
  std::atomic<int> already_applied{0};
  std::uint64_t uploaded_expected = 0;
  for (std::uint64_t sequence = 1; sequence <= batches; ++sequence) {
    for (std::uint64_t i = 0; i < deltas_per_batch; ++i) uploaded_expected += sequence * 1000 + i;
  }
  std::thread writer([&] {
    const auto deadline = Clock::now() + writer_time_max;
    int attempts = 0;
    for (std::uint64_t sequence = 1; sequence <= batches && Clock::now() < deadline; ++sequence) {
      AccountingBatch batch{{"node-k", 3, sequence}, {}};
      for (std::uint64_t i = 0; i < deltas_per_batch; ++i) {
        // Sorted by key: users 1..30, torrents 1..10, one peer each.
        batch.deltas.push_back(credit(1 + i / 10, 1 + i % 10, 'k', sequence * 1000 + i));
      }
      while (Clock::now() < deadline && attempts < attempts_max) {
        ++attempts;
        const auto applied = backend->write_batch(batch);
        if (applied.ok()) {
          if (!applied.value()) ++already_applied;  // its COMMIT went through unseen
          break;
        }
        ++failures;
        std::this_thread::sleep_for(50ms);
      }
      sequence_written = sequence;
    }
  });
  const auto started = Clock::now();
  int kills = 0;
  for (const std::uint64_t kill_at : {batches / 3, 2 * batches / 3}) {
    const auto wait_deadline = Clock::now() + 60s;
    while (sequence_written < kill_at && Clock::now() < wait_deadline) {
      std::this_thread::sleep_for(1ms);
    }
    if (site.server().kill_hard()) ++kills;
    std::this_thread::sleep_for(300ms);  // batches fail meanwhile
    ASSERT_TRUE(site.server().start()) << "the server did not restart";
  }
  writer.join();
  const auto elapsed = Clock::now() - started;
  RecordProperty("batches", static_cast<int>(batches));
  RecordProperty("kills", kills);
  fmt::print(
      "kill -9 test: {} batches of {} deltas, {} kills, {} failed calls retried, {} "
      "retries found already applied, {} ms\n",
      batches, deltas_per_batch, kills, failures.load(), already_applied.load(),
      std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  EXPECT_EQ(kills, 2);
  EXPECT_GE(failures.load(), kills);  // the kills did land in the middle of batches
  ASSERT_EQ(sequence_written.load(), batches);
  site.connect_site();
  EXPECT_EQ(site.value("SELECT sum(uploaded) FROM tyto_transfers"),
            std::to_string(uploaded_expected));
  EXPECT_EQ(site.value("SELECT sum(uploaded) FROM tyto_user_totals"),
            std::to_string(uploaded_expected));
  EXPECT_EQ(site.count("tyto_transfers"), 300);
  EXPECT_EQ(site.value("SELECT sequence FROM tyto_batches WHERE node = 'node-k' AND shard = 3"),
            std::to_string(batches));
  const auto last = backend->last_sequence("node-k", 3);
  ASSERT_TRUE(last.ok()) << last.error();
  EXPECT_EQ(last.value(), batches);
}

}  // namespace
}  // namespace tyto::store::testing
