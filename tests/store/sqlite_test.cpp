// What only the SQLite backend has: its URI, its file, its schema table, a failure inside a
// transaction, and rows a site can write that typed setters cannot.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <tuple>
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
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?wal_mib_max=0").ok());
  EXPECT_FALSE(open_backend("sqlite:/tmp/x.db?wal_mib_max=65537").ok());
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

// --- The WAL checkpointer (issue 19) ---

// A file of its own, opened with `options`, and a site connection that only reads.
class WalFile {
 public:
  explicit WalFile(const std::string& options) {
    char dir_template[] = "/tmp/tyto-wal-test-XXXXXX";
    const char* dir = ::mkdtemp(dir_template);
    EXPECT_NE(dir, nullptr);
    dir_ = dir;
    path_ = dir_ + "/tyto.db";
    backend_ = open(options);
    EXPECT_EQ(backend_->migrate(), "");
    EXPECT_EQ(sqlite3_open(path_.c_str(), &site_), SQLITE_OK);
    sqlite3_busy_timeout(site_, 5000);
  }
  ~WalFile() {
    sqlite3_close(site_);
    backend_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  WalFile(const WalFile&) = delete;
  WalFile& operator=(const WalFile&) = delete;

  std::unique_ptr<Backend> open(const std::string& options) {
    auto opened = open_backend("sqlite:" + path_ + options);
    EXPECT_TRUE(opened.ok()) << opened.error();
    return opened.ok() ? std::move(opened.value()) : nullptr;
  }
  std::unique_ptr<Backend>& backend() { return backend_; }
  const std::string& path() const { return path_; }
  void sql(const char* text) {
    char* message = nullptr;
    EXPECT_EQ(sqlite3_exec(site_, text, nullptr, nullptr, &message), SQLITE_OK)
        << text << ": " << (message != nullptr ? message : "");
    sqlite3_free(message);
  }
  // The site's own PASSIVE checkpoint: (busy, frames in the WAL, frames checkpointed).
  std::tuple<int, int, int> checkpoint() {
    sqlite3_stmt* statement = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(site_, "PRAGMA wal_checkpoint(PASSIVE)", -1, &statement, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_step(statement), SQLITE_ROW);
    const std::tuple<int, int, int> row{sqlite3_column_int(statement, 0),
                                        sqlite3_column_int(statement, 1),
                                        sqlite3_column_int(statement, 2)};
    sqlite3_finalize(statement);
    return row;
  }

 private:
  std::string dir_;
  std::string path_;
  std::unique_ptr<Backend> backend_;
  sqlite3* site_ = nullptr;
};

// `count` new peers at random keys (first sightings: a baseline each), sorted.
AccountingBatch new_peers_batch(std::size_t count, std::uint64_t sequence,
                                std::mt19937_64& random) {
  AccountingBatch batch{{"node-a", 0, sequence}, std::vector<AccountingDelta>(count)};
  for (AccountingDelta& delta : batch.deltas) {
    delta.key.user_id = 1 + random() % 100000;
    delta.key.torrent_id = 1 + random() % 1000000;
    for (auto& byte : delta.key.peer_id.bytes) byte = static_cast<std::uint8_t>(random());
    delta.baseline_uploaded = 1000 + sequence;
    delta.announced_unix_s = 1700000000 + sequence;
  }
  std::sort(batch.deltas.begin(), batch.deltas.end(), [](const auto& a, const auto& b) {
    return std::tie(a.key.user_id, a.key.torrent_id, a.key.peer_id.bytes) <
           std::tie(b.key.user_id, b.key.torrent_id, b.key.peer_id.bytes);
  });
  return batch;
}

// Bytes this thread passed to write system calls so far (/proc/thread-self/io, wchar).
std::uint64_t thread_written_bytes() {
  std::FILE* file = std::fopen("/proc/thread-self/io", "r");
  EXPECT_NE(file, nullptr);
  if (file == nullptr) return 0;
  char name[32];
  unsigned long long value = 0;
  std::uint64_t written = 0;
  while (std::fscanf(file, "%31[^:]: %llu\n", name, &value) == 2) {
    if (std::string_view(name) == "wchar") written = value;
  }
  std::fclose(file);
  return written;
}

// Polls `done` every 10 ms for at most 20 s.
template <class Done>
bool eventually(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// The writer's COMMIT only appends to the WAL: copying pages into the database file (SQLite's
// autocheckpoint did it there past 1000 pages) is the checkpointer thread's, on its own
// connection. Seen on the writing thread's own write system calls: about the WAL's bytes,
// where the autocheckpoint wrote each page a second time into the database file.
TEST(SqliteCheckpointer, TheWriterOnlyAppendsToTheWalAndTheCheckpointerCopiesIt) {
  WalFile file("?busy_timeout_ms=5000");
  Backend& backend = *file.backend();
  std::mt19937_64 random(19);
  ASSERT_TRUE(backend.write_batch(new_peers_batch(30000, 1, random)).value());
  // Every frame checkpointed (by either), so the next batch starts the WAL over.
  ASSERT_TRUE(eventually([&] {
    const auto [busy, log_frames, checkpointed_frames] = file.checkpoint();
    return busy == 0 && log_frames == checkpointed_frames;
  }));
  const auto checkpoints_before = backend.status().wal_checkpoints;
  const auto database_bytes_before = std::filesystem::file_size(file.path());
  const AccountingBatch batch = new_peers_batch(30000, 2, random);
  const std::uint64_t written_before = thread_written_bytes();
  ASSERT_TRUE(backend.write_batch(batch).value());
  const std::uint64_t written = thread_written_bytes() - written_before;
  const std::uint64_t wal_bytes = backend.status().wal_bytes;
  // Past SQLite's autocheckpoint threshold (1000 pages of 4 KiB), or this test could not fail.
  ASSERT_GT(wal_bytes, 1000u * 4096);
  EXPECT_GE(written, wal_bytes);
  EXPECT_LT(written, wal_bytes + wal_bytes / 2) << "the writer wrote more than the WAL";
  // Only the checkpointer checkpoints from here on: the file grows when it copies the batch in.
  EXPECT_TRUE(eventually([&] {
    return std::filesystem::file_size(file.path()) > database_bytes_before &&
           backend.status().wal_checkpoints > checkpoints_before;
  }));
  EXPECT_EQ(backend.status().wal_over_bound, 0u);
  // (Failures are not checked here: the site's checkpoint above may have held the checkpoint
  // lock when the checkpointer tried, a counted SQLITE_BUSY; the next test checks them.)
}

// Batches back to back give the checkpointer no pause to catch up in, and the WAL only starts
// over when a write begins with every frame checkpointed: past its bound, the writer waits for
// that, so the WAL stays within the bound and one batch.
TEST(SqliteCheckpointer, BackToBackBatchesKeepTheWalWithinItsBound) {
  WalFile file("?busy_timeout_ms=5000&wal_mib_max=1");
  Backend& backend = *file.backend();
  std::mt19937_64 random(20);
  std::vector<AccountingBatch> batches;
  for (std::uint64_t sequence = 1; sequence <= 12; ++sequence) {
    batches.push_back(new_peers_batch(3000, sequence, random));
  }
  // Each batch's own WAL bytes: what the writing thread wrote (the test above).
  std::uint64_t batch_wal_bytes_max = 0, wal_bytes_written = 0;
  for (const AccountingBatch& batch : batches) {
    const std::uint64_t written_before = thread_written_bytes();
    ASSERT_TRUE(backend.write_batch(batch).value());
    const std::uint64_t written = thread_written_bytes() - written_before;
    batch_wal_bytes_max = std::max(batch_wal_bytes_max, written);
    wal_bytes_written += written;
  }
  const std::uint64_t bound_bytes = 1 << 20;
  ASSERT_GT(wal_bytes_written, 3 * bound_bytes);  // unbounded, the WAL would have grown past it
  EXPECT_LE(backend.status().wal_bytes_max, bound_bytes + batch_wal_bytes_max);
  EXPECT_EQ(backend.status().wal_over_bound, 0u);
  EXPECT_GT(backend.status().wal_checkpoints, 0u);
  EXPECT_EQ(backend.status().wal_checkpoint_failures, 0u);
}

// A site's reader holding a snapshot stops every checkpoint at it, and the WAL cannot start over
// under it. Writes go on all the same (the WAL grows past its bound, counted); once the reader
// is gone, the WAL is checkpointed and starts over.
TEST(SqliteCheckpointer, ASitesOpenReaderNeitherFailsWritesNorKeepsTheWalLong) {
  WalFile file("?busy_timeout_ms=50&wal_mib_max=1");
  Backend& backend = *file.backend();
  std::mt19937_64 random(21);
  std::uint64_t sequence = 0;
  ASSERT_TRUE(backend.write_batch(new_peers_batch(100, ++sequence, random)).value());
  file.sql("BEGIN");
  file.sql("SELECT count(*) FROM tyto_peers");  // the snapshot is taken here and held
  for (int i = 0; i < 8; ++i) {
    const auto written = backend.write_batch(new_peers_batch(3000, ++sequence, random));
    ASSERT_TRUE(written.ok()) << written.error();
    EXPECT_TRUE(written.value());
  }
  const std::uint64_t bound_bytes = 1 << 20;
  EXPECT_GT(backend.status().wal_bytes, bound_bytes);
  EXPECT_GE(backend.status().wal_over_bound, 1u);
  // Waited once for the episode, not once per batch.
  EXPECT_LE(backend.status().wal_over_bound, 2u);
  file.sql("COMMIT");
  EXPECT_TRUE(eventually([&] {
    EXPECT_TRUE(backend.write_batch(new_peers_batch(10, ++sequence, random)).value());
    return backend.status().wal_bytes < bound_bytes;
  })) << "the WAL did not start over once the reader was gone";
  EXPECT_EQ(backend.last_sequence("node-a", 0).value(), sequence);
}

// Destroys `backend` on another thread, so that a destructor that never returns fails the test
// (the thread is then left behind). Returns how long it took.
std::chrono::steady_clock::duration destroy_within_10_s(std::unique_ptr<Backend> backend) {
  const auto started = std::chrono::steady_clock::now();
  std::packaged_task<void()> destroy([&backend] { backend.reset(); });
  auto destroyed = destroy.get_future();
  std::thread destroyer(std::move(destroy));
  if (destroyed.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    destroyer.detach();
    (void)backend.release();  // still being destroyed over there
    ADD_FAILURE() << "the backend's destructor did not return within 10 s";
    return std::chrono::seconds(10);
  }
  destroyer.join();
  return std::chrono::steady_clock::now() - started;
}

// Destroying the backend stops its checkpointer at once, idle or in the middle of a checkpoint,
// and loses nothing: the batch was durable at COMMIT, and the close checkpoints the rest.
TEST(SqliteCheckpointer, DestroyingTheBackendRightAfterAWriteIsPromptAndLosesNothing) {
  WalFile file("?busy_timeout_ms=5000");
  std::mt19937_64 random(22);
  const AccountingBatch batch = new_peers_batch(30000, 1, random);
  ASSERT_TRUE(file.backend()->write_batch(batch).value());
  EXPECT_LT(destroy_within_10_s(std::move(file.backend())), std::chrono::seconds(3));
  auto reopened = file.open("");
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->last_sequence("node-a", 0).value(), 1u);
  const auto baselines = reopened->load_baselines();
  ASSERT_TRUE(baselines.ok());
  std::size_t distinct = 1;
  for (std::size_t i = 1; i < batch.deltas.size(); ++i) {
    distinct += batch.deltas[i].key == batch.deltas[i - 1].key ? 0 : 1;
  }
  EXPECT_EQ(baselines.value().size(), distinct);
  // Idle: its checkpointer waits for a commit that will not come.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_LT(destroy_within_10_s(std::move(reopened)), std::chrono::seconds(1));
}

}  // namespace
}  // namespace tyto::store::testing
