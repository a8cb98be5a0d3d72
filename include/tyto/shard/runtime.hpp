// Runtime: starts one pinned thread per shard, wires their mailboxes, stops them on request.
// Start-up order (each shard creates its ring on its own thread, SINGLE_ISSUER):
//   1. every shard thread opens its ring and sockets; 2. all wait until every shard opened
//   (so mailboxes and ring fds are ready); 3. loops run until stop().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tyto/shard/shard.hpp"

namespace tyto::shard {

struct RuntimeConfig {
  ShardConfig shard;
  std::vector<int> cores;  // one shard per entry, pinned to that CPU
  // Cluster: keys every node shares (cluster/replication_batch.hpp derives them from the
  // cluster secret), so nodes with as many shards own each swarm in the same shard and accept
  // each other's UDP connection ids. Unset: random per process.
  std::optional<std::uint64_t> shard_key_seed;
  std::optional<std::array<std::uint8_t, proto::ConnectionIds::key_size>> connection_id_key;
};

class Runtime {
 public:
  static constexpr std::uint32_t shards_max = shard::shards_max;

  explicit Runtime(RuntimeConfig config);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Opens every shard; on failure stops what started and returns the reason.
  std::string start();
  // Asks every shard to stop and wakes it; then joins. Idempotent.
  void stop();
  // After stop(): every shard's counters added up.
  ShardTotals totals() const;
  std::uint32_t shards_count() const noexcept { return static_cast<std::uint32_t>(shards_.size()); }
  // Replaces the info-hash access list (null: none). Before start(): kept for it. While running
  // (from one thread, the main one): shards use the new list from their next loop turn; the old
  // one is freed once every shard has moved past it (sleeping shards are woken; a list that
  // could still be in use after 5 s is kept, never freed under a reader).
  void set_access_list(std::unique_ptr<const AccessList> list);

  // Before start(): snapshot records (app/snapshot.hpp) for the shards to restore, each its own
  // swarms, with every peer aged by extra_age_s. The records are released once started.
  void set_snapshot(std::vector<std::uint8_t> records, std::uint32_t extra_age_s);
  struct Restored {
    std::uint64_t swarms = 0;
    std::uint64_t peers = 0;
  };
  Restored restored() const noexcept;

  // Private tracker, before start(): the catalogue and the persisted baselines, which each shard
  // copies its part of while starting. The caller keeps them alive until start() returns.
  void set_catalogue(const store::CatalogueRows* rows, std::span<const store::Baseline> baselines);
  // Before start(), when completed counts are persisted: the counts loaded from the store,
  // which each shard takes its part of while starting. Kept alive by the caller until start()
  // returns.
  void set_completions(std::span<const store::CompletionCount> completions);
  // The storage bridge (storage_bridge.hpp), for its one bridge thread, after start() in
  // private mode, catalogue whitelist mode, or when completed counts are persisted.
  StorageBridge& storage_bridge() noexcept { return directory_->storage; }
  // After stop(): every accounting delta still summed in a shard, to
  // give(shard, const store::AccountingDelta&) -> bool (see Ledger::flush).
  template <class Give>
  std::size_t take_ledger_deltas(Give&& give) {
    std::size_t taken = 0;
    for (std::uint32_t i = 0; i < shards_.size(); ++i) {
      taken += shards_[i]->take_ledger_deltas(
          [&](const store::AccountingDelta& delta, std::uint64_t) { return give(i, delta); });
    }
    return taken;
  }
  // After stop(): every completion count still summed in a shard, to
  // give(shard, const store::CompletionDelta&) -> bool.
  template <class Give>
  std::size_t take_completions(Give&& give) {
    std::size_t taken = 0;
    for (std::uint32_t i = 0; i < shards_.size(); ++i) {
      taken += shards_[i]->take_completions(
          [&](const store::CompletionDelta& completion) { return give(i, completion); });
    }
    return taken;
  }
  // After stop(): every shard's swarms as snapshot records; `swarms` is set to their number.
  std::vector<std::uint8_t> snapshot_records(std::uint64_t& swarms) const;

  // The shards' time frame (core/clock.hpp), after start().
  const TimeFrame& time_frame() const noexcept { return directory_->time_frame; }
  // The shard that owns a swarm.
  std::uint32_t owner_of(const InfoHash& info_hash) const noexcept;

  // The control bridge (control.hpp) and the shards' presence (waker.hpp), for its one bridge
  // thread (the ops server), after start().
  ControlBridge& control_bridge() noexcept { return directory_->control; }
  // The snapshot bridge (snapshot_bridge.hpp), for the snapshot writer's thread, after start().
  SnapshotBridge& snapshot_bridge() noexcept { return directory_->snapshot; }
  // The cluster's bridges (cluster_bridge.hpp), for the NATS client's thread, after start()
  // with ShardConfig::cluster.
  ClusterBridge& cluster_bridge() noexcept { return directory_->cluster; }
  SnapshotBridge& cluster_snapshot_bridge() noexcept { return directory_->cluster_snapshot; }
  std::span<Presence> shard_presence() noexcept {
    return {directory_->presence.get(), directory_->shards_count};
  }

 private:
  RuntimeConfig config_;
  std::unique_ptr<ShardDirectory> directory_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
  std::vector<std::uint8_t> snapshot_records_;
  std::uint32_t snapshot_extra_age_s_ = 0;
  std::unique_ptr<const AccessList> access_list_;
  const store::CatalogueRows* catalogue_rows_ = nullptr;
  std::span<const store::Baseline> baselines_;
  std::span<const store::CompletionCount> completions_;
  std::vector<std::unique_ptr<const AccessList>> retired_access_lists_;  // see set_access_list
  // Start-up handshake (start-up only, never on the hot path).
  std::mutex start_mutex_;
  std::condition_variable start_changed_;
  std::uint32_t shards_opened_ = 0;
  bool start_decided_ = false;
  std::string start_error_;
};

// Parses "0-3", "2", "0,2,4-5" into CPU numbers; empty on error.
std::vector<int> parse_cpu_list(std::string_view text);
// The CPUs this process may run on (sched_getaffinity).
std::vector<int> allowed_cpus();

}  // namespace tyto::shard
