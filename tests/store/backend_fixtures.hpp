// One fixture class per storage backend for the typed suite in backend_test.cpp. Each opens a
// fresh, migrated backend and plays the site: it writes the catalogue the way a site would with
// that backend (the memory backend's setters; plain SQL through the test's own sqlite3
// connection) and reads the accounting tables back the same way. The PostgreSQL fixture, with the
// same members, is in postgres_fixture.hpp.
#pragma once

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tyto/store/backend.hpp"
#include "tyto/store/memory_backend.hpp"
#include "tyto/store/row_check.hpp"

namespace tyto::store::testing {

// A row as the site writes it: raw values, which may be invalid.
struct SiteUser {
  std::int64_t user_id = 0;
  std::string passkey;
  std::int64_t enabled = 1;
  std::int64_t can_leech = 1;
  double upload_factor = 1.0;
  double download_factor = 1.0;
};

struct SiteTorrent {
  std::int64_t torrent_id = 0;
  std::string info_hash;
  double upload_factor = 1.0;
  double download_factor = 1.0;
};

class MemoryFixture {
 public:
  static constexpr std::string_view name = "memory";
  // Its setters take typed rows, so an invalid row cannot be put in.
  static constexpr bool holds_invalid_rows = false;

  MemoryFixture() : backend_(make_memory_backend()) { EXPECT_EQ(backend_->migrate(), ""); }

  std::string skip_reason() const { return ""; }  // non-empty: the backend is not available here

  Backend& backend() { return *backend_; }

  void put_user(const SiteUser& user) {
    const auto row =
        check_user_row({Field::of(user.user_id), Field::of(user.passkey), Field::of(user.enabled),
                        Field::of(user.can_leech), Field::of(user.upload_factor),
                        Field::of(user.download_factor)});
    ASSERT_TRUE(row.ok()) << row.error();
    backend_->put_user(row.value());
  }
  // The site renumbers a user: `user` is the row under its new id.
  void change_user_id(std::int64_t from, const SiteUser& user) {
    remove_user(from);
    put_user(user);
  }
  void remove_user(std::int64_t user_id) {
    backend_->remove_user(static_cast<std::uint64_t>(user_id));
  }
  void put_torrent(const SiteTorrent& torrent) {
    const auto row =
        check_torrent_row({Field::of(torrent.torrent_id), Field::of(torrent.info_hash),
                           Field::of(torrent.upload_factor), Field::of(torrent.download_factor)});
    ASSERT_TRUE(row.ok()) << row.error();
    backend_->put_torrent(row.value());
  }
  void remove_torrent(std::int64_t torrent_id) {
    backend_->remove_torrent(static_cast<std::uint64_t>(torrent_id));
  }
  void put_client_rule(std::string_view prefix, bool allowed) {
    const auto row = ClientRuleRow::make(prefix, allowed);
    ASSERT_TRUE(row.has_value());
    backend_->put_client_rule(*row);
  }
  void remove_client_rule(std::string_view prefix) { backend_->remove_client_rule(prefix); }
  void put_invalid_rows() {}
  // Rows of tyto_completions a site (or a corrupt file) could hold; returns how many are invalid.
  int put_completion_rows() { return 0; }

  // The next write_batch fails; end_write_failure() lets writes through again.
  void make_next_write_fail() { backend_->fail_next_writes(1); }
  void end_write_failure() {}

  std::optional<TransferRow> transfer(std::uint64_t user_id, std::uint64_t torrent_id) {
    return backend_->transfer(user_id, torrent_id);
  }
  std::optional<UserTotalsRow> user_totals(std::uint64_t user_id) {
    return backend_->user_totals(user_id);
  }

 private:
  std::unique_ptr<MemoryBackend> backend_;
};

// The catalogue as a site writes it in SQL, the same text on SQLite and PostgreSQL, for the
// fixtures that play the site through a real database (CRTP: Site has sql(text), and
// boolean(value), a BOOLEAN column's value as that site would write the raw integer).
template <class Site>
class SiteSql {
 public:
  static std::string quote(std::string_view text) {
    std::string quoted = "'";
    for (const char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    return quoted + "'";
  }

  void put_user(const SiteUser& user) {
    sql(fmt::format(
        "INSERT INTO tyto_users(user_id, passkey, enabled, can_leech, upload_factor, "
        "download_factor) VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT(user_id) DO UPDATE SET "
        "passkey = excluded.passkey, enabled = excluded.enabled, can_leech = excluded.can_leech, "
        "upload_factor = excluded.upload_factor, download_factor = excluded.download_factor",
        user.user_id, quote(user.passkey), Site::boolean(user.enabled),
        Site::boolean(user.can_leech), user.upload_factor, user.download_factor));
  }
  // The site renumbers a user: `user` is the row under its new id.
  void change_user_id(std::int64_t from, const SiteUser& user) {
    sql(fmt::format("UPDATE tyto_users SET user_id = {} WHERE user_id = {}", user.user_id, from));
  }
  void remove_user(std::int64_t user_id) {
    sql(fmt::format("DELETE FROM tyto_users WHERE user_id = {}", user_id));
  }
  void put_torrent(const SiteTorrent& torrent) {
    sql(fmt::format(
        "INSERT INTO tyto_torrents(torrent_id, info_hash, upload_factor, download_factor) "
        "VALUES ({}, {}, {}, {}) ON CONFLICT(torrent_id) DO UPDATE SET "
        "info_hash = excluded.info_hash, upload_factor = excluded.upload_factor, "
        "download_factor = excluded.download_factor",
        torrent.torrent_id, quote(torrent.info_hash), torrent.upload_factor,
        torrent.download_factor));
  }
  void remove_torrent(std::int64_t torrent_id) {
    sql(fmt::format("DELETE FROM tyto_torrents WHERE torrent_id = {}", torrent_id));
  }
  void put_client_rule(std::string_view prefix, bool allowed) {
    sql(
        fmt::format("INSERT INTO tyto_client_rules(peer_id_prefix, allowed) VALUES ({}, {}) "
                    "ON CONFLICT(peer_id_prefix) DO UPDATE SET allowed = excluded.allowed",
                    quote(prefix), Site::boolean(allowed ? 1 : 0)));
  }
  void remove_client_rule(std::string_view prefix) {
    sql(fmt::format("DELETE FROM tyto_client_rules WHERE peer_id_prefix = {}", quote(prefix)));
  }
  // One row per refusal reason; backend_test.cpp counts them.
  void put_invalid_rows() {
    sql("INSERT INTO tyto_users(user_id, passkey) VALUES (901, 'has space')");
    sql("INSERT INTO tyto_users(user_id, passkey) VALUES (902, '" + std::string(65, 'k') + "')");
    sql("INSERT INTO tyto_users(user_id, passkey, upload_factor) VALUES (903, 'neg', -1)");
    sql("INSERT INTO tyto_torrents(torrent_id, info_hash) VALUES (901, '" + std::string(39, 'a') +
        "')");
    sql("INSERT INTO tyto_torrents(torrent_id, info_hash) VALUES (902, '" + std::string(39, 'a') +
        "g')");
    sql("INSERT INTO tyto_torrents(torrent_id, info_hash, download_factor) VALUES (903, '" +
        std::string(40, 'b') + "', 1000)");
    sql("INSERT INTO tyto_client_rules(peer_id_prefix, allowed) VALUES ('" + std::string(21, 'p') +
        "', " + Site::boolean(1) + ")");
  }

 private:
  void sql(const std::string& text) { static_cast<Site*>(this)->sql(text); }
};

class SqliteFixture : public SiteSql<SqliteFixture> {
 public:
  static constexpr std::string_view name = "sqlite";
  static constexpr bool holds_invalid_rows = true;

  SqliteFixture() {
    char dir_template[] = "/tmp/tyto-store-test-XXXXXX";
    const char* dir = ::mkdtemp(dir_template);
    EXPECT_NE(dir, nullptr);
    dir_ = dir;
    path_ = dir_ + "/tyto.db";
    // A short busy timeout: a write blocked by the site's lock fails in 50 ms, not 5 s.
    backend_ = open_sqlite();
    EXPECT_EQ(backend_->migrate(), "");
    EXPECT_EQ(sqlite3_open(path_.c_str(), &site_), SQLITE_OK);
    sqlite3_busy_timeout(site_, 5000);
  }
  ~SqliteFixture() {
    if (holding_lock_) sql("ROLLBACK");
    sqlite3_close(site_);
    backend_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  SqliteFixture(const SqliteFixture&) = delete;
  SqliteFixture& operator=(const SqliteFixture&) = delete;

  std::string skip_reason() const { return ""; }
  Backend& backend() { return *backend_; }
  // A second backend on the same file, as after a restart.
  std::unique_ptr<Backend> reopen() { return open_sqlite(); }
  const std::string& path() const { return path_; }

  // The site's own SQL; a failure fails the test.
  void sql(const std::string& text) {
    char* message = nullptr;
    const int result = sqlite3_exec(site_, text.c_str(), nullptr, nullptr, &message);
    EXPECT_EQ(result, SQLITE_OK) << text << ": " << (message != nullptr ? message : "");
    sqlite3_free(message);
  }
  // A BOOLEAN column's value, raw (SQLite keeps what the site wrote).
  static std::string boolean(std::int64_t value) { return fmt::format("{}", value); }

  int put_completion_rows() {
    sql("INSERT INTO tyto_completions(info_hash, completed) VALUES ('" + std::string(39, 'c') +
        "', 5)");
    sql("INSERT INTO tyto_completions(info_hash, completed) VALUES ('" + std::string(40, 'd') +
        "', -1)");
    sql("INSERT INTO tyto_completions(info_hash, completed) VALUES ('" + std::string(40, 'e') +
        "', 'many')");
    sql("INSERT INTO tyto_completions(info_hash, completed) VALUES ('" + std::string(40, 'F') +
        "', 7)");  // upper case: valid
    return 3;
  }

  // The site holds the write lock (BEGIN IMMEDIATE) past the backend's busy timeout.
  void make_next_write_fail() {
    sql("BEGIN IMMEDIATE");
    holding_lock_ = true;
  }
  void end_write_failure() {
    sql("ROLLBACK");
    holding_lock_ = false;
  }

  std::optional<TransferRow> transfer(std::uint64_t user_id, std::uint64_t torrent_id) {
    sqlite3_stmt* statement = prepare(
        "SELECT uploaded, downloaded, uploaded_real, downloaded_real, seed_s, leech_s, "
        "completed_at, last_announce_at FROM tyto_transfers WHERE user_id = ?1 AND torrent_id = "
        "?2");
    sqlite3_bind_int64(statement, 1, static_cast<sqlite3_int64>(user_id));
    sqlite3_bind_int64(statement, 2, static_cast<sqlite3_int64>(torrent_id));
    std::optional<TransferRow> row;
    if (sqlite3_step(statement) == SQLITE_ROW) {
      const auto column = [&](int index) {
        return static_cast<std::uint64_t>(sqlite3_column_int64(statement, index));
      };
      row = TransferRow{column(0), column(1), column(2),    column(3),
                        column(4), column(5), std::nullopt, column(7)};
      if (sqlite3_column_type(statement, 6) != SQLITE_NULL) row->completed_at = column(6);
    }
    sqlite3_finalize(statement);
    return row;
  }
  std::optional<UserTotalsRow> user_totals(std::uint64_t user_id) {
    sqlite3_stmt* statement =
        prepare("SELECT uploaded, downloaded FROM tyto_user_totals WHERE user_id = ?1");
    sqlite3_bind_int64(statement, 1, static_cast<sqlite3_int64>(user_id));
    std::optional<UserTotalsRow> row;
    if (sqlite3_step(statement) == SQLITE_ROW) {
      row = UserTotalsRow{static_cast<std::uint64_t>(sqlite3_column_int64(statement, 0)),
                          static_cast<std::uint64_t>(sqlite3_column_int64(statement, 1))};
    }
    sqlite3_finalize(statement);
    return row;
  }
  std::int64_t count(const std::string& table) {
    sqlite3_stmt* statement = prepare("SELECT count(*) FROM " + table);
    EXPECT_EQ(sqlite3_step(statement), SQLITE_ROW);
    const std::int64_t rows = sqlite3_column_int64(statement, 0);
    sqlite3_finalize(statement);
    return rows;
  }

 private:
  std::unique_ptr<Backend> open_sqlite() {
    auto opened = open_backend("sqlite:" + path_ + "?busy_timeout_ms=50&cache_mib=8");
    EXPECT_TRUE(opened.ok()) << opened.error();
    return opened.ok() ? std::move(opened.value()) : nullptr;
  }
  sqlite3_stmt* prepare(const std::string& text) {
    sqlite3_stmt* statement = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(site_, text.c_str(), -1, &statement, nullptr), SQLITE_OK)
        << text << ": " << sqlite3_errmsg(site_);
    return statement;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Backend> backend_;
  sqlite3* site_ = nullptr;
  bool holding_lock_ = false;
};

}  // namespace tyto::store::testing
