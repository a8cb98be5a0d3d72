// What every shard is configured with (ShardConfig), and what every shard may see of every other
// (ShardDirectory): set up once before the loops start; afterwards only the atomics change and
// each SPSC queue is used by its one producer and its one consumer.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "tyto/core/clock.hpp"
#include "tyto/core/hash.hpp"
#include "tyto/core/limits.hpp"
#include "tyto/core/spsc.hpp"
#include "tyto/net/address.hpp"
#include "tyto/net/steering.hpp"
#include "tyto/net/udp_socket.hpp"
#include "tyto/shard/access_list.hpp"
#include "tyto/shard/cluster_bridge.hpp"
#include "tyto/shard/control.hpp"
#include "tyto/shard/ledger.hpp"
#include "tyto/shard/messages.hpp"
#include "tyto/shard/snapshot_bridge.hpp"
#include "tyto/shard/storage_bridge.hpp"
#include "tyto/shard/waker.hpp"
#include "tyto/store/backend.hpp"
#include "tyto/store/peer_store.hpp"

namespace tyto::shard {

// The private tracker (README "Private tracker"): passkeys, the catalogue, accounting.
struct PrivateConfig {
  bool enabled = false;
  LedgerLimits ledger;
  // storage.sync = "always": a `stopped` announce is answered only once its accounting is
  // durable (committed, or in the storage journal); "batch" (false) answers at once.
  bool sync_always = false;
};

struct ShardConfig {
  std::vector<net::SocketAddress> udp_listeners;
  std::vector<net::SocketAddress> http_listeners;
  std::uint32_t http_connections_max = 16384;  // per shard
  std::uint32_t http_idle_timeout_s = limits::http_idle_timeout_s;
  // HTTP peers allowed to name the client (X-Forwarded-For, X-Real-IP, `ip`); checked in order.
  std::vector<net::AddressPrefix> trusted_proxies;
  std::uint32_t announce_interval_s = limits::announce_interval_s;
  std::uint32_t announce_interval_min_s = limits::announce_interval_min_s;
  std::uint32_t numwant_default = limits::numwant_default;
  std::uint32_t numwant_max = limits::numwant_max;
  store::StoreLimits store_limits;
  // Each shard's peer store; null: the in-memory store (store::make_memory_peer_store).
  store::PeerStoreFactory make_peer_store;
  // sendmmsg measured faster than a SENDMSG SQE per reply (see the UDP issue note).
  net::UdpSendMode udp_send_mode = net::UdpSendMode::sendmmsg;
  // After a turn with work, turns without work poll (a non-blocking submit) for this long
  // before the shard sleeps: no sleep and wake-up per request at moderate load.
  std::uint32_t busy_poll_us = 0;
  // With more than one shard: announces steered to their owner by a BPF program, or not.
  net::UdpSteering udp_steering = net::UdpSteering::hash;
  // Test-only: the shard clock runs this many times faster than real time, so end-to-end tests
  // can see connection ids and peers expire in seconds. Always 1 in production.
  std::uint32_t clock_speedup = 1;
  PrivateConfig private_tracker;
  // Public mode with a storage backend: only its registered torrents are tracked
  // (access.mode = "catalogue"). Private mode always serves registered torrents only.
  bool catalogue_whitelist = false;
  // Cluster (issue 20): local announces are replicated through the cluster bridge and remote
  // changes applied (ShardDirectory::cluster). False: none of it runs.
  bool cluster = false;
  // A storage.uri other than memory: keeps each torrent's completed count, in public and
  // private mode (README "Completed counts"): each shard holds its torrents' counts in a
  // CompletionTable (completion_table.hpp) of at most completions_max torrents and hands what
  // it counts to the storage bridge.
  bool completions_persisted = false;
  std::uint32_t completions_max = 1u << 18;
};

struct ShardDirectory {
  struct Entry {
    alignas(cache_line_size) std::atomic<std::uint64_t> access_epoch_seen{
        0};                          // access_list.hpp: read-copy-update
    std::atomic<bool> quiet{false};  // stopping: nothing of this shard's is in flight
  };
  // shard_key: which shard owns an info_hash (random per process, or the cluster's);
  // clock_speedup: ShardConfig::clock_speedup (1 outside tests).
  ShardDirectory(std::uint32_t shards_count, ShardKey shard_key, std::uint32_t clock_speedup = 1);
  // The mailbox from one shard to another; a shard has none to itself.
  Mailbox& mailbox(std::uint32_t from, std::uint32_t to) noexcept {
    TYTO_ASSERT(from != to && from < shards_count && to < shards_count);
    return *mailboxes[std::size_t{from} * (shards_count - 1) + (to < from ? to : to - 1)];
  }

  // Lent buffers (messages.hpp, ForwardedHttpAnnounce): shard `from`'s buffer `lent_index`,
  // empty when there is no such buffer. Each shard sets its own area in open(), before the loops.
  static constexpr std::uint32_t lent_buffers_count = 1024;
  static constexpr std::size_t lent_buffer_size = limits::numwant_max * limits::ipv6_peer_wire_size;
  std::span<std::uint8_t> lent_buffer(std::uint32_t from, std::uint32_t lent_index) noexcept {
    if (from >= shards_count || lent_index >= lent_buffers_count) return {};
    const std::span<std::uint8_t> area = lent_areas[from];
    if (area.size() < (std::size_t{lent_index} + 1) * lent_buffer_size) return {};
    return area.subspan(std::size_t{lent_index} * lent_buffer_size, lent_buffer_size);
  }

  std::uint32_t shards_count;
  ShardKey shard_key;
  // One time frame for every shard (core/clock.hpp), so a connection id issued by one shard's
  // clock is judged by the same clock on another, and every node's shards tick together.
  TimeFrame time_frame;
  std::unique_ptr<Presence[]> presence;  // waker.hpp: whether each shard sleeps, its ring
  std::unique_ptr<Entry[]> entries;
  std::vector<std::unique_ptr<Mailbox>> mailboxes;  // N × (N - 1), see mailbox()
  std::vector<std::span<std::uint8_t>> lent_areas;  // per shard, see lent_buffer()
  // The control bridge (control.hpp): the ops server's queues, one pair per shard.
  ControlBridge control;
  // The snapshot bridge (snapshot_bridge.hpp): the snapshot writer's queues, one pair per shard.
  SnapshotBridge snapshot;
  std::atomic<bool> stopping{false};
  // Start-up only: snapshot records each shard restores its own swarms from in open(), aged by
  // the time the tracker was down; what they restored.
  std::span<const std::uint8_t> snapshot_records;
  std::uint32_t snapshot_extra_age_s = 0;
  std::atomic<std::uint64_t> restored_swarms{0};
  std::atomic<std::uint64_t> restored_peers{0};
  // The info-hash access list (null: none) and its epoch; see access_list.hpp.
  std::atomic<const AccessList*> access_list{nullptr};
  std::atomic<std::uint64_t> access_epoch{0};
  // The storage
  // bridge's queues (initialised in private mode, catalogue whitelist mode, or when completed
  // counts are persisted); start-up only: the catalogue and the
  // persisted baselines each shard copies its part of in open().
  StorageBridge storage;
  const store::CatalogueRows* catalogue_rows = nullptr;
  std::span<const store::Baseline> baselines;
  // Cluster (ShardConfig::cluster; initialised only then): the NATS client's queues, and the
  // snapshot queues through which it asks the shards for their swarms to warm another node.
  ClusterBridge cluster;
  SnapshotBridge cluster_snapshot;
  // Start-up only: the persisted completed counts (completions_persisted), each shard taking
  // those of the info_hashes it owns in open().
  std::span<const store::CompletionCount> completions;
};

}  // namespace tyto::shard
