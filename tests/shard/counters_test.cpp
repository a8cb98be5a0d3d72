#include "tyto/shard/counters.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace tyto::shard {
namespace {

constexpr std::size_t slots_count = sizeof(ShardTotals) / sizeof(std::uint64_t);
using Slots = std::array<std::uint64_t, slots_count>;

// Every std::uint64_t of the totals numbered first + i: which field holds which number is left
// to the layout, so the checks below do not go through the tables they check.
ShardTotals numbered_totals(std::uint64_t first) {
  Slots slots;
  std::iota(slots.begin(), slots.end(), first);
  return std::bit_cast<ShardTotals>(slots);
}

// The byte offsets a part's table reads, sorted: 0, 8, 16, ... when each field has one row.
template <class Counters>
std::vector<std::size_t> offsets_read(const Counters& counters) {
  std::vector<std::size_t> offsets;
  const auto* base = reinterpret_cast<const std::byte*>(&counters);
  for (const CounterField<Counters>& field : Counters::fields) {
    offsets.push_back(static_cast<std::size_t>(
        reinterpret_cast<const std::byte*>(&(counters.*field.member)) - base));
  }
  std::sort(offsets.begin(), offsets.end());
  return offsets;
}

template <class Counters>
void expect_each_field_read_once(const Counters& counters, std::string_view part) {
  std::vector<std::size_t> expected(sizeof(Counters) / sizeof(std::uint64_t));
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = i * sizeof(std::uint64_t);
  EXPECT_EQ(offsets_read(counters), expected) << part;
}

bool snake_case(std::string_view name) {
  if (name.empty() || name.front() < 'a' || name.front() > 'z' || name.back() == '_') return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!allowed || (c == '_' && name[i - 1] == '_')) return false;
  }
  return true;
}

TEST(CounterFields, EachTableReadsEveryFieldOfItsStructExactlyOnce) {
  const ShardTotals totals;
  expect_each_field_read_once(totals.shard, "ShardCounters");
  expect_each_field_read_once(totals.udp, "net::UdpCounters");
  expect_each_field_read_once(totals.tcp, "net::TcpCounters");
  expect_each_field_read_once(totals.store, "store::StoreCounters");
  expect_each_field_read_once(totals.gauges, "ShardGauges");
}

TEST(CounterRows, ExportEveryFieldOfTheTotalsExactlyOnce) {
  const std::vector<CounterRow> rows = counter_rows(numbered_totals(1));
  ASSERT_EQ(rows.size(), slots_count);
  std::vector<std::uint64_t> values;
  for (const CounterRow& row : rows) values.push_back(row.value);
  std::sort(values.begin(), values.end());
  std::vector<std::uint64_t> expected(slots_count);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(values, expected);  // a value missing: a field not exported; twice: a field read twice
}

TEST(CounterRows, NamesAreUniqueSnakeCaseAndHelpIsOnePhrase) {
  std::set<std::string> names;
  for (const CounterRow& row : counter_rows(ShardTotals{})) {
    const std::string_view name = row.name;
    EXPECT_TRUE(snake_case(name)) << name;
    EXPECT_FALSE(name.starts_with("tyto_")) << name;  // readers add the prefix
    EXPECT_FALSE(name.ends_with("_total")) << name;   // and the suffix, for counters
    EXPECT_TRUE(names.insert(std::string(name)).second) << "exported twice: " << name;
    const std::string_view help = row.help;
    EXPECT_FALSE(help.empty()) << name;
    EXPECT_FALSE(help.ends_with('.')) << name;  // readers add the period
    EXPECT_EQ(help.find('\n'), std::string_view::npos) << name;
  }
}

TEST(CounterRows, CountersComeFirstThenTheGauges) {
  const std::vector<CounterRow> rows = counter_rows(ShardTotals{});
  const auto first_gauge =
      std::find_if(rows.begin(), rows.end(), [](const CounterRow& row) { return row.gauge; });
  EXPECT_TRUE(
      std::all_of(first_gauge, rows.end(), [](const CounterRow& row) { return row.gauge; }));
  std::set<std::string> gauges;
  for (auto row = first_gauge; row != rows.end(); ++row) gauges.insert(row->name);
  const std::set<std::string> expected = {"swarms",
                                          "peers_ipv4",
                                          "peers_ipv6",
                                          "seeders",
                                          "leechers",
                                          "mailbox_depth",
                                          "store_memory_bytes",
                                          "http_connections",
                                          "loop_turn_max_us",
                                          "ledger_peers",
                                          "ledger_deltas_waiting",
                                          "catalogue_users",
                                          "catalogue_torrents",
                                          "completions_torrents",
                                          "completions_waiting",
                                          "index_growth_step_max_us"};
  EXPECT_EQ(gauges, expected);
}

// Dashboards, the e2e tests and the README know these names: a rename breaks them silently.
TEST(CounterRows, KeepTheNamesReadersKnow) {
  std::set<std::string> exported;
  for (const CounterRow& row : counter_rows(ShardTotals{})) exported.insert(row.name);
  const char* known[] = {"udp_datagrams_received",
                         "udp_datagrams_sent",
                         "udp_bytes_received",
                         "udp_bytes_sent",
                         "udp_connects",
                         "udp_announces",
                         "udp_scrapes",
                         "udp_error_replies",
                         "udp_malformed",
                         "udp_bad_connection_id",
                         "udp_dropped_truncated",
                         "udp_dropped_no_buffer",
                         "udp_dropped_bad_source",
                         "udp_dropped_no_send_slot",
                         "udp_send_errors",
                         "udp_receive_rearms",
                         "announces_denied",
                         "announces_forwarded",
                         "scrape_parts_forwarded",
                         "mailbox_full_drops",
                         "scrape_slots_full_drops",
                         "scrape_gather_timeouts",
                         "wakeups_sent",
                         "http_announces",
                         "http_scrapes",
                         "http_failures",
                         "http_busy",
                         "http_answers_retried",
                         "tcp_accepted",
                         "tcp_refused_full",
                         "tcp_closed",
                         "tcp_closed_idle",
                         "tcp_closed_input_overflow",
                         "tcp_bytes_received",
                         "tcp_bytes_sent",
                         "tcp_receive_no_buffer",
                         "tcp_send_errors",
                         "store_announces",
                         "swarms_refused",
                         "peers_refused",
                         "peers_expired",
                         "swarms_freed",
                         "index_growth_step_max_us",
                         "dropped_stopping",
                         "loop_turns",
                         "loop_turns_over_250us",
                         "loop_turns_over_1ms",
                         "sleeps",
                         "swarms",
                         "peers_ipv4",
                         "peers_ipv6",
                         "seeders",
                         "leechers",
                         "mailbox_depth",
                         "store_memory_bytes",
                         "http_connections"};
  for (const char* name : known) EXPECT_EQ(exported.count(name), 1u) << name;
}

// Counters and gauges add up; a maximum (the longest loop turn; the users every shard holds
// alike; the longest growth step) is the largest shard's.
TEST(ShardTotals, AddSumsEveryFieldButTakesTheLargestMaximum) {
  ShardTotals sum = numbered_totals(1);
  sum.add(numbered_totals(1000));
  const auto slots = std::bit_cast<Slots>(sum);
  const std::size_t maximum_slots[] = {
      (offsetof(ShardTotals, gauges) + offsetof(ShardGauges, loop_turn_max_us)) /
          sizeof(std::uint64_t),
      (offsetof(ShardTotals, private_tracker) + offsetof(PrivateCounters, catalogue_users)) /
          sizeof(std::uint64_t),
      (offsetof(ShardTotals, store) + offsetof(store::StoreCounters, index_growth_step_max_us)) /
          sizeof(std::uint64_t)};
  for (std::size_t i = 0; i < slots_count; ++i) {
    const bool maximum = i == maximum_slots[0] || i == maximum_slots[1] || i == maximum_slots[2];
    EXPECT_EQ(slots[i], maximum ? 1000 + i : 1001 + 2 * i) << i;
  }
}

TEST(ShardTotals, RowsOfASumAreTheSumsOfTheRows) {
  ShardTotals sum = numbered_totals(5);
  sum.add(numbered_totals(7));
  const auto a = counter_rows(numbered_totals(5));
  const auto b = counter_rows(numbered_totals(7));
  const auto both = counter_rows(sum);
  ASSERT_EQ(both.size(), a.size());
  for (std::size_t i = 0; i < both.size(); ++i) {
    EXPECT_STREQ(both[i].name, a[i].name);
    const bool maximum = std::string_view(both[i].name) == "loop_turn_max_us" ||
                         std::string_view(both[i].name) == "catalogue_users" ||
                         std::string_view(both[i].name) == "index_growth_step_max_us";
    EXPECT_EQ(both[i].value, maximum ? std::max(a[i].value, b[i].value) : a[i].value + b[i].value)
        << both[i].name;
  }
}

}  // namespace
}  // namespace tyto::shard
