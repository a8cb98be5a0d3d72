// The operator's dashboard on the metrics listener: GET / (one self-contained page, built into the
// binary) and GET /dashboard.json (what the page polls once a second; README "Dashboard").
//
// DashboardHistory is the last ten minutes the page charts, kept by the ops thread whether or not
// a page is open: one fixed ring per series (seconds_max one-second slots, allocated once), fed
// by a sample of every shard's counters a second. Rates come from the difference between two
// samples of the same shard; a counter that went backwards (a restart) counts 0 for that second
// and becomes the new base. A second with no sample (no shard answered, the thread was late) is
// a gap, shown as null. Not thread-safe: the ops thread's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tyto/shard/counters.hpp"
#include "tyto/store/peer_store.hpp"

namespace tyto::app {

// The page: HTML, script and styles in one text (src/app/dashboard/dashboard.html).
std::string_view dashboard_page() noexcept;

enum class SeriesKind : std::uint8_t {
  rate,     // per second, from a counter's difference between samples
  gauge,    // the sum over shards of a value that goes up and down
  maximum,  // the largest shard's value
};

// One charted series: its JSON name and what it reads from one shard's totals.
struct DashboardSeries {
  const char* name;
  SeriesKind kind;
  std::uint64_t (*read)(const shard::ShardTotals&) noexcept;
};
inline constexpr DashboardSeries dashboard_series[] = {
    {"udp_connect", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept { return t.shard.udp_connects; }},
    {"udp_announce", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept { return t.shard.udp_announces; }},
    {"udp_scrape", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept { return t.shard.udp_scrapes; }},
    {"http_announce", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept { return t.shard.http_announces; }},
    {"http_scrape", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept { return t.shard.http_scrapes; }},
    // Error answers: UDP action 3 and HTTP failure reasons or 4xx (denied announces included).
    {"errors", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept {
       return t.shard.udp_error_replies + t.shard.http_failures;
     }},
    {"denied", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept { return t.shard.announces_denied; }},
    // Refused for want of room: swarm or shard full, HTTP busy (503), TCP connection table full.
    {"refused", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept {
       return t.store.swarms_refused + t.store.peers_refused + t.shard.http_busy +
              t.tcp.refused_full;
     }},
    // Dropped without an answer: full mailboxes or scrape slots, UDP receive and send drops.
    {"dropped", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept {
       return t.shard.mailbox_full_drops + t.shard.scrape_slots_full_drops +
              t.udp.dropped_truncated + t.udp.dropped_no_buffer + t.udp.dropped_bad_source +
              t.udp.dropped_no_send_slot;
     }},
    {"loop_turns_over_250us", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept { return t.shard.loop_turns_over_250us; }},
    {"loop_turns_over_1ms", SeriesKind::rate,
     [](const shard::ShardTotals& t) noexcept { return t.shard.loop_turns_over_1ms; }},
    {"peers", SeriesKind::gauge,
     [](const shard::ShardTotals& t) noexcept { return t.store.peers_ipv4 + t.store.peers_ipv6; }},
    {"swarms", SeriesKind::gauge,
     [](const shard::ShardTotals& t) noexcept { return t.store.swarms; }},
    {"loop_turn_max_us", SeriesKind::maximum,
     [](const shard::ShardTotals& t) noexcept { return t.gauges.loop_turn_max_us; }},
};
// Indices the per-shard rows read by name.
inline constexpr std::size_t series_dropped = 8;
inline constexpr std::size_t series_turns_over_250us = 9;
inline constexpr std::size_t series_turns_over_1ms = 10;
static_assert(std::string_view(dashboard_series[series_dropped].name) == "dropped");
static_assert(std::string_view(dashboard_series[series_turns_over_250us].name) ==
              "loop_turns_over_250us");
static_assert(std::string_view(dashboard_series[series_turns_over_1ms].name) ==
              "loop_turns_over_1ms");
// The first request_series_count series are requests: their sum is a shard's requests_per_s.
inline constexpr std::size_t request_series_count = 5;
static_assert(std::string_view(dashboard_series[request_series_count - 1].name) == "http_scrape");

class DashboardHistory {
 public:
  static constexpr std::size_t seconds_max = 600;  // ten minutes of one-second samples
  static constexpr std::size_t series_count = std::size(dashboard_series);

  struct Sample {
    std::uint32_t shard;  // < shards_count
    const shard::ShardTotals* totals;
  };

  explicit DashboardHistory(std::uint32_t shards_count);

  // The sample of `second` (seconds since the ops thread started; each call a later one), asked
  // at `at_ms` (a steady clock, ms): the totals of the shards that answered, in any order.
  void record(std::uint64_t second, std::uint64_t at_ms, std::span<const Sample> answered);

  bool empty() const noexcept { return recorded_ == 0; }
  std::uint64_t last_second() const noexcept { return last_second_; }
  // The oldest second the ring holds: the first recorded, or ten minutes before the last.
  std::uint64_t first_second() const noexcept;
  // The series' value at `second`; false for a gap or a second outside the ring.
  bool value(std::size_t series, std::uint64_t second, double& out) const noexcept;

  std::uint32_t shards_count() const noexcept { return static_cast<std::uint32_t>(shards_.size()); }
  // Per shard, from its latest answer: its totals, whether it answered the last sample, and its
  // rate per series in the second before its latest answer (0 before it answered twice).
  const shard::ShardTotals& shard_totals(std::uint32_t shard) const noexcept;
  bool shard_answered_last(std::uint32_t shard) const noexcept;
  double shard_rate(std::uint32_t shard, std::size_t series) const noexcept;
  // The sum (a maximum for maximum fields) of every shard's latest totals.
  shard::ShardTotals totals() const noexcept;

 private:
  struct ShardState {
    shard::ShardTotals totals;
    std::uint64_t at_ms = 0;
    std::uint64_t second = 0;
    bool seen = false;
    double rates[series_count] = {};
  };
  std::vector<ShardState> shards_;
  std::vector<float> values_;          // series_count rows of seconds_max slots
  std::vector<std::uint64_t> stamps_;  // per slot: second + 1, 0 when never written
  std::uint64_t first_recorded_ = 0;
  std::uint64_t last_second_ = 0;
  std::uint64_t recorded_ = 0;
};

// The rate of a counter that went from `before` to `now` in `elapsed_ms`: 0 when it went
// backwards (restarted) or no time passed.
double counter_rate(std::uint64_t before, std::uint64_t now, std::uint64_t elapsed_ms) noexcept;

// One swarm's statistics as /stats/swarm and the top lists give them (README).
std::string swarm_statistics_json(const store::SwarmStatistics& statistics);

// What /dashboard.json answers (README "Dashboard").
struct DashboardInputs {
  std::uint64_t uptime_s = 0;
  std::uint64_t started_unix_s = 0;
  std::uint64_t since_second = 0;  // history after this second only; 0: all the ring holds
  const DashboardHistory* history = nullptr;
  const char* top_by = "peers";
  std::uint32_t top_count = 10;
  std::uint32_t top_shards_unanswered = 0;
  std::span<const store::SwarmStatistics> top;  // sorted already, at most top_count
  // Optional sections, each a JSON object: absent from the answer when empty (not built yet).
  std::string_view accounting_json;
  std::string_view cluster_json;
};
std::string dashboard_json(const DashboardInputs& inputs);

}  // namespace tyto::app
