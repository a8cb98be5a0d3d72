#include "tyto/app/options.hpp"

#include <gtest/gtest.h>

namespace tyto::app {
namespace {

TEST(ParseOptions, DefaultsListenOnBothFamiliesAndEveryAllowedCpu) {
  const auto options = parse_options({});
  ASSERT_TRUE(options.ok());
  const auto& listeners = options.value().runtime.shard.udp_listeners;
  ASSERT_EQ(listeners.size(), 2u);
  EXPECT_EQ(listeners[0].to_string(), "0.0.0.0:6969");
  EXPECT_EQ(listeners[1].to_string(), "[::]:6969");
  EXPECT_EQ(options.value().runtime.cores, shard::allowed_cpus());
}

TEST(ParseOptions, GivenUdpFlagsReplaceTheDefaults) {
  const auto options =
      parse_options({"--udp", "127.0.0.1:7000", "--udp", "[::1]:7001", "--cores", "1"});
  ASSERT_TRUE(options.ok());
  const auto& listeners = options.value().runtime.shard.udp_listeners;
  ASSERT_EQ(listeners.size(), 2u);
  EXPECT_EQ(listeners[0].to_string(), "127.0.0.1:7000");
  EXPECT_EQ(listeners[1].to_string(), "[::1]:7001");
  EXPECT_EQ(options.value().runtime.cores, std::vector<int>{1});
}

TEST(ParseOptions, ErrorsSayWhatIsWrong) {
  const auto bad_udp = parse_options({"--udp", "localhost"});
  ASSERT_FALSE(bad_udp.ok());
  EXPECT_NE(bad_udp.error().find("--udp"), std::string::npos);
  EXPECT_FALSE(parse_options({"--udp"}).ok());
  EXPECT_FALSE(parse_options({"--cores", "3-1"}).ok());
  EXPECT_FALSE(parse_options({"--frobnicate"}).ok());
  EXPECT_FALSE(parse_options({"--test-clock-speedup", "0"}).ok());
}

TEST(ParseOptions, UdpSendModeDefaultsToSendmmsg) {
  EXPECT_EQ(parse_options({}).value().runtime.shard.udp_send_mode, net::UdpSendMode::sendmmsg);
  EXPECT_EQ(parse_options({"--udp-send", "uring"}).value().runtime.shard.udp_send_mode,
            net::UdpSendMode::uring);
  EXPECT_FALSE(parse_options({"--udp-send", "carrier-pigeon"}).ok());
}

TEST(ParseOptions, HttpListenersLimitsAndTrustedProxies) {
  const auto defaults = parse_options({});
  ASSERT_TRUE(defaults.ok());
  const auto& shard = defaults.value().runtime.shard;
  ASSERT_EQ(shard.http_listeners.size(), 2u);
  EXPECT_EQ(shard.http_listeners[1].to_string(), "[::]:6969");
  EXPECT_EQ(shard.http_connections_max, 16384u);
  EXPECT_TRUE(shard.trusted_proxies.empty());
  const auto given = parse_options({"--http", "127.0.0.1:8080", "--http-connections-max", "100",
                                    "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1"});
  ASSERT_TRUE(given.ok());
  const auto& configured = given.value().runtime.shard;
  ASSERT_EQ(configured.http_listeners.size(), 1u);
  EXPECT_EQ(configured.http_connections_max, 100u);
  ASSERT_EQ(configured.trusted_proxies.size(), 2u);
  EXPECT_EQ(configured.trusted_proxies[0].length_bits, 8u);
  EXPECT_FALSE(parse_options({"--http-connections-max", "0"}).ok());
  EXPECT_FALSE(parse_options({"--http-connections-max", "99999999"}).ok());
  EXPECT_FALSE(parse_options({"--trusted-proxy", "10.0.0.0/40"}).ok());
  EXPECT_FALSE(parse_options({"--http", "nowhere"}).ok());
}

TEST(ParseCpuList, RangesAndLists) {
  EXPECT_EQ(shard::parse_cpu_list("0-3"), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(shard::parse_cpu_list("2"), (std::vector<int>{2}));
  EXPECT_EQ(shard::parse_cpu_list("0,2,4-5"), (std::vector<int>{0, 2, 4, 5}));
  EXPECT_TRUE(shard::parse_cpu_list("").empty());
  EXPECT_TRUE(shard::parse_cpu_list("a").empty());
  EXPECT_TRUE(shard::parse_cpu_list("1-").empty());
  EXPECT_TRUE(shard::parse_cpu_list("-1").empty());
}

}  // namespace
}  // namespace tyto::app
