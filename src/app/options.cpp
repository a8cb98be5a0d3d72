#include "tyto/app/options.hpp"

#include <charconv>

namespace tyto::app {

const char* const usage_text =
    "usage: tyto [--udp ADDR:PORT]... [--http ADDR:PORT]... [--cores LIST] [--udp-send MODE]\n"
    "\n"
    "  --udp ADDR:PORT   UDP listen address, repeatable: 0.0.0.0:6969, [::]:6969, 127.0.0.1:7000.\n"
    "                    Given flags replace the default (0.0.0.0:6969 and [::]:6969).\n"
    "  --http ADDR:PORT  HTTP (TCP) listen address, repeatable; given flags replace the default\n"
    "                    (0.0.0.0:6969 and [::]:6969)\n"
    "  --http-idle-timeout-s N  close idle or stalled HTTP connections after N s (default 30)\n"
    "  --http-connections-max N  open HTTP connections per shard; more are accepted and closed\n"
    "                    at once (default 16384)\n"
    "  --trusted-proxy CIDR  repeatable: HTTP connections from these addresses (10.0.0.0/8,\n"
    "                    ::1, 2001:db8::/32) may name the client: X-Forwarded-For, X-Real-IP\n"
    "                    or the `ip` parameter. From anyone else these are ignored.\n"
    "  --cores LIST      one shard per listed CPU, each pinned: 0-3, 2, 0,2,4-5.\n"
    "                    Default: one shard per CPU this process may use.\n"
    "  --udp-send MODE   sendmmsg (default: one call per socket per loop turn) or uring\n"
    "                    (one SENDMSG SQE per reply)\n"
    "  --quiet           do not print counters at exit\n"
    "  --help, --version\n";

namespace {

Result<std::uint32_t, std::string> parse_u32(const std::string& flag, const std::string& text) {
  std::uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    return Failure{flag + ": not a number: '" + text + "'"};
  }
  return value;
}

}  // namespace

Result<Options, std::string> parse_options(const std::vector<std::string>& arguments) {
  Options options;
  bool udp_given = false;
  bool http_given = false;
  bool cores_given = false;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& flag = arguments[i];
    auto value = [&]() -> const std::string* {
      return i + 1 < arguments.size() ? &arguments[++i] : nullptr;
    };
    if (flag == "--help" || flag == "-h") {
      options.help = true;
    } else if (flag == "--version") {
      options.version = true;
    } else if (flag == "--quiet") {
      options.print_counters = false;
    } else if (flag == "--udp") {
      const std::string* text = value();
      if (text == nullptr) return Failure{std::string("--udp needs ADDR:PORT")};
      const auto address = net::parse_socket_address(*text);
      if (!address)
        return Failure{"--udp: not an address: '" + *text + "' (try 0.0.0.0:6969 or [::]:6969)"};
      if (!udp_given) options.runtime.shard.udp_listeners.clear();
      udp_given = true;
      options.runtime.shard.udp_listeners.push_back(*address);
    } else if (flag == "--http") {
      const std::string* text = value();
      if (text == nullptr) return Failure{std::string("--http needs ADDR:PORT")};
      const auto address = net::parse_socket_address(*text);
      if (!address) {
        return Failure{"--http: not an address: '" + *text + "' (try 0.0.0.0:6969 or [::]:6969)"};
      }
      if (!http_given) options.runtime.shard.http_listeners.clear();
      http_given = true;
      options.runtime.shard.http_listeners.push_back(*address);
    } else if (flag == "--http-idle-timeout-s") {
      const std::string* text = value();
      if (text == nullptr) return Failure{std::string("--http-idle-timeout-s needs seconds")};
      auto seconds = parse_u32(flag, *text);
      if (!seconds.ok()) return Failure{seconds.error()};
      if (seconds.value() == 0) return Failure{std::string("--http-idle-timeout-s: at least 1")};
      options.runtime.shard.http_idle_timeout_s = seconds.value();
    } else if (flag == "--http-connections-max") {
      const std::string* text = value();
      if (text == nullptr) return Failure{std::string("--http-connections-max needs a count")};
      auto count = parse_u32(flag, *text);
      if (!count.ok()) return Failure{count.error()};
      if (count.value() == 0 || count.value() > limits::http_connections_per_shard_max) {
        return Failure{"--http-connections-max: 1.." +
                       std::to_string(limits::http_connections_per_shard_max)};
      }
      options.runtime.shard.http_connections_max = count.value();
    } else if (flag == "--trusted-proxy") {
      const std::string* text = value();
      if (text == nullptr) return Failure{std::string("--trusted-proxy needs CIDR")};
      const auto prefix = net::parse_address_prefix(*text);
      if (!prefix) {
        return Failure{"--trusted-proxy: not an address prefix: '" + *text +
                       "' (try 10.0.0.0/8 or ::1)"};
      }
      if (options.runtime.shard.trusted_proxies.size() == limits::trusted_proxies_max) {
        return Failure{"--trusted-proxy: at most " + std::to_string(limits::trusted_proxies_max)};
      }
      options.runtime.shard.trusted_proxies.push_back(*prefix);
    } else if (flag == "--cores") {
      const std::string* text = value();
      if (text == nullptr) return Failure{std::string("--cores needs a CPU list like 0-3")};
      options.runtime.cores = shard::parse_cpu_list(*text);
      if (options.runtime.cores.empty()) return Failure{"--cores: not a CPU list: '" + *text + "'"};
      cores_given = true;
    } else if (flag == "--udp-send") {
      const std::string* text = value();
      if (text != nullptr && *text == "uring") {
        options.runtime.shard.udp_send_mode = net::UdpSendMode::uring;
      } else if (text != nullptr && *text == "sendmmsg") {
        options.runtime.shard.udp_send_mode = net::UdpSendMode::sendmmsg;
      } else {
        return Failure{std::string("--udp-send: uring or sendmmsg")};
      }
    } else if (flag == "--test-clock-speedup") {
      // Test-only: lets end-to-end tests watch connection ids and peers expire in seconds.
      const std::string* text = value();
      if (text == nullptr) return Failure{std::string("--test-clock-speedup needs a factor")};
      auto factor = parse_u32(flag, *text);
      if (!factor.ok()) return Failure{factor.error()};
      if (factor.value() == 0 || factor.value() > 10000) {
        return Failure{std::string("--test-clock-speedup: 1..10000")};
      }
      options.runtime.shard.clock_speedup = factor.value();
    } else {
      return Failure{"unknown option '" + flag + "' (see --help)"};
    }
  }
  if (!udp_given) {
    options.runtime.shard.udp_listeners = {*net::parse_socket_address("0.0.0.0:6969"),
                                           *net::parse_socket_address("[::]:6969")};
  }
  if (!http_given) {
    options.runtime.shard.http_listeners = {*net::parse_socket_address("0.0.0.0:6969"),
                                            *net::parse_socket_address("[::]:6969")};
  }
  if (!cores_given) options.runtime.cores = shard::allowed_cpus();
  if (options.runtime.cores.size() > shard::Runtime::shards_max) {
    return Failure{std::string("--cores: at most 64 shards")};
  }
  return options;
}

}  // namespace tyto::app
