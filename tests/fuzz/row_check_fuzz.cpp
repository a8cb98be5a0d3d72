// libFuzzer target for the row checks the SQL backends share (store/row_check.hpp): never a
// crash; a row that passes holds only values its type allows, and passes again unchanged when
// its own values are fed back; the log text of any field is printable and bounded.
//
// Input: the first byte picks the table (user, torrent, client rule, baseline; every input is
// also read as a tyto_completions row by its first two fields); the rest is
// fields separated by '\n', each a tag and a value: N (NULL), I<decimal> (integer),
// R<decimal> (double), T<bytes> (text); an untagged field is text.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tyto/store/row_check.hpp"

namespace {

using tyto::store::Field;

void check(bool condition) {
  if (!condition) std::abort();
}

Field field_of(std::string_view text) {
  if (text.empty()) return Field::of(text);
  const std::string_view value = text.substr(1);
  switch (text[0]) {
    case 'N':
      return Field::null();
    case 'I': {
      std::int64_t integer = 0;
      std::from_chars(value.data(), value.data() + value.size(), integer);
      return Field::of(integer);
    }
    case 'R': {
      double real = 0.0;
      std::from_chars(value.data(), value.data() + value.size(), real);
      return Field::of(real);
    }
    case 'T':
      return Field::of(value);
    default:
      return Field::of(text);
  }
}

void check_log_text(const Field& field) {
  const std::string text = tyto::store::field_log_text(field);
  check(text.size() <= 4 * 64 + 5);
  for (const char c : text) check(c >= 0x20 && c <= 0x7e);
}

void check_user(const std::vector<Field>& fields) {
  using namespace tyto::store;
  const auto row =
      check_user_row({fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]});
  if (!row.ok()) {
    check(!row.error().empty());
    return;
  }
  const UserRow& user = row.value();
  check(user.user_id > 0 && user.user_id <= static_cast<std::uint64_t>(INT64_MAX));
  check(Passkey::parse(user.passkey.view()) == user.passkey);
  check(factor_valid(user.upload_factor) && factor_valid(user.download_factor));
  const auto again = check_user_row(
      {Field::of(static_cast<std::int64_t>(user.user_id)), Field::of(user.passkey.view()),
       Field::of(std::int64_t{user.enabled}), Field::of(std::int64_t{user.can_leech}),
       Field::of(double{user.upload_factor}), Field::of(double{user.download_factor})});
  check(again.ok() && again.value().user_id == user.user_id &&
        again.value().passkey == user.passkey && again.value().enabled == user.enabled &&
        again.value().can_leech == user.can_leech &&
        again.value().upload_factor == user.upload_factor &&
        again.value().download_factor == user.download_factor);
}

void check_torrent(const std::vector<Field>& fields) {
  using namespace tyto::store;
  const auto row = check_torrent_row({fields[0], fields[1], fields[2], fields[3]});
  if (!row.ok()) return;
  const TorrentRow& torrent = row.value();
  check(torrent.torrent_id > 0);
  check(factor_valid(torrent.upload_factor) && factor_valid(torrent.download_factor));
  const std::string hex = tyto::to_hex(torrent.info_hash);
  const auto again = check_torrent_row(
      {Field::of(static_cast<std::int64_t>(torrent.torrent_id)), Field::of(std::string_view(hex)),
       Field::of(double{torrent.upload_factor}), Field::of(double{torrent.download_factor})});
  check(again.ok() && again.value().info_hash == torrent.info_hash &&
        again.value().upload_factor == torrent.upload_factor);
}

void check_client_rule(const std::vector<Field>& fields) {
  using namespace tyto::store;
  const auto row = check_client_rule_row({fields[0], fields[1]});
  if (!row.ok()) return;
  const ClientRuleRow& rule = row.value();
  check(rule.prefix_size >= 1 && rule.prefix_size <= client_prefix_size_max);
  check(fields[0].text.size() == rule.prefix_size);
}

void check_baseline(const std::vector<Field>& fields) {
  using namespace tyto::store;
  const auto row = check_baseline_row(
      {fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6]});
  if (!row.ok()) return;
  check(row.value().key.user_id > 0 && row.value().key.torrent_id > 0);
  check(fields[2].text.size() == row.value().key.peer_id.bytes.size());
}

// Run on every input's first two fields (no selector value of its own, so the stored corpus
// keeps its meaning): a passing row round-trips through its lowercase hex.
void check_completion(const std::vector<Field>& fields) {
  using namespace tyto::store;
  const auto row = check_completion_row({fields[0], fields[1]});
  if (!row.ok()) {
    check(!row.error().empty());
    return;
  }
  check(row.value().completed <= static_cast<std::uint64_t>(INT64_MAX));
  const std::string hex = tyto::to_hex(row.value().info_hash);
  const auto again =
      check_completion_row({Field::of(std::string_view(hex)),
                            Field::of(static_cast<std::int64_t>(row.value().completed))});
  check(again.ok() && again.value() == row.value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  constexpr std::size_t fields_max = 7;  // the widest row (tyto_peers)
  std::vector<Field> fields(fields_max, Field::null());
  std::size_t count = 0;
  for (std::size_t at = 0; at <= input.size() && count < fields_max; ++count) {
    const std::size_t end = std::min(input.find('\n', at), input.size());
    fields[count] = field_of(input.substr(at, end - at));
    at = end + 1;
  }
  for (const Field& field : fields) check_log_text(field);
  check_completion(fields);
  switch (data[0] % 4) {
    case 0:
      check_user(fields);
      break;
    case 1:
      check_torrent(fields);
      break;
    case 2:
      check_client_rule(fields);
      break;
    default:
      check_baseline(fields);
      break;
  }
  return 0;
}
