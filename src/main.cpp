// tyto: wires options, the io_uring check, the shards and signals together.
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tyto/app/access_file.hpp"
#include "tyto/app/ops_server.hpp"
#include "tyto/app/options.hpp"
#include "tyto/app/process.hpp"
#include "tyto/app/snapshot.hpp"
#include "tyto/app/snapshot_writer.hpp"
#include "tyto/app/storage_client.hpp"
#include "tyto/cluster/cluster_client.hpp"
#include "tyto/core/clock.hpp"
#include "tyto/core/log.hpp"
#include "tyto/net/ring.hpp"
#include "tyto/shard/runtime.hpp"

namespace {

void print_counters(const tyto::shard::ShardTotals& totals) {
  for (const auto& row : tyto::shard::counter_rows(totals))
    std::fprintf(stderr, "tyto: counter %s=%" PRIu64 "\n", row.name, row.value);
}

std::string join(const std::vector<tyto::net::SocketAddress>& addresses) {
  std::string text;
  for (const auto& address : addresses) text += (text.empty() ? "" : ", ") + address.to_string();
  return text.empty() ? "nothing" : text;
}

// --help, --version, --print-config: printed, and the process ends.
std::optional<int> print_and_exit(const tyto::app::Options& options) {
  if (options.help) {
    std::fputs(tyto::app::usage_text().c_str(), stdout);
    return 0;
  }
  if (options.version) {
    std::puts("tyto 0.1.0");
    return 0;
  }
  if (options.print_config) {
    std::fputs(tyto::app::to_toml(options).c_str(), stdout);
    return 0;
  }
  return std::nullopt;
}

// Everything checked before a thread starts: the environment, running as root, the access list
// (it must load at start; later a bad file only keeps the previous list), the kernel's io_uring.
// An exit code, or nothing to go on.
std::optional<int> check_before_start(const tyto::app::Options& options,
                                      std::unique_ptr<const tyto::shard::AccessList>& access_list) {
  using tyto::log::Level;
  for (const std::string& problem :
       {tyto::app::check_environment(options), tyto::app::root_refusal(options)}) {
    if (!problem.empty()) {
      tyto::log::write(Level::error, problem);
      return 2;
    }
  }
  if (tyto::app::uses_access_file(options.access_mode)) {
    auto loaded = tyto::app::load_access_list(
        tyto::app::path_before_chroot(options, options.access_list_path), options.access_mode);
    if (!loaded.ok()) {
      tyto::log::write(Level::error, loaded.error());
      return 2;
    }
    access_list = std::move(loaded.value());
  }
  if (options.check_config) {
    TYTO_LOG(Level::info, "configuration is valid");
    return 0;
  }
  if (const std::string problem = tyto::net::io_uring_support_problem(); !problem.empty()) {
    tyto::log::write(Level::error, problem);
    return 1;
  }
  return std::nullopt;
}

// Every HTTP connection is a descriptor: take all the hard limit allows (systemd's default soft
// limit of 1024 would refuse clients long before the connection tables fill).
void raise_open_files_limit() {
  rlimit open_files{};
  if (getrlimit(RLIMIT_NOFILE, &open_files) == 0 && open_files.rlim_cur < open_files.rlim_max) {
    open_files.rlim_cur = open_files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &open_files);
  }
}

// Shard and bridge threads inherit this mask; only the main thread takes SIGINT/SIGTERM/SIGHUP.
sigset_t block_signals() {
  sigset_t handled_signals;
  sigemptyset(&handled_signals);
  sigaddset(&handled_signals, SIGINT);
  sigaddset(&handled_signals, SIGTERM);
  sigaddset(&handled_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &handled_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return handled_signals;
}

void load_snapshot(const tyto::app::Options& options, tyto::shard::Runtime& runtime) {
  using tyto::log::Level;
  if (options.snapshot_path.empty()) return;
  const std::string path = tyto::app::path_before_chroot(options, options.snapshot_path);
  bool missing = false;
  auto snapshot = tyto::app::read_snapshot_file(path, missing);
  if (snapshot.ok()) {
    const std::uint64_t now_unix_s = tyto::unix_time_s();
    const std::uint64_t written_s = snapshot.value().written_unix_s;
    const auto down_s = static_cast<std::uint32_t>(
        now_unix_s > written_s ? std::min<std::uint64_t>(now_unix_s - written_s, UINT32_MAX / 2)
                               : 0);
    TYTO_LOG(Level::info, "snapshot {}: written {} s ago; every peer is aged by that", path,
             down_s);
    runtime.set_snapshot(std::move(snapshot.value().records), down_s);
  } else if (missing) {
    TYTO_LOG(Level::info, "no snapshot at {} yet; starting empty", path);
  } else {
    TYTO_LOG(Level::warning, "snapshot {} refused: {}; starting empty", path, snapshot.error());
  }
}

void save_snapshot(const tyto::app::Options& options, tyto::shard::Runtime& runtime) {
  using tyto::log::Level;
  if (options.snapshot_path.empty()) return;
  tyto::app::SnapshotFile snapshot;
  snapshot.written_unix_s = tyto::unix_time_s();
  snapshot.records = runtime.snapshot_records(snapshot.swarms);
  if (const std::string error = tyto::app::write_snapshot_file(options.snapshot_path, snapshot);
      !error.empty()) {
    TYTO_LOG(Level::error, "snapshot not written: {}", error);
  } else {
    TYTO_LOG(Level::info, "snapshot: {} swarms written to {}", snapshot.swarms,
             options.snapshot_path);
  }
}

// Periodic snapshots (app/snapshot_writer.hpp): with snapshot.path and snapshot.interval_s.
struct PeriodicSnapshots {
  tyto::app::SnapshotStatus status;
  std::unique_ptr<tyto::app::SnapshotWriter> writer;
  tyto::shard::BridgeThread thread;
};

// Once the shards run and privileges are dropped (the path is the one inside a chroot, as for
// the snapshot on stop). Error or "".
std::string start_periodic_snapshots(const tyto::app::Options& options,
                                     tyto::shard::Runtime& runtime, PeriodicSnapshots& snapshots) {
  if (options.snapshot_path.empty() || options.snapshot_interval_s == 0) return {};
  snapshots.writer = std::make_unique<tyto::app::SnapshotWriter>(
      options.snapshot_path, std::chrono::seconds(options.snapshot_interval_s),
      runtime.snapshot_bridge(), runtime.shard_presence(), snapshots.status);
  if (std::string error = snapshots.writer->init(); !error.empty()) return error;
  TYTO_LOG(tyto::log::Level::info, "periodic snapshots to {} every {} s", options.snapshot_path,
           options.snapshot_interval_s);
  return snapshots.thread.start("snapshot",
                                tyto::shard::BridgeThread::doorbell_of(runtime.snapshot_bridge()),
                                *snapshots.writer);
}

// The cluster (README "Cluster"): its key from the secret file, read before anything starts (and
// by --check-config); its client and thread once the shards run.
// Declared after the runtime, so it goes first: the client holds the runtime's bridges.
struct Cluster {
  tyto::cluster::ClusterKey key{};
  std::unique_ptr<tyto::cluster::ClusterClient> client;
  // Private mode: durable accounting baselines, from the storage thread to the cluster's.
  tyto::shard::BaselineHandoff baselines;
  tyto::shard::BridgeThread thread;  // last: stopped before the client goes
};

bool private_cluster(const tyto::app::Options& options) {
  return options.cluster.enabled() && options.runtime.shard.private_tracker.enabled;
}

std::optional<int> load_cluster_secret(tyto::app::Options& options,
                                       tyto::cluster::ClusterKey& cluster_key) {
  if (!options.cluster.enabled()) return std::nullopt;
  std::FILE* file =
      std::fopen(tyto::app::path_before_chroot(options, options.cluster.secret_file).c_str(), "rb");
  if (file == nullptr) {
    TYTO_LOG(tyto::log::Level::error, "cluster.secret_file {}: {}", options.cluster.secret_file,
             std::strerror(errno));
    return 2;
  }
  std::vector<std::uint8_t> secret(tyto::cluster::cluster_secret_size_max + 1);
  secret.resize(std::fread(secret.data(), 1, secret.size(), file));
  std::fclose(file);
  // A trailing newline is not part of a secret written with echo.
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  auto key = tyto::cluster::cluster_key_from_secret(secret);
  if (!key.ok()) {
    TYTO_LOG(tyto::log::Level::error, "cluster.secret_file {}: {}", options.cluster.secret_file,
             key.error());
    return 2;
  }
  cluster_key = key.value();
  options.runtime.shard_key_seed = tyto::cluster::cluster_shard_seed(cluster_key);
  options.runtime.connection_id_key = tyto::cluster::cluster_connection_id_key(cluster_key);
  return std::nullopt;
}

std::string start_cluster(const tyto::app::Options& options, Cluster& cluster,
                          tyto::shard::Runtime& runtime) {
  if (!options.cluster.enabled()) return {};
  tyto::cluster::ClusterClientConfig config;
  config.servers = options.cluster.nats;
  config.node = options.cluster.node;
  config.name = options.cluster.name;
  config.key = cluster.key;
  config.publish_interval = std::chrono::milliseconds(options.cluster.publish_interval_ms);
  config.frame = runtime.time_frame();
  config.credentials_file = options.cluster.credentials_file;
  config.tls_ca_file = options.cluster.tls_ca_file;
  config.tls_cert_file = options.cluster.tls_cert_file;
  config.tls_key_file = options.cluster.tls_key_file;
  cluster.client = std::make_unique<tyto::cluster::ClusterClient>(
      std::move(config), runtime.cluster_bridge(), runtime.cluster_snapshot_bridge(),
      runtime.shard_presence(),
      [&runtime](const tyto::InfoHash& info_hash) { return runtime.owner_of(info_hash); },
      private_cluster(options) ? &cluster.baselines : nullptr);
  if (std::string error = cluster.client->init(); !error.empty()) return "cluster: " + error;
  return cluster.thread.start("cluster", cluster.client->doorbell(), *cluster.client);
}

// The storage backend and what the private tracker starts from (README "Private tracker").
struct Storage {
  std::unique_ptr<tyto::store::Backend> backend;  // null: nothing to store
  tyto::store::CatalogueRows catalogue;
  std::vector<tyto::store::Baseline> baselines;
  std::vector<tyto::store::CompletionCount> completions;  // README "Completed counts"
  std::unique_ptr<tyto::app::StorageClient> client;
  tyto::shard::BridgeThread thread;
};

// storage.journal: "" beside an SQLite file, none for other stores; "off" none.
std::string journal_path(const tyto::app::Options& options) {
  if (options.storage_journal == "off") return {};
  if (!options.storage_journal.empty()) return options.storage_journal;
  if (!options.storage_uri.starts_with("sqlite:")) return {};
  const std::size_t query = options.storage_uri.find('?');
  return options.storage_uri.substr(7, query == std::string::npos ? query : query - 7) +
         ".tyto-journal";
}

// The persisted completed counts, with what the storage journal will add to them, for the
// shards (README "Completed counts"). Error text or "".
std::string load_completions(const tyto::app::Options& options, Storage& storage) {
  auto completions = storage.backend->load_completions();
  if (!completions.ok()) return completions.error();
  storage.completions = std::move(completions.value());
  const std::string journal = journal_path(options);
  if (journal.empty()) return {};
  std::vector<tyto::store::Baseline> unused;
  if (std::string error = tyto::app::overlay_journal_baselines(journal, *storage.backend, unused,
                                                               &storage.completions);
      !error.empty()) {
    return "storage journal: " + error;
  }
  return {};
}

// Opens the backend and applies its migrations (all --migrate does); loads the persisted
// completed counts, and in private mode (or with access.mode = "catalogue") the catalogue and
// the persisted baselines for the shards. An exit code, or nothing to go on.
std::optional<int> open_storage(const tyto::app::Options& options, Storage& storage,
                                tyto::shard::Runtime& runtime) {
  using tyto::log::Level;
  const bool private_mode = options.runtime.shard.private_tracker.enabled;
  const bool catalogue_mode = private_mode || options.runtime.shard.catalogue_whitelist;
  if (!catalogue_mode && !options.migrate && options.storage_uri == "memory:") return std::nullopt;
  auto opened = tyto::store::open_backend(options.storage_uri);
  if (!opened.ok()) {
    tyto::log::write(Level::error, "storage: " + opened.error());
    return 2;
  }
  storage.backend = std::move(opened.value());
  if (std::string error = storage.backend->migrate(); !error.empty()) {
    tyto::log::write(Level::error, "storage " + storage.backend->describe() + ": " + error);
    return 1;
  }
  if (options.migrate) {
    TYTO_LOG(Level::info, "storage {}: schema up to date", storage.backend->describe());
    return 0;
  }
  if (options.runtime.shard.completions_persisted) {
    if (std::string error = load_completions(options, storage); !error.empty()) {
      tyto::log::write(Level::error, "storage " + storage.backend->describe() + ": " + error);
      return 1;
    }
    runtime.set_completions(storage.completions);
  }
  if (!catalogue_mode) {
    TYTO_LOG(Level::info,
             "public tracker on {}: it keeps each torrent's completed count ({} held, {} rows "
             "refused)",
             storage.backend->describe(), storage.completions.size(),
             storage.backend->rows_refused());
    return std::nullopt;
  }
  auto catalogue = storage.backend->load_catalogue();
  using Baselines = decltype(storage.backend->load_baselines());
  auto baselines = !catalogue.ok() ? Baselines(tyto::Failure{std::string("not read")})
                   : private_mode  ? storage.backend->load_baselines()
                                   : Baselines(std::vector<tyto::store::Baseline>{});
  if (!catalogue.ok() || !baselines.ok()) {
    tyto::log::write(Level::error, "storage " + storage.backend->describe() + ": " +
                                       (catalogue.ok() ? baselines.error() : catalogue.error()));
    return 1;
  }
  storage.catalogue = std::move(catalogue.value());
  storage.baselines = std::move(baselines.value());
  const std::string journal = journal_path(options);
  if (!journal.empty()) {
    if (std::string error =
            tyto::app::overlay_journal_baselines(journal, *storage.backend, storage.baselines);
        !error.empty()) {
      tyto::log::write(Level::error, "storage journal: " + error);
      return 1;
    }
  }
  TYTO_LOG(Level::info,
           "{} on {}: {} users, {} torrents, {} client rules, {} peer baselines, {} completed "
           "counts ({} rows refused)",
           private_mode ? "private tracker" : "public tracker of registered torrents",
           storage.backend->describe(), storage.catalogue.users.size(),
           storage.catalogue.torrents.size(), storage.catalogue.client_rules.size(),
           storage.baselines.size(), storage.completions.size(), storage.backend->rows_refused());
  runtime.set_catalogue(&storage.catalogue, storage.baselines);
  return std::nullopt;
}

// The storage bridge's thread, once the shards run. Error or "".
std::string start_storage(const tyto::app::Options& options, Storage& storage, Cluster& cluster,
                          tyto::shard::Runtime& runtime) {
  const bool catalogue =
      options.runtime.shard.private_tracker.enabled || options.runtime.shard.catalogue_whitelist;
  if (!catalogue && !options.runtime.shard.completions_persisted) return {};
  tyto::app::StorageClientConfig config;
  config.node = options.storage_node;
  config.journal_path = journal_path(options);
  config.catalogue = catalogue;
  if (private_cluster(options)) {
    config.arbitrate = true;
    config.arbitrate_window_s = options.runtime.shard.store_limits.peer_timeout_s;
    config.baselines = &cluster.baselines;
  }
  storage.client = std::make_unique<tyto::app::StorageClient>(
      config, *storage.backend, runtime.storage_bridge(), runtime.shard_presence(),
      [&runtime](const tyto::InfoHash& info_hash) { return runtime.owner_of(info_hash); });
  if (std::string error = storage.client->init(storage.catalogue); !error.empty()) return error;
  // The shards copied their part; the bridge keeps its own mirror.
  storage.catalogue = {};
  storage.baselines = {};
  storage.completions = {};
  return storage.thread.start(
      "storage", tyto::shard::BridgeThread::doorbell_of(runtime.storage_bridge()), *storage.client);
}

// After the shards stopped: every accounting delta and completion count still in the bridge or
// the shards is written (10 s at most; what is left of the deltas is re-derived by each peer's
// next announce, what is left of the completions is lost and logged).
void stop_storage(Storage& storage, tyto::shard::Runtime& runtime) {
  if (storage.client == nullptr) return;
  storage.thread.stop();
  runtime.storage_bridge().release_bridge_side();
  runtime.take_ledger_deltas([&](std::uint32_t shard, const tyto::store::AccountingDelta& delta) {
    storage.client->take(shard, delta);
    return true;
  });
  runtime.take_completions(
      [&](std::uint32_t shard, const tyto::store::CompletionDelta& completion) {
        storage.client->take_completion(shard, completion);
        return true;
      });
  storage.client->finish(tyto::app::StorageClient::Clock::now() + std::chrono::seconds(10));
}

// The shards, then the ops server, then (every socket bound) privileges dropped. Error or "".
std::string start(const tyto::app::Options& options, tyto::shard::Runtime& runtime,
                  tyto::app::OpsServer& ops, Storage& storage, Cluster& cluster) {
  if (std::string error = runtime.start(); !error.empty()) return error;
  if (std::string error = start_storage(options, storage, cluster, runtime); !error.empty()) {
    runtime.stop();
    return error;
  }
  if (storage.client != nullptr) ops.set_storage_status(&storage.client->status());
  if (std::string error = start_cluster(options, cluster, runtime); !error.empty()) {
    runtime.stop();
    return error;
  }
  if (cluster.client != nullptr) ops.set_cluster_status(&cluster.client->status());
  if (std::string error = ops.start(); !error.empty()) {
    runtime.stop();
    return error;
  }
  if (const auto restored = runtime.restored(); restored.swarms > 0) {
    TYTO_LOG(tyto::log::Level::info, "snapshot: restored {} swarms with {} peers", restored.swarms,
             restored.peers);
  }
  if (std::string error = tyto::app::drop_privileges(options); !error.empty()) {
    ops.stop();
    cluster.thread.stop();
    runtime.stop();
    return "dropping privileges: " + error;
  }
  TYTO_LOG(tyto::log::Level::info, "{} shards on CPUs {}; UDP on {}; HTTP on {}; metrics on {}{}{}",
           runtime.shards_count(), fmt::join(options.runtime.cores, ","),
           join(options.runtime.shard.udp_listeners), join(options.runtime.shard.http_listeners),
           join(options.metrics_listeners), options.user.empty() ? "" : "; running as ",
           options.user);
  return {};
}

// The main thread's loop until SIGINT or SIGTERM (returned): SIGHUP and a look at the access list
// file once a second reload the list.
int wait_for_stop(const tyto::app::Options& options, tyto::shard::Runtime& runtime,
                  const sigset_t& handled_signals) {
  using tyto::log::Level;
  tyto::app::FileWatch access_file(options.access_list_path);
  if (tyto::app::uses_access_file(options.access_mode)) access_file.changed();  // records
  auto reload_access_list = [&](const char* why) {
    auto loaded = tyto::app::load_access_list(options.access_list_path, options.access_mode);
    if (!loaded.ok()) {
      TYTO_LOG(Level::warning, "{}: keeping the previous access list: {}", why, loaded.error());
      return;
    }
    const std::size_t size = loaded.value()->size();
    // Returns once every shard uses the new list (5 s at most), so the log line below is true.
    runtime.set_access_list(std::move(loaded.value()));
    TYTO_LOG(Level::info, "{}: access list reloaded: {} info_hashes", why, size);
  };
  for (;;) {
    const timespec one_second{1, 0};
    const int signal_number = sigtimedwait(&handled_signals, nullptr, &one_second);
    if (signal_number == SIGINT || signal_number == SIGTERM) return signal_number;
    if (!tyto::app::uses_access_file(options.access_mode)) continue;
    if (signal_number == SIGHUP) {
      access_file.changed();  // a reload now covers any change seen so far
      reload_access_list("SIGHUP");
    } else if (access_file.changed()) {
      reload_access_list("access list file changed");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  using tyto::log::Level;
  std::vector<std::string> arguments(argv + 1, argv + argc);
  auto parsed = tyto::app::parse_options(arguments);
  if (!parsed.ok()) {
    tyto::log::write(Level::error, parsed.error());
    return 2;
  }
  tyto::app::Options& options = parsed.value();
  if (const auto code = print_and_exit(options)) return *code;
  tyto::log::set_level(options.log_level);
  tyto::cluster::ClusterKey cluster_key{};
  if (const auto code = load_cluster_secret(options, cluster_key)) return *code;
  std::unique_ptr<const tyto::shard::AccessList> access_list;
  if (const auto code = check_before_start(options, access_list)) return *code;
  raise_open_files_limit();
  const sigset_t handled_signals = block_signals();

  tyto::shard::Runtime runtime(options.runtime);
  Cluster cluster;
  cluster.key = cluster_key;
  if (access_list != nullptr) {
    TYTO_LOG(Level::info, "access list: {} info_hashes ({}) from {}", access_list->size(),
             access_list->whitelist() ? "whitelist" : "blacklist", options.access_list_path);
  }
  runtime.set_access_list(std::move(access_list));
  load_snapshot(options, runtime);
  Storage storage;
  if (const auto code = open_storage(options, storage, runtime)) return *code;
  tyto::app::OpsServer ops(options, runtime);
  PeriodicSnapshots snapshots;
  if (!options.snapshot_path.empty() && options.snapshot_interval_s > 0) {
    ops.set_snapshot_status(&snapshots.status);
  }
  if (const std::string error = start(options, runtime, ops, storage, cluster); !error.empty()) {
    tyto::log::write(Level::error, error);
    return 1;
  }
  if (const std::string error = start_periodic_snapshots(options, runtime, snapshots);
      !error.empty()) {
    tyto::log::write(Level::error, "periodic snapshots: " + error);
    ops.stop();
    runtime.stop();
    return 1;
  }
  const int signal_number = wait_for_stop(options, runtime, handled_signals);
  TYTO_LOG(Level::info, "{}, stopping", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  ops.stop();
  snapshots.thread.stop();  // a periodic snapshot under way is abandoned: the one below replaces it
  cluster.thread.stop();    // what it had not published yet the other nodes learn from re-announces
  runtime.stop();           // drains what is in flight
  if (snapshots.writer != nullptr) snapshots.writer->discard_pieces();
  if (cluster.client != nullptr) cluster.client->finish();
  stop_storage(storage, runtime);
  save_snapshot(options, runtime);
  if (options.print_counters) {
    print_counters(runtime.totals());
    if (snapshots.writer != nullptr) {
      for (const auto& row : snapshots.status.rows()) {
        std::fprintf(stderr, "tyto: counter snapshot_%s=%" PRIu64 "\n", row.name, row.value);
      }
    }
    if (cluster.client != nullptr) {
      for (const auto& row : cluster.client->status().rows()) {
        std::fprintf(stderr, "tyto: counter cluster_%s=%" PRIu64 "\n", row.name, row.value);
      }
    }
  }
  return 0;
}
