// StorageClient: the private tracker's storage bridge thread (DESIGN §9). It owns the storage
// backend (store/backend.hpp) and is the only thread that calls it once the tracker runs. Each
// turn of its poll loop (shard/bridge_thread.hpp) it
//  - takes the shards' accounting deltas from the storage bridge and sums them per shard and
//    per (user, torrent, peer_id) (credits and times added, never replaced; baseline and flags
//    the latest);
//  - every flush interval writes each shard's sums as one batch with the id (node, shard,
//    sequence), in one transaction: a batch that failed is kept whole and retried with the
//    same id (so it is applied once even if its commit went through unseen), with back-off,
//    while new deltas gather for the next one; with a storage journal, a batch that failed is
//    also appended to it (fsync'd), so a crash while the database is away loses nothing;
//  - a delta with a durability ticket (storage.sync = "always": a `stopped` whose reply its
//    shard holds) is written at once, not at the next interval, and the ticket is confirmed to
//    the shard as soon as its batch is committed or journalled;
//  - sums the shards' completions per shard and per info_hash and writes them in the same
//    batches (tyto_completions), so they share the batches' exactly-once and journal;
//  - polls the catalogue's changes (not in public mode without access.mode = "catalogue") (and
//  reloads it whole every reload interval, as a safety net),
//    keeps a mirror of it and sends each change to the shards that hold the row: users and
//    client rules to every shard, a torrent to its owner. What a full queue refuses waits, in
//    order, in that shard's outbox.
// Bounds: at most backlog_rows_max summed rows are held here; past that the client stops taking
// deltas, which then stay summed in the shards' ledgers (nothing is dropped anywhere; the
// backlog and the age of the oldest unwritten delta are exported for alarms).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "tyto/app/accounting_journal.hpp"
#include "tyto/app/pending_deltas.hpp"
#include "tyto/shard/bridge_thread.hpp"
#include "tyto/shard/cluster_bridge.hpp"
#include "tyto/shard/counters.hpp"
#include "tyto/shard/storage_bridge.hpp"
#include "tyto/shard/waker.hpp"
#include "tyto/store/backend.hpp"

namespace tyto::app {

struct StorageClientConfig {
  std::string node;          // this tracker's name in batch ids
  std::string journal_path;  // "" = no journal
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds changes_poll_interval{1000};
  std::chrono::seconds reload_interval{300};
  // A batch is written once a second, or early when this many rows wait. SQLite's WAL writes
  // every page a batch dirties whole, and random keys dirty about a page per row per table
  // until a batch holds more rows than the tables have pages: 20 000 wrote ~5.7 KB per row
  // (the writer fell behind at 28 k rows/s), 100 000+ ~3.6 KB. Bounded: the transaction holds
  // SQLite's write lock, which the site's own writes wait for (busy_timeout).
  std::size_t batch_rows_max = 100000;
  std::size_t backlog_rows_max = 1u << 20;
  // Whether the shards hold a catalogue copy to keep up to date (private mode, or public with
  // access.mode = "catalogue"); false: the client only writes batches.
  bool catalogue = true;
  // A private tracker in a cluster (README "Cluster"): batches are arbitrated against the stored
  // baselines (AccountingBatch::arbitrate), and each durable batch's baselines are handed to the
  // cluster thread here, to travel with their peers.
  bool arbitrate = false;
  std::uint32_t arbitrate_window_s = 0;  // AccountingBatch::arbitrate_window_s (the peer timeout)
  shard::BaselineHandoff* baselines = nullptr;
};

// What the client did, for /metrics and /stats (read by other threads: relaxed atomics).
struct StorageStatus {
  std::atomic<std::uint64_t> batches_written{0};
  std::atomic<std::uint64_t> batches_already_applied{0};
  std::atomic<std::uint64_t> batch_failures{0};
  std::atomic<std::uint64_t> rows_written{0};
  std::atomic<std::uint64_t> backlog_rows{0};
  std::atomic<std::uint64_t> oldest_unwritten_s{0};
  std::atomic<std::uint64_t> catalogue_changes{0};
  std::atomic<std::uint64_t> catalogue_reloads{0};
  std::atomic<std::uint64_t> catalogue_failures{0};
  std::atomic<std::uint64_t> batches_journalled{0};
  std::atomic<std::uint64_t> journal_bytes{0};
  std::atomic<std::uint64_t> tickets_confirmed{0};
  // The backend's own (store::BackendStatus: SQLite's WAL checkpointer; 0 on the others).
  std::atomic<std::uint64_t> wal_checkpoints{0};
  std::atomic<std::uint64_t> wal_checkpoint_failures{0};
  std::atomic<std::uint64_t> wal_bytes{0};
  std::atomic<std::uint64_t> wal_bytes_max{0};
  std::atomic<std::uint64_t> wal_over_bound{0};

  // Every field, named for /metrics (tyto_storage_NAME), /stats and the dashboard.
  // Every field as a row (shard/counters.hpp), as the shards' counters are exported.
  std::vector<shard::CounterRow> rows() const;
};

class StorageClient final : public shard::BridgeThread::Client {
 public:
  using Clock = shard::BridgeThread::Clock;
  using OwnerOf = std::function<std::uint32_t(const InfoHash&)>;

  StorageClient(StorageClientConfig config, store::Backend& backend, shard::StorageBridge& bridge,
                std::span<shard::Presence> shards, OwnerOf owner_of);

  // Before the thread starts: the catalogue as loaded (the shards start from the same rows),
  // each shard's next batch sequence from the backend, and the journal: what an earlier run left
  // in it is written first (its own ids). Error text or "".
  std::string init(const store::CatalogueRows& loaded);

  void watch(std::vector<pollfd>& polled, Clock::time_point& wake_at) override;
  void turn(std::span<const pollfd> polled) override;

  // Once the thread and the shards stopped: takes what the queues hold, sums `delta` given by
  // the caller (Runtime::take_ledger_deltas), and writes everything, retrying until `deadline`.
  // Returns the rows left unwritten (logged).
  void take(std::uint32_t shard, const store::AccountingDelta& delta, std::uint64_t ticket = 0);
  // The same for a completion count (Runtime::take_completions).
  void take_completion(std::uint32_t shard, const store::CompletionDelta& completion);
  std::size_t finish(Clock::time_point deadline);

  const StorageStatus& status() const noexcept { return status_; }

 private:
  // A batch formed and not yet committed, with the tickets waiting on it.
  struct InFlight {
    store::AccountingBatch batch;
    std::vector<std::uint64_t> tickets;
    bool journalled = false;
    bool baselines_handed = false;  // to the cluster (config_.baselines), once durable
  };
  struct ShardState {
    explicit ShardState(const HashSecret& secret) : pending(secret) {}
    PendingDeltas pending;  // summed per key; a batch takes them in key order
    std::map<InfoHash, std::uint64_t> completions;  // pending too: counts summed per torrent
    std::vector<std::uint64_t> pending_tickets;
    std::deque<InFlight> in_flight;  // oldest first; each written in order
    std::uint64_t next_sequence = 1;
    std::deque<shard::StorageToShard> outbox;
    Clock::time_point oldest_pending{};  // when the oldest row of pending or in_flight came
  };

  void receive_deltas();
  void receive(std::uint32_t shard, const shard::StorageFromShard& message);
  void note_pending(ShardState& state);
  void write_batches(Clock::time_point now, bool force);
  void form_batch(std::uint32_t shard, ShardState& state);
  bool write_one(std::uint32_t shard, InFlight& in_flight);
  void make_durable(std::uint32_t shard, InFlight& in_flight);
  void confirm(std::uint32_t shard, InFlight& in_flight);
  void hand_baselines(std::uint32_t shard, InFlight& durable);
  void poll_catalogue(Clock::time_point now);
  void apply_change(const store::CatalogueChange& change);
  void reload_catalogue();
  void send_changes();
  void to_all(const store::CatalogueChange& change);
  void update_status(Clock::time_point now);

  StorageClientConfig config_;
  store::Backend& backend_;
  shard::StorageBridge& bridge_;
  std::span<shard::Presence> shards_;
  OwnerOf owner_of_;
  shard::Waker waker_;
  std::vector<ShardState> states_;
  std::deque<InFlight> recovered_;  // from the journal at start, written before anything else
  AccountingJournal journal_;
  std::size_t backlog_rows_ = 0;
  bool urgent_ = false;  // a ticket waits: write now
  std::size_t rows_freed_ = 0;  // rows of batches written since the heap was last collected
  // The mirror: what the shards hold, to route removals and diff reloads.
  std::unordered_map<std::uint64_t, store::UserRow> users_;
  std::unordered_map<std::uint64_t, store::TorrentRow> torrents_;
  std::map<std::string, store::ClientRuleRow> client_rules_;
  std::vector<store::CatalogueChange> changes_;  // reused
  std::vector<shard::ReplicaBaseline> baselines_;  // reused
  Clock::time_point next_flush_at_{};
  Clock::time_point next_poll_at_{};
  Clock::time_point next_reload_at_{};
  Clock::time_point retry_at_{};
  std::chrono::milliseconds retry_backoff_{0};
  StorageStatus status_;
};

}  // namespace tyto::app
