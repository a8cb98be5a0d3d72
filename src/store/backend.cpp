// open_backend: the one place that maps storage.uri to a backend.
#include "tyto/store/backend.hpp"

#include <fmt/core.h>

#include "store/postgresql/postgresql_backend.hpp"
#include "store/sqlite/sqlite_backend.hpp"
#include "tyto/store/memory_backend.hpp"

namespace tyto::store {

Result<std::unique_ptr<Backend>, std::string> open_backend(std::string_view uri) {
  constexpr std::string_view memory_scheme = "memory:";
  constexpr std::string_view sqlite_scheme = "sqlite:";
  if (uri == memory_scheme) return std::unique_ptr<Backend>(make_memory_backend());
  if (uri.starts_with(sqlite_scheme)) return sqlite::open(uri.substr(sqlite_scheme.size()));
  if (uri.starts_with("postgresql://") || uri.starts_with("postgres://")) {
    return postgresql::open(uri);
  }
  // Only the scheme goes to the message: a URI may carry a password.
  const auto scheme_end = uri.find(':');
  return Failure{
      fmt::format("storage: unknown URI scheme '{}' (memory:, sqlite:PATH, postgresql://...)",
                  uri.substr(0, scheme_end == std::string_view::npos ? 0 : scheme_end))};
}

}  // namespace tyto::store
