// Accounting sink benchmarks (Google Benchmark): Backend::write_batch of one shard's batch, the
// storage thread's unit of work (about 20 000 deltas a second per shard at most; each delta a
// distinct (user, torrent, peer_id), sorted). Rows per second = deltas written per second.
//   build-release/bench/store/store_bench --benchmark_repetitions=5
//   (add --benchmark_report_aggregates_only=true for the medians alone)
//
// - first: a fresh database (no baselines, transfers or totals yet): every row is an insert.
// - steady: the same keys again with new credits, the steady state (every row an update).
// - growing, large: new peers at random keys into ever larger tables; large starts from tables
//   of millions of rows and also counts the writer's system calls and bytes per row.
// Argument: rows per user in the batch (10: a site's mix, users with several torrents and a few
// with two clients on one torrent; 1: every row another user).
// SQLite's rows/s are per CPU second of the writing thread (what the storage thread spends; the
// Time column adds the batch's fsync and the machine's noise); PostgreSQL's are per wall second,
// as the server does most of the work. Files go to $TYTO_BENCH_DIR (default /tmp).
// PostgreSQL runs on a server of the benchmark's own (tests/store/postgres_server.hpp), started
// at the first PostgreSQL case and skipped when the binaries are missing.
#include <benchmark/benchmark.h>
#include <fmt/core.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "tyto/store/backend.hpp"

#ifdef TYTO_BENCH_POSTGRES
#include "store/postgres_server.hpp"
#endif

namespace {

using namespace tyto;
using namespace tyto::store;

constexpr std::size_t batch_rows = 20000;
constexpr std::uint64_t torrents_count = 200000;

// batch_rows distinct keys over batch_rows / rows_per_user users, sorted as the storage thread
// sorts them. One pair in 20 gets a second client (another peer_id on the same torrent).
std::vector<AccountingDelta> make_deltas(std::size_t rows_per_user) {
  std::mt19937_64 random(42);
  std::vector<AccountingDelta> deltas;
  deltas.reserve(batch_rows);
  const std::uint64_t users_count = std::max<std::size_t>(1, batch_rows / rows_per_user);
  for (std::uint64_t i = 0; deltas.size() < batch_rows; ++i) {
    AccountingDelta delta;
    delta.key.user_id = 1 + i % users_count;
    delta.key.torrent_id = 1 + random() % torrents_count;
    for (std::size_t b = 0; b < delta.key.peer_id.bytes.size(); ++b) {
      delta.key.peer_id.bytes[b] = static_cast<std::uint8_t>(random());
    }
    deltas.push_back(delta);
    if (rows_per_user > 1 && random() % 20 == 0 && deltas.size() < batch_rows) {
      delta.key.peer_id.bytes[0] ^= 0xff;
      deltas.push_back(delta);
    }
  }
  const auto order = [](const AccountingDelta& a, const AccountingDelta& b) {
    return std::tie(a.key.user_id, a.key.torrent_id, a.key.peer_id.bytes) <
           std::tie(b.key.user_id, b.key.torrent_id, b.key.peer_id.bytes);
  };
  std::sort(deltas.begin(), deltas.end(), order);
  const auto same = [](const AccountingDelta& a, const AccountingDelta& b) {
    return a.key == b.key;
  };
  deltas.erase(std::unique(deltas.begin(), deltas.end(), same), deltas.end());
  return deltas;
}

// Round `round` of announces: every counter moves, one delta in 50 is a snatch.
void set_round(std::vector<AccountingDelta>& deltas, std::uint64_t round) {
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    AccountingDelta& delta = deltas[i];
    delta.uploaded = 1000 + i;
    delta.downloaded = 2000 + i;
    delta.uploaded_real = 500 + i;
    delta.downloaded_real = 2000 + i;
    delta.seed_s = 900;
    delta.leech_s = i % 3 == 0 ? 900 : 0;
    delta.baseline_uploaded = round * 1000000 + i;
    delta.baseline_downloaded = round * 2000000 + i;
    delta.announced_unix_s = 1700000000 + round * 1800;
    delta.seeding = i % 3 != 0;
    delta.completed = i % 50 == round % 50;
  }
}

AccountingBatch batch_of(std::vector<AccountingDelta> deltas, std::uint64_t sequence) {
  return {{"bench", 0, sequence}, std::move(deltas)};
}

std::unique_ptr<Backend> open_migrated(const std::string& uri) {
  auto opened = open_backend(uri);
  if (!opened) return nullptr;
  std::unique_ptr<Backend> backend = std::move(opened.value());
  if (!backend->migrate().empty()) return nullptr;
  return backend;
}

bool write(benchmark::State& state, Backend& backend, const AccountingBatch& batch) {
  const auto applied = backend.write_batch(batch);
  if (applied && applied.value()) return true;
  state.SkipWithError(applied ? "batch not applied" : applied.error().c_str());
  return false;
}

class SqliteFile {
 public:
  SqliteFile() {
    const char* base = ::getenv("TYTO_BENCH_DIR");
    std::string dir_template = std::string(base != nullptr ? base : "/tmp") + "/tyto-bench-XXXXXX";
    const char* dir = ::mkdtemp(dir_template.data());
    if (dir != nullptr) dir_ = dir;
  }
  ~SqliteFile() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  SqliteFile(const SqliteFile&) = delete;
  SqliteFile& operator=(const SqliteFile&) = delete;
  // $TYTO_BENCH_SQLITE_OPTIONS, e.g. "?wal_mib_max=256", is appended (sqlite_backend.hpp).
  std::string uri() const {
    const char* options = ::getenv("TYTO_BENCH_SQLITE_OPTIONS");
    return "sqlite:" + dir_ + "/tyto.db" + (options != nullptr ? options : "");
  }

 private:
  std::string dir_;
};

void BM_SqliteFirst(benchmark::State& state) {
  std::vector<AccountingDelta> deltas = make_deltas(static_cast<std::size_t>(state.range(0)));
  set_round(deltas, 1);
  const AccountingBatch batch = batch_of(deltas, 1);
  for (auto _ : state) {
    state.PauseTiming();
    auto file = std::make_unique<SqliteFile>();
    auto backend = open_migrated(file->uri());
    if (backend == nullptr) {
      state.SkipWithError("cannot open a SQLite file");
      break;
    }
    state.ResumeTiming();
    if (!write(state, *backend, batch)) break;
    state.PauseTiming();
    backend.reset();
    file.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch.deltas.size()));
}
BENCHMARK(BM_SqliteFirst)->Arg(10)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_SqliteSteady(benchmark::State& state) {
  std::vector<AccountingDelta> deltas = make_deltas(static_cast<std::size_t>(state.range(0)));
  SqliteFile file;
  auto backend = open_migrated(file.uri());
  if (backend == nullptr) {
    state.SkipWithError("cannot open a SQLite file");
    return;
  }
  set_round(deltas, 1);
  if (!write(state, *backend, batch_of(deltas, 1))) return;
  std::uint64_t sequence = 1;
  for (auto _ : state) {
    state.PauseTiming();
    ++sequence;
    set_round(deltas, sequence);
    const AccountingBatch batch = batch_of(deltas, sequence);
    state.ResumeTiming();
    if (!write(state, *backend, batch)) break;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * deltas.size()));
}
BENCHMARK(BM_SqliteSteady)->Arg(10)->Arg(1)->Unit(benchmark::kMillisecond);

// Every batch new keys into ever larger tables: bench/run's private point, where each announce
// is a new peer (100 000 users, 1 M torrents), its first sighting (a baseline, no credit).
// Argument: rows per batch; 24 batches, so the last ones write into tables of 23 batches' rows.
// SQLite's WAL writes every page a batch dirties whole, so rows per page, not statements, set
// much of the cost; Time (wall) includes the fsyncs of the commits and checkpoints.
std::vector<AccountingDelta> new_peers(std::size_t count, std::mt19937_64& random,
                                       std::uint64_t round) {
  std::vector<AccountingDelta> deltas(count);
  for (AccountingDelta& delta : deltas) {
    delta.key.user_id = 1 + random() % 100000;
    delta.key.torrent_id = 1 + random() % 1000000;
    for (auto& byte : delta.key.peer_id.bytes) byte = static_cast<std::uint8_t>(random());
  }
  std::sort(deltas.begin(), deltas.end(), [](const AccountingDelta& a, const AccountingDelta& b) {
    return std::tie(a.key.user_id, a.key.torrent_id, a.key.peer_id.bytes) <
           std::tie(b.key.user_id, b.key.torrent_id, b.key.peer_id.bytes);
  });
  // First sightings: the baseline set, nothing credited (README "Accounting").
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    deltas[i].baseline_uploaded = 1000000 + i;
    deltas[i].baseline_downloaded = 2000000 + i;
    deltas[i].announced_unix_s = 1700000000 + round;
    deltas[i].seeding = i % 4 != 0;
  }
  return deltas;
}

void BM_SqliteGrowing(benchmark::State& state) {
  SqliteFile file;
  auto backend = open_migrated(file.uri());
  if (backend == nullptr) {
    state.SkipWithError("cannot open a SQLite file");
    return;
  }
  std::mt19937_64 random(7);
  std::uint64_t sequence = 0;
  const auto rows = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    ++sequence;
    const AccountingBatch batch = batch_of(new_peers(rows, random, sequence), sequence);
    state.ResumeTiming();
    if (!write(state, *backend, batch)) break;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows));
}
BENCHMARK(BM_SqliteGrowing)->Arg(20000)->Arg(60000)->Iterations(24)->Unit(benchmark::kMillisecond);

// The same new peers into tables already holding millions of rows (the load model's after a
// few seconds at full rate), where each row lands on its own page of each big B-tree.
// Arguments: rows written before the timed batches (in batches of prefill_batch_rows,
// untimed), rows per timed batch; 20 timed batches. Counters: the writing thread's CPU
// microseconds per row and rows per wall second (fsyncs and checkpoints included); and, so that
// work moved off the writing thread (a checkpointer's) is not lost from view, the process's CPU
// microseconds per row and rows per wall second once the backend is closed (its last
// checkpoint included: `drained`), with the I/O counted up to that point too.
constexpr std::size_t prefill_batch_rows = 100000;

double thread_cpu_s() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double process_cpu_s() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double wall_s() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// The process's read and write system calls and bytes so far (/proc/self/io: syscr, syscw,
// rchar, wchar), which unlike CPU time do not move with the host's load.
struct IoCounts {
  double reads = 0, writes = 0, read_bytes = 0, written_bytes = 0;
};

IoCounts io_counts() {
  IoCounts counts;
  std::FILE* file = std::fopen("/proc/self/io", "r");
  if (file == nullptr) return counts;
  char name[32];
  double value = 0;
  while (std::fscanf(file, "%31[^:]: %lf\n", name, &value) == 2) {
    const std::string_view field(name);
    if (field == "syscr") counts.reads = value;
    if (field == "syscw") counts.writes = value;
    if (field == "rchar") counts.read_bytes = value;
    if (field == "wchar") counts.written_bytes = value;
  }
  std::fclose(file);
  return counts;
}

void BM_SqliteLarge(benchmark::State& state) {
  SqliteFile file;
  auto backend = open_migrated(file.uri());
  if (backend == nullptr) {
    state.SkipWithError("cannot open a SQLite file");
    return;
  }
  std::mt19937_64 random(11);
  std::uint64_t sequence = 0;
  const auto prefill_rows = static_cast<std::size_t>(state.range(0));
  const auto rows = static_cast<std::size_t>(state.range(1));
  for (std::size_t written = 0; written < prefill_rows; written += prefill_batch_rows) {
    ++sequence;
    const std::size_t count = std::min(prefill_batch_rows, prefill_rows - written);
    if (!write(state, *backend, batch_of(new_peers(count, random, sequence), sequence))) return;
  }
  double cpu_s_total = 0, wall_s_total = 0, process_cpu_s_total = 0;
  const IoCounts io_start = io_counts();
  for (auto _ : state) {
    state.PauseTiming();
    ++sequence;
    const AccountingBatch batch = batch_of(new_peers(rows, random, sequence), sequence);
    state.ResumeTiming();
    const double cpu_s_start = thread_cpu_s(), wall_s_start = wall_s();
    const double process_cpu_s_start = process_cpu_s();
    if (!write(state, *backend, batch)) break;
    cpu_s_total += thread_cpu_s() - cpu_s_start;
    wall_s_total += wall_s() - wall_s_start;
    process_cpu_s_total += process_cpu_s() - process_cpu_s_start;
  }
  const auto rows_total = static_cast<double>(state.iterations() * rows);
  // Closing checkpoints what the WAL still holds: part of getting the rows into the file.
  const double close_wall_s_start = wall_s(), close_cpu_s_start = process_cpu_s();
  backend.reset();
  const double close_wall_s = wall_s() - close_wall_s_start;
  process_cpu_s_total += process_cpu_s() - close_cpu_s_start;
  const IoCounts io_end = io_counts();
  state.counters["reads_per_row"] = (io_end.reads - io_start.reads) / rows_total;
  state.counters["writes_per_row"] = (io_end.writes - io_start.writes) / rows_total;
  state.counters["read_kib_per_row"] =
      (io_end.read_bytes - io_start.read_bytes) / 1024 / rows_total;
  state.counters["written_kib_per_row"] =
      (io_end.written_bytes - io_start.written_bytes) / 1024 / rows_total;
  state.counters["cpu_us_per_row"] = cpu_s_total * 1e6 / rows_total;
  state.counters["rows_per_s_wall"] = rows_total / wall_s_total;
  state.counters["process_cpu_us_per_row"] = process_cpu_s_total * 1e6 / rows_total;
  state.counters["rows_per_s_wall_drained"] = rows_total / (wall_s_total + close_wall_s);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows));
}
BENCHMARK(BM_SqliteLarge)
    ->Args({2000000, 20000})
    ->Args({4000000, 20000})
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond);

#ifdef TYTO_BENCH_POSTGRES
using tyto::store::testing::PostgresServer;

// The benchmark's own server and one database, emptied between first-round iterations.
struct Postgres {
  PostgresServer* server = nullptr;
  std::string database;
  std::string skip_reason;
};

Postgres& postgres() {
  static Postgres instance = [] {
    Postgres made;
    made.server = PostgresServer::get(made.skip_reason);
    if (made.server != nullptr) made.database = made.server->create_database();
    return made;
  }();
  return instance;
}

bool truncate_accounting(const Postgres& pg) {
  PGconn* site = PQconnectdb(pg.server->conninfo(pg.database).c_str());
  PGresult* result =
      PQexec(site, "TRUNCATE tyto_transfers, tyto_user_totals, tyto_peers, tyto_batches");
  const bool done = PQresultStatus(result) == PGRES_COMMAND_OK;
  PQclear(result);
  // Fresh statistics and no dead rows, as a new database would have.
  result = PQexec(site, "VACUUM ANALYZE");
  PQclear(result);
  PQfinish(site);
  return done;
}

void BM_PostgresFirst(benchmark::State& state) {
  Postgres& pg = postgres();
  if (pg.server == nullptr) {
    state.SkipWithError(("no PostgreSQL: " + pg.skip_reason).c_str());
    return;
  }
  std::vector<AccountingDelta> deltas = make_deltas(static_cast<std::size_t>(state.range(0)));
  set_round(deltas, 1);
  const AccountingBatch batch = batch_of(deltas, 1);
  auto backend = open_migrated(pg.server->uri(pg.database, "tyto_timeout_ms=60000"));
  if (backend == nullptr) {
    state.SkipWithError("cannot open the PostgreSQL database");
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    const bool emptied = truncate_accounting(pg);
    state.ResumeTiming();
    if (!emptied) {
      state.SkipWithError("TRUNCATE failed");
      break;
    }
    if (!write(state, *backend, batch)) break;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch.deltas.size()));
}
BENCHMARK(BM_PostgresFirst)->Arg(10)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PostgresSteady(benchmark::State& state) {
  Postgres& pg = postgres();
  if (pg.server == nullptr) {
    state.SkipWithError(("no PostgreSQL: " + pg.skip_reason).c_str());
    return;
  }
  std::vector<AccountingDelta> deltas = make_deltas(static_cast<std::size_t>(state.range(0)));
  auto backend = open_migrated(pg.server->uri(pg.database, "tyto_timeout_ms=60000"));
  if (backend == nullptr || !truncate_accounting(pg)) {
    state.SkipWithError("cannot open the PostgreSQL database");
    return;
  }
  set_round(deltas, 1);
  if (!write(state, *backend, batch_of(deltas, 1))) return;
  std::uint64_t sequence = 1;
  for (auto _ : state) {
    state.PauseTiming();
    ++sequence;
    set_round(deltas, sequence);
    const AccountingBatch batch = batch_of(deltas, sequence);
    state.ResumeTiming();
    if (!write(state, *backend, batch)) break;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * deltas.size()));
}
BENCHMARK(BM_PostgresSteady)->Arg(10)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
#ifdef TYTO_BENCH_POSTGRES
  PostgresServer::shut_down();
#endif
  return 0;
}
