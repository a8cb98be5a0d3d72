// The `postgresql://` backend (backend.hpp), over libpq. Private: only postgresql_backend.cpp
// includes <libpq-fe.h>.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tyto/core/result.hpp"
#include "tyto/store/backend.hpp"

namespace tyto::store::postgresql {

inline constexpr std::uint32_t timeout_ms_default = 10000;
inline constexpr std::uint32_t timeout_ms_max = 600000;

// A libpq connection URI (`postgresql://` or `postgres://`), split into what libpq gets and
// tyto's own option, `tyto_timeout_ms=N` (1..600000; default 10000): the bound on every call's
// wait for the server (a write_batch round trip, a catalogue read), and on connecting.
struct Location {
  std::string libpq_uri;  // the URI without tyto_timeout_ms
  std::uint32_t timeout_ms = timeout_ms_default;
};
Result<Location, std::string> parse_location(std::string_view uri);

// The URI for logs: the password (user:PASSWORD@ or password=...) removed, tyto's option too.
std::string describe_uri(std::string_view uri);

// Connects twice (one connection works, one LISTENs for catalogue changes); applies no
// migration.
Result<std::unique_ptr<Backend>, std::string> open(std::string_view uri);

}  // namespace tyto::store::postgresql
