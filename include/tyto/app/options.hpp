// Configuration: a TOML file (--config FILE) and command-line flags that override it. Every
// setting is declared once (its TOML key, its flag, its range) and both sources go through the
// same checks, so a value the file accepts the flag accepts too. Parsing is pure: it returns the
// options or the reason they are wrong ("FILE:LINE: key: reason" for the file, "--flag: reason"
// for flags); nothing starts half-configured.
#pragma once

#include <string>
#include <vector>

#include "tyto/core/log.hpp"
#include "tyto/core/result.hpp"
#include "tyto/net/address.hpp"
#include "tyto/shard/runtime.hpp"

namespace tyto::app {

// whitelist, blacklist: info_hashes in access.file; catalogue: the storage backend's registered
// torrents (tyto_torrents) are the whitelist.
enum class AccessMode { off, whitelist, blacklist, catalogue };
inline bool uses_access_file(AccessMode mode) noexcept {
  return mode == AccessMode::whitelist || mode == AccessMode::blacklist;
}

struct Options {
  shard::RuntimeConfig runtime;
  // Process hygiene.
  std::string user;        // drop to this user after binding ("" = stay)
  std::string chroot_dir;  // chroot there after binding ("" = none)
  bool allow_root = false;
  log::Level log_level = log::Level::info;
  std::string snapshot_path;  // "" = no snapshot on stop, none loaded at start
  // With snapshot_path: a periodic snapshot every this many seconds (0 = only on stop).
  std::uint32_t snapshot_interval_s = 300;
  // Operations endpoints (/metrics, /stats...), answered only to metrics_allow.
  std::vector<net::SocketAddress> metrics_listeners;
  std::vector<net::AddressPrefix> metrics_allow;
  // Info-hash access list.
  AccessMode access_mode = AccessMode::off;
  std::string access_list_path;
  // Storage backend (store/backend.hpp) and this tracker's name in its accounting batches.
  std::string storage_uri = "memory:";
  std::string storage_node;  // "" until finished: the host name
  // The storage journal (app/accounting_journal.hpp): "" = beside an SQLite file
  // (PATH.tyto-journal), none for other stores; "off" = none.
  std::string storage_journal;
  // Cluster (README "Cluster"; cluster/cluster_client.hpp): off while `nats` is empty.
  struct Cluster {
    std::vector<std::string> nats;  // NATS server URLs
    std::string node;               // "" until finished: storage.node
    std::string name = "tyto";
    std::string secret_file;
    std::uint32_t publish_interval_ms = 100;
    std::string credentials_file;
    std::string tls_ca_file;
    std::string tls_cert_file;
    std::string tls_key_file;
    bool enabled() const noexcept { return !nats.empty(); }
  };
  Cluster cluster;

  // What this invocation does rather than configures (command line only).
  std::string config_path;
  bool help = false;
  bool version = false;
  bool print_config = false;   // print the effective configuration as TOML and exit
  bool check_config = false;   // validate and exit
  bool migrate = false;        // apply the storage backend's migrations and exit
  bool print_counters = true;  // counters on stderr at exit
};

// argv without the program name. Reads the --config file if one is given.
Result<Options, std::string> parse_options(const std::vector<std::string>& arguments);

// The configuration file's text alone (tests, and --config): defaults, then the file's values.
// `file_name` only labels errors.
Result<Options, std::string> parse_config_text(std::string_view text, std::string_view file_name);

// The effective configuration as TOML that parse_config_text accepts back.
std::string to_toml(const Options& options);

std::string usage_text();

}  // namespace tyto::app
