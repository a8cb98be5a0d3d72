// What only the PostgreSQL backend has: its URI and options, LISTEN/NOTIFY, a batch failing
// halfway, a dropped connection, and a server killed with -9 in the middle of batches.
#include <gtest/gtest.h>

#include "postgres_fixture.hpp"
#include "store/postgresql/postgresql_backend.hpp"

namespace tyto::store::testing {
namespace {

TEST(PostgresqlUri, TimeoutOptionIsTytosAndStripped) {
  auto plain = postgresql::parse_location("postgresql://u@h/db");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain.value().libpq_uri, "postgresql://u@h/db");
  EXPECT_EQ(plain.value().timeout_ms, postgresql::timeout_ms_default);
}

}  // namespace
}  // namespace tyto::store::testing
