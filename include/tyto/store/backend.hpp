// A storage backend (DESIGN §9): the catalogue and the accounting sink of one store, behind one
// interface a backend author implements from this header, catalogue.hpp and accounting.hpp,
// knowing nothing of rings, sockets or shards. tyto ships three, chosen by one setting
// (storage.uri, open_backend below):
//  - `memory:`      nothing persisted (public mode's default; tests use its catalogue setters);
//  - `sqlite:PATH`  one file, no server (src/store/sqlite);
//  - `postgresql://...` (libpq; src/store/postgresql), a server shared with the site.
//
// Contract for every implementation:
//  - Used from one thread at a time (the storage bridge's thread; at start, the main thread
//    before the bridge starts). It may block: no shard ever calls it.
//  - Every row read is outside input: a row that does not fit the plain types (a passkey too long
//    or not printable, an info_hash that is not 40 hex digits, a factor out of range, a prefix
//    too long) is skipped, counted in rows_refused and logged with its key and the reason.
//  - write_batch applies a whole batch in one transaction or nothing (accounting.hpp says what
//    each delta does); a batch whose sequence is at or below the (node, shard) mark is not
//    applied again. On any error nothing is written and the caller retries the same batch.
//  - The schema is tyto's numbered migrations (README "Private tracker": every table and
//    column); migrate() applies those not applied yet, each in its own transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tyto/core/result.hpp"
#include "tyto/store/accounting.hpp"
#include "tyto/store/catalogue.hpp"

namespace tyto::store {

struct CatalogueRows {
  std::vector<UserRow> users;
  std::vector<TorrentRow> torrents;
  std::vector<ClientRuleRow> client_rules;
};

// What a backend's own background work did, for /metrics (tyto_storage_wal_*). SQLite's WAL
// checkpointer thread (src/store/sqlite) fills it; zero where a backend has none (memory,
// PostgreSQL).
struct BackendStatus {
  std::uint64_t wal_checkpoints = 0;          // checkpoints that reached the end of the WAL
  std::uint64_t wal_checkpoint_failures = 0;  // checkpoints that failed (each logged, retried)
  std::uint64_t wal_bytes = 0;                // the WAL after the last commit
  std::uint64_t wal_bytes_max = 0;            // the largest WAL after a commit
  std::uint64_t wal_over_bound = 0;  // writes begun past the WAL's bound, not checkpointed in time
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Brings the schema to the newest migration. Error text or "".
  virtual std::string migrate() = 0;

  // --- Catalogue ---
  // Every valid row. Also the point from which changes() reports (a change committed after
  // this call is reported by the next changes(), one before it may be reported again: applying
  // a change twice is harmless).
  virtual Result<CatalogueRows, std::string> load_catalogue() = 0;
  // Changes committed since the last load_catalogue() or changes(), in commit order, appended
  // to `out`. Cheap when nothing changed (polled about once a second).
  virtual std::string changes(std::vector<CatalogueChange>& out) = 0;
  // A descriptor that becomes readable when a change may be waiting (PostgreSQL's notifications),
  // or -1 when changes() is only polled. It may change when changes() reconnects: ask again
  // before each wait, and call changes() when it is readable.
  virtual int change_fd() { return -1; }

  // --- Accounting sink ---
  // The highest sequence applied for (node, shard); 0 when none was.
  virtual Result<std::uint64_t, std::string> last_sequence(std::string_view node,
                                                           std::uint32_t shard) = 0;
  // Applies the batch in one transaction with its id. true: applied; false: its sequence was
  // at or below the mark, so it had been applied before and nothing changed.
  virtual Result<bool, std::string> write_batch(const AccountingBatch& batch) = 0;
  // Every persisted baseline (tyto_peers), for the shards at start.
  virtual Result<std::vector<Baseline>, std::string> load_baselines() = 0;
  // Every persisted completed count (tyto_completions), for the shards at start. Rows are
  // checked like the catalogue's (an info_hash that is not 40 hex digits, a count that is not
  // an integer ≥ 0 is refused and counted).
  virtual Result<std::vector<CompletionCount>, std::string> load_completions() = 0;

  // Rows skipped as invalid since the backend was opened.
  virtual std::uint64_t rows_refused() const noexcept = 0;
  // Its background work since it was opened (a snapshot; cheap: read every storage thread turn).
  virtual BackendStatus status() const noexcept { return {}; }
  // For logs: "sqlite:/var/lib/tyto/tyto.db" (no password ever).
  virtual std::string describe() const = 0;
};

// `memory:`, `sqlite:PATH` or a libpq URI (`postgresql://` or `postgres://`). Opening connects
// (and creates an SQLite file) but applies no migration. Error text for an unknown scheme or a
// store that cannot be opened.
Result<std::unique_ptr<Backend>, std::string> open_backend(std::string_view uri);

// The memory backend, with what its catalogue holds set by the caller (tests; a private tracker
// on memory: starts empty and forgets everything at exit). Its sink keeps the tables in memory.
class MemoryBackend;
std::unique_ptr<MemoryBackend> make_memory_backend();

}  // namespace tyto::store
