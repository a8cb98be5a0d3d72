// The `sqlite:` backend (backend.hpp). Private: only sqlite_backend.cpp includes <sqlite3.h>.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tyto/core/result.hpp"
#include "tyto/store/backend.hpp"

namespace tyto::store::sqlite {

// `location` is what follows "sqlite:": PATH, optionally followed by options, `?NAME=N` and
// `&NAME=N`: busy_timeout_ms (0..600000; default 5000), how long a write waits for the site's
// own write transaction before it fails and is retried; cache_mib (0..65536; default 2, SQLite's own), the
// most memory SQLite's page cache of the connection takes; wal_mib_max (1..65536; default 256),
// the WAL's bound (past it a batch first waits, busy_timeout_ms at most, for the checkpointer).
// A PATH containing '?' is not supported. Opens (and creates) the file, WAL journal,
// synchronous=FULL, and a second connection for the backend's checkpointer thread, which runs
// the WAL's checkpoints from then on (sqlite_backend.cpp, Checkpointer); applies no migration.
Result<std::unique_ptr<Backend>, std::string> open(std::string_view location);

}  // namespace tyto::store::sqlite
