#include "tyto/app/options.hpp"

#include <fmt/ranges.h>
#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace tyto::app {
namespace {

// One setting: its TOML key, its flag, and how a value is checked, applied and printed.
enum class Kind { text, text_list, integer, boolean };

struct Value {
  std::string text;
  std::vector<std::string> list;
  std::uint64_t integer = 0;
  bool boolean = false;
};

struct Setting {
  const char* key;         // TOML "section.name"
  const char* flag;        // command line
  const char* value_name;  // in the usage text
  Kind kind;
  std::uint64_t min;  // integers only, inclusive
  std::uint64_t max;
  const char* help;
  std::string (*apply)(Options&, const Value&);  // "" or the reason the value is wrong
  Value (*print)(const Options&);
};

template <class Item, class Parse>
std::string parse_list(const Value& value, std::vector<Item>& out, Parse parse, const char* hint) {
  std::vector<Item> parsed;
  for (const std::string& text : value.list) {
    const auto item = parse(text);
    if (!item) return "not " + std::string(hint) + ": '" + text + "'";
    parsed.push_back(*item);
  }
  out = std::move(parsed);
  return {};
}

template <class Item>
Value print_list(const std::vector<Item>& items) {
  Value value;
  for (const Item& item : items) value.list.push_back(item.to_string());
  return value;
}

Value text_value(std::string text) {
  Value value;
  value.text = std::move(text);
  return value;
}

Value integer_value(std::uint64_t integer) {
  Value value;
  value.integer = integer;
  return value;
}

const char* const address_hint = "an address (try 0.0.0.0:6969 or [::]:6969)";
const char* const prefix_hint = "an address prefix (try 10.0.0.0/8 or ::1)";

constexpr const char* log_level_names[] = {"error", "warning", "info", "debug"};
constexpr const char* access_mode_names[] = {"off", "whitelist", "blacklist", "catalogue"};
constexpr const char* udp_steering_names[] = {"hash", "info_hash"};  // net::UdpSteering

template <class Enum, std::size_t N>
std::string parse_name(const Value& value, const char* const (&names)[N], Enum& out) {
  for (std::size_t i = 0; i < N; ++i) {
    if (value.text == names[i]) {
      out = static_cast<Enum>(i);
      return {};
    }
  }
  std::string choices;
  for (const char* name : names) choices += (choices.empty() ? "" : ", ") + std::string(name);
  return "'" + value.text + "' is not one of " + choices;
}

const Setting settings[] = {
    {"udp.listen", "--udp", "ADDR:PORT", Kind::text_list, 0, 0,
     "UDP listen addresses, repeatable (default 0.0.0.0:6969 and [::]:6969)",
     [](Options& o, const Value& v) {
       return parse_list(v, o.runtime.shard.udp_listeners, net::parse_socket_address, address_hint);
     },
     [](const Options& o) { return print_list(o.runtime.shard.udp_listeners); }},
    {"udp.steering", "--udp-steering", "MODE", Kind::text, 0, 0,
     "with several shards, which shard a datagram reaches: hash (the kernel's 4-tuple hash) or "
     "info_hash (a BPF program sends each announce to the shard owning its swarm)",
     [](Options& o, const Value& v) {
       return parse_name(v, udp_steering_names, o.runtime.shard.udp_steering);
     },
     [](const Options& o) {
       return text_value(udp_steering_names[static_cast<int>(o.runtime.shard.udp_steering)]);
     }},
    {"http.listen", "--http", "ADDR:PORT", Kind::text_list, 0, 0,
     "HTTP (TCP) listen addresses, repeatable (default 0.0.0.0:6969 and [::]:6969)",
     [](Options& o, const Value& v) {
       return parse_list(v, o.runtime.shard.http_listeners, net::parse_socket_address,
                         address_hint);
     },
     [](const Options& o) { return print_list(o.runtime.shard.http_listeners); }},
    {"http.idle_timeout_s", "--http-idle-timeout-s", "S", Kind::integer, 1, 86400,
     "close idle or stalled HTTP connections after S seconds (default 30)",
     [](Options& o, const Value& v) {
       o.runtime.shard.http_idle_timeout_s = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.http_idle_timeout_s); }},
    {"http.connections_max", "--http-connections-max", "N", Kind::integer, 1,
     limits::http_connections_per_shard_max,
     "open HTTP connections per shard; more are accepted and closed at once (default 16384)",
     [](Options& o, const Value& v) {
       o.runtime.shard.http_connections_max = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.http_connections_max); }},
    {"http.trusted_proxies", "--trusted-proxy", "CIDR", Kind::text_list, 0, 0,
     "repeatable: HTTP peers (10.0.0.0/8, ::1) that may name the client with X-Forwarded-For, "
     "X-Real-IP or `ip`; from anyone else these are ignored",
     [](Options& o, const Value& v) {
       if (v.list.size() > limits::trusted_proxies_max) {
         return "at most " + std::to_string(limits::trusted_proxies_max) + " prefixes";
       }
       return parse_list(v, o.runtime.shard.trusted_proxies, net::parse_address_prefix,
                         prefix_hint);
     },
     [](const Options& o) { return print_list(o.runtime.shard.trusted_proxies); }},
    {"announce.interval_s", "--interval", "S", Kind::integer, 60, 86400,
     "announce interval told to clients (default 1800); peers expire after 2 x S + 300 s",
     [](Options& o, const Value& v) {
       o.runtime.shard.announce_interval_s = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.announce_interval_s); }},
    {"announce.interval_min_s", "--interval-min", "S", Kind::integer, 0, 86400,
     "minimum announce interval, at most the interval; 0 (default) = half the interval",
     [](Options& o, const Value& v) {
       o.runtime.shard.announce_interval_min_s = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.announce_interval_min_s); }},
    {"announce.numwant_default", "--numwant-default", "N", Kind::integer, 1, limits::numwant_max,
     "peers given when the client does not say (default 50)",
     [](Options& o, const Value& v) {
       o.runtime.shard.numwant_default = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.numwant_default); }},
    {"announce.numwant_max", "--numwant-max", "N", Kind::integer, 1, limits::numwant_max,
     "most peers one announce gets (default 200)",
     [](Options& o, const Value& v) {
       o.runtime.shard.numwant_max = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.numwant_max); }},
    {"limits.swarms_per_shard_max", "--swarms-per-shard-max", "N", Kind::integer, 1, 1u << 28,
     "swarms one shard holds; announces for more are refused and counted (default 8388608)",
     [](Options& o, const Value& v) {
       o.runtime.shard.store_limits.swarms_max = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.store_limits.swarms_max); }},
    {"limits.peers_per_swarm_max", "--peers-per-swarm-max", "N", Kind::integer, 1,
     limits::peers_per_swarm_max,
     "peers one swarm holds; new peers beyond are refused and counted (default 1048576)",
     [](Options& o, const Value& v) {
       o.runtime.shard.store_limits.peers_per_swarm_max = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) {
       return integer_value(o.runtime.shard.store_limits.peers_per_swarm_max);
     }},
    {"limits.completed_keep_s", "--completed-keep-s", "S", Kind::integer, 0, 365 * 86400,
     "how long a swarm whose last peer left keeps its completed count, as an empty record "
     "counted against the swarm cap; 0: dropped with the last peer (default 604800, 7 days)",
     [](Options& o, const Value& v) {
       o.runtime.shard.store_limits.completed_keep_s = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.store_limits.completed_keep_s); }},
    {"limits.completions_per_shard_max", "--completions-per-shard-max", "N", Kind::integer, 1,
     1 << 30,
     "torrents whose completed count one shard keeps when storage.uri persists them (32 bytes "
     "each, 20 more allocated per torrent of this limit at start); beyond, a new torrent's "
     "completions are not persisted (counted) (default 262144)",
     [](Options& o, const Value& v) {
       o.runtime.shard.completions_max = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.completions_max); }},
    {"runtime.cores", "--cores", "LIST", Kind::text, 0, 0,
     "one shard per listed CPU, each pinned: 0-3, 2, 0,2,4-5 (default: every CPU allowed)",
     [](Options& o, const Value& v) {
       if (v.text.empty()) {
         o.runtime.cores.clear();  // every allowed CPU, decided once all values are in
         return std::string();
       }
       o.runtime.cores = shard::parse_cpu_list(v.text);
       if (o.runtime.cores.empty()) return "not a CPU list: '" + v.text + "' (try 0-3)";
       if (o.runtime.cores.size() > shard::Runtime::shards_max) return std::string("at most 64");
       return std::string();
     },
     [](const Options& o) {
       return text_value(fmt::format("{}", fmt::join(o.runtime.cores, ",")));
     }},
    {"runtime.udp_send", "--udp-send", "MODE", Kind::text, 0, 0,
     "sendmmsg (one call per socket per loop turn, default) or uring (one SENDMSG SQE per reply)",
     [](Options& o, const Value& v) {
       if (v.text == "sendmmsg") {
         o.runtime.shard.udp_send_mode = net::UdpSendMode::sendmmsg;
       } else if (v.text == "uring") {
         o.runtime.shard.udp_send_mode = net::UdpSendMode::uring;
       } else {
         return "'" + v.text + "' is not one of sendmmsg, uring";
       }
       return std::string();
     },
     [](const Options& o) {
       return text_value(o.runtime.shard.udp_send_mode == net::UdpSendMode::uring ? "uring"
                                                                                  : "sendmmsg");
     }},
    {"runtime.busy_poll_us", "--busy-poll-us", "US", Kind::integer, 0, 100000,
     "after a loop turn with work, keep polling (no sleep) for US microseconds: lower latency "
     "at moderate load for some CPU (default 0: sleep at once)",
     [](Options& o, const Value& v) {
       o.runtime.shard.busy_poll_us = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.runtime.shard.busy_poll_us); }},
    {"process.user", "--user", "NAME", Kind::text, 0, 0,
     "after binding, drop to this user and its groups",
     [](Options& o, const Value& v) {
       o.user = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.user); }},
    {"process.chroot", "--chroot", "DIR", Kind::text, 0, 0,
     "after binding, chroot to this absolute directory (needs --user)",
     [](Options& o, const Value& v) {
       if (!v.text.empty() && v.text.front() != '/') return std::string("not an absolute path");
       o.chroot_dir = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.chroot_dir); }},
    {"process.allow_root", "--allow-root", "", Kind::boolean, 0, 0,
     "keep running as root when no user is given (refused otherwise)",
     [](Options& o, const Value& v) {
       o.allow_root = v.boolean;
       return std::string();
     },
     [](const Options& o) {
       Value value;
       value.boolean = o.allow_root;
       return value;
     }},
    {"process.log_level", "--log-level", "LEVEL", Kind::text, 0, 0,
     "error, warning, info (default) or debug",
     [](Options& o, const Value& v) { return parse_name(v, log_level_names, o.log_level); },
     [](const Options& o) {
       return text_value(log_level_names[static_cast<std::size_t>(o.log_level)]);
     }},
    {"snapshot.path", "--snapshot-path", "FILE", Kind::text, 0, 0,
     "on SIGTERM (and every snapshot.interval_s) write every swarm here; on start load it "
     "(default: none)",
     [](Options& o, const Value& v) {
       o.snapshot_path = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.snapshot_path); }},
    {"snapshot.interval_s", "--snapshot-interval-s", "S", Kind::integer, 0, 7 * 86400,
     "with snapshot.path: also write a snapshot every S seconds while running, in the "
     "background (a crash loses at most S seconds of swarms); 0: only on stop (default 300)",
     [](Options& o, const Value& v) {
       o.snapshot_interval_s = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.snapshot_interval_s); }},
    {"metrics.listen", "--metrics", "ADDR:PORT", Kind::text_list, 0, 0,
     "/metrics and /stats listen addresses, repeatable; 'off' for none (default 127.0.0.1:6970)",
     [](Options& o, const Value& v) {
       if (v.list.size() == 1 && v.list[0] == "off") {
         o.metrics_listeners.clear();
         return std::string();
       }
       return parse_list(v, o.metrics_listeners, net::parse_socket_address, address_hint);
     },
     [](const Options& o) { return print_list(o.metrics_listeners); }},
    {"metrics.allow", "--metrics-allow", "CIDR", Kind::text_list, 0, 0,
     "repeatable: who may read /metrics and /stats (default 127.0.0.0/8 and ::1)",
     [](Options& o, const Value& v) {
       return parse_list(v, o.metrics_allow, net::parse_address_prefix, prefix_hint);
     },
     [](const Options& o) { return print_list(o.metrics_allow); }},
    {"storage.uri", "--storage", "URI", Kind::text, 0, 0,
     "the storage backend: memory: (default, nothing persisted), sqlite:PATH (one file) or a "
     "PostgreSQL URI (postgresql://...)",
     [](Options& o, const Value& v) {
       o.storage_uri = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.storage_uri); }},
    {"storage.node", "--storage-node", "NAME", Kind::text, 0, 0,
     "this tracker's name in accounting batch ids, unique among trackers writing one database "
     "(default: the host name)",
     [](Options& o, const Value& v) {
       if (v.text.size() > 64) return std::string("at most 64 characters");
       o.storage_node = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.storage_node); }},
    {"storage.sync", "--storage-sync", "MODE", Kind::text, 0, 0,
     "batch (default): a stopped announce is answered at once, its last delta written with the "
     "next batch; always: answered only once that delta is committed or in the storage journal",
     [](Options& o, const Value& v) {
       if (v.text != "batch" && v.text != "always") {
         return "'" + v.text + "' is not one of batch, always";
       }
       o.runtime.shard.private_tracker.sync_always = v.text == "always";
       return std::string();
     },
     [](const Options& o) {
       return text_value(o.runtime.shard.private_tracker.sync_always ? "always" : "batch");
     }},
    {"storage.journal", "--storage-journal", "FILE", Kind::text, 0, 0,
     "where accounting batches the database does not have yet are made durable: \"\" (default) "
     "beside an SQLite file (PATH.tyto-journal), none for PostgreSQL; \"off\" for none",
     [](Options& o, const Value& v) {
       o.storage_journal = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.storage_journal); }},
    {"cluster.nats", "--cluster-nats", "URL", Kind::text_list, 0, 0,
     "repeatable: NATS servers of the cluster (nats://HOST:PORT or tls://HOST:PORT); set, every "
     "swarm is shared with the cluster's other nodes (README \"Cluster\")",
     [](Options& o, const Value& v) {
       for (const std::string& url : v.list) {
         if (!url.starts_with("nats://") && !url.starts_with("tls://")) {
           return "not a NATS URL: '" + url + "' (try nats://127.0.0.1:4222)";
         }
       }
       o.cluster.nats = v.list;
       return std::string();
     },
     [](const Options& o) {
       Value value;
       value.list = o.cluster.nats;
       return value;
     }},
    {"cluster.node", "--cluster-node", "NAME", Kind::text, 0, 0,
     "this node's name, unique in the cluster (default: storage.node, the host name)",
     [](Options& o, const Value& v) {
       if (v.text.size() > 64) return std::string("at most 64 characters");
       o.cluster.node = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.cluster.node); }},
    {"cluster.name", "--cluster-name", "NAME", Kind::text, 0, 0,
     "the cluster's name: its NATS subjects are tyto.NAME.* (default tyto; letters, digits, - "
     "and _)",
     [](Options& o, const Value& v) {
       const bool valid =
           !v.text.empty() && v.text.size() <= 64 &&
           std::all_of(v.text.begin(), v.text.end(), [](char c) {
             return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
           });
       if (!valid) return "'" + v.text + "': 1 to 64 letters, digits, - or _";
       o.cluster.name = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.cluster.name); }},
    {"cluster.secret_file", "--cluster-secret-file", "FILE", Kind::text, 0, 0,
     "the cluster secret, the same file on every node: at least 32 random bytes (e.g. 64 hex "
     "characters); batches are authenticated with it and UDP connection ids made from it",
     [](Options& o, const Value& v) {
       o.cluster.secret_file = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.cluster.secret_file); }},
    {"cluster.publish_interval_ms", "--cluster-publish-interval-ms", "MS", Kind::integer, 10, 1000,
     "how often each node publishes what its announces changed (default 100)",
     [](Options& o, const Value& v) {
       o.cluster.publish_interval_ms = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) { return integer_value(o.cluster.publish_interval_ms); }},
    {"cluster.credentials_file", "--cluster-credentials-file", "FILE", Kind::text, 0, 0,
     "NATS credentials (a .creds file with the user JWT and seed), passed to libnats",
     [](Options& o, const Value& v) {
       o.cluster.credentials_file = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.cluster.credentials_file); }},
    {"cluster.tls_ca_file", "--cluster-tls-ca-file", "FILE", Kind::text, 0, 0,
     "TLS to the NATS servers: the CA certificates to trust (PEM)",
     [](Options& o, const Value& v) {
       o.cluster.tls_ca_file = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.cluster.tls_ca_file); }},
    {"cluster.tls_cert_file", "--cluster-tls-cert-file", "FILE", Kind::text, 0, 0,
     "TLS to the NATS servers: this node's certificate chain (PEM), with cluster.tls_key_file",
     [](Options& o, const Value& v) {
       o.cluster.tls_cert_file = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.cluster.tls_cert_file); }},
    {"cluster.tls_key_file", "--cluster-tls-key-file", "FILE", Kind::text, 0, 0,
     "TLS to the NATS servers: this node's private key (PEM)",
     [](Options& o, const Value& v) {
       o.cluster.tls_key_file = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.cluster.tls_key_file); }},
    {"private.enabled", "--private", "", Kind::boolean, 0, 0,
     "private tracker: announces need a user's passkey in the URL, only registered torrents are "
     "served, and every user's transfer is accounted in the storage backend",
     [](Options& o, const Value& v) {
       o.runtime.shard.private_tracker.enabled = v.boolean;
       return std::string();
     },
     [](const Options& o) {
       Value value;
       value.boolean = o.runtime.shard.private_tracker.enabled;
       return value;
     }},
    {"private.peers_per_user_torrent_max", "--peers-per-user-torrent-max", "N", Kind::integer, 1,
     1000, "active peers one user may have in one torrent; more are refused (default 3)",
     [](Options& o, const Value& v) {
       o.runtime.shard.private_tracker.ledger.peers_per_user_torrent_max =
           static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) {
       return integer_value(o.runtime.shard.private_tracker.ledger.peers_per_user_torrent_max);
     }},
    {"private.peers_per_shard_max", "--private-peers-per-shard-max", "N", Kind::integer, 1024,
     1u << 30,
     "peers one shard accounts for (about 150 bytes each, reserved at start); new peers beyond "
     "are refused (default 1048576)",
     [](Options& o, const Value& v) {
       o.runtime.shard.private_tracker.ledger.peers_max = static_cast<std::uint32_t>(v.integer);
       return std::string();
     },
     [](const Options& o) {
       return integer_value(o.runtime.shard.private_tracker.ledger.peers_max);
     }},
    {"access.mode", "--access-mode", "MODE", Kind::text, 0, 0,
     "off (default), whitelist (only listed info_hashes), blacklist (all but listed) or "
     "catalogue (only the storage backend's registered torrents, tyto_torrents)",
     [](Options& o, const Value& v) { return parse_name(v, access_mode_names, o.access_mode); },
     [](const Options& o) {
       return text_value(access_mode_names[static_cast<std::size_t>(o.access_mode)]);
     }},
    {"access.file", "--access-list", "FILE", Kind::text, 0, 0,
     "info_hashes, 40 hex digits per line, # comments; reloaded on SIGHUP and when it changes",
     [](Options& o, const Value& v) {
       o.access_list_path = v.text;
       return std::string();
     },
     [](const Options& o) { return text_value(o.access_list_path); }},
};

const Setting* find_setting_by_key(std::string_view key) {
  for (const Setting& setting : settings) {
    if (key == setting.key) return &setting;
  }
  return nullptr;
}

bool is_section(std::string_view name) {
  for (const Setting& setting : settings) {
    const std::string_view key = setting.key;
    if (key.size() > name.size() && key.substr(0, name.size()) == name && key[name.size()] == '.')
      return true;
  }
  return false;
}

std::string check_range(const Setting& setting, std::uint64_t integer) {
  if (integer < setting.min || integer > setting.max) {
    return "must be between " + std::to_string(setting.min) + " and " + std::to_string(setting.max);
  }
  return {};
}

Options defaults() {
  Options options;
  auto& shard = options.runtime.shard;
  shard.udp_listeners = {*net::parse_socket_address("0.0.0.0:6969"),
                         *net::parse_socket_address("[::]:6969")};
  shard.http_listeners = shard.udp_listeners;
  shard.announce_interval_min_s = 0;  // half the interval unless set
  options.metrics_listeners = {*net::parse_socket_address("127.0.0.1:6970")};
  options.metrics_allow = {*net::parse_address_prefix("127.0.0.0/8"),
                           *net::parse_address_prefix("::1")};
  return options;
}

// Rules between settings, once every value is in.
std::string finish(Options& options) {
  auto& shard = options.runtime.shard;
  if (options.runtime.cores.empty()) options.runtime.cores = shard::allowed_cpus();
  if (options.runtime.cores.size() > shard::Runtime::shards_max) {
    return "runtime.cores: at most 64 shards";
  }
  if (shard.announce_interval_min_s == 0)
    shard.announce_interval_min_s = shard.announce_interval_s / 2;
  if (shard.announce_interval_min_s > shard.announce_interval_s) {
    return "announce.interval_min_s (" + std::to_string(shard.announce_interval_min_s) +
           ") is above announce.interval_s (" + std::to_string(shard.announce_interval_s) + ")";
  }
  if (shard.numwant_default > shard.numwant_max) {
    return "announce.numwant_default (" + std::to_string(shard.numwant_default) +
           ") is above announce.numwant_max (" + std::to_string(shard.numwant_max) + ")";
  }
  shard.store_limits.peer_timeout_s = 2 * shard.announce_interval_s + limits::peer_timeout_slack_s;
  shard.store_limits.statistics_window_s = shard.announce_interval_s;
  shard.private_tracker.ledger.peer_timeout_s = shard.store_limits.peer_timeout_s;
  if (options.storage_uri.empty()) return "storage.uri is empty (memory: is the default)";
  if (shard.private_tracker.enabled && options.storage_uri == "memory:") {
    return "private.enabled needs a storage.uri that keeps users and accounting "
           "(sqlite:PATH or postgresql://...)";
  }
  // Completed counts persist in any store that keeps anything (README "Completed counts").
  shard.completions_persisted = options.storage_uri != "memory:";
  const bool storage_node_given = !options.storage_node.empty();
  if (!storage_node_given) {
    char host[256] = {};
    options.storage_node = gethostname(host, sizeof host - 1) == 0 && host[0] != 0 ? host : "tyto";
  }
  if (options.cluster.enabled()) {
    if (options.cluster.secret_file.empty()) {
      return "cluster.nats is set but cluster.secret_file is not (every node needs the same "
             "secret)";
    }
    if (options.cluster.node.empty()) options.cluster.node = options.storage_node;
    if (options.cluster.node.size() > 64) options.cluster.node.resize(64);
    // Accounting batch ids must differ between nodes writing to one database: a node named for
    // the cluster is named so there too, unless storage.node says otherwise.
    if (!storage_node_given) options.storage_node = options.cluster.node;
    if ((options.cluster.tls_cert_file.empty()) != (options.cluster.tls_key_file.empty())) {
      return "cluster.tls_cert_file and cluster.tls_key_file go together";
    }
    options.runtime.shard.cluster = true;
  } else if (!options.cluster.secret_file.empty() || !options.cluster.credentials_file.empty()) {
    return "cluster.* is set but cluster.nats is empty";
  }
  if (options.access_mode == AccessMode::catalogue) {
    if (!options.access_list_path.empty()) {
      return "access.mode is catalogue (the storage's tyto_torrents): access.file must be empty";
    }
    if (options.storage_uri == "memory:") {
      return "access.mode is catalogue but storage.uri is memory: (sqlite:PATH or "
             "postgresql://...)";
    }
    shard.catalogue_whitelist = true;
  }
  if (uses_access_file(options.access_mode) && options.access_list_path.empty()) {
    return "access.mode is " + std::string(access_mode_names[int(options.access_mode)]) +
           " but access.file is not set";
  }
  if (options.access_mode == AccessMode::off && !options.access_list_path.empty()) {
    return "access.file is set but access.mode is off (whitelist or blacklist?)";
  }
  if (!options.chroot_dir.empty() && options.user.empty()) {
    return "process.chroot needs process.user (root could leave the chroot)";
  }
  if (shard.udp_listeners.empty() && shard.http_listeners.empty()) {
    return "no UDP and no HTTP listener";
  }
  return {};
}

// Reads one TOML value of the setting's kind; "" or what is wrong with it.
std::string read_toml_value(const Setting& setting, const toml::node& node, Value& value) {
  switch (setting.kind) {
    case Kind::text:
      if (!node.is_string()) return "expected a string";
      value.text = **node.as_string();
      return {};
    case Kind::text_list: {
      const toml::array* array = node.as_array();
      if (array == nullptr) return "expected a list of strings, like [\"a\", \"b\"]";
      for (const toml::node& item : *array) {
        if (!item.is_string()) return "expected a list of strings, like [\"a\", \"b\"]";
        value.list.push_back(**item.as_string());
      }
      return {};
    }
    case Kind::integer: {
      if (!node.is_integer()) return "expected an integer";
      const std::int64_t integer = **node.as_integer();
      if (integer < 0) return check_range(setting, 0) + " (got " + std::to_string(integer) + ")";
      value.integer = static_cast<std::uint64_t>(integer);
      return check_range(setting, value.integer);
    }
    case Kind::boolean:
      if (!node.is_boolean()) return "expected true or false";
      value.boolean = **node.as_boolean();
      return {};
  }
  return "unsupported";
}

std::string apply_table(Options& options, const toml::table& table, const std::string& prefix,
                        std::string_view file_name) {
  for (const auto& [name, node] : table) {
    const std::string key =
        prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
    const std::string where =
        std::string(file_name) + ":" + std::to_string(node.source().begin.line) + ": ";
    if (const toml::table* section = node.as_table()) {
      if (!is_section(key)) return where + "unknown section [" + key + "]";
      if (auto problem = apply_table(options, *section, key, file_name); !problem.empty())
        return problem;
      continue;
    }
    const Setting* setting = find_setting_by_key(key);
    if (setting == nullptr) return where + "unknown key '" + key + "'";
    Value value;
    std::string problem = read_toml_value(*setting, node, value);
    if (problem.empty()) problem = setting->apply(options, value);
    if (!problem.empty()) return where + key + ": " + problem;
  }
  return {};
}

std::string apply_toml(Options& options, std::string_view text, std::string_view file_name) {
  try {
    const toml::table root = toml::parse(text, file_name);
    return apply_table(options, root, "", file_name);
  } catch (const toml::parse_error& error) {
    return std::string(file_name) + ":" + std::to_string(error.source().begin.line) + ": " +
           std::string(error.description());
  }
}

// The command line's raw values, one slot per setting (CLI11 writes into them while parsing,
// so they are sized once), and the flags that are not settings.
struct CommandLine {
  std::vector<std::string> texts = std::vector<std::string>(std::size(settings));
  std::vector<std::vector<std::string>> lists =
      std::vector<std::vector<std::string>>(std::size(settings));
  std::vector<CLI::Option*> flags = std::vector<CLI::Option*>(std::size(settings));
  Options meta;  // config_path, help, version, print_config, check_config
  std::uint32_t clock_speedup = 1;
  bool quiet = false;
};

void add_setting_flags(CLI::App& app, CommandLine& line) {
  for (std::size_t i = 0; i < std::size(settings); ++i) {
    const Setting& setting = settings[i];
    switch (setting.kind) {
      case Kind::text:
      case Kind::integer:  // checked in apply_flags, so the range message is the file's
        line.flags[i] = app.add_option(setting.flag, line.texts[i])
                            ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        break;
      case Kind::text_list:
        line.flags[i] = app.add_option(setting.flag, line.lists[i]);
        break;
      case Kind::boolean:
        line.flags[i] = app.add_flag(setting.flag);
        break;
    }
  }
}

void add_meta_flags(CLI::App& app, CommandLine& line) {
  app.add_option("--config", line.meta.config_path);
  app.add_flag("--help,-h", line.meta.help);
  app.add_flag("--version", line.meta.version);
  app.add_flag("--print-config", line.meta.print_config);
  app.add_flag("--check-config", line.meta.check_config);
  app.add_flag("--migrate", line.meta.migrate);
  app.add_flag("--quiet", line.quiet);
  // Test-only: the shard clock runs this many times faster, so end-to-end tests can watch
  // connection ids and peers expire in seconds.
  app.add_option("--test-clock-speedup", line.clock_speedup)
      ->check(CLI::Range(1, 10000))
      ->group("");
}

std::string apply_config_file(Options& options, const std::string& path) {
  std::ifstream file(path);
  if (!file) return "cannot read config file " + path + ": " + std::strerror(errno);
  std::ostringstream text;
  text << file.rdbuf();
  return apply_toml(options, text.str(), path);
}

// Applies the settings given on the command line, over the config file's; "" or what is wrong.
std::string apply_flags(Options& options, const CommandLine& line) {
  for (std::size_t i = 0; i < std::size(settings); ++i) {
    const Setting& setting = settings[i];
    if (line.flags[i]->count() == 0) continue;
    const std::string& text = line.texts[i];
    Value value;
    value.text = text;
    value.list = line.lists[i];
    value.boolean = true;
    std::string problem;
    if (setting.kind == Kind::integer) {
      const char* end = text.data() + text.size();
      const auto [stop, error] = std::from_chars(text.data(), end, value.integer);
      problem = error != std::errc{} || stop != end ? "not a number: '" + text + "'"
                                                    : check_range(setting, value.integer);
    }
    if (problem.empty()) problem = setting.apply(options, value);
    if (!problem.empty()) return std::string(setting.flag) + ": " + problem;
  }
  return {};
}

// The flags that are not settings, once the settings are valid.
void take_meta(Options& options, const CommandLine& line) {
  options.runtime.shard.clock_speedup = line.clock_speedup;
  options.config_path = line.meta.config_path;
  options.help = line.meta.help;
  options.version = line.meta.version;
  options.print_config = line.meta.print_config;
  options.check_config = line.meta.check_config;
  options.migrate = line.meta.migrate;
  options.print_counters = !line.quiet;
}

}  // namespace

Result<Options, std::string> parse_config_text(std::string_view text, std::string_view file_name) {
  Options options = defaults();
  if (std::string problem = apply_toml(options, text, file_name); !problem.empty())
    return Failure{problem};
  if (std::string problem = finish(options); !problem.empty())
    return Failure{std::string(file_name) + ": " + problem};
  return options;
}

Result<Options, std::string> parse_options(const std::vector<std::string>& arguments) {
  CLI::App app("tyto");
  app.set_help_flag();  // our usage text, our exit
  CommandLine line;
  add_setting_flags(app, line);
  add_meta_flags(app, line);
  try {
    std::vector<std::string> reversed(arguments.rbegin(), arguments.rend());
    app.parse(reversed);
  } catch (const CLI::ParseError& error) {
    return Failure{std::string(error.what()) + " (see --help)"};
  }
  Options options = defaults();
  if (!line.meta.config_path.empty()) {
    if (std::string problem = apply_config_file(options, line.meta.config_path); !problem.empty())
      return Failure{problem};
  }
  if (std::string problem = apply_flags(options, line); !problem.empty()) return Failure{problem};
  if (std::string problem = finish(options); !problem.empty()) return Failure{problem};
  take_meta(options, line);
  return options;
}

std::string to_toml(const Options& options) {
  toml::table root;
  for (const Setting& setting : settings) {
    const std::string_view key = setting.key;
    const auto dot = key.find('.');
    const std::string section(key.substr(0, dot));
    const std::string name(key.substr(dot + 1));
    if (!root.contains(section)) root.insert(section, toml::table{});
    toml::table& table = *root[section].as_table();
    const Value value = setting.print(options);
    switch (setting.kind) {
      case Kind::text:
        table.insert(name, value.text);
        break;
      case Kind::text_list: {
        toml::array array;
        for (const std::string& item : value.list) array.push_back(item);
        table.insert(name, std::move(array));
        break;
      }
      case Kind::integer:
        table.insert(name, static_cast<std::int64_t>(value.integer));
        break;
      case Kind::boolean:
        table.insert(name, value.boolean);
        break;
    }
  }
  std::ostringstream out;
  out << root << '\n';
  return out.str();
}

std::string usage_text() {
  std::string text =
      "usage: tyto [--config FILE] [flags]\n"
      "\n"
      "Flags override the config file's values; a list flag given replaces the file's list.\n"
      "  --config FILE        TOML configuration (see tools/tyto.example.toml)\n"
      "  --print-config       print the effective configuration as TOML and exit\n"
      "  --check-config       validate the configuration and exit (0 when valid)\n"
      "  --migrate            apply the storage backend's schema migrations and exit\n"
      "  --quiet              do not print counters at exit\n"
      "  --help, --version\n";
  for (const Setting& setting : settings) {
    text += std::string("  ") + setting.flag;
    if (setting.kind != Kind::boolean) text += std::string(" ") + setting.value_name;
    text += std::string("    [") + setting.key + "]\n      " + setting.help + "\n";
  }
  return text;
}

}  // namespace tyto::app
