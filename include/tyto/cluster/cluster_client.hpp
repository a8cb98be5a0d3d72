// ClusterClient: the cluster's bridge thread (DESIGN §9 "Cluster", issue 20, README "Cluster").
// Every node holds every swarm; the NATS servers carry what each node changed. This is the only
// code that includes <nats/nats.h>; without cluster.nats it is never constructed and the shards
// never touch the cluster bridge.
//
// Each turn of its poll loop (shard/bridge_thread.hpp) it
//  - in private mode, takes the accounting baselines the storage thread made durable
//    (BaselineHandoff) and publishes them with their shard's changes;
//  - takes the changes the shards' local announces made (cluster_bridge.hpp) at least every 20 ms
//    and, every publish interval, publishes them per shard as MAC'd batches (replication_batch.hpp)
//    on `tyto.<name>.swarm.<shards>.<shard>`, each with a sequence increasing per (node, shard)
//    from the node's start time in µs; with nothing to say, an empty batch once a second (the
//    other nodes see the node alive and measure the lag);
//  - takes what libnats delivered (its own threads hand each message over through a bounded,
//    locked queue and an eventfd; past the bound a message is dropped and counted): a batch is
//    verified (MAC first), skipped when it is this node's own or its sequence is not above the
//    last one applied from that (node, shard) (a replay or a duplicate changes nothing), and each
//    change goes to the shard owning its info_hash, aged by the batch's age (what a full shard
//    queue refuses is held and offered again, and no message is taken meanwhile: a backlog, as
//    after a pause, waits in the handover queue, bounded as above, rather than being dropped);
//  - warms the node at start: subscribed to the batches first, it asks `tyto.<name>.warm` (a
//    queue group: one warm node answers) and restores the snapshot records streamed back into
//    its inbox; warm once the responder's `done` says every piece came (a gap asks again) and
//    every shard has restored every piece (so a warm node's answers, and the warm-ups it serves
//    in turn, hold the swarms it was sent), or when no other node was heard from within
//    warm_wait (the first node of a cluster is warm alone), or when others are heard but none
//    answered within 3 × warm_wait (all cold);
//  - once warm, answers other nodes' warm requests: the shards slice their swarms through the
//    cluster's snapshot bridge into pieces of one NATS message each, sent as they come.
// When NATS is unreachable the node serves alone: changes past libnats's reconnect buffer are
// dropped (counted); peers re-announce within their interval, which repairs the others.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "tyto/cluster/replication_batch.hpp"
#include "tyto/core/clock.hpp"
#include "tyto/shard/bridge_thread.hpp"
#include "tyto/shard/cluster_bridge.hpp"
#include "tyto/shard/counters.hpp"
#include "tyto/shard/snapshot_bridge.hpp"
#include "tyto/shard/waker.hpp"

namespace tyto::cluster {

struct ClusterClientConfig {
  std::vector<std::string> servers;  // nats://HOST:PORT, tls://...
  std::string node;                  // unique in the cluster, 1..64 bytes
  std::string name = "tyto";         // subjects are tyto.<name>.*
  ClusterKey key{};
  std::chrono::milliseconds publish_interval{100};
  std::chrono::milliseconds warm_wait{2000};
  // The node's time frame (Runtime::time_frame): batches and warm-up pieces carry frame Unix
  // time, which every node converts to its own shards' seconds exactly.
  TimeFrame frame;
  // Passed through to libnats ("" = unset).
  std::string credentials_file;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
};

// What the client did, for /metrics (tyto_cluster_*), /stats and the dashboard. Written by the
// client's thread, read by others (relaxed atomics).
struct ClusterStatus {
  std::atomic<std::uint64_t> connected{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> nodes_seen{0};
  std::atomic<std::uint64_t> warm{0};
  std::atomic<std::uint64_t> warm_pieces_in{0};
  std::atomic<std::uint64_t> warm_bytes_in{0};
  std::atomic<std::uint64_t> warm_requests{0};
  std::atomic<std::uint64_t> warm_served{0};
  std::atomic<std::uint64_t> warm_pieces_out{0};
  std::atomic<std::uint64_t> batches_out{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> changes_out{0};
  std::atomic<std::uint64_t> publish_failures{0};
  std::atomic<std::uint64_t> batches_in{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> changes_in{0};
  std::atomic<std::uint64_t> changes_in_deferred{0};
  std::atomic<std::uint64_t> baselines_out{0};
  std::atomic<std::uint64_t> baselines_in{0};
  std::atomic<std::uint64_t> baselines_dropped{0};
  std::atomic<std::uint64_t> batches_duplicate{0};
  std::atomic<std::uint64_t> batches_own{0};
  std::atomic<std::uint64_t> messages_dropped{0};
  std::atomic<std::uint64_t> lag_p50_ms{0};
  std::atomic<std::uint64_t> lag_p99_ms{0};
  std::atomic<std::uint64_t> refused[refusals_count]{};

  std::vector<shard::CounterRow> rows() const;
};

class ClusterClient final : public shard::BridgeThread::Client {
 public:
  using Clock = shard::BridgeThread::Clock;
  using OwnerOf = std::function<std::uint32_t(const InfoHash&)>;

  ClusterClient(ClusterClientConfig config, shard::ClusterBridge& bridge,
                shard::SnapshotBridge& snapshots, std::span<shard::Presence> shards,
                OwnerOf owner_of,
                shard::BaselineHandoff* baselines = nullptr);
  ~ClusterClient() override;
  ClusterClient(const ClusterClient&) = delete;
  ClusterClient& operator=(const ClusterClient&) = delete;

  // Before the thread starts: connects (or keeps trying in the background when no server
  // answers: the node serves alone meanwhile) and subscribes. Error text for a configuration
  // libnats refuses (a credentials or TLS file it cannot read).
  std::string init();
  // The doorbell for BridgeThread::start: the eventfd libnats's threads ring. The shards never
  // wake this thread (it takes their changes on its own clock).
  shard::BridgeThread::Doorbell doorbell();

  void watch(std::vector<pollfd>& polled, Clock::time_point& wake_at) override;
  void turn(std::span<const pollfd> polled) override;

  // Once the thread and the shards stopped: closes the connection and frees what the queues
  // still hold. Idempotent; the destructor calls it (the runtime must still exist then).
  void finish() noexcept;

  const ClusterStatus& status() const noexcept { return status_; }

  // For libnats's callbacks (its threads); not for anyone else.
  void deliver(void* message) noexcept;
  void connection_changed(bool connected, bool reconnected = false) noexcept;

 private:
  void take_local_changes();
  std::uint64_t frame_unix_ms() const noexcept;  // now, in the frame's Unix time
  void publish_batches(bool heartbeat);
  void publish(const std::string& subject, const std::vector<std::uint8_t>& bytes,
               const char* reply = nullptr);
  void handle_inbound();
  void on_batch(std::span<const std::uint8_t> bytes);
  void on_warm_request(std::span<const std::uint8_t> bytes, const char* reply);
  void on_warm_answer(std::span<const std::uint8_t> bytes);
  void request_warm(Clock::time_point now);
  void become_warm(const char* why);
  void serve_pieces();
  bool outbox_empty() const noexcept;
  void send_outbox();
  void update_status(Clock::time_point now);
  std::uint64_t nodes_heard(Clock::time_point now) const;
  void refuse(Refusal refusal, const char* what);

  ClusterClientConfig config_;
  shard::ClusterBridge& bridge_;
  shard::SnapshotBridge& snapshots_;
  std::span<shard::Presence> shards_;
  OwnerOf owner_of_;
  shard::BaselineHandoff* baselines_;  // private mode; nullptr otherwise
  std::vector<shard::BaselineHandoff::Held> baselines_taken_;  // reused
  shard::Waker waker_;
  int inbound_fd_ = -1;
  std::string swarm_prefix_;  // tyto.<name>.swarm.
  std::string warm_subject_;
  std::string inbox_;

  // libnats (opaque here: only the .cpp includes nats.h).
  void* options_ = nullptr;
  void* connection_ = nullptr;
  void* swarm_subscription_ = nullptr;
  void* inbox_subscription_ = nullptr;
  void* warm_subscription_ = nullptr;

  // Handed over by libnats's threads (natsMsg*), under inbound_mutex_.
  std::mutex inbound_mutex_;
  std::vector<void*> inbound_;
  std::vector<void*> inbound_taken_;  // this thread's swap partner, taken from inbound_next_ on
  std::size_t inbound_next_ = 0;

  // Publishing.
  // A change of this node's, and for a peer the frame Unix second of its announce (the batch
  // says it as seconds before the batch's base).
  struct LocalChange {
    Change change;
    std::uint64_t announced_unix_s = 0;
  };
  std::vector<std::vector<LocalChange>> local_;  // per shard, since the last batch
  std::vector<std::uint64_t> next_sequence_;
  Batch batch_;  // reused
  std::vector<std::uint8_t> bytes_;
  Clock::time_point next_publish_at_{};
  Clock::time_point last_publish_at_{};

  // Receiving.
  Batch received_;  // reused
  // The last sequence applied per (origin, shard).
  std::map<std::pair<std::string, std::uint16_t>, std::uint64_t> last_sequences_;
  std::map<std::string, Clock::time_point> nodes_;
  std::vector<std::uint32_t> lags_ms_;  // since the last status update

  // Warm-up (this node's).
  bool warm_ = false;
  // Every piece came; warm once the shards restored them all (records_ empty).
  bool warm_streamed_ = false;
  std::uint64_t warm_nonce_ = 0;
  std::string warm_from_;  // the responder whose pieces are taken
  std::uint32_t warm_pieces_ = 0;
  std::uint32_t warm_attempts_ = 0;
  Clock::time_point warm_started_{};
  Clock::time_point warm_deadline_{};
  std::vector<std::unique_ptr<shard::SharedRecords>> records_;  // until every shard released
  // Per shard: what its full queue refused (changes, warm-up records), offered again each turn;
  // while anything waits here no message is taken, so it holds at most one batch's changes.
  std::vector<std::deque<shard::ClusterToShard>> outbox_;

  // Serving a warm-up to another node.
  bool serving_ = false;
  std::uint64_t serve_generation_ = 0;
  std::uint64_t serve_nonce_ = 0;
  std::string serve_reply_;
  std::uint32_t serve_pieces_ = 0;
  std::uint32_t serve_shards_done_ = 0;
  Clock::time_point serve_deadline_{};

  Clock::time_point next_status_at_{};
  bool finished_ = false;
  ClusterStatus status_;
};

}  // namespace tyto::cluster
