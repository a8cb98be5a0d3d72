// Row checks shared by the database backends (SQLite now, PostgreSQL later): a row's columns as
// the driver hands them over (NULL, an integer, a double or text) in, a plain row
// (catalogue.hpp, accounting.hpp) or the reason it does not fit out. Pure: no I/O, no logging,
// no throwing; the backend logs the reason with the row's key and counts the refusal.
//
// Rules (README "Private tracker" tables):
//  - ids (user_id, torrent_id) are integers > 0 that fit int64; text of decimal digits is
//    accepted too (libpq's text format), a double never;
//  - passkey: text that Passkey::parse accepts; info_hash: text of exactly 40 hex digits (either
//    case); peer_id_prefix: text or bytes, 1..20 bytes;
//  - booleans: 0 or 1 (or the text "0", "1", "t", "f", "true", "false"); NULL takes the column
//    default (enabled 1, can_leech 1); `allowed` has no default, so NULL is refused;
//  - factors: a number (or numeric text) within factor_valid; NULL takes the default 1.0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tyto/core/result.hpp"
#include "tyto/store/accounting.hpp"
#include "tyto/store/catalogue.hpp"

namespace tyto::store {

// One column value of one row. `text` (also used for BLOBs) points into the driver's buffer
// and is only valid while the row is.
struct Field {
  enum class Type : std::uint8_t { null, integer, real, text };
  Type type = Type::null;
  std::int64_t integer = 0;
  double real = 0.0;
  std::string_view text;

  static Field null() noexcept { return {}; }
  static Field of(std::int64_t value) noexcept { return {Type::integer, value, 0.0, {}}; }
  static Field of(double value) noexcept { return {Type::real, 0, value, {}}; }
  static Field of(std::string_view value) noexcept { return {Type::text, 0, 0.0, value}; }
};

// tyto_users(user_id, passkey, enabled, can_leech, upload_factor, download_factor)
struct UserFields {
  Field user_id, passkey, enabled, can_leech, upload_factor, download_factor;
};
// tyto_torrents(torrent_id, info_hash, upload_factor, download_factor)
struct TorrentFields {
  Field torrent_id, info_hash, upload_factor, download_factor;
};
// tyto_client_rules(peer_id_prefix, allowed)
struct ClientRuleFields {
  Field peer_id_prefix, allowed;
};
// tyto_peers(user_id, torrent_id, peer_id, uploaded, downloaded, announced_at, seeding).
// Counters are stored as int64 with the uint64's bits, so any integer is accepted.
struct BaselineFields {
  Field user_id, torrent_id, peer_id, uploaded, downloaded, announced_at, seeding;
};

// tyto_completions(info_hash, completed): text of 40 hex digits and an integer ≥ 0.
struct CompletionFields {
  Field info_hash, completed;
};

Result<UserRow, std::string> check_user_row(const UserFields& fields);
Result<TorrentRow, std::string> check_torrent_row(const TorrentFields& fields);
Result<ClientRuleRow, std::string> check_client_rule_row(const ClientRuleFields& fields);
Result<Baseline, std::string> check_baseline_row(const BaselineFields& fields);
Result<CompletionCount, std::string> check_completion_row(const CompletionFields& fields);

// A key column alone, for a deleted row reported by its key. `column` names it in the reason.
Result<std::uint64_t, std::string> check_id(const Field& field, std::string_view column);
Result<ClientRuleRow, std::string> check_client_prefix(const Field& field);

// The field for a log line: NULL, the number, or the text with anything unprintable as \xNN,
// cut at 64 characters (a row's key comes from outside and may be anything).
std::string field_log_text(const Field& field);

}  // namespace tyto::store
