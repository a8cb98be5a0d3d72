#include "tyto/store/row_check.hpp"

#include <fmt/core.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <system_error>

namespace tyto::store {
namespace {

using Type = Field::Type;

// The whole text as a decimal int64, or nullopt (libpq's text format sends integers as text).
std::optional<std::int64_t> integer_of(const Field& field) noexcept {
  if (field.type == Type::integer) return field.integer;
  if (field.type != Type::text || field.text.empty()) return std::nullopt;
  std::int64_t value = 0;
  const char* end = field.text.data() + field.text.size();
  const auto [at, error] = std::from_chars(field.text.data(), end, value);
  if (error != std::errc{} || at != end) return std::nullopt;
  return value;
}

std::optional<double> number_of(const Field& field) noexcept {
  if (field.type == Type::real) return field.real;
  if (field.type == Type::integer) return static_cast<double>(field.integer);
  if (field.type != Type::text || field.text.empty()) return std::nullopt;
  double value = 0.0;
  const char* end = field.text.data() + field.text.size();
  const auto [at, error] = std::from_chars(field.text.data(), end, value);
  if (error != std::errc{} || at != end) return std::nullopt;
  return value;
}

// NULL → the column default (if it has one); 0/1 and PostgreSQL's text forms otherwise.
std::optional<bool> flag_of(const Field& field, std::optional<bool> default_value) noexcept {
  if (field.type == Type::null) return default_value;
  if (field.type == Type::integer) {
    if (field.integer == 0 || field.integer == 1) return field.integer == 1;
    return std::nullopt;
  }
  if (field.type != Type::text) return std::nullopt;
  const std::string_view text = field.text;
  if (text == "1" || text == "t" || text == "true") return true;
  if (text == "0" || text == "f" || text == "false") return false;
  return std::nullopt;
}

// NULL → 1.0 (the column default); out of range or not a number → nullopt.
std::optional<float> factor_of(const Field& field) noexcept {
  if (field.type == Type::null) return 1.0f;
  const auto number = number_of(field);
  if (!number || !std::isfinite(*number) || !factor_valid(*number)) return std::nullopt;
  return static_cast<float>(*number);
}

Failure<std::string> refuse(std::string_view column, std::string_view problem, const Field& field) {
  return Failure{fmt::format("{} {} ({})", column, problem, field_log_text(field))};
}

}  // namespace

Result<std::uint64_t, std::string> check_id(const Field& field, std::string_view column) {
  const auto id = integer_of(field);
  if (!id) return refuse(column, "is not an integer", field);
  if (*id <= 0) return refuse(column, "is not > 0", field);
  return static_cast<std::uint64_t>(*id);
}

Result<ClientRuleRow, std::string> check_client_prefix(const Field& field) {
  if (field.type != Type::text) return refuse("peer_id_prefix", "is not text", field);
  auto row = ClientRuleRow::make(field.text, false);
  if (!row) return refuse("peer_id_prefix", "is not 1..20 bytes", field);
  return *row;
}

Result<UserRow, std::string> check_user_row(const UserFields& fields) {
  const auto user_id = check_id(fields.user_id, "user_id");
  if (!user_id) return Failure{user_id.error()};
  if (fields.passkey.type != Type::text) return refuse("passkey", "is not text", fields.passkey);
  const auto passkey = Passkey::parse(fields.passkey.text);
  if (!passkey) {
    // The passkey is a secret: its length goes to the log, not its text.
    return Failure{fmt::format("passkey is not 1..64 printable characters ({} bytes)",
                               fields.passkey.text.size())};
  }
  const auto enabled = flag_of(fields.enabled, true);
  if (!enabled) return refuse("enabled", "is not a boolean", fields.enabled);
  const auto can_leech = flag_of(fields.can_leech, true);
  if (!can_leech) return refuse("can_leech", "is not a boolean", fields.can_leech);
  const auto upload_factor = factor_of(fields.upload_factor);
  if (!upload_factor) return refuse("upload_factor", "is not in 0..100", fields.upload_factor);
  const auto download_factor = factor_of(fields.download_factor);
  if (!download_factor) {
    return refuse("download_factor", "is not in 0..100", fields.download_factor);
  }
  UserRow row;
  row.user_id = user_id.value();
  row.passkey = *passkey;
  row.enabled = *enabled;
  row.can_leech = *can_leech;
  row.upload_factor = *upload_factor;
  row.download_factor = *download_factor;
  TYTO_ASSERT(row.user_id > 0);
  TYTO_ASSERT(row.passkey.size > 0);
  return row;
}

Result<TorrentRow, std::string> check_torrent_row(const TorrentFields& fields) {
  const auto torrent_id = check_id(fields.torrent_id, "torrent_id");
  if (!torrent_id) return Failure{torrent_id.error()};
  if (fields.info_hash.type != Type::text) {
    return refuse("info_hash", "is not text", fields.info_hash);
  }
  const auto info_hash = parse_info_hash_hex(fields.info_hash.text);
  if (!info_hash) return refuse("info_hash", "is not 40 hex digits", fields.info_hash);
  const auto upload_factor = factor_of(fields.upload_factor);
  if (!upload_factor) return refuse("upload_factor", "is not in 0..100", fields.upload_factor);
  const auto download_factor = factor_of(fields.download_factor);
  if (!download_factor) {
    return refuse("download_factor", "is not in 0..100", fields.download_factor);
  }
  TorrentRow row;
  row.torrent_id = torrent_id.value();
  row.info_hash = *info_hash;
  row.upload_factor = *upload_factor;
  row.download_factor = *download_factor;
  TYTO_ASSERT(row.torrent_id > 0);
  return row;
}

Result<ClientRuleRow, std::string> check_client_rule_row(const ClientRuleFields& fields) {
  auto row = check_client_prefix(fields.peer_id_prefix);
  if (!row) return row;
  // No column default: a rule that says neither allow nor deny is refused.
  const auto allowed = flag_of(fields.allowed, std::nullopt);
  if (!allowed) return refuse("allowed", "is not a boolean", fields.allowed);
  row.value().allowed = *allowed;
  TYTO_ASSERT(row.value().prefix_size > 0 && row.value().prefix_size <= client_prefix_size_max);
  return row;
}

Result<CompletionCount, std::string> check_completion_row(const CompletionFields& fields) {
  if (fields.info_hash.type != Type::text) {
    return refuse("info_hash", "is not text", fields.info_hash);
  }
  const auto info_hash = parse_info_hash_hex(fields.info_hash.text);
  if (!info_hash) return refuse("info_hash", "is not 40 hex digits", fields.info_hash);
  // tyto writes it from a uint64 sum that never nears 2^63: a negative count is someone else's.
  const auto completed = integer_of(fields.completed);
  if (!completed || *completed < 0) {
    return refuse("completed", "is not an integer >= 0", fields.completed);
  }
  return CompletionCount{*info_hash, static_cast<std::uint64_t>(*completed)};
}

Result<Baseline, std::string> check_baseline_row(const BaselineFields& fields) {
  const auto user_id = check_id(fields.user_id, "user_id");
  if (!user_id) return Failure{user_id.error()};
  const auto torrent_id = check_id(fields.torrent_id, "torrent_id");
  if (!torrent_id) return Failure{torrent_id.error()};
  Baseline baseline;
  if (fields.peer_id.type != Type::text ||
      fields.peer_id.text.size() != baseline.key.peer_id.bytes.size()) {
    return refuse("peer_id", "is not 20 bytes", fields.peer_id);
  }
  const auto uploaded = integer_of(fields.uploaded);
  if (!uploaded) return refuse("uploaded", "is not an integer", fields.uploaded);
  const auto downloaded = integer_of(fields.downloaded);
  if (!downloaded) return refuse("downloaded", "is not an integer", fields.downloaded);
  const auto announced_at = integer_of(fields.announced_at);
  if (!announced_at) return refuse("announced_at", "is not an integer", fields.announced_at);
  const auto seeding = flag_of(fields.seeding, std::nullopt);
  if (!seeding) return refuse("seeding", "is not a boolean", fields.seeding);
  baseline.key.user_id = user_id.value();
  baseline.key.torrent_id = torrent_id.value();
  std::memcpy(baseline.key.peer_id.bytes.data(), fields.peer_id.text.data(),
              baseline.key.peer_id.bytes.size());
  // Written from uint64 with the same bits (sqlite_backend.cpp), read back the same way.
  baseline.uploaded = static_cast<std::uint64_t>(*uploaded);
  baseline.downloaded = static_cast<std::uint64_t>(*downloaded);
  baseline.announced_unix_s = static_cast<std::uint64_t>(*announced_at);
  baseline.seeding = *seeding;
  return baseline;
}

std::string field_log_text(const Field& field) {
  switch (field.type) {
    case Type::null:
      return "NULL";
    case Type::integer:
      return fmt::format("{}", field.integer);
    case Type::real:
      return fmt::format("{}", field.real);
    case Type::text:
      break;
  }
  constexpr std::size_t shown_max = 64;
  std::string text = "'";
  for (std::size_t i = 0; i < field.text.size() && i < shown_max; ++i) {
    const auto c = static_cast<unsigned char>(field.text[i]);
    if (c >= 0x20 && c <= 0x7e && c != '\\') {
      text += static_cast<char>(c);
    } else {
      text += fmt::format("\\x{:02x}", c);
    }
  }
  text += field.text.size() > shown_max ? "'..." : "'";
  return text;
}

}  // namespace tyto::store
