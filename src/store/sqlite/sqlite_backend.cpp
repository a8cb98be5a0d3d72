// The `sqlite:PATH` backend: one file shared with the site, which writes the catalogue tables
// by plain SQL while tyto writes the accounting tables. WAL lets the site read while tyto
// writes; busy_timeout lets each wait for the other's short write transactions. The WAL is
// checkpointed by a thread of the backend's own (Checkpointer, below), not by the writer.
#include "store/sqlite/sqlite_backend.hpp"

#include <fmt/core.h>
#include <sqlite3.h>

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "store/batch_sums.hpp"
#include "tyto/core/log.hpp"
#include "tyto/store/row_check.hpp"

namespace tyto::store::sqlite {
namespace {

constexpr std::uint32_t busy_timeout_ms_default = 5000;
constexpr std::uint32_t busy_timeout_ms_max = 600000;
// SQLite's page cache (its own, per connection), taken as pages are used, up to the limit. The
// default is SQLite's own. A page not in it is read back from the OS's page cache with a pread
// (perf on the private bench showed that copy gone at 64 MiB), but the private bench (bench/run,
// the storage thread on the shard's core) served no more announces at 64 or 256 MiB than at
// 2 MiB, within its noise, while the cache added its whole size to the resident memory.
constexpr std::uint32_t cache_mib_default = 2;
constexpr std::uint32_t cache_mib_max = 65536;
// The WAL's bound (issue 19). Past it, the writer's next batch first waits (busy_timeout_ms at
// most) for the checkpointer to have copied every committed frame into the database file, so
// that batch starts the WAL over from its beginning. Larger lets more batches go on while the
// checkpointer copies the ones before, but a large WAL costs CPU: every page the writer reads
// is looked up in a longer WAL index, and the WAL's file is that much more page cache.
// BM_SqliteLarge (20 000-row batches, ~110 MiB of WAL each, 2 CPUs, means of 2 runs): 256 MiB
// (64k pages of 4 KiB) wrote 49.3k/36.1k rows per wall second into 2 M/4 M-row tables at
// 18.8/23.8 us of process CPU per row, 1024 MiB 46.5k/34.8k at 22.1/30.0 us, 128 MiB
// 48.1k/32.4k at 17.9/21.3 us. A batch of the storage thread's batch_rows_max (100 000 rows,
// ~350 MiB) is over it alone: in such a burst each batch waits for the one before to be
// checkpointed, as before this thread.
constexpr std::uint32_t wal_mib_max_default = 256;
constexpr std::uint32_t wal_mib_max_max = 65536;
// The WAL file is reused from its start after a checkpoint, not shrunk; the writer's first
// commit after that truncates it to journal_size_limit, which open() sets to the bound: a WAL
// that passed the bound (a reader held open) gives the excess back, while the usual WAL is
// reused whole. A limit of 64 MiB cut the file back after nearly every batch, and the pages
// written again had to be allocated and zeroed in the page cache again: BM_SqliteLarge, 2 M
// rows, one CPU, two runs each against the writer's own autocheckpoint: process CPU per row
// 14.7-16.0 us before, 17.7-18.2 with 64 MiB, 16.5-16.7 with the bound; rows per wall second
// 44.7k-47.2k before, 42.6k-43.8k with 64 MiB, 47.2k-47.5k with the bound. Two CPUs, the
// bound: 46.2k-47.5k before, 54.6k-55.7k after (4 M rows: 34.5k-36.3k before, 39.9k-40.1k).
// Each WAL frame: a page and its 24-byte header (the file's own 32-byte header is left out).
constexpr std::uint64_t wal_frame_header_bytes = 24;
// The checkpointer thread's nice value (run()).
constexpr int checkpointer_nice = 10;
// A checkpoint stopped short (a reader's snapshot, another connection's checkpoint, an error)
// is retried after this, doubled each time up to the max, and at once after the next commit.
constexpr auto checkpoint_retry_min = std::chrono::milliseconds(20);
constexpr auto checkpoint_retry_max = std::chrono::milliseconds(1000);

// Each migration runs once, in its own transaction, recorded in tyto_schema_migrations. Never
// edit one that shipped: add the next number.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration migrations[] = {
    {1, R"sql(
CREATE TABLE tyto_users (
  user_id INTEGER PRIMARY KEY,
  passkey TEXT UNIQUE NOT NULL,
  enabled BOOLEAN NOT NULL DEFAULT 1,
  can_leech BOOLEAN NOT NULL DEFAULT 1,
  upload_factor REAL NOT NULL DEFAULT 1.0,
  download_factor REAL NOT NULL DEFAULT 1.0);
CREATE TABLE tyto_torrents (
  torrent_id INTEGER PRIMARY KEY,
  info_hash TEXT UNIQUE NOT NULL,
  upload_factor REAL NOT NULL DEFAULT 1.0,
  download_factor REAL NOT NULL DEFAULT 1.0);
CREATE TABLE tyto_client_rules (
  peer_id_prefix TEXT PRIMARY KEY,
  allowed BOOLEAN NOT NULL);
)sql"},
    // The site writes by SQL alone, so the triggers are what tells tyto a row changed.
    {2, R"sql(
CREATE TABLE tyto_catalogue_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  key TEXT);
CREATE TRIGGER tyto_users_inserted AFTER INSERT ON tyto_users BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('user', NEW.user_id); END;
CREATE TRIGGER tyto_users_updated AFTER UPDATE ON tyto_users BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key)
    SELECT 'user', OLD.user_id WHERE OLD.user_id IS NOT NEW.user_id;
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('user', NEW.user_id); END;
CREATE TRIGGER tyto_users_deleted AFTER DELETE ON tyto_users BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('user', OLD.user_id); END;
CREATE TRIGGER tyto_torrents_inserted AFTER INSERT ON tyto_torrents BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('torrent', NEW.torrent_id); END;
CREATE TRIGGER tyto_torrents_updated AFTER UPDATE ON tyto_torrents BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key)
    SELECT 'torrent', OLD.torrent_id WHERE OLD.torrent_id IS NOT NEW.torrent_id;
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('torrent', NEW.torrent_id); END;
CREATE TRIGGER tyto_torrents_deleted AFTER DELETE ON tyto_torrents BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('torrent', OLD.torrent_id); END;
CREATE TRIGGER tyto_client_rules_inserted AFTER INSERT ON tyto_client_rules BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('client_rule', NEW.peer_id_prefix); END;
CREATE TRIGGER tyto_client_rules_updated AFTER UPDATE ON tyto_client_rules BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key)
    SELECT 'client_rule', OLD.peer_id_prefix WHERE OLD.peer_id_prefix IS NOT NEW.peer_id_prefix;
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('client_rule', NEW.peer_id_prefix); END;
CREATE TRIGGER tyto_client_rules_deleted AFTER DELETE ON tyto_client_rules BEGIN
  INSERT INTO tyto_catalogue_changes(kind, key) VALUES ('client_rule', OLD.peer_id_prefix); END;
)sql"},
    // Byte counters hold a uint64's bits in SQLite's int64.
    {3, R"sql(
CREATE TABLE tyto_transfers (
  user_id INTEGER NOT NULL,
  torrent_id INTEGER NOT NULL,
  uploaded INTEGER NOT NULL DEFAULT 0,
  downloaded INTEGER NOT NULL DEFAULT 0,
  uploaded_real INTEGER NOT NULL DEFAULT 0,
  downloaded_real INTEGER NOT NULL DEFAULT 0,
  seed_s INTEGER NOT NULL DEFAULT 0,
  leech_s INTEGER NOT NULL DEFAULT 0,
  completed_at INTEGER,
  last_announce_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, torrent_id)) WITHOUT ROWID;
CREATE TABLE tyto_user_totals (
  user_id INTEGER PRIMARY KEY,
  uploaded INTEGER NOT NULL DEFAULT 0,
  downloaded INTEGER NOT NULL DEFAULT 0);
CREATE TABLE tyto_peers (
  user_id INTEGER NOT NULL,
  torrent_id INTEGER NOT NULL,
  peer_id BLOB NOT NULL,
  uploaded INTEGER NOT NULL,
  downloaded INTEGER NOT NULL,
  announced_at INTEGER NOT NULL,
  seeding BOOLEAN NOT NULL,
  PRIMARY KEY (user_id, torrent_id, peer_id)) WITHOUT ROWID;
CREATE TABLE tyto_batches (
  node TEXT NOT NULL,
  shard INTEGER NOT NULL,
  sequence INTEGER NOT NULL,
  applied_at INTEGER NOT NULL,
  PRIMARY KEY (node, shard)) WITHOUT ROWID;
)sql"},
    // Completed counts per torrent, public or registered (README "Completed counts"): keyed by
    // info_hash as 40 lowercase hex digits, the count added to by each batch.
    {4, R"sql(
CREATE TABLE tyto_completions (
  info_hash TEXT PRIMARY KEY,
  completed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
)sql"},
    // A cluster's closed peers stay as tombstones for a day, and a peer's last stop stays with
    // the session after it (Baseline::closed, stopped_*); the index finds tombstones to delete.
    {5, R"sql(
ALTER TABLE tyto_peers ADD COLUMN closed BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE tyto_peers ADD COLUMN stopped_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tyto_peers ADD COLUMN stopped_uploaded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tyto_peers ADD COLUMN stopped_downloaded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tyto_peers_closed ON tyto_peers(announced_at) WHERE closed;
)sql"},
};

struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const noexcept { sqlite3_finalize(statement); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Resets a statement when the use of it ends, whichever way, so no read stays open.
class Use {
 public:
  explicit Use(sqlite3_stmt* statement) noexcept : statement_(statement) {}
  ~Use() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  sqlite3_stmt* get() const noexcept { return statement_; }

 private:
  sqlite3_stmt* statement_;
};

Field field_of(sqlite3_stmt* statement, int column) noexcept {
  switch (sqlite3_column_type(statement, column)) {
    case SQLITE_INTEGER:
      return Field::of(static_cast<std::int64_t>(sqlite3_column_int64(statement, column)));
    case SQLITE_FLOAT:
      return Field::of(sqlite3_column_double(statement, column));
    case SQLITE_TEXT: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, column));
      const auto size = static_cast<std::size_t>(sqlite3_column_bytes(statement, column));
      return Field::of(std::string_view(text == nullptr ? "" : text, size));
    }
    case SQLITE_BLOB: {
      const auto* bytes = static_cast<const char*>(sqlite3_column_blob(statement, column));
      const auto size = static_cast<std::size_t>(sqlite3_column_bytes(statement, column));
      return Field::of(std::string_view(bytes == nullptr ? "" : bytes, size));
    }
    default:
      return Field::null();
  }
}

// A uint64 in SQLite's int64 with the same bits (counters beyond 2^63 read back unchanged).
sqlite3_int64 stored(std::uint64_t value) noexcept {
  return static_cast<sqlite3_int64>(value);
}

// A catalogue change row read from tyto_catalogue_changes, its key copied out of the statement.
struct ChangedKey {
  std::string kind;
  int type = SQLITE_NULL;
  std::int64_t integer = 0;
  std::string bytes;  // text or blob
  friend auto operator<=>(const ChangedKey&, const ChangedKey&) = default;
};

// The batch's upserts, each as a one-row statement and a rows_per_statement-row one: a statement
// per row cost SQLite its per-statement work (step, reset, opening the write) for every row.
constexpr std::size_t rows_per_statement = 64;
constexpr int transfer_columns = 10, totals_columns = 3, peer_columns = 11, completion_columns = 2;
static_assert(rows_per_statement * transfer_columns <= 32766);  // SQLITE_MAX_VARIABLE_NUMBER

struct UpsertSql {
  std::string one;
  std::string many;
};

UpsertSql upsert_sql(std::string_view head, int columns, std::string_view tail) {
  std::string row = "(?";
  for (int column = 1; column < columns; ++column) row += ",?";
  row += ')';
  UpsertSql sql{fmt::format("{} {} {}", head, row, tail), std::string(head) + " "};
  for (std::size_t i = 0; i < rows_per_statement; ++i) sql.many += (i == 0 ? "" : ",") + row;
  sql.many += " ";
  sql.many += tail;
  return sql;
}

const UpsertSql transfer_sql = upsert_sql(
    "INSERT INTO tyto_transfers(user_id, torrent_id, uploaded, downloaded, uploaded_real, "
    "downloaded_real, seed_s, leech_s, completed_at, last_announce_at) VALUES",
    transfer_columns,
    "ON CONFLICT(user_id, torrent_id) DO UPDATE SET "
    "uploaded = tyto_transfers.uploaded + excluded.uploaded, "
    "downloaded = tyto_transfers.downloaded + excluded.downloaded, "
    "uploaded_real = tyto_transfers.uploaded_real + excluded.uploaded_real, "
    "downloaded_real = tyto_transfers.downloaded_real + excluded.downloaded_real, "
    "seed_s = tyto_transfers.seed_s + excluded.seed_s, "
    "leech_s = tyto_transfers.leech_s + excluded.leech_s, "
    "completed_at = coalesce(tyto_transfers.completed_at, excluded.completed_at), "
    "last_announce_at = max(tyto_transfers.last_announce_at, excluded.last_announce_at)");
const UpsertSql totals_sql =
    upsert_sql("INSERT INTO tyto_user_totals(user_id, uploaded, downloaded) VALUES", totals_columns,
               "ON CONFLICT(user_id) DO UPDATE SET "
               "uploaded = tyto_user_totals.uploaded + excluded.uploaded, "
               "downloaded = tyto_user_totals.downloaded + excluded.downloaded");
// A user whose batch credits nothing (first sightings, announces that moved no bytes): the row
// is created if absent and otherwise left alone. The upsert's "+ 0" rewrote the row, dirtying
// its page, which SQLite's WAL then writes whole.
const UpsertSql totals_touch_sql =
    upsert_sql("INSERT OR IGNORE INTO tyto_user_totals(user_id) VALUES", 1, "");
const UpsertSql peer_sql = upsert_sql(
    "INSERT INTO tyto_peers(user_id, torrent_id, peer_id, uploaded, downloaded, announced_at, "
    "seeding, closed, stopped_at, stopped_uploaded, stopped_downloaded) VALUES",
    peer_columns,
    "ON CONFLICT(user_id, torrent_id, peer_id) DO UPDATE SET "
    "uploaded = excluded.uploaded, downloaded = excluded.downloaded, "
    "announced_at = excluded.announced_at, seeding = excluded.seeding, closed = excluded.closed "
    // Another node's later announce of the peer keeps its baseline (baseline_not_older).
    "WHERE (excluded.uploaded >= tyto_peers.uploaded AND "
    "excluded.downloaded >= tyto_peers.downloaded AND "
    "excluded.announced_at + 2 >= tyto_peers.announced_at) OR "
    "excluded.announced_at > tyto_peers.announced_at + 2 OR "
    // A tombstone gives way to a session started after the stop (baseline_replaces).
    "(tyto_peers.stopped_at <> 0 AND tyto_peers.stopped_at >= tyto_peers.announced_at AND "
    "excluded.announced_at >= tyto_peers.stopped_at)");
static_assert(baseline_clock_skew_s == 2, "the SQL above and below says 2");

const UpsertSql completion_sql =
    upsert_sql("INSERT INTO tyto_completions(info_hash, completed) VALUES", completion_columns,
               "ON CONFLICT(info_hash) DO UPDATE SET "
               "completed = tyto_completions.completed + excluded.completed");

void bind_completion(sqlite3_stmt* statement, int first, const CompletionDelta& completion) {
  const std::string hex = to_hex(completion.info_hash);  // lowercase
  sqlite3_bind_text(statement, first, hex.data(), static_cast<int>(hex.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(statement, first + 1, stored(completion.count));
}

void bind_transfer(sqlite3_stmt* statement, int first, const TransferSum& sum) noexcept {
  sqlite3_bind_int64(statement, first, stored(sum.user_id));
  sqlite3_bind_int64(statement, first + 1, stored(sum.torrent_id));
  sqlite3_bind_int64(statement, first + 2, stored(sum.uploaded));
  sqlite3_bind_int64(statement, first + 3, stored(sum.downloaded));
  sqlite3_bind_int64(statement, first + 4, stored(sum.uploaded_real));
  sqlite3_bind_int64(statement, first + 5, stored(sum.downloaded_real));
  sqlite3_bind_int64(statement, first + 6, stored(sum.seed_s));
  sqlite3_bind_int64(statement, first + 7, stored(sum.leech_s));
  if (sum.completed) {
    sqlite3_bind_int64(statement, first + 8, stored(sum.completed_unix_s));
  } else {
    sqlite3_bind_null(statement, first + 8);
  }
  sqlite3_bind_int64(statement, first + 9, stored(sum.last_announce_unix_s));
}

void bind_totals(sqlite3_stmt* statement, int first, const UserSum& sum) noexcept {
  sqlite3_bind_int64(statement, first, stored(sum.user_id));
  sqlite3_bind_int64(statement, first + 1, stored(sum.uploaded));
  sqlite3_bind_int64(statement, first + 2, stored(sum.downloaded));
}

void bind_user(sqlite3_stmt* statement, int first, const std::uint64_t& user_id) noexcept {
  sqlite3_bind_int64(statement, first, stored(user_id));
}

// A baseline, or with batch.arbitrate a closed peer's tombstone.
void bind_peer(sqlite3_stmt* statement, int first, const AccountingDelta* delta) noexcept {
  sqlite3_bind_int64(statement, first, stored(delta->key.user_id));
  sqlite3_bind_int64(statement, first + 1, stored(delta->key.torrent_id));
  sqlite3_bind_blob(statement, first + 2, delta->key.peer_id.bytes.data(),
                    static_cast<int>(delta->key.peer_id.bytes.size()), SQLITE_STATIC);
  sqlite3_bind_int64(statement, first + 3, stored(delta->baseline_uploaded));
  sqlite3_bind_int64(statement, first + 4, stored(delta->baseline_downloaded));
  sqlite3_bind_int64(statement, first + 5, stored(delta->announced_unix_s));
  sqlite3_bind_int(statement, first + 6, delta->seeding ? 1 : 0);
  sqlite3_bind_int(statement, first + 7, delta->closed ? 1 : 0);
  // A new row's stop (batch.arbitrate; an existing row's is put before: put_stop).
  const StopPoint stop = stop_of(*delta);
  sqlite3_bind_int64(statement, first + 8, stored(stop.unix_s));
  sqlite3_bind_int64(statement, first + 9, stored(stop.uploaded));
  sqlite3_bind_int64(statement, first + 10, stored(stop.downloaded));
}

// The WAL checkpointer (issue 19). SQLite's automatic checkpoint ran inside the writer's COMMIT:
// after nearly every large batch it copied the batch's pages into the database file and
// fsync'd it on the storage thread, which waited for the fsync (on the bench VM, where an fsync
// is cheap, the cost was mostly the CPU of the page copies: BM_SqliteLarge, numbers above). The
// writer's connection turns it off (wal_autocheckpoint=0 and a WAL hook of ours) and tells this
// thread after each commit; the thread runs PASSIVE checkpoints on its own connection while the
// writer's next batch goes on (sqlite.org/wal.html: checkpoints may run "in a separate thread").
//
// Invariants:
//  - db_, the checkpointer's own connection (SQLITE_OPEN_NOMUTEX), is used by its thread alone
//    while the thread runs; the destructor only calls sqlite3_interrupt on it (which SQLite
//    allows from any thread) before the join, and closes it after. The writer's connection is
//    never touched here: committed() and before_write() run on the writer's thread (the backend's
//    one thread, backend.hpp) and share only the members under mutex_ and the atomics.
//  - Stop: the destructor sets stop_ under mutex_, wakes the thread and interrupts a checkpoint
//    in progress (its copy loop checks the flag at every page; the WAL's backfill mark moves
//    only after the database file's fsync, so an interrupted checkpoint changes nothing) and
//    joins. No sleep: the join waits at most for the page being copied or one fsync.
//  - Durability: db_ is synchronous=FULL like the writer's, so a checkpoint syncs the WAL before
//    copying and the database file before the WAL may be reused. A batch is durable at its
//    COMMIT as before (the writer's connection syncs the WAL there); checkpoints only decide
//    when its pages reach the database file.
//  - Failures never stop anything: PASSIVE never waits on a lock (nor on the busy handler), so
//    it never blocks the writer or the site. A checkpoint that fails (SQLITE_BUSY: another
//    connection, the site's own autocheckpoint, holds the checkpoint lock; an I/O error) is
//    counted and logged with its reason; one stopped short by a reader's older snapshot is not
//    a failure. Both are retried with back-off, and at once after the next commit.
//  - The bound: the WAL only starts over when every frame was checkpointed as a write begins, so
//    under back-to-back batches it would grow for ever. Past frames_max_, before_write() waits
//    (at most `wait`) until every committed frame is in the database file; the write then
//    starts the WAL over. If the wait ends first (a reader of the site holds an old snapshot:
//    no checkpoint can pass it, nor the WAL start over, however long tyto waits), the batch is
//    written all the same (accounting is not held up by a site's reader) and the WAL grows:
//    counted (wal_over_bound), logged with the reason, and not waited for again until a
//    checkpoint reaches the WAL's end.
class Checkpointer {
 public:
  using Clock = std::chrono::steady_clock;

  // `db`: the checkpointer's connection, open and set up; owned from here on.
  Checkpointer(sqlite3* db, std::string path, std::uint64_t frame_bytes, std::uint64_t frames_max)
      : db_(db), path_(std::move(path)), frame_bytes_(frame_bytes), frames_max_(frames_max) {
    TYTO_ASSERT(db_ != nullptr);
    TYTO_ASSERT(frame_bytes_ > wal_frame_header_bytes);
    TYTO_ASSERT(frames_max_ > 0);
    thread_ = std::thread([this] { run(); });
  }
  ~Checkpointer() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    sqlite3_interrupt(db_);
    thread_.join();
    sqlite3_close_v2(db_);
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // The writer, after each commit (its WAL hook): the WAL now holds `frames`.
  void committed(int frames) noexcept {
    TYTO_ASSERT(frames >= 0);
    const std::uint64_t bytes = static_cast<std::uint64_t>(frames) * frame_bytes_;
    wal_bytes_.store(bytes, std::memory_order_relaxed);
    if (bytes > wal_bytes_max_.load(std::memory_order_relaxed)) {
      wal_bytes_max_.store(bytes, std::memory_order_relaxed);  // one writer: no lost update
    }
    {
      std::lock_guard lock(mutex_);
      ++commits_;
      wal_frames_ = static_cast<std::uint64_t>(frames);
    }
    wake_.notify_one();
  }

  // The writer, before a write transaction: past the bound, waits up to `wait` for every frame
  // committed so far to be checkpointed (the class comment says what happens if it is not).
  void before_write(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    if (wal_frames_ <= frames_max_ || commits_checkpointed_ == commits_) return;
    if (waited_in_vain_ && commits_checkpointed_ == checkpointed_when_waited_) return;
    const bool caught_up =
        done_.wait_for(lock, wait, [this] { return commits_checkpointed_ == commits_; });
    waited_in_vain_ = !caught_up;
    if (caught_up) return;
    checkpointed_when_waited_ = commits_checkpointed_;
    const std::uint64_t frames = wal_frames_;
    const std::string reason = last_outcome_;
    lock.unlock();
    wal_over_bound_.fetch_add(1, std::memory_order_relaxed);
    TYTO_LOG_LIMITED(log::Level::warning,
                     "storage sqlite:{}: the WAL holds {:.1f} MiB, past its bound of {:.1f} MiB, "
                     "and was not checkpointed within {} ms ({}); writing on, the WAL grows until "
                     "a checkpoint reaches its end",
                     path_, mib(frames), mib(frames_max_), wait.count(),
                     reason.empty() ? "a checkpoint is running" : reason);
  }

  double mib(std::uint64_t frames) const noexcept {
    return static_cast<double>(frames * frame_bytes_) / (1 << 20);
  }

  BackendStatus status() const noexcept {
    BackendStatus status;
    status.wal_checkpoints = checkpoints_.load(std::memory_order_relaxed);
    status.wal_checkpoint_failures = failures_.load(std::memory_order_relaxed);
    status.wal_bytes = wal_bytes_.load(std::memory_order_relaxed);
    status.wal_bytes_max = wal_bytes_max_.load(std::memory_order_relaxed);
    status.wal_over_bound = wal_over_bound_.load(std::memory_order_relaxed);
    return status;
  }

 private:
  // The thread: a checkpoint after each commit (several commits during one checkpoint make one
  // more), and retries while one stopped short.
  void run() {
    pthread_setname_np(pthread_self(), "tyto-checkpoint");
    // Below the shards and the writer where they share a CPU: the checkpoint only decides when
    // committed pages reach the database file, and the bound makes the writer wait for it when
    // it falls behind. At equal priority a third runnable thread took a third of a shared core
    // from the shard (bench/run's private point, tyto on one core: UDP private 185k -> 150k/s).
    // On a host with a free CPU it runs there as before. Per thread (Linux): failing is harmless.
    setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), checkpointer_nice);
    auto retry = checkpoint_retry_min;
    Clock::time_point retry_at = Clock::time_point::max();  // max: nothing to retry
    std::unique_lock lock(mutex_);
    while (true) {
      while (!stop_ && commits_ == commits_tried_ && Clock::now() < retry_at) {
        if (retry_at == Clock::time_point::max()) {
          wake_.wait(lock);
        } else {
          wake_.wait_until(lock, retry_at);
        }
      }
      if (stop_) return;
      const std::uint64_t target = commits_;
      commits_tried_ = target;
      lock.unlock();
      int log_frames = -1, checkpointed_frames = -1;
      const int result = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                                   &log_frames, &checkpointed_frames);
      const bool complete = result == SQLITE_OK && log_frames == checkpointed_frames;
      std::string outcome;
      if (result != SQLITE_OK) {
        outcome = fmt::format("the last checkpoint failed: {}", sqlite3_errmsg(db_));
      } else if (!complete) {
        outcome = fmt::format(
            "the last checkpoint stopped at frame {} of {}: a reader holds an older snapshot",
            checkpointed_frames, log_frames);
      }
      lock.lock();
      if (stop_) return;  // an interrupted checkpoint is not a failure
      last_outcome_ = outcome;
      if (complete) {
        commits_checkpointed_ = target;
        checkpoints_.fetch_add(1, std::memory_order_relaxed);
        retry = checkpoint_retry_min;
        retry_at = Clock::time_point::max();
      } else {
        retry_at = Clock::now() + retry;
        retry = std::min(retry * 2, checkpoint_retry_max);
      }
      done_.notify_all();
      if (result != SQLITE_OK) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        lock.unlock();
        TYTO_LOG_LIMITED(log::Level::warning, "storage sqlite:{}: WAL checkpoint: {} (retried)",
                         path_, outcome);
        lock.lock();
      }
    }
  }

  sqlite3* db_;  // the thread's alone (see the class comment)
  const std::string path_;
  const std::uint64_t frame_bytes_;  // a page and its frame header
  const std::uint64_t frames_max_;   // the bound
  std::thread thread_;

  std::mutex mutex_;
  std::condition_variable wake_;  // to the thread: a commit, or stop
  std::condition_variable done_;  // to the writer: a checkpoint ended
  bool stop_ = false;
  std::uint64_t commits_ = 0;               // the writer's commits so far
  std::uint64_t commits_tried_ = 0;         // commits_ when the last checkpoint began
  std::uint64_t commits_checkpointed_ = 0;  // the last checkpoint reaching the WAL's end began here
  std::uint64_t wal_frames_ = 0;            // after the writer's last commit
  bool waited_in_vain_ = false;             // the writer's last wait ended before a checkpoint did
  std::uint64_t checkpointed_when_waited_ = 0;  // commits_checkpointed_ then
  std::string last_outcome_;                    // why the last checkpoint stopped short; "" if not

  std::atomic<std::uint64_t> checkpoints_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> wal_bytes_{0};
  std::atomic<std::uint64_t> wal_bytes_max_{0};
  std::atomic<std::uint64_t> wal_over_bound_{0};
};

// The writer connection's WAL hook (sqlite3_wal_hook): called after each commit, on the writer's
// thread. Registering it is also what turns SQLite's own autocheckpoint off.
int wal_committed(void* checkpointer, sqlite3*, const char*, int frames) {
  static_cast<Checkpointer*>(checkpointer)->committed(frames);
  return SQLITE_OK;
}

class SqliteBackend final : public Backend {
 public:
  SqliteBackend(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {
    TYTO_ASSERT(db_ != nullptr);
  }
  ~SqliteBackend() override {
    // The checkpointer first (stopped and joined, its connection closed), so that this
    // connection is the last and its close checkpoints what the WAL still holds.
    sqlite3_wal_hook(db_, nullptr, nullptr);
    checkpointer_.reset();
    // Statements first: a connection with live statements does not close.
    for (Statement* statement : batch_statements()) statement->reset();
    sqlite3_close_v2(db_);
  }
  SqliteBackend(const SqliteBackend&) = delete;
  SqliteBackend& operator=(const SqliteBackend&) = delete;

  std::string migrate() override;
  Result<CatalogueRows, std::string> load_catalogue() override;
  std::string changes(std::vector<CatalogueChange>& out) override;
  Result<std::uint64_t, std::string> last_sequence(std::string_view node,
                                                   std::uint32_t shard) override;
  Result<bool, std::string> write_batch(const AccountingBatch& batch) override;
  Result<std::vector<Baseline>, std::string> load_baselines() override;
  Result<std::vector<CompletionCount>, std::string> load_completions() override;
  std::uint64_t rows_refused() const noexcept override { return rows_refused_; }
  BackendStatus status() const noexcept override {
    return checkpointer_ == nullptr ? BackendStatus{} : checkpointer_->status();
  }
  std::string describe() const override { return "sqlite:" + path_; }

  // At open, once this connection is set up: hands the WAL's checkpoints to a checkpointer on
  // `checkpointer_db` (open and set up; owned from here on) and turns this connection's own off.
  void start_checkpointer(sqlite3* checkpointer_db, std::uint64_t frame_bytes,
                          std::uint64_t frames_max, std::chrono::milliseconds wal_wait) {
    TYTO_ASSERT(checkpointer_ == nullptr);
    checkpointer_ = std::make_unique<Checkpointer>(checkpointer_db, path_, frame_bytes, frames_max);
    wal_wait_ = wal_wait;
    sqlite3_wal_hook(db_, wal_committed, checkpointer_.get());
  }

 private:
  std::string error(std::string_view what) const {
    return fmt::format("sqlite: {}: {}", what, sqlite3_errmsg(db_));
  }
  std::string exec(const char* sql, std::string_view what);
  std::string prepare(Statement& slot, const char* sql);
  std::string prepare_batch_statements();
  std::vector<Statement*> batch_statements() noexcept {
    return {&begin_immediate_, &commit_,          &rollback_,        &mark_read_,
            &mark_write_,      &transfer_add_,    &totals_add_,      &peer_put_,
            &peer_delete_,     &transfers_add_,   &totals_many_add_, &peers_put_,
            &completion_add_,  &completions_add_, &totals_touch_,    &totals_many_touch_,
            &peer_read_,       &tombstones_delete_, &stop_put_};
  }
  // Ends a failed write transaction; the error that caused it is what the caller reports.
  void rollback() noexcept;
  template <class Row, class Bind>
  std::string upsert_rows(std::span<const Row> rows, Statement& many, Statement& one, int columns,
                          Bind bind, std::string_view table);
  std::string delete_baseline(const AccountingDelta& delta);
  // A delta's stop into its row, when later (before the row's upsert).
  std::string put_stop(const PeerKey& key, const StopPoint& stop);
  // batch.arbitrate: the deltas against the stored baselines (arbitrate_delta), into arbitrated_.
  std::string arbitrate(std::span<const AccountingDelta> deltas, std::uint32_t window_s);
  std::string apply(const AccountingBatch& batch);
  void refuse(std::string_view table, const std::string& key, const std::string& reason);
  void prune_changes(std::uint64_t seq_through);
  std::string read_change(const ChangedKey& key, std::vector<CatalogueChange>& out);

  sqlite3* db_;
  std::string path_;
  std::uint64_t change_seq_seen_ = 0;
  std::uint64_t rows_refused_ = 0;
  // The batch path's statements, prepared once (after migrate(): they name its tables).
  // Each upsert twice: one row, and rows_per_statement rows (transfers_add_, totals_many_add_,
  // peers_put_) for the bulk of a batch.
  Statement begin_immediate_, commit_, rollback_, mark_read_, mark_write_, transfer_add_,
      totals_add_, peer_put_, peer_delete_, transfers_add_, totals_many_add_, peers_put_,
      completion_add_, completions_add_, totals_touch_, totals_many_touch_, peer_read_,
      tombstones_delete_, stop_put_;
  std::vector<AccountingDelta> arbitrated_;          // the current batch's, when arbitrated
  std::vector<const AccountingDelta*> open_deltas_;  // the current batch's rows to upsert
  std::vector<UserSum> users_credited_;              // the current batch's users, split by
  std::vector<std::uint64_t> users_uncredited_;      // whether their sums add anything
  BatchSums sums_;                                   // the current batch's, kept for its capacity
  std::unique_ptr<Checkpointer> checkpointer_;       // null only while open() sets the backend up
  std::chrono::milliseconds wal_wait_{0};            // before_write's wait past the WAL's bound
};

std::string SqliteBackend::exec(const char* sql, std::string_view what) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK) return "";
  std::string text =
      fmt::format("sqlite: {}: {}", what, message != nullptr ? message : sqlite3_errmsg(db_));
  sqlite3_free(message);
  return text;
}

std::string SqliteBackend::prepare(Statement& slot, const char* sql) {
  if (slot) return "";
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr) !=
      SQLITE_OK) {
    return error(fmt::format("preparing '{}'", sql));
  }
  slot.reset(statement);
  return "";
}

void SqliteBackend::rollback() noexcept {
  // A failed statement may already have ended the transaction (SQLITE_FULL, SQLITE_IOERR...).
  if (sqlite3_get_autocommit(db_) != 0) return;
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  TYTO_ASSERT(sqlite3_get_autocommit(db_) != 0);
}

void SqliteBackend::refuse(std::string_view table, const std::string& key,
                           const std::string& reason) {
  ++rows_refused_;
  TYTO_LOG_LIMITED(log::Level::warning, "storage {}: {} row {} refused: {}", describe(), table, key,
                   reason);
}

std::string SqliteBackend::migrate() {
  if (auto failed = exec("CREATE TABLE IF NOT EXISTS tyto_schema_migrations ("
                         "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                         "creating tyto_schema_migrations");
      !failed.empty()) {
    return failed;
  }
  for (const Migration& migration : migrations) {
    if (auto failed = exec("BEGIN IMMEDIATE", "beginning a migration"); !failed.empty()) {
      return failed;
    }
    // Checked inside the write transaction: another tyto starting on the same file waits here
    // and then finds the migration done.
    Statement applied;
    if (auto failed =
            prepare(applied, "SELECT count(*) FROM tyto_schema_migrations WHERE version = ?1");
        !failed.empty()) {
      rollback();
      return failed;
    }
    sqlite3_bind_int(applied.get(), 1, migration.version);
    if (sqlite3_step(applied.get()) != SQLITE_ROW) {
      std::string failed = error("reading tyto_schema_migrations");
      applied.reset();
      rollback();
      return failed;
    }
    const bool done = sqlite3_column_int64(applied.get(), 0) > 0;
    applied.reset();
    if (done) {
      rollback();
      continue;
    }
    const std::string what = fmt::format("migration {}", migration.version);
    std::string failed = exec(migration.sql, what);
    if (failed.empty()) {
      const std::string record =
          fmt::format("INSERT INTO tyto_schema_migrations(version, applied_at) VALUES ({}, {})",
                      migration.version, static_cast<std::int64_t>(std::time(nullptr)));
      failed = exec(record.c_str(), what);
    }
    if (failed.empty()) failed = exec("COMMIT", what);
    if (!failed.empty()) {
      rollback();
      return failed;
    }
    TYTO_LOG(log::Level::info, "storage {}: schema migration {} applied", describe(),
             migration.version);
  }
  return "";
}

Result<CatalogueRows, std::string> SqliteBackend::load_catalogue() {
  // One read transaction: the rows and the change mark are one snapshot.
  if (auto failed = exec("BEGIN", "beginning a read"); !failed.empty()) return Failure{failed};
  CatalogueRows rows;
  std::uint64_t change_seq_max = 0;
  std::string failed;
  const auto read = [&](const char* sql, auto&& each_row) {
    if (!failed.empty()) return;
    Statement statement;
    failed = prepare(statement, sql);
    if (!failed.empty()) return;
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(statement.get())) == SQLITE_ROW) each_row(statement.get());
    if (step != SQLITE_DONE) failed = error(fmt::format("reading '{}'", sql));
  };
  read("SELECT coalesce(max(seq), 0) FROM tyto_catalogue_changes", [&](sqlite3_stmt* row) {
    change_seq_max = static_cast<std::uint64_t>(sqlite3_column_int64(row, 0));
  });
  read(
      "SELECT user_id, passkey, enabled, can_leech, upload_factor, download_factor "
      "FROM tyto_users ORDER BY user_id",
      [&](sqlite3_stmt* row) {
        const UserFields fields{field_of(row, 0), field_of(row, 1), field_of(row, 2),
                                field_of(row, 3), field_of(row, 4), field_of(row, 5)};
        auto user = check_user_row(fields);
        if (user) {
          rows.users.push_back(user.value());
        } else {
          refuse("tyto_users", "user_id " + field_log_text(fields.user_id), user.error());
        }
      });
  read(
      "SELECT torrent_id, info_hash, upload_factor, download_factor "
      "FROM tyto_torrents ORDER BY torrent_id",
      [&](sqlite3_stmt* row) {
        const TorrentFields fields{field_of(row, 0), field_of(row, 1), field_of(row, 2),
                                   field_of(row, 3)};
        auto torrent = check_torrent_row(fields);
        if (torrent) {
          rows.torrents.push_back(torrent.value());
        } else {
          refuse("tyto_torrents", "torrent_id " + field_log_text(fields.torrent_id),
                 torrent.error());
        }
      });
  read("SELECT peer_id_prefix, allowed FROM tyto_client_rules ORDER BY peer_id_prefix",
       [&](sqlite3_stmt* row) {
         const ClientRuleFields fields{field_of(row, 0), field_of(row, 1)};
         auto rule = check_client_rule_row(fields);
         if (rule) {
           rows.client_rules.push_back(rule.value());
         } else {
           refuse("tyto_client_rules", "peer_id_prefix " + field_log_text(fields.peer_id_prefix),
                  rule.error());
         }
       });
  if (!failed.empty()) {
    rollback();
    return Failure{failed};
  }
  if (auto ended = exec("COMMIT", "ending a read"); !ended.empty()) return Failure{ended};
  change_seq_seen_ = change_seq_max;
  prune_changes(change_seq_seen_);
  return rows;
}

void SqliteBackend::prune_changes(std::uint64_t seq_through) {
  if (seq_through == 0) return;
  // One tracker node per SQLite file, so what this node has read nobody else needs. A failure
  // (the site holds the write lock past busy_timeout) only leaves the rows for the next time.
  const std::string sql =
      fmt::format("DELETE FROM tyto_catalogue_changes WHERE seq <= {}", seq_through);
  if (auto failed = exec(sql.c_str(), "pruning tyto_catalogue_changes"); !failed.empty()) {
    TYTO_LOG_LIMITED(log::Level::debug, "storage {}: {}", describe(), failed);
  }
}

std::string SqliteBackend::read_change(const ChangedKey& key, std::vector<CatalogueChange>& out) {
  const bool is_user = key.kind == "user";
  const bool is_torrent = key.kind == "torrent";
  const bool is_rule = key.kind == "client_rule";
  const Field key_field = key.type == SQLITE_INTEGER ? Field::of(key.integer)
                          : key.type == SQLITE_NULL  ? Field::null()
                                                     : Field::of(std::string_view(key.bytes));
  if (!is_user && !is_torrent && !is_rule) {
    refuse("tyto_catalogue_changes", "kind " + field_log_text(Field::of(key.kind)), "unknown kind");
    return "";
  }
  const char* table = is_user ? "tyto_users" : is_torrent ? "tyto_torrents" : "tyto_client_rules";
  const char* key_column = is_user ? "user_id" : is_torrent ? "torrent_id" : "peer_id_prefix";
  const std::string key_text = fmt::format("{} {}", key_column, field_log_text(key_field));
  CatalogueChange change;
  std::string reason;
  if (is_rule) {
    auto prefix = check_client_prefix(key_field);
    if (!prefix) {
      refuse(table, key_text, prefix.error());
      return "";
    }
    change.kind = CatalogueChangeKind::client_rule_removed;
    change.client_rule = prefix.value();
  } else {
    auto id = check_id(key_field, key_column);
    if (!id) {
      refuse(table, key_text, id.error());
      return "";
    }
    change.kind =
        is_user ? CatalogueChangeKind::user_removed : CatalogueChangeKind::torrent_removed;
    change.user.user_id = is_user ? id.value() : 0;
    change.torrent.torrent_id = is_torrent ? id.value() : 0;
  }
  const std::string sql =
      is_user ? "SELECT user_id, passkey, enabled, can_leech, upload_factor, download_factor "
                "FROM tyto_users WHERE user_id = ?1"
      : is_torrent
          ? "SELECT torrent_id, info_hash, upload_factor, download_factor FROM tyto_torrents "
            "WHERE torrent_id = ?1"
          : "SELECT peer_id_prefix, allowed FROM tyto_client_rules WHERE peer_id_prefix = ?1";
  Statement statement;
  if (auto failed = prepare(statement, sql.c_str()); !failed.empty()) return failed;
  if (is_rule) {
    if (key.type == SQLITE_BLOB) {
      sqlite3_bind_blob(statement.get(), 1, key.bytes.data(), static_cast<int>(key.bytes.size()),
                        SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_text(statement.get(), 1, key.bytes.data(), static_cast<int>(key.bytes.size()),
                        SQLITE_TRANSIENT);
    }
  } else {
    sqlite3_bind_int64(
        statement.get(), 1,
        static_cast<sqlite3_int64>(is_user ? change.user.user_id : change.torrent.torrent_id));
  }
  const int step = sqlite3_step(statement.get());
  if (step == SQLITE_ROW) {
    sqlite3_stmt* row = statement.get();
    // A row that no longer fits is reported removed, so the old valid version does not stay
    // in force in the shards (a passkey changed to an invalid one no longer lets anyone in).
    if (is_user) {
      auto user = check_user_row({field_of(row, 0), field_of(row, 1), field_of(row, 2),
                                  field_of(row, 3), field_of(row, 4), field_of(row, 5)});
      if (user) {
        change.kind = CatalogueChangeKind::user;
        change.user = user.value();
      } else {
        reason = user.error();
      }
    } else if (is_torrent) {
      auto torrent = check_torrent_row(
          {field_of(row, 0), field_of(row, 1), field_of(row, 2), field_of(row, 3)});
      if (torrent) {
        change.kind = CatalogueChangeKind::torrent;
        change.torrent = torrent.value();
      } else {
        reason = torrent.error();
      }
    } else {
      auto rule = check_client_rule_row({field_of(row, 0), field_of(row, 1)});
      if (rule) {
        change.kind = CatalogueChangeKind::client_rule;
        change.client_rule = rule.value();
      } else {
        reason = rule.error();
      }
    }
  } else if (step != SQLITE_DONE) {
    return error(fmt::format("reading the changed row {} of {}", key_text, table));
  }
  if (!reason.empty()) refuse(table, key_text, reason);
  out.push_back(change);
  return "";
}

std::string SqliteBackend::changes(std::vector<CatalogueChange>& out) {
  if (auto failed = exec("BEGIN", "beginning a read"); !failed.empty()) return failed;
  // Each key once, at its last change, read as the row is in this snapshot.
  std::vector<ChangedKey> changed;
  std::uint64_t seq_max = change_seq_seen_;
  std::string failed;
  {
    Statement statement;
    failed = prepare(statement,
                     "SELECT seq, kind, key FROM tyto_catalogue_changes WHERE seq > ?1 "
                     "ORDER BY seq");
    if (failed.empty()) {
      sqlite3_bind_int64(statement.get(), 1, stored(change_seq_seen_));
      int step = SQLITE_ROW;
      while ((step = sqlite3_step(statement.get())) == SQLITE_ROW) {
        sqlite3_stmt* row = statement.get();
        seq_max = static_cast<std::uint64_t>(sqlite3_column_int64(row, 0));
        ChangedKey key;
        const Field kind = field_of(row, 1);
        key.kind = std::string(kind.text);
        key.type = sqlite3_column_type(row, 2);
        const Field value = field_of(row, 2);
        key.integer = value.integer;
        key.bytes = std::string(value.text);
        changed.push_back(std::move(key));
      }
      if (step != SQLITE_DONE) failed = error("reading tyto_catalogue_changes");
    }
  }
  std::set<ChangedKey> seen;
  std::vector<const ChangedKey*> last_changes;
  for (auto key = changed.rbegin(); key != changed.rend() && failed.empty(); ++key) {
    if (seen.insert(*key).second) last_changes.push_back(&*key);
  }
  const std::size_t out_size_before = out.size();
  for (auto key = last_changes.rbegin(); key != last_changes.rend() && failed.empty(); ++key) {
    failed = read_change(**key, out);
  }
  if (!failed.empty()) {
    out.resize(out_size_before);  // all or nothing: the next call reads the same changes
    rollback();
    return failed;
  }
  if (auto ended = exec("COMMIT", "ending a read"); !ended.empty()) {
    out.resize(out_size_before);
    return ended;
  }
  if (seq_max > change_seq_seen_) {
    change_seq_seen_ = seq_max;
    prune_changes(change_seq_seen_);
  }
  return "";
}

std::string SqliteBackend::prepare_batch_statements() {
  struct Entry {
    Statement* slot;
    const char* sql;
  };
  const Entry entries[] = {
      {&begin_immediate_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&mark_read_, "SELECT sequence FROM tyto_batches WHERE node = ?1 AND shard = ?2"},
      {&mark_write_,
       "INSERT INTO tyto_batches(node, shard, sequence, applied_at) VALUES (?1, ?2, ?3, ?4) "
       "ON CONFLICT(node, shard) DO UPDATE SET sequence = excluded.sequence, "
       "applied_at = excluded.applied_at"},
      {&transfer_add_, transfer_sql.one.c_str()},
      {&totals_add_, totals_sql.one.c_str()},
      {&peer_put_, peer_sql.one.c_str()},
      {&transfers_add_, transfer_sql.many.c_str()},
      {&totals_many_add_, totals_sql.many.c_str()},
      {&totals_touch_, totals_touch_sql.one.c_str()},
      {&totals_many_touch_, totals_touch_sql.many.c_str()},
      {&peers_put_, peer_sql.many.c_str()},
      {&completion_add_, completion_sql.one.c_str()},
      {&completions_add_, completion_sql.many.c_str()},
      {&peer_delete_,
       "DELETE FROM tyto_peers WHERE user_id = ?1 AND torrent_id = ?2 AND peer_id = ?3 "
       "AND ((?5 >= uploaded AND ?6 >= downloaded AND ?4 + 2 >= announced_at) OR "
       "?4 > announced_at + 2)"},
      {&peer_read_,
       "SELECT uploaded, downloaded, announced_at, seeding, closed, stopped_at, stopped_uploaded, "
       "stopped_downloaded FROM tyto_peers "
       "WHERE user_id = ?1 AND torrent_id = ?2 AND peer_id = ?3"},
      {&tombstones_delete_, "DELETE FROM tyto_peers WHERE closed AND announced_at < ?1"},
      {&stop_put_,
       "UPDATE tyto_peers SET stopped_at = ?4, stopped_uploaded = ?5, stopped_downloaded = ?6 "
       "WHERE user_id = ?1 AND torrent_id = ?2 AND peer_id = ?3 AND stopped_at < ?4"},
  };
  for (const Entry& entry : entries) {
    if (auto failed = prepare(*entry.slot, entry.sql); !failed.empty()) return failed;
  }
  return "";
}

template <class Row, class Bind>
std::string SqliteBackend::upsert_rows(std::span<const Row> rows, Statement& many, Statement& one,
                                       int columns, Bind bind, std::string_view table) {
  std::size_t at = 0;
  for (; rows.size() - at >= rows_per_statement; at += rows_per_statement) {
    Use use(many.get());
    for (std::size_t row = 0; row < rows_per_statement; ++row) {
      bind(use.get(), 1 + static_cast<int>(row) * columns, rows[at + row]);
    }
    if (sqlite3_step(use.get()) != SQLITE_DONE) return error(fmt::format("writing {}", table));
  }
  for (; at < rows.size(); ++at) {
    Use use(one.get());
    bind(use.get(), 1, rows[at]);
    if (sqlite3_step(use.get()) != SQLITE_DONE) return error(fmt::format("writing {}", table));
  }
  return "";
}

std::string SqliteBackend::delete_baseline(const AccountingDelta& delta) {
  TYTO_ASSERT(delta.closed);
  Use use(peer_delete_.get());
  sqlite3_bind_int64(use.get(), 1, stored(delta.key.user_id));
  sqlite3_bind_int64(use.get(), 2, stored(delta.key.torrent_id));
  sqlite3_bind_blob(use.get(), 3, delta.key.peer_id.bytes.data(),
                    static_cast<int>(delta.key.peer_id.bytes.size()), SQLITE_STATIC);
  sqlite3_bind_int64(use.get(), 4, stored(delta.announced_unix_s));
  sqlite3_bind_int64(use.get(), 5, stored(delta.baseline_uploaded));
  sqlite3_bind_int64(use.get(), 6, stored(delta.baseline_downloaded));
  if (sqlite3_step(use.get()) != SQLITE_DONE) return error("writing tyto_peers");
  return "";
}

std::string SqliteBackend::put_stop(const PeerKey& key, const StopPoint& stop) {
  Use use(stop_put_.get());
  sqlite3_bind_int64(use.get(), 1, stored(key.user_id));
  sqlite3_bind_int64(use.get(), 2, stored(key.torrent_id));
  sqlite3_bind_blob(use.get(), 3, key.peer_id.bytes.data(),
                    static_cast<int>(key.peer_id.bytes.size()), SQLITE_STATIC);
  sqlite3_bind_int64(use.get(), 4, stored(stop.unix_s));
  sqlite3_bind_int64(use.get(), 5, stored(stop.uploaded));
  sqlite3_bind_int64(use.get(), 6, stored(stop.downloaded));
  if (sqlite3_step(use.get()) != SQLITE_DONE) return error("writing tyto_peers");
  return "";
}

std::string SqliteBackend::arbitrate(std::span<const AccountingDelta> deltas,
                                     std::uint32_t window_s) {
  arbitrated_.assign(deltas.begin(), deltas.end());
  for (AccountingDelta& delta : arbitrated_) {
    Use use(peer_read_.get());
    sqlite3_bind_int64(use.get(), 1, stored(delta.key.user_id));
    sqlite3_bind_int64(use.get(), 2, stored(delta.key.torrent_id));
    sqlite3_bind_blob(use.get(), 3, delta.key.peer_id.bytes.data(),
                      static_cast<int>(delta.key.peer_id.bytes.size()), SQLITE_STATIC);
    const int step = sqlite3_step(use.get());
    if (step == SQLITE_DONE) continue;  // no stored baseline: nothing to arbitrate
    if (step != SQLITE_ROW) return error("reading tyto_peers");
    // A row is outside input: a negative number reads as 0 (it can only cut credits).
    auto column = [&](int index) {
      return static_cast<std::uint64_t>(std::max<sqlite3_int64>(0, sqlite3_column_int64(use.get(), index)));
    };
    const Baseline held{delta.key, column(0),      column(1), column(2), column(3) != 0,
                        column(4) != 0, column(5), column(6), column(7)};
    arbitrate_delta(delta, &held, window_s);
  }
  return "";
}

// The batch's rows: transfers and totals summed per key (batch_sums.hpp), baselines per delta,
// each upsert rows_per_statement rows at a time. Each key is in the batch once, so the order of
// the baselines' puts and deletes does not matter.
std::string SqliteBackend::apply(const AccountingBatch& batch) {
  std::span<const AccountingDelta> deltas = batch.deltas;
  if (batch.arbitrate) {
    Use use(tombstones_delete_.get());
    const auto now_unix_s = static_cast<std::uint64_t>(std::time(nullptr));
    sqlite3_bind_int64(use.get(), 1, stored(now_unix_s - closed_baseline_keep_s));
    if (sqlite3_step(use.get()) != SQLITE_DONE) return error("deleting old tombstones");
    if (std::string failed = arbitrate(deltas, batch.arbitrate_window_s); !failed.empty()) {
      return failed;
    }
    deltas = arbitrated_;
  }
  sum_batch(deltas, sums_);
  users_credited_.clear();
  users_uncredited_.clear();
  for (const UserSum& user : sums_.users) {
    if (user.uploaded == 0 && user.downloaded == 0) {
      users_uncredited_.push_back(user.user_id);
    } else {
      users_credited_.push_back(user);
    }
  }
  open_deltas_.clear();  // every delta's row, but a closed one's is deleted unless arbitrated
  for (const AccountingDelta& delta : deltas) {
    if ((!delta.closed || batch.arbitrate) && !delta.keeps_stored_baseline) {
      open_deltas_.push_back(&delta);
    }
  }
  std::string failed =
      upsert_rows(std::span<const TransferSum>(sums_.transfers), transfers_add_, transfer_add_,
                  transfer_columns, bind_transfer, "tyto_transfers");
  if (failed.empty()) {
    failed = upsert_rows(std::span<const UserSum>(users_credited_), totals_many_add_, totals_add_,
                         totals_columns, bind_totals, "tyto_user_totals");
  }
  if (failed.empty()) {
    failed = upsert_rows(std::span<const std::uint64_t>(users_uncredited_), totals_many_touch_,
                         totals_touch_, 1, bind_user, "tyto_user_totals");
  }
  // Stops first: whether a baseline replaces a row depends on the row's stop (baseline_replaces).
  for (std::size_t i = 0; i < deltas.size() && failed.empty(); ++i) {
    if (const StopPoint stop = stop_of(deltas[i]); stop.unix_s != 0) {
      failed = put_stop(deltas[i].key, stop);
    }
  }
  if (failed.empty()) {
    failed = upsert_rows(std::span<const AccountingDelta* const>(open_deltas_), peers_put_,
                         peer_put_, peer_columns, bind_peer, "tyto_peers");
  }
  for (std::size_t i = 0; i < deltas.size() && failed.empty() && !batch.arbitrate; ++i) {
    if (deltas[i].closed) failed = delete_baseline(deltas[i]);
  }
  if (failed.empty()) {
    failed = upsert_rows(std::span<const CompletionDelta>(batch.completions), completions_add_,
                         completion_add_, completion_columns, bind_completion, "tyto_completions");
  }
  return failed;
}

Result<bool, std::string> SqliteBackend::write_batch(const AccountingBatch& batch) {
  TYTO_ASSERT(batch.id.sequence > 0);
  TYTO_ASSERT(batch.id.sequence <= static_cast<std::uint64_t>(INT64_MAX));
  if (checkpointer_ != nullptr) checkpointer_->before_write(wal_wait_);
  if (auto failed = prepare_batch_statements(); !failed.empty()) return Failure{failed};
  {
    Use use(begin_immediate_.get());
    if (sqlite3_step(use.get()) != SQLITE_DONE) return Failure{error("beginning a batch")};
  }
  std::uint64_t mark = 0;
  std::string failed;
  {
    Use use(mark_read_.get());
    sqlite3_bind_text(use.get(), 1, batch.id.node.data(), static_cast<int>(batch.id.node.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(use.get(), 2, batch.id.shard);
    const int step = sqlite3_step(use.get());
    if (step == SQLITE_ROW) {
      mark = static_cast<std::uint64_t>(sqlite3_column_int64(use.get(), 0));
    } else if (step != SQLITE_DONE) {
      failed = error("reading tyto_batches");
    }
  }
  if (failed.empty() && batch.id.sequence <= mark) {
    rollback();
    return false;  // applied before: at most once
  }
  if (failed.empty()) failed = apply(batch);
  if (failed.empty()) {
    Use use(mark_write_.get());
    sqlite3_bind_text(use.get(), 1, batch.id.node.data(), static_cast<int>(batch.id.node.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(use.get(), 2, batch.id.shard);
    sqlite3_bind_int64(use.get(), 3, stored(batch.id.sequence));
    sqlite3_bind_int64(use.get(), 4, static_cast<sqlite3_int64>(std::time(nullptr)));
    if (sqlite3_step(use.get()) != SQLITE_DONE) failed = error("writing tyto_batches");
  }
  if (failed.empty()) {
    Use use(commit_.get());
    if (sqlite3_step(use.get()) != SQLITE_DONE) failed = error("committing a batch");
  }
  if (!failed.empty()) {
    rollback();
    return Failure{failed};
  }
  TYTO_ASSERT(sqlite3_get_autocommit(db_) != 0);
  return true;
}

Result<std::uint64_t, std::string> SqliteBackend::last_sequence(std::string_view node,
                                                                std::uint32_t shard) {
  Statement statement;
  if (auto failed =
          prepare(statement, "SELECT sequence FROM tyto_batches WHERE node = ?1 AND shard = ?2");
      !failed.empty()) {
    return Failure{failed};
  }
  sqlite3_bind_text(statement.get(), 1, node.data(), static_cast<int>(node.size()), SQLITE_STATIC);
  sqlite3_bind_int64(statement.get(), 2, shard);
  const int step = sqlite3_step(statement.get());
  if (step == SQLITE_DONE) return std::uint64_t{0};
  if (step != SQLITE_ROW) return Failure{error("reading tyto_batches")};
  return static_cast<std::uint64_t>(sqlite3_column_int64(statement.get(), 0));
}

Result<std::vector<Baseline>, std::string> SqliteBackend::load_baselines() {
  Statement statement;
  if (auto failed = prepare(statement,
                            "SELECT user_id, torrent_id, peer_id, uploaded, downloaded, "
                            "announced_at, seeding FROM tyto_peers WHERE NOT closed "
                            "ORDER BY user_id, torrent_id, peer_id");
      !failed.empty()) {
    return Failure{failed};
  }
  std::vector<Baseline> baselines;
  int step = SQLITE_ROW;
  while ((step = sqlite3_step(statement.get())) == SQLITE_ROW) {
    sqlite3_stmt* row = statement.get();
    const BaselineFields fields{field_of(row, 0), field_of(row, 1), field_of(row, 2),
                                field_of(row, 3), field_of(row, 4), field_of(row, 5),
                                field_of(row, 6)};
    auto baseline = check_baseline_row(fields);
    if (baseline) {
      baselines.push_back(baseline.value());
    } else {
      refuse("tyto_peers",
             fmt::format("user_id {} torrent_id {}", field_log_text(fields.user_id),
                         field_log_text(fields.torrent_id)),
             baseline.error());
    }
  }
  if (step != SQLITE_DONE) return Failure{error("reading tyto_peers")};
  return baselines;
}

Result<std::vector<CompletionCount>, std::string> SqliteBackend::load_completions() {
  Statement statement;
  if (auto failed = prepare(statement,
                            "SELECT info_hash, completed FROM tyto_completions ORDER BY info_hash");
      !failed.empty()) {
    return Failure{failed};
  }
  std::vector<CompletionCount> counts;
  int step = SQLITE_ROW;
  while ((step = sqlite3_step(statement.get())) == SQLITE_ROW) {
    const CompletionFields fields{field_of(statement.get(), 0), field_of(statement.get(), 1)};
    auto count = check_completion_row(fields);
    if (count) {
      counts.push_back(count.value());
    } else {
      refuse("tyto_completions", "info_hash " + field_log_text(fields.info_hash), count.error());
    }
  }
  if (step != SQLITE_DONE) return Failure{error("reading tyto_completions")};
  return counts;
}

// PATH[?busy_timeout_ms=N&cache_mib=N&wal_mib_max=N]
struct Location {
  std::string path;
  std::uint32_t busy_timeout_ms = busy_timeout_ms_default;
  std::uint32_t cache_mib = cache_mib_default;
  std::uint32_t wal_mib_max = wal_mib_max_default;
};

// One `name=N` option of the location's query into `value` (0..max).
std::string parse_option(std::string_view option, Location& parsed) {
  const auto equals = option.find('=');
  const std::string_view name = option.substr(0, equals);
  std::uint32_t* value = nullptr;
  std::uint32_t max = 0;
  if (name == "busy_timeout_ms") {
    value = &parsed.busy_timeout_ms;
    max = busy_timeout_ms_max;
  } else if (name == "cache_mib") {
    value = &parsed.cache_mib;
    max = cache_mib_max;
  } else if (name == "wal_mib_max") {
    value = &parsed.wal_mib_max;
    max = wal_mib_max_max;
  }
  if (value == nullptr || equals == std::string_view::npos) {
    return fmt::format(
        "sqlite: unknown option '{}' (busy_timeout_ms=N, cache_mib=N, wal_mib_max=N)", option);
  }
  const std::uint32_t min = name == "wal_mib_max" ? 1 : 0;
  const std::string_view text = option.substr(equals + 1);
  const char* end = text.data() + text.size();
  const auto [at, failed] = std::from_chars(text.data(), end, *value);
  if (text.empty() || failed != std::errc{} || at != end || *value < min || *value > max) {
    return fmt::format("sqlite: {} '{}' is not {}..{}", name, text, min, max);
  }
  return "";
}

Result<Location, std::string> parse_location(std::string_view location) {
  Location parsed;
  const auto query_at = location.find('?');
  parsed.path = std::string(location.substr(0, query_at));
  if (parsed.path.empty())
    return Failure{std::string("sqlite: the URI names no file (sqlite:PATH)")};
  if (query_at == std::string_view::npos) return parsed;
  std::string_view query = location.substr(query_at + 1);
  while (true) {
    const auto amp = query.find('&');
    if (std::string failed = parse_option(query.substr(0, amp), parsed); !failed.empty()) {
      return Failure{std::move(failed)};
    }
    if (amp == std::string_view::npos) return parsed;
    query.remove_prefix(amp + 1);
  }
}

// Runs one statement of a connection's set-up; with `wal`, checks that it answered "wal".
// Error text or "".
std::string set_up(sqlite3* db, const std::string& path, const std::string& sql, bool wal) {
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
    return fmt::format("sqlite: {} on {}: {}", sql, path, sqlite3_errmsg(db));
  }
  const int step = sqlite3_step(statement);
  const bool wal_refused =
      wal && (step != SQLITE_ROW || sqlite3_column_type(statement, 0) != SQLITE_TEXT ||
              std::string_view(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0))) !=
                  "wal");
  sqlite3_finalize(statement);
  if (step != SQLITE_ROW && step != SQLITE_DONE) {
    return fmt::format("sqlite: {} on {}: {}", sql, path, sqlite3_errmsg(db));
  }
  if (wal_refused) return fmt::format("sqlite: {} cannot use WAL journal mode", path);
  return "";
}

// An integer PRAGMA's value, or -1.
std::int64_t pragma_integer(sqlite3* db, const char* sql) {
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) != SQLITE_OK) return -1;
  const std::int64_t value =
      sqlite3_step(statement) == SQLITE_ROW ? sqlite3_column_int64(statement, 0) : -1;
  sqlite3_finalize(statement);
  return value;
}

// The checkpointer's own connection to the file the writer's connection made WAL. Its
// synchronous=FULL makes its checkpoints sync (the class comment of Checkpointer); its busy
// timeout bounds what waits on a lock here (reading the WAL's index): PASSIVE itself never
// waits. The caller owns the connection returned.
Result<sqlite3*, std::string> open_checkpointer_db(const Location& location) {
  const std::string& path = location.path;
  sqlite3* db = nullptr;
  // NOMUTEX: one thread uses it (and sqlite3_interrupt, which needs no mutex).
  const int opened =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (db == nullptr) return Failure{fmt::format("sqlite: opening {}: out of memory", path)};
  std::string failed;
  if (opened != SQLITE_OK) failed = fmt::format("sqlite: opening {}: {}", path, sqlite3_errmsg(db));
  if (failed.empty()) {
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(location.busy_timeout_ms));
    // Reading the journal mode opens the WAL here, so the first checkpoint finds it.
    failed = set_up(db, path, "PRAGMA journal_mode=WAL", true);
  }
  if (failed.empty()) failed = set_up(db, path, "PRAGMA synchronous=FULL", false);
  if (failed.empty()) failed = set_up(db, path, "PRAGMA wal_autocheckpoint=0", false);
  if (!failed.empty()) {
    sqlite3_close_v2(db);
    return Failure{std::move(failed)};
  }
  return db;
}

}  // namespace

Result<std::unique_ptr<Backend>, std::string> open(std::string_view location) {
  auto parsed = parse_location(location);
  if (!parsed) return Failure{parsed.error()};
  const std::string& path = parsed.value().path;
  sqlite3* db = nullptr;
  // NOMUTEX: one thread at a time uses a backend (backend.hpp), so SQLite's own lock is waste.
  const int opened = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (db == nullptr) return Failure{fmt::format("sqlite: opening {}: out of memory", path)};
  auto backend = std::make_unique<SqliteBackend>(db, path);  // closes db on every path out
  if (opened != SQLITE_OK) {
    return Failure{fmt::format("sqlite: opening {}: {}", path, sqlite3_errmsg(db))};
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(parsed.value().busy_timeout_ms));
  // WAL: the site reads while tyto writes. FULL: a committed batch survives a power cut (WAL's
  // default NORMAL may lose the last commits, and with them their baselines). No autocheckpoint:
  // the checkpointer thread checkpoints (start_checkpointer registers the WAL hook that tells it).
  const std::string setup[] = {
      "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
      fmt::format("PRAGMA cache_size=-{}", std::uint64_t{parsed.value().cache_mib} * 1024),
      "PRAGMA wal_autocheckpoint=0",
      fmt::format("PRAGMA journal_size_limit={}", std::uint64_t{parsed.value().wal_mib_max} << 20)};
  for (const std::string& sql : setup) {
    if (auto failed = set_up(db, path, sql, sql == setup[0]); !failed.empty()) {
      return Failure{std::move(failed)};
    }
  }
  const std::int64_t page_size = pragma_integer(db, "PRAGMA page_size");
  if (page_size <= 0) {
    return Failure{fmt::format("sqlite: PRAGMA page_size on {}: {}", path, sqlite3_errmsg(db))};
  }
  auto checkpointer_db = open_checkpointer_db(parsed.value());
  if (!checkpointer_db) return Failure{checkpointer_db.error()};
  const std::uint64_t frame_bytes = static_cast<std::uint64_t>(page_size) + wal_frame_header_bytes;
  const std::uint64_t frames_max =
      std::max<std::uint64_t>(1, (std::uint64_t{parsed.value().wal_mib_max} << 20) / frame_bytes);
  backend->start_checkpointer(checkpointer_db.value(), frame_bytes, frames_max,
                              std::chrono::milliseconds(parsed.value().busy_timeout_ms));
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace tyto::store::sqlite
