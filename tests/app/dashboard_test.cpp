// The dashboard's history ring (rates from counter deltas, wrap-around, counters going backwards)
// and /dashboard.json's builder (valid JSON whose fields equal the inputs).
#include "tyto/app/dashboard.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <string>

namespace tyto::app {
namespace {

constexpr std::size_t udp_announce = 1;
constexpr std::size_t peers = 11;
constexpr std::size_t turn_max = 13;

shard::ShardTotals totals_with(std::uint64_t announces, std::uint64_t peers_ipv4 = 0,
                               std::uint64_t turn_max_us = 0) {
  shard::ShardTotals totals;
  totals.shard.udp_announces = announces;
  totals.store.peers_ipv4 = peers_ipv4;
  totals.gauges.loop_turn_max_us = turn_max_us;
  return totals;
}

double value_of(const DashboardHistory& history, std::size_t series, std::uint64_t second) {
  double value = NAN;
  EXPECT_TRUE(history.value(series, second, value)) << "series " << series << " second " << second;
  return value;
}

TEST(DashboardSeries, NamesTheIndicesTheTestsUse) {
  EXPECT_STREQ(dashboard_series[udp_announce].name, "udp_announce");
  EXPECT_STREQ(dashboard_series[peers].name, "peers");
  EXPECT_STREQ(dashboard_series[turn_max].name, "loop_turn_max_us");
  EXPECT_EQ(DashboardHistory::series_count, 14u);
}

TEST(CounterRate, IsTheDeltaPerSecondAndNeverNegative) {
  EXPECT_DOUBLE_EQ(counter_rate(100, 350, 1000), 250.0);
  EXPECT_DOUBLE_EQ(counter_rate(100, 350, 500), 500.0);
  EXPECT_DOUBLE_EQ(counter_rate(100, 100, 1000), 0.0);
  EXPECT_DOUBLE_EQ(counter_rate(1000, 5, 1000), 0.0);  // restarted: not negative, not huge
  EXPECT_DOUBLE_EQ(counter_rate(0, 5, 0), 0.0);        // no time passed
}

TEST(DashboardHistory, RatesAreSummedOverShardsFromEachShardsOwnDelta) {
  DashboardHistory history(2);
  EXPECT_TRUE(history.empty());
  auto a0 = totals_with(100, 5, 40), b0 = totals_with(1000, 7, 90);
  const DashboardHistory::Sample first[] = {{0, &a0}, {1, &b0}};
  history.record(0, 0, first);
  double value = 0;
  EXPECT_FALSE(history.value(udp_announce, 0, value));     // no rate from a first answer
  EXPECT_DOUBLE_EQ(value_of(history, peers, 0), 12.0);     // gauges: the sum
  EXPECT_DOUBLE_EQ(value_of(history, turn_max, 0), 90.0);  // maxima: the largest

  auto a1 = totals_with(150, 6, 30), b1 = totals_with(1200, 7, 20);
  const DashboardHistory::Sample second[] = {{1, &b1}, {0, &a1}};  // any order
  history.record(1, 1000, second);
  EXPECT_DOUBLE_EQ(value_of(history, udp_announce, 1), 50.0 + 200.0);
  EXPECT_DOUBLE_EQ(value_of(history, peers, 1), 13.0);
  EXPECT_DOUBLE_EQ(value_of(history, turn_max, 1), 30.0);
  EXPECT_DOUBLE_EQ(history.shard_rate(0, udp_announce), 50.0);
  EXPECT_DOUBLE_EQ(history.shard_rate(1, udp_announce), 200.0);
  EXPECT_EQ(history.totals().shard.udp_announces, 1350u);
  EXPECT_EQ(history.totals().gauges.loop_turn_max_us, 30u);  // a maximum, not a sum
}

TEST(DashboardHistory, ACounterThatWentBackwardsCountsZeroThenRatesFromItsNewBase) {
  DashboardHistory history(1);
  auto before = totals_with(1'000'000);
  auto restarted = totals_with(40);
  auto later = totals_with(90);
  const DashboardHistory::Sample s0[] = {{0, &before}}, s1[] = {{0, &restarted}},
                                 s2[] = {{0, &later}};
  history.record(0, 0, s0);
  history.record(1, 1000, s1);
  EXPECT_DOUBLE_EQ(value_of(history, udp_announce, 1), 0.0);
  history.record(2, 2000, s2);
  EXPECT_DOUBLE_EQ(value_of(history, udp_announce, 2), 50.0);
}

TEST(DashboardHistory, AMissingShardLeavesNoSpikeAndASecondWithNoAnswerIsAGap) {
  DashboardHistory history(2);
  auto a0 = totals_with(100), b0 = totals_with(100);
  auto a1 = totals_with(110);
  auto a3 = totals_with(130), b3 = totals_with(160);
  const DashboardHistory::Sample s0[] = {{0, &a0}, {1, &b0}}, s1[] = {{0, &a1}},
                                 s3[] = {{0, &a3}, {1, &b3}};
  history.record(0, 0, s0);
  history.record(1, 1000, s1);  // shard 1 did not answer: only shard 0's rate
  EXPECT_DOUBLE_EQ(value_of(history, udp_announce, 1), 10.0);
  EXPECT_TRUE(history.shard_answered_last(0));
  EXPECT_FALSE(history.shard_answered_last(1));
  history.record(2, 2000, {});  // nobody answered
  double value = 0;
  EXPECT_FALSE(history.value(udp_announce, 2, value));
  EXPECT_FALSE(history.value(peers, 2, value));
  history.record(3, 3000, s3);  // shard 1's delta spans the 3 s since its last answer
  EXPECT_DOUBLE_EQ(value_of(history, udp_announce, 3), 10.0 + 20.0);
}

TEST(DashboardHistory, TheRingKeepsTheLastTenMinutesAndWrapsAround) {
  constexpr std::size_t kept = DashboardHistory::seconds_max;
  DashboardHistory history(1);
  shard::ShardTotals totals;
  const DashboardHistory::Sample sample[] = {{0, &totals}};
  const std::uint64_t seconds = 2 * kept + 37;
  for (std::uint64_t second = 0; second < seconds; ++second) {
    totals.shard.udp_announces += second;  // rate at second s is s
    totals.store.peers_ipv4 = second;
    history.record(second, second * 1000, sample);
  }
  EXPECT_EQ(history.last_second(), seconds - 1);
  EXPECT_EQ(history.first_second(), seconds - kept);
  double value = 0;
  EXPECT_FALSE(history.value(peers, seconds - kept - 1, value));  // overwritten
  EXPECT_FALSE(history.value(peers, seconds, value));             // not yet
  for (std::uint64_t second = seconds - kept; second < seconds; ++second) {
    ASSERT_DOUBLE_EQ(value_of(history, peers, second), static_cast<double>(second));
    ASSERT_DOUBLE_EQ(value_of(history, udp_announce, second), static_cast<double>(second));
  }
}

TEST(DashboardHistory, SkippedSecondsAreGapsNotOldValues) {
  DashboardHistory history(1);
  auto totals = totals_with(0, 3);
  const DashboardHistory::Sample sample[] = {{0, &totals}};
  history.record(5, 0, sample);
  // Far later (the same slot as second 5, one lap on): every slot between is a gap.
  history.record(5 + DashboardHistory::seconds_max, 1000, sample);
  double value = 0;
  EXPECT_FALSE(history.value(peers, 5, value));
  EXPECT_FALSE(history.value(peers, 6 + 100, value));
  EXPECT_DOUBLE_EQ(value_of(history, peers, 5 + DashboardHistory::seconds_max), 3.0);
}

// --- The JSON ---------------------------------------------------------------------------------

// A small JSON validator (RFC 8259's grammar, numbers loosely): enough to catch a missing comma,
// a trailing one, an unclosed bracket or a NaN.
class JsonChecker {
 public:
  explicit JsonChecker(std::string_view text) : text_(text) {}
  bool valid() {
    skip();
    if (!value()) return false;
    skip();
    return at_ == text_.size();
  }

 private:
  // An explicit stack instead of recursion (STYLE: no recursion).
  bool value() {
    std::string stack;  // '{' or '['
    for (;;) {
      skip();
      if (at_ >= text_.size()) return false;
      const char c = text_[at_];
      if (c == '{' || c == '[') {
        stack += c;
        ++at_;
        skip();
        if (at_ < text_.size() && text_[at_] == (c == '{' ? '}' : ']')) {
          ++at_;
          stack.pop_back();
        } else {
          if (c == '{' && !key()) return false;
          continue;
        }
      } else if (c == '"') {
        if (!string()) return false;
      } else if (!literal()) {
        return false;
      }
      // After a value: commas and closers.
      for (;;) {
        skip();
        if (stack.empty()) return true;
        if (at_ >= text_.size()) return false;
        const char next = text_[at_++];
        if (next == ',') {
          if (stack.back() == '{' && !key()) return false;
          break;
        }
        if (next != (stack.back() == '{' ? '}' : ']')) return false;
        stack.pop_back();
      }
    }
  }
  bool key() {
    skip();
    if (!string()) return false;
    skip();
    return at_ < text_.size() && text_[at_++] == ':';
  }
  bool string() {
    if (at_ >= text_.size() || text_[at_] != '"') return false;
    for (++at_; at_ < text_.size(); ++at_) {
      if (text_[at_] == '\\') {
        ++at_;
      } else if (text_[at_] == '"') {
        ++at_;
        return true;
      } else if (static_cast<unsigned char>(text_[at_]) < 0x20) {
        return false;
      }
    }
    return false;
  }
  bool literal() {
    for (std::string_view word : {"true", "false", "null"}) {
      if (text_.substr(at_, word.size()) == word) {
        at_ += word.size();
        return true;
      }
    }
    const std::size_t start = at_;
    if (at_ < text_.size() && text_[at_] == '-') ++at_;
    std::size_t digits = 0;
    while (at_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[at_])) || text_[at_] == '.' ||
            text_[at_] == 'e' || text_[at_] == 'E' || text_[at_] == '+' || text_[at_] == '-')) {
      digits += std::isdigit(static_cast<unsigned char>(text_[at_])) != 0;
      ++at_;
    }
    return at_ > start && digits > 0;
  }
  void skip() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }

  std::string_view text_;
  std::size_t at_ = 0;
};

TEST(JsonChecker, TellsValidFromInvalid) {
  EXPECT_TRUE(JsonChecker(R"({"a":[1,2.5,null,{"b":"c\"d"}],"e":{},"f":[]})").valid());
  EXPECT_FALSE(JsonChecker(R"({"a":[1,2,]})").valid());
  EXPECT_FALSE(JsonChecker(R"({"a":1,})").valid());
  EXPECT_FALSE(JsonChecker(R"({"a":1)").valid());
  EXPECT_FALSE(JsonChecker(R"({"a" 1})").valid());
  EXPECT_FALSE(JsonChecker(R"([nan])").valid());
}

// The JSON text of `field` ("name":VALUE) in `json`, VALUE up to the next , } or ].
std::string field(const std::string& json, const std::string& name, std::size_t from = 0) {
  const std::string key = "\"" + name + "\":";
  const std::size_t at = json.find(key, from);
  if (at == std::string::npos) return "<missing " + name + ">";
  const std::size_t start = at + key.size();
  std::size_t end = start;
  int depth = 0;
  for (; end < json.size(); ++end) {
    const char c = json[end];
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') {
      if (depth == 0) break;
      --depth;
    }
    if (c == ',' && depth == 0) break;
  }
  return json.substr(start, end - start);
}

struct Fixture {
  DashboardHistory history{2};
  shard::ShardTotals a0 = totals_with(10, 4), b0 = totals_with(20, 6);
  shard::ShardTotals a1 = totals_with(15, 5, 1200), b1 = totals_with(40, 6, 80);
  store::SwarmStatistics swarm;
  Fixture() {
    a1.store.seeders = 2;
    a1.store.leechers = 3;
    a1.store.swarms = 1;
    b1.store.seeders = 1;
    b1.store.leechers = 5;
    b1.store.swarms = 2;
    a1.shard.loop_turns_over_1ms = 9;
    a1.gauges.mailbox_depth = 7;
    const DashboardHistory::Sample s0[] = {{0, &a0}, {1, &b0}}, s1[] = {{0, &a1}};
    history.record(3, 3000, s0);
    history.record(4, 4000, s1);  // shard 1 is late for this one
    swarm.info_hash.bytes.fill(0xab);
    swarm.seeders = 3;
    swarm.leechers = 9;
    swarm.completed = 4;
    swarm.window_s = 60;
    swarm.announces_last_window = 600;
    swarm.flags = store::announce_flood | store::leecher_surge;
  }
  DashboardInputs inputs() const {
    DashboardInputs in;
    in.uptime_s = 77;
    in.started_unix_s = 1'700'000'000;
    in.history = &history;
    in.top_by = "announces";
    in.top_count = 5;
    in.top_shards_unanswered = 1;
    in.top = std::span<const store::SwarmStatistics>(&swarm, 1);
    return in;
  }
};

TEST(DashboardJson, IsValidAndItsFieldsEqualTheInputs) {
  const Fixture f;
  const std::string json = dashboard_json(f.inputs());
  ASSERT_TRUE(JsonChecker(json).valid()) << json;
  EXPECT_EQ(field(json, "uptime_s"), "77");
  EXPECT_EQ(field(json, "started_unix_s"), "1700000000");
  EXPECT_EQ(field(json, "shards"), "2");
  EXPECT_EQ(field(json, "shards_unanswered"), "1");
  // Totals: every shard's latest answer (shard 1's from second 3).
  const std::string totals = field(json, "totals");
  EXPECT_EQ(field(totals, "udp_announces"), "35");
  EXPECT_EQ(field(totals, "peers"), "11");
  EXPECT_EQ(field(totals, "seeders"), "2");
  EXPECT_EQ(field(totals, "loop_turn_max_us"), "1200");
  EXPECT_EQ(field(totals, "loop_turns_over_1ms"), "9");
  // Per shard, in shard order.
  const std::string shards = field(json, "per_shard");
  const std::size_t second_shard = shards.find("{\"shard\":1");
  ASSERT_NE(second_shard, std::string::npos);
  EXPECT_EQ(field(shards, "answered"), "true");
  EXPECT_EQ(field(shards, "peers"), "5");
  EXPECT_EQ(field(shards, "leechers"), "3");
  EXPECT_EQ(field(shards, "requests_per_s"), "5.0");
  EXPECT_EQ(field(shards, "loop_turns_over_1ms_per_s"), "9.0");
  EXPECT_EQ(field(shards, "mailbox_depth"), "7");
  EXPECT_EQ(field(shards, "answered", second_shard), "false");
  EXPECT_EQ(field(shards, "peers", second_shard), "6");
  // History: seconds 3 and 4; the first second has no rate yet.
  const std::string history = field(json, "history");
  EXPECT_EQ(field(history, "first"), "3");
  EXPECT_EQ(field(history, "last"), "4");
  EXPECT_EQ(field(history, "seconds_max"), "600");
  EXPECT_EQ(field(history, "udp_announce"), "[null,5.0]");
  EXPECT_EQ(field(history, "peers"), "[10.0,5.0]");
  EXPECT_EQ(field(history, "loop_turn_max_us"), "[0.0,1200.0]");
  // Top swarms.
  const std::string top = field(json, "top");
  EXPECT_EQ(field(top, "by"), "\"announces\"");
  EXPECT_EQ(field(top, "n"), "5");
  EXPECT_EQ(field(top, "shards_unanswered"), "1");
  EXPECT_EQ(field(top, "info_hash"), "\"abababababababababababababababababababab\"");
  EXPECT_EQ(field(top, "peers"), "12");
  EXPECT_EQ(field(top, "announce_rate_per_s"), "10.0000");
  EXPECT_EQ(field(top, "health"), "\"seeded\"");
  EXPECT_EQ(field(top, "flags"), "[\"leecher_surge\",\"announce_flood\"]");
  // Sections not built yet are absent.
  EXPECT_EQ(json.find("\"accounting\""), std::string::npos);
  EXPECT_EQ(json.find("\"cluster\""), std::string::npos);
}

TEST(DashboardJson, SinceGivesOnlyTheNewerSecondsAndOptionalSectionsAppear) {
  const Fixture f;
  DashboardInputs in = f.inputs();
  in.since_second = 3;
  in.accounting_json = R"({"users":3})";
  in.cluster_json = R"({"nodes":2})";
  const std::string json = dashboard_json(in);
  ASSERT_TRUE(JsonChecker(json).valid()) << json;
  const std::string history = field(json, "history");
  EXPECT_EQ(field(history, "first"), "4");
  EXPECT_EQ(field(history, "udp_announce"), "[5.0]");
  EXPECT_EQ(field(json, "accounting"), R"({"users":3})");
  EXPECT_EQ(field(json, "cluster"), R"({"nodes":2})");
  in.since_second = 4;  // nothing newer: empty series, first past last
  const std::string none = dashboard_json(in);
  ASSERT_TRUE(JsonChecker(none).valid()) << none;
  EXPECT_EQ(field(field(none, "history"), "first"), "5");
  EXPECT_EQ(field(field(none, "history"), "peers"), "[]");
}

TEST(DashboardJson, AnEmptyHistoryIsValid) {
  DashboardHistory history(3);
  DashboardInputs in;
  in.history = &history;
  const std::string json = dashboard_json(in);
  ASSERT_TRUE(JsonChecker(json).valid()) << json;
  EXPECT_EQ(field(field(json, "history"), "udp_connect"), "[]");
  EXPECT_EQ(field(json, "shards_unanswered"), "3");
}

TEST(DashboardPage, IsOneSelfContainedDocument) {
  const std::string_view page = dashboard_page();
  EXPECT_EQ(page.substr(0, 15), "<!doctype html>");
  EXPECT_NE(page.find("/dashboard.json"), std::string_view::npos);
  EXPECT_EQ(page.find("http://"), std::string_view::npos);
  EXPECT_EQ(page.find("https://"), std::string_view::npos);
  EXPECT_EQ(page.find("src=\""), std::string_view::npos);  // no external script or image
}

}  // namespace
}  // namespace tyto::app
