// The PostgreSQL fixture for the typed suite (backend_test.cpp): a fresh database on the test
// binary's own server (postgres_server.hpp) per test, the site writing plain SQL through its own
// libpq connection. Skips (skip_reason) when the server is not available.
#pragma once

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "backend_fixtures.hpp"
#include "postgres_server.hpp"

namespace tyto::store::testing {

class PostgresFixture : public SiteSql<PostgresFixture> {
 public:
  static constexpr std::string_view name = "postgresql";
  static constexpr bool holds_invalid_rows = true;
  // The batch waits for the site's lock at most half of this (lock_timeout), then fails.
  static constexpr std::string_view options = "tyto_timeout_ms=3000";

  PostgresFixture() {
    server_ = PostgresServer::get(skip_reason_);
    if (server_ == nullptr) return;
    database_ = server_->create_database();
    backend_ = reopen();
    if (backend_ != nullptr) {
      EXPECT_EQ(backend_->migrate(), "");
    }
    connect_site();
  }
  ~PostgresFixture() {
    if (holding_lock_) sql("ROLLBACK");
    PQfinish(site_);
    backend_.reset();
  }
  PostgresFixture(const PostgresFixture&) = delete;
  PostgresFixture& operator=(const PostgresFixture&) = delete;

  const std::string& skip_reason() const { return skip_reason_; }
  PostgresServer& server() { return *server_; }
  const std::string& database() const { return database_; }
  Backend& backend() { return *backend_; }
  std::string uri(std::string_view extra = options) const { return server_->uri(database_, extra); }
  std::unique_ptr<Backend> reopen(std::string_view extra = options) {
    auto opened = open_backend(uri(extra));
    EXPECT_TRUE(opened.ok()) << opened.error();
    return opened.ok() ? std::move(opened.value()) : nullptr;
  }
  // A new site connection (after the server restarted).
  void connect_site() {
    PQfinish(site_);
    site_ = PQconnectdb(server_->conninfo(database_).c_str());
    EXPECT_EQ(PQstatus(site_), CONNECTION_OK) << PQerrorMessage(site_);
    PGresult* quiet = PQexec(site_, "SET client_min_messages = warning");
    PQclear(quiet);
  }

  // The site's own SQL; a failure fails the test.
  void sql(const std::string& text) {
    PGresult* result = PQexec(site_, text.c_str());
    const auto status = PQresultStatus(result);
    EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        << text << ": " << PQresultErrorMessage(result);
    PQclear(result);
  }
  // The first column of the first row, or nullopt for no row or NULL.
  std::optional<std::string> value(const std::string& text) {
    PGresult* result = PQexec(site_, text.c_str());
    EXPECT_EQ(PQresultStatus(result), PGRES_TUPLES_OK)
        << text << ": " << PQresultErrorMessage(result);
    std::optional<std::string> got;
    if (PQntuples(result) > 0 && PQgetisnull(result, 0, 0) == 0) got = PQgetvalue(result, 0, 0);
    PQclear(result);
    return got;
  }
  // A BOOLEAN column's value from a raw integer (PostgreSQL has no integer booleans).
  static std::string boolean(std::int64_t value) { return fmt::format("({} <> 0)", value); }

  int put_completion_rows() {
    sql("INSERT INTO tyto_completions(info_hash, completed) VALUES ('" + std::string(39, 'c') +
        "', 5)");
    sql("INSERT INTO tyto_completions(info_hash, completed) VALUES ('" + std::string(40, 'd') +
        "', -1)");
    sql("INSERT INTO tyto_completions(info_hash, completed) VALUES ('" + std::string(40, 'F') +
        "', 7)");  // upper case: valid
    return 2;
  }

  // The site holds a lock on tyto_batches past the backend's lock_timeout.
  void make_next_write_fail() {
    sql("BEGIN");
    sql("LOCK TABLE tyto_batches IN EXCLUSIVE MODE");
    holding_lock_ = true;
  }
  void end_write_failure() {
    sql("ROLLBACK");
    holding_lock_ = false;
  }

  std::optional<TransferRow> transfer(std::uint64_t user_id, std::uint64_t torrent_id) {
    PGresult* result = PQexec(
        site_,
        fmt::format("SELECT uploaded, downloaded, uploaded_real, downloaded_real, seed_s, "
                    "leech_s, completed_at, last_announce_at FROM tyto_transfers WHERE "
                    "user_id = {} AND torrent_id = {}",
                    static_cast<std::int64_t>(user_id), static_cast<std::int64_t>(torrent_id))
            .c_str());
    EXPECT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQresultErrorMessage(result);
    std::optional<TransferRow> row;
    if (PQntuples(result) > 0) {
      const auto column = [&](int index) {
        return static_cast<std::uint64_t>(std::stoll(PQgetvalue(result, 0, index)));
      };
      row = TransferRow{column(0), column(1), column(2),    column(3),
                        column(4), column(5), std::nullopt, column(7)};
      if (PQgetisnull(result, 0, 6) == 0) row->completed_at = column(6);
    }
    PQclear(result);
    return row;
  }
  std::optional<UserTotalsRow> user_totals(std::uint64_t user_id) {
    PGresult* result = PQexec(
        site_, fmt::format("SELECT uploaded, downloaded FROM tyto_user_totals WHERE user_id = {}",
                           static_cast<std::int64_t>(user_id))
                   .c_str());
    EXPECT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQresultErrorMessage(result);
    std::optional<UserTotalsRow> row;
    if (PQntuples(result) > 0) {
      row = UserTotalsRow{static_cast<std::uint64_t>(std::stoll(PQgetvalue(result, 0, 0))),
                          static_cast<std::uint64_t>(std::stoll(PQgetvalue(result, 0, 1)))};
    }
    PQclear(result);
    return row;
  }
  std::int64_t count(const std::string& table) {
    const auto counted = value("SELECT count(*) FROM " + table);
    return counted ? std::stoll(*counted) : -1;
  }

 private:
  PostgresServer* server_ = nullptr;
  std::string skip_reason_;
  std::string database_;
  std::unique_ptr<Backend> backend_;
  PGconn* site_ = nullptr;
  bool holding_lock_ = false;
};

}  // namespace tyto::store::testing
