// The `sqlite:` backend (backend.hpp). Private: only sqlite_backend.cpp includes <sqlite3.h>.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tyto/core/result.hpp"
#include "tyto/store/backend.hpp"

namespace tyto::store::sqlite {

// `location` is what follows "sqlite:": PATH, optionally followed by `?busy_timeout_ms=N`
// (0..600000; default 5000): how long a write waits for the site's own write transaction before
// it fails and is retried. A PATH containing '?' is not supported. Opens (and creates) the
// file, WAL journal, synchronous=FULL; applies no migration.
Result<std::unique_ptr<Backend>, std::string> open(std::string_view location);

}  // namespace tyto::store::sqlite
