#include "tyto/app/dashboard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tyto/core/assert.hpp"
#include "tyto/core/types.hpp"

namespace tyto::app {

using shard::ShardTotals;

double counter_rate(std::uint64_t before, std::uint64_t now, std::uint64_t elapsed_ms) noexcept {
  if (now < before || elapsed_ms == 0) return 0.0;
  return static_cast<double>(now - before) * 1000.0 / static_cast<double>(elapsed_ms);
}

DashboardHistory::DashboardHistory(std::uint32_t shards_count)
    : shards_(shards_count), values_(series_count * seconds_max, 0.0f), stamps_(seconds_max, 0) {
  TYTO_ASSERT(shards_count > 0);
}

void DashboardHistory::record(std::uint64_t second, std::uint64_t at_ms,
                              std::span<const Sample> answered) {
  TYTO_ASSERT(recorded_ == 0 || second > last_second_);
  double sums[series_count] = {};
  bool rated = false;  // a shard answered twice: its rates mean something
  for (const Sample& sample : answered) {
    TYTO_ASSERT(sample.shard < shards_.size());
    ShardState& state = shards_[sample.shard];
    const ShardTotals& now = *sample.totals;
    for (std::size_t s = 0; s < series_count; ++s) {
      const DashboardSeries& series = dashboard_series[s];
      const std::uint64_t value = series.read(now);
      if (series.kind == SeriesKind::rate) {
        const bool before = state.seen && at_ms > state.at_ms;
        state.rates[s] =
            before ? counter_rate(series.read(state.totals), value, at_ms - state.at_ms) : 0.0;
        sums[s] += state.rates[s];
      } else {
        state.rates[s] = static_cast<double>(value);
        sums[s] = series.kind == SeriesKind::gauge ? sums[s] + static_cast<double>(value)
                                                   : std::max(sums[s], static_cast<double>(value));
      }
    }
    rated |= state.seen;
    state.totals = now;
    state.at_ms = at_ms;
    state.second = second;
    state.seen = true;
  }
  if (recorded_ == 0) first_recorded_ = second;
  last_second_ = second;
  ++recorded_;
  if (answered.empty()) return;  // a gap
  const std::size_t slot = second % seconds_max;
  stamps_[slot] = second + 1;
  for (std::size_t s = 0; s < series_count; ++s) {
    // A first answer has no rate yet: a gap rather than a false zero.
    const bool known = rated || dashboard_series[s].kind != SeriesKind::rate;
    values_[s * seconds_max + slot] = known ? static_cast<float>(sums[s]) : NAN;
  }
}

std::uint64_t DashboardHistory::first_second() const noexcept {
  const std::uint64_t ring_first =
      last_second_ + 1 >= seconds_max ? last_second_ + 1 - seconds_max : 0;
  return std::max(ring_first, first_recorded_);
}

bool DashboardHistory::value(std::size_t series, std::uint64_t second, double& out) const noexcept {
  TYTO_ASSERT(series < series_count);
  if (recorded_ == 0 || second > last_second_ || second < first_second()) return false;
  const std::size_t slot = second % seconds_max;
  if (stamps_[slot] != second + 1) return false;
  const float stored = values_[series * seconds_max + slot];
  if (std::isnan(stored)) return false;
  out = stored;
  return true;
}

const ShardTotals& DashboardHistory::shard_totals(std::uint32_t shard) const noexcept {
  TYTO_ASSERT(shard < shards_.size());
  return shards_[shard].totals;
}

bool DashboardHistory::shard_answered_last(std::uint32_t shard) const noexcept {
  TYTO_ASSERT(shard < shards_.size());
  return recorded_ != 0 && shards_[shard].seen && shards_[shard].second == last_second_;
}

double DashboardHistory::shard_rate(std::uint32_t shard, std::size_t series) const noexcept {
  TYTO_ASSERT(shard < shards_.size() && series < series_count);
  return shards_[shard].rates[series];
}

ShardTotals DashboardHistory::totals() const noexcept {
  ShardTotals sum;
  for (const ShardState& state : shards_) sum.add(state.totals);
  return sum;
}

namespace {

std::string flags_json(std::uint8_t flags) {
  std::string text = "[";
  for (std::size_t bit = 0; bit < std::size(store::swarm_flag_names); ++bit) {
    if ((flags & (1u << bit)) == 0) continue;
    if (text.size() > 1) text += ',';
    text += fmt::format("\"{}\"", store::swarm_flag_names[bit]);
  }
  return text + "]";
}

// A rate with one decimal, or null for a gap.
void append_value(std::string& text, const DashboardHistory& history, std::size_t series,
                  std::uint64_t second) {
  double value = 0;
  if (!history.value(series, second, value)) {
    text += "null";
    return;
  }
  fmt::format_to(std::back_inserter(text), "{:.1f}", value);
}

std::string counters_json(const ShardTotals& totals) {
  std::string text = "{";
  for (const auto& row : shard::counter_rows(totals)) {
    if (text.size() > 1) text += ',';
    fmt::format_to(std::back_inserter(text), "\"{}\":{}", row.name, row.value);
  }
  fmt::format_to(std::back_inserter(text), ",\"peers\":{}}}",
                 totals.store.peers_ipv4 + totals.store.peers_ipv6);
  return text;
}

std::string shard_json(const DashboardHistory& history, std::uint32_t shard) {
  const ShardTotals& t = history.shard_totals(shard);
  double requests_per_s = 0;
  for (std::size_t s = 0; s < request_series_count; ++s)
    requests_per_s += history.shard_rate(shard, s);
  const std::uint64_t drops = dashboard_series[series_dropped].read(t);
  return fmt::format(
      "{{\"shard\":{},\"answered\":{},\"peers\":{},\"seeders\":{},\"leechers\":{},\"swarms\":{},"
      "\"requests_per_s\":{:.1f},\"loop_turns_over_250us\":{},\"loop_turns_over_1ms\":{},"
      "\"loop_turns_over_250us_per_s\":{:.1f},\"loop_turns_over_1ms_per_s\":{:.1f},"
      "\"loop_turn_max_us\":{},\"mailbox_depth\":{},\"drops\":{},\"http_connections\":{},"
      "\"store_memory_bytes\":{}}}",
      shard, history.shard_answered_last(shard), t.store.peers_ipv4 + t.store.peers_ipv6,
      t.store.seeders, t.store.leechers, t.store.swarms, requests_per_s,
      t.shard.loop_turns_over_250us, t.shard.loop_turns_over_1ms,
      history.shard_rate(shard, series_turns_over_250us),
      history.shard_rate(shard, series_turns_over_1ms), t.gauges.loop_turn_max_us,
      t.gauges.mailbox_depth, drops, t.gauges.http_connections, t.gauges.store_memory_bytes);
}

std::string history_json(const DashboardHistory& history, std::uint64_t since_second) {
  const std::uint64_t last = history.last_second();
  const std::uint64_t first =
      std::max(history.first_second(), since_second == 0 ? 0 : since_second + 1);
  const bool any = !history.empty() && first <= last;
  std::string text =
      fmt::format("{{\"period_s\":1,\"seconds_max\":{},\"first\":{},\"last\":{},\"series\":{{",
                  DashboardHistory::seconds_max, any ? first : last + 1, last);
  for (std::size_t s = 0; s < DashboardHistory::series_count; ++s) {
    if (s != 0) text += ',';
    fmt::format_to(std::back_inserter(text), "\"{}\":[", dashboard_series[s].name);
    for (std::uint64_t second = first; any && second <= last; ++second) {
      if (second != first) text += ',';
      append_value(text, history, s, second);
    }
    text += ']';
  }
  return text + "}}";
}

}  // namespace

std::string swarm_statistics_json(const store::SwarmStatistics& s) {
  const std::uint32_t peers = s.seeders + s.leechers;
  const double seeder_ratio = peers == 0 ? 0.0 : static_cast<double>(s.seeders) / peers;
  const double window_s = s.window_s == 0 ? 1.0 : static_cast<double>(s.window_s);
  // health: "unseeded" (leechers but no seeder: nobody can finish), "seeded", "empty".
  const char* health = peers == 0 ? "empty" : s.seeders == 0 ? "unseeded" : "seeded";
  return fmt::format(
      "{{\"info_hash\":\"{}\",\"seeders\":{},\"leechers\":{},\"completed\":{},\"peers\":{},"
      "\"seeder_ratio\":{:.4f},\"health\":\"{}\",\"age_s\":{},\"window_s\":{},"
      "\"announces_last_window\":{},\"announce_rate_per_s\":{:.4f},"
      "\"joins_last_window\":{},\"leaves_last_window\":{},\"churn_last_window\":{},"
      "\"announces_this_window\":{},\"joins_this_window\":{},\"leaves_this_window\":{},"
      "\"unmatched_completions_this_window\":{},\"leechers_average\":{},"
      "\"prefix_share\":{:.3f},\"flags\":{}}}",
      to_hex(s.info_hash), s.seeders, s.leechers, s.completed, peers, seeder_ratio, health, s.age_s,
      s.window_s, s.announces_last_window, s.announces_last_window / window_s, s.joins_last_window,
      s.leaves_last_window, s.joins_last_window + s.leaves_last_window, s.announces_this_window,
      s.joins_this_window, s.leaves_this_window, s.unmatched_completions_this_window,
      s.leechers_average, s.prefix_share_permille / 1000.0, flags_json(s.flags));
}

std::string dashboard_json(const DashboardInputs& inputs) {
  TYTO_ASSERT(inputs.history != nullptr);
  TYTO_ASSERT(inputs.top.size() <= inputs.top_count);
  const DashboardHistory& history = *inputs.history;
  std::uint32_t unanswered = 0;
  std::string per_shard = "[";
  for (std::uint32_t shard = 0; shard < history.shards_count(); ++shard) {
    unanswered += !history.shard_answered_last(shard);
    if (shard != 0) per_shard += ',';
    per_shard += shard_json(history, shard);
  }
  per_shard += ']';
  std::string top = "[";
  for (const auto& swarm : inputs.top) {
    if (top.size() > 1) top += ',';
    top += swarm_statistics_json(swarm);
  }
  top += ']';
  std::string text = fmt::format(
      "{{\"version\":\"0.1.0\",\"uptime_s\":{},\"started_unix_s\":{},\"shards\":{},"
      "\"shards_unanswered\":{},\"totals\":{},\"per_shard\":{},\"history\":{},"
      "\"top\":{{\"by\":\"{}\",\"n\":{},\"shards_unanswered\":{},\"swarms\":{}}}",
      inputs.uptime_s, inputs.started_unix_s, history.shards_count(), unanswered,
      counters_json(history.totals()), per_shard, history_json(history, inputs.since_second),
      inputs.top_by, inputs.top_count, inputs.top_shards_unanswered, top);
  if (!inputs.accounting_json.empty()) {
    fmt::format_to(std::back_inserter(text), ",\"accounting\":{}", inputs.accounting_json);
  }
  if (!inputs.cluster_json.empty()) {
    fmt::format_to(std::back_inserter(text), ",\"cluster\":{}", inputs.cluster_json);
  }
  return text + "}\n";
}

}  // namespace tyto::app
