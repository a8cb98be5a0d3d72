// The cluster bridge (DESIGN §9 "Cluster", issue 20): the queues between the shards and the
// thread that runs the NATS client (cluster/cluster_client.hpp). A Bridge (bridge.hpp) like the
// others, with these message kinds and policies:
//  - shard → bridge: what a local announce changed in a swarm this shard owns (a peer added or
//    updated with its role, a peer removed by `stopped`, a completion counted), one
//    ReplicaChange each, pushed by the owner right after the store applied the announce. The
//    bridge takes them at least every 20 ms (it never sleeps on this queue: shards do not
//    wake it, so an announce costs one queue push and nothing else). Full queue: the change is
//    dropped and counted (cluster_changes_dropped); the peer's next announce repairs it.
//  - bridge → shard: changes other nodes made (kind change), applied with
//    PeerStore::apply_replica as if announced here; full queue: the bridge holds the change and
//    takes no more messages until the shard drained (counted as deferred, never dropped). And,
//    while this node warms up, snapshot records streamed from a live node (kind records): every
//    shard restores the swarms it owns from the same bytes, then lets go of them; the bridge
//    frees them once every shard let go (or, at exit, once the shards stopped). Records are
//    never dropped either: the bridge keeps what a full queue refuses and offers it again.
//  - bridge → shard, private mode (kind baseline): a peer's accounting baseline another node made
//    durable (its batch committed or journalled), adopted by the owner's Ledger (Ledger::adopt)
//    so that a peer moving between nodes is credited from where the last node left it. Held
//    like changes when a queue is full, never dropped here.
// Baselines reach this node's cluster thread from its own storage thread through a
// BaselineHandoff (below): published only once durable, so another node never derives against a
// baseline whose credit a crash could still lose.
// The shards also serve a warm-up to another node: the bridge asks them for their swarms through
// a second SnapshotBridge (ShardDirectory::cluster_snapshot), exactly as the snapshot writer
// does, with pieces small enough for one NATS message each.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "tyto/core/replica.hpp"
#include "tyto/shard/bridge.hpp"
#include "tyto/store/accounting.hpp"

namespace tyto::shard {

// Snapshot records shared by every shard during a warm-up (see above), owned by the bridge.
// `holders` starts at the number of shards; each shard releases it once when done with it.
struct SharedRecords {
  std::vector<std::uint8_t> bytes;
  // The second the records were cut at, on this node's clock (now_s; at or below 0 when before
  // it began): each shard ages them from there, exactly, whenever it takes them.
  std::int64_t cut_s = 0;
  std::atomic<std::uint32_t> holders{0};
  void release() noexcept { holders.fetch_sub(1, std::memory_order_release); }
  bool released() const noexcept { return holders.load(std::memory_order_acquire) == 0; }
};

// A private peer's accounting baseline, as it travels between nodes.
struct ReplicaBaseline {
  InfoHash info_hash;  // the torrent's: which shard owns it
  store::Baseline baseline;
  bool closed = false;  // the peer stopped or expired there
};

struct ClusterToShard {
  enum class Kind : std::uint8_t { change, records, baseline };
  Kind kind = Kind::change;
  ReplicaChange change;              // change
  SharedRecords* records = nullptr;  // records: the shard calls release() once done
  ReplicaBaseline baseline{};        // baseline
};

// Baselines the storage thread made durable, waiting for the cluster thread to publish them: a
// locked hand-over, one lock per batch on either side (neither is a shard). Bounded: past
// held_max a baseline is dropped and counted; the peer's next announce on another node then
// derives against an older baseline, and the backend's arbitration (store::arbitrate_delta)
// keeps what the two nodes credit from overlapping.
class BaselineHandoff {
 public:
  static constexpr std::size_t held_max = 1u << 18;
  struct Held {
    std::uint32_t shard = 0;  // the origin's shard (the one owning the torrent)
    ReplicaBaseline baseline;
  };
  // The storage thread.
  void put(std::uint32_t shard, std::span<const ReplicaBaseline> baselines) {
    std::lock_guard lock(mutex_);
    for (const ReplicaBaseline& baseline : baselines) {
      if (held_.size() >= held_max) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      held_.push_back({shard, baseline});
    }
  }
  // The cluster thread: what is held, swapped into `out` (cleared first).
  void take(std::vector<Held>& out) {
    out.clear();
    std::lock_guard lock(mutex_);
    out.swap(held_);
  }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::mutex mutex_;
  std::vector<Held> held_;
  std::atomic<std::uint64_t> dropped_{0};
};

struct ClusterFromShard {
  ReplicaChange change;  // announced_s: the shard's now_s
};

// Per shard. A turn's worth of remote changes (at a million per second per shard, 100 ms is
// 100 k; the bridge hands them as they come, so far fewer wait), and a publishing interval's
// worth of local ones at ~300 k announces/s per shard.
inline constexpr std::size_t cluster_changes_in_max = 1u << 15;
inline constexpr std::size_t cluster_changes_out_max = 1u << 15;
using ClusterBridge =
    Bridge<ClusterToShard, ClusterFromShard, cluster_changes_in_max, cluster_changes_out_max>;

}  // namespace tyto::shard
