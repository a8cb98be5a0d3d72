#include "tyto/app/options.hpp"

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>

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

TEST(ParseOptions, BusyPollIsOffByDefaultAndBounded) {
  EXPECT_EQ(parse_options({}).value().runtime.shard.busy_poll_us, 0u);
  EXPECT_EQ(parse_options({"--busy-poll-us", "50"}).value().runtime.shard.busy_poll_us, 50u);
  EXPECT_FALSE(parse_options({"--busy-poll-us", "100001"}).ok());
  EXPECT_FALSE(parse_options({"--busy-poll-us", "-1"}).ok());
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

TEST(ParseOptions, ClusterSettingsAreCheckedTogether) {
  EXPECT_FALSE(parse_options({}).value().runtime.shard.cluster);
  const auto on = parse_options({"--cluster-nats", "nats://127.0.0.1:4222", "--cluster-nats",
                                 "tls://10.0.0.2:4222", "--cluster-secret-file", "/s",
                                 "--storage-node", "edge-1"});
  ASSERT_TRUE(on.ok()) << on.error();
  EXPECT_TRUE(on.value().runtime.shard.cluster);
  EXPECT_EQ(on.value().cluster.nats.size(), 2u);
  EXPECT_EQ(on.value().cluster.node, "edge-1");  // storage.node's default
  EXPECT_EQ(on.value().cluster.publish_interval_ms, 100u);
  auto error_of = [](std::vector<std::string> arguments) {
    const auto parsed = parse_options(arguments);
    return parsed.ok() ? std::string("accepted") : parsed.error();
  };
  EXPECT_NE(error_of({"--cluster-nats", "nats://127.0.0.1:4222"}).find("secret_file"),
            std::string::npos);
  EXPECT_NE(error_of({"--cluster-nats", "127.0.0.1:4222"}).find("not a NATS URL"),
            std::string::npos);
  EXPECT_NE(error_of({"--cluster-secret-file", "/s"}).find("cluster.nats is empty"),
            std::string::npos);
  EXPECT_NE(error_of({"--cluster-name", "a.b"}).find("letters"), std::string::npos);
  EXPECT_NE(error_of({"--cluster-nats", "nats://h:1", "--cluster-secret-file", "/s",
                      "--cluster-tls-cert-file", "/c"})
                .find("go together"),
            std::string::npos);
  // A private tracker in a cluster: its batch ids carry the cluster's node name by default.
  const auto private_node = parse_options({"--cluster-nats", "nats://h:1", "--cluster-secret-file",
                                           "/s", "--private", "--storage", "sqlite:/tmp/x.db",
                                           "--cluster-node", "node-b"});
  ASSERT_TRUE(private_node.ok()) << private_node.error();
  EXPECT_EQ(private_node.value().storage_node, "node-b");
  const auto named = parse_options({"--cluster-nats", "nats://h:1", "--cluster-secret-file", "/s",
                                    "--storage-node", "db-b", "--cluster-node", "node-b"});
  ASSERT_TRUE(named.ok()) << named.error();
  EXPECT_EQ(named.value().storage_node, "db-b");
  EXPECT_FALSE(parse_options({"--cluster-publish-interval-ms", "5"}).ok());
}

TEST(ConfigFile, ValuesApplyAndFlagsOverrideThem) {
  const char* path = "options_test_config.toml";
  {
    std::ofstream file(path);
    file << "[udp]\nlisten = [\"127.0.0.1:7000\", \"[::1]:7000\"]\n"
            "[announce]\ninterval_s = 600\ninterval_min_s = 60\nnumwant_max = 80\n"
            "[process]\nlog_level = \"debug\"\n";
  }
  const auto from_file = parse_options({"--config", path});
  ASSERT_TRUE(from_file.ok()) << from_file.error();
  const auto& shard = from_file.value().runtime.shard;
  ASSERT_EQ(shard.udp_listeners.size(), 2u);
  EXPECT_EQ(shard.udp_listeners[1].to_string(), "[::1]:7000");
  EXPECT_EQ(shard.announce_interval_s, 600u);
  EXPECT_EQ(shard.store_limits.peer_timeout_s, 2 * 600u + limits::peer_timeout_slack_s);
  EXPECT_EQ(shard.numwant_max, 80u);
  EXPECT_EQ(from_file.value().log_level, log::Level::debug);
  EXPECT_EQ(shard.http_listeners.size(), 2u);  // untouched keys keep their defaults

  const auto overridden =
      parse_options({"--config", path, "--udp", "127.0.0.2:7001", "--interval", "900"});
  ASSERT_TRUE(overridden.ok()) << overridden.error();
  const auto& over = overridden.value().runtime.shard;
  ASSERT_EQ(over.udp_listeners.size(), 1u);  // the flag's list replaces the file's
  EXPECT_EQ(over.udp_listeners[0].to_string(), "127.0.0.2:7001");
  EXPECT_EQ(over.announce_interval_s, 900u);
  EXPECT_EQ(over.numwant_max, 80u);  // the file's value where no flag is given
  EXPECT_EQ(over.announce_interval_min_s, 60u);
  // Unset, the minimum interval is half the interval.
  EXPECT_EQ(parse_options({"--interval", "600"}).value().runtime.shard.announce_interval_min_s,
            300u);

  const auto missing = parse_options({"--config", "/nonexistent/tyto.toml"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("/nonexistent/tyto.toml"), std::string::npos);
  std::remove(path);
}

std::string config_error(const char* text) {
  const auto result = parse_config_text(text, "t.toml");
  return result.ok() ? std::string("accepted") : result.error();
}

TEST(ConfigFile, ErrorsNameTheFileLineAndKey) {
  EXPECT_EQ(config_error("[udp]\nlisten = [\"127.0.0.1:1\"]\nport = 5\n"),
            "t.toml:3: unknown key 'udp.port'");
  EXPECT_EQ(config_error("\n[udpp]\nlisten = []\n"), "t.toml:2: unknown section [udpp]");
  EXPECT_EQ(config_error("[http]\nidle_timeout_s = \"30\"\n"),
            "t.toml:2: http.idle_timeout_s: expected an integer");
  EXPECT_EQ(config_error("[http]\nidle_timeout_s = 0\n"),
            "t.toml:2: http.idle_timeout_s: must be between 1 and 86400");
  EXPECT_EQ(config_error("[announce]\nnumwant_max = -1\n"),
            "t.toml:2: announce.numwant_max: must be between 1 and 200 (got -1)");
  EXPECT_EQ(config_error("[http]\nlisten = [\"localhost\"]\n"),
            "t.toml:2: http.listen: not an address (try 0.0.0.0:6969 or [::]:6969): 'localhost'");
  EXPECT_EQ(config_error("[http]\nlisten = \"0.0.0.0:1\"\n"),
            "t.toml:2: http.listen: expected a list of strings, like [\"a\", \"b\"]");
  EXPECT_EQ(config_error("[access]\nmode = \"greylist\"\n"),
            "t.toml:2: access.mode: 'greylist' is not one of off, whitelist, blacklist, catalogue");
  EXPECT_EQ(config_error("[announce]\ninterval_s = 600\ninterval_min_s = 700\n"),
            "t.toml: announce.interval_min_s (700) is above announce.interval_s (600)");
  EXPECT_EQ(config_error("[access]\nmode = \"whitelist\"\n"),
            "t.toml: access.mode is whitelist but access.file is not set");
  EXPECT_EQ(config_error("[access]\nmode = \"catalogue\"\n"),
            "t.toml: access.mode is catalogue but storage.uri is memory: (sqlite:PATH or "
            "postgresql://...)");
  EXPECT_EQ(config_error("[private]\nenabled = true\n"),
            "t.toml: private.enabled needs a storage.uri that keeps users and accounting "
            "(sqlite:PATH or postgresql://...)");
  EXPECT_EQ(config_error("[storage]\nsync = \"sometimes\"\n"),
            "t.toml:2: storage.sync: 'sometimes' is not one of batch, always");
  EXPECT_EQ(config_error("[process]\nchroot = \"/var/empty\"\n"),
            "t.toml: process.chroot needs process.user (root could leave the chroot)");
  const std::string syntax = config_error("[udp]\nlisten = [\n\n");
  EXPECT_EQ(syntax.rfind("t.toml:", 0), 0u) << syntax;
  EXPECT_FALSE(parse_options({"--interval", "59"}).ok());
  EXPECT_EQ(parse_options({"--interval", "sixty"}).error(), "--interval: not a number: 'sixty'");
}

TEST(ConfigFile, PrintedConfigurationReadsBackTheSame) {
  const auto options =
      parse_options({"--udp", "127.0.0.1:7000", "--trusted-proxy", "10.1.0.0/16", "--metrics",
                     "off", "--access-mode", "blacklist", "--access-list", "/etc/tyto/deny",
                     "--allow-root", "--cores", "0", "--user", "tracker"});
  ASSERT_TRUE(options.ok()) << options.error();
  EXPECT_TRUE(options.value().metrics_listeners.empty());
  EXPECT_TRUE(options.value().allow_root);
  const std::string printed = to_toml(options.value());
  const auto again = parse_config_text(printed, "printed");
  ASSERT_TRUE(again.ok()) << again.error() << "\n" << printed;
  EXPECT_EQ(to_toml(again.value()), printed);
  EXPECT_EQ(again.value().access_mode, AccessMode::blacklist);
  EXPECT_EQ(again.value().runtime.shard.trusted_proxies.at(0).to_string(), "10.1.0.0/16");
}

// The example in tools/ documents every key with its default value.
TEST(ConfigFile, ExampleDocumentsEveryKeyWithItsDefault) {
  std::ifstream file(TYTO_SOURCE_DIR "/tools/tyto.example.toml");
  ASSERT_TRUE(file) << "tools/tyto.example.toml";
  std::ostringstream text;
  text << file.rdbuf();
  const auto example = parse_config_text(text.str(), "tyto.example.toml");
  ASSERT_TRUE(example.ok()) << example.error();
  const auto defaults = parse_options({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(to_toml(example.value()), to_toml(defaults.value()));
  auto keys = [](const toml::table& root) {
    std::set<std::string> names;
    for (const auto& [section, table] : root) {
      for (const auto& [key, value] : *table.as_table()) {
        names.insert(std::string(section.str()) + "." + std::string(key.str()));
      }
    }
    return names;
  };
  EXPECT_EQ(keys(toml::parse(text.str())), keys(toml::parse(to_toml(defaults.value()))));
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
