// Shard: one core's loop (DESIGN §1). It owns its io_uring, its sockets, its swarms (those whose
// shard_of(info_hash) is its index) and its counters; it shares nothing mutable with other shards
// except the SPSC mailboxes and each shard's `sleeping` flag.
//
// Loop turn: read the clock once → drain inbound mailboxes → handle completions (parse, apply
// locally or stage a forward) → publish outbound mailboxes, waking only sleeping owners →
// once a second: incremental expiry → submit; sleep in the kernel only when the turn found nothing.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tyto/core/clock.hpp"
#include "tyto/core/hash.hpp"
#include "tyto/core/owner.hpp"
#include "tyto/net/address.hpp"
#include "tyto/net/ring.hpp"
#include "tyto/net/steering.hpp"
#include "tyto/net/tcp_server.hpp"
#include "tyto/net/udp_socket.hpp"
#include "tyto/proto/connection_id.hpp"
#include "tyto/proto/http.hpp"
#include "tyto/proto/udp.hpp"
#include "tyto/shard/access_list.hpp"
#include "tyto/shard/control.hpp"
#include "tyto/shard/counters.hpp"
#include "tyto/shard/messages.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace tyto::shard {

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
  swarm::StoreLimits store_limits;
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
};

// What every shard may see of every other: set once before the loops start, then only the
// atomics change.
struct ShardDirectory {
  struct Entry {
    alignas(cache_line_size) std::atomic<bool> sleeping{false};
    std::atomic<int> ring_fd{-1};
    std::atomic<std::uint64_t> access_epoch_seen{0};  // access_list.hpp: read-copy-update
    std::atomic<bool> quiet{false};  // stopping: nothing of this shard's is in flight
  };
  explicit ShardDirectory(std::uint32_t shards_count);
  Mailbox& mailbox(std::uint32_t from, std::uint32_t to) noexcept {
    return *mailboxes[std::size_t{from} * shards_count + to];
  }

  std::uint32_t shards_count;
  ShardKey shard_key;
  // One time origin for every shard, so a connection id issued by one shard's clock is judged
  // by the same clock on another.
  std::uint32_t clock_origin_s;
  std::unique_ptr<Entry[]> entries;
  std::vector<std::unique_ptr<Mailbox>> mailboxes;  // [from * shards_count + to]
  // The control channel (control.hpp), one pair per shard.
  std::vector<std::unique_ptr<ControlRequests>> control_requests;
  std::vector<std::unique_ptr<ControlAnswers>> control_answers;
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
};

class Shard {
 public:
  Shard(std::uint32_t index, const ShardConfig& config, ShardDirectory& directory,
        const proto::ConnectionIds& connection_ids, const HashSecret& secret);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Binds the UDP sockets (any thread, before open(); the runtime goes shard by shard).
  std::string bind_udp() { return udp_.bind(config_.udp_listeners); }
  int udp_fd(std::uint32_t listener) const noexcept { return udp_.fd(listener); }
  // On the shard's own thread, after bind_udp(): create the ring, register the UDP buffers, bind
  // the HTTP listeners, restore this shard's part of a snapshot. Error text or "".
  std::string open();
  // On the shard's own thread, after every shard opened: run until directory.stopping.
  void run() noexcept;

  // On the shard's thread, or from any thread once the loop stopped.
  ShardTotals totals() const noexcept;
  // Once the loop stopped: this shard's swarms as snapshot records; returns how many.
  std::uint64_t append_snapshot(std::vector<std::uint8_t>& out) const {
    return store_.append_snapshot(now_s_, out);
  }

 private:
  struct PendingScrape;

  bool turn(bool may_sleep) noexcept;
  // Stopping: no new requests; finish what is in flight (see run()).
  void drain() noexcept;
  bool quiet() const noexcept;
  std::uint32_t now_s() const noexcept { return now_s_; }
  void refresh_clock() noexcept;
  void refresh_access_list() noexcept;
  bool denied(const InfoHash& info_hash) const noexcept {
    return access_list_ != nullptr && !access_list_->allows(info_hash);
  }

  void read_ahead_announces() noexcept;
  void on_completion(const io_uring_cqe& cqe) noexcept;
  void on_datagram(const net::Datagram& datagram) noexcept;
  void on_udp_announce(const proto::udp::AnnounceRequest& request,
                       const net::UdpRoute& route) noexcept;
  void on_udp_scrape(const proto::udp::ScrapeRequest& request, const net::UdpRoute& route) noexcept;
  void apply_udp_announce(const AnnounceRequest& request, std::uint32_t transaction_id,
                          const net::UdpRoute& route) noexcept;
  void send_udp_error(std::uint32_t transaction_id, std::string_view message,
                      const net::UdpRoute& route) noexcept;
  void send_scrape_reply(PendingScrape& pending, bool resume_http) noexcept;
  // A free slot with hashes_count set (the caller writes the hashes), or null when all are busy.
  PendingScrape* start_scrape(std::uint32_t hashes_count) noexcept;
  void gather_scrape(PendingScrape& pending) noexcept;

  // HTTP: requests of one connection are answered strictly in order; a connection waiting for
  // another shard (announce) or a gathered scrape reads nothing more until the answer is written.
  void serve_http(net::ConnectionRef connection) noexcept;
  bool serve_http_request(net::ConnectionRef connection) noexcept;  // false: stop for now
  void http_announce(net::ConnectionRef connection, const proto::http::RequestHead& head,
                     std::string_view query) noexcept;
  void http_scrape(net::ConnectionRef connection, const proto::http::RequestHead& head,
                   std::string_view query) noexcept;
  void http_respond_status(net::ConnectionRef connection, int status, std::string_view reason,
                           bool keep_alive) noexcept;
  void http_answer_written(net::ConnectionRef connection, bool keep_alive, bool resume) noexcept;
  void http_write_announce(net::ConnectionRef connection, const AnnounceReply& reply,
                           const PeerEndpoint& client, const std::uint8_t* peers, bool keep_alive,
                           bool compact) noexcept;
  // The client's address: the TCP peer's, unless the peer is a trusted proxy that names another
  // (X-Forwarded-For, then X-Real-IP, then `ip`). A malformed name from a trusted proxy fails.
  Result<PeerEndpoint, const char*> http_client_address(net::ConnectionRef connection,
                                                        const proto::http::RequestHead& head,
                                                        std::string_view ip_parameter) noexcept;
  bool trusted_proxy(const PeerEndpoint& peer) const noexcept;
  void on_forwarded_http_announce(const ForwardedHttpAnnounce& forwarded,
                                  std::uint32_t from) noexcept;
  void on_http_announce_answer(const HttpAnnounceAnswer& answer) noexcept;
  void retry_answers() noexcept;

  std::size_t drain_mailboxes() noexcept;
  std::size_t drain_control() noexcept;
  void on_scrape_part(const ScrapePart& part, std::uint32_t from) noexcept;
  void on_message(const Message& message, std::uint32_t from) noexcept;
  void on_scrape_answer(const ScrapeAnswer& answer) noexcept;
  bool forward(std::uint32_t owner, const Message& message) noexcept;
  void publish_mailboxes() noexcept;
  void tick() noexcept;

  std::uint32_t index_;
  const ShardConfig& config_;
  ShardDirectory& directory_;
  proto::ConnectionIds connection_ids_;
  net::UdpSockets udp_;  // declared before ring_: the ring is torn down first
  net::TcpServer tcp_;
  net::Ring ring_;
  swarm::SwarmStore store_;
  std::array<InfoHash, swarm::SwarmStore::prefetch_batch_max> read_ahead_info_hashes_;
  ShardCounters counters_;
  CoarseClock clock_;
  std::uint32_t now_s_ = 0;
  std::chrono::steady_clock::time_point last_work_at_;  // the start of the last turn with work
  std::uint32_t last_tick_s_ = 0;
  OwnerThread owner_;  // debug builds: the loop only ever runs on the shard's own thread
  std::vector<PendingScrape> pending_scrapes_;
  // Per HTTP connection slot: whether the connection (this generation of the slot) waits for an
  // answer, and what the waiting request asked for.
  struct HttpWait {
    std::uint32_t generation = 0;
    bool waiting = false;
    bool keep_alive = true;
    bool compact = true;
    PeerEndpoint client;  // the announcing client (its family picks peers or peers6; BEP 24)
  };
  std::vector<HttpWait> http_waits_;
  std::vector<ScrapePart> scrape_parts_;  // gather_scrape's scratch: one part per shard
  bool http_waiting(net::ConnectionRef connection) const noexcept {
    const HttpWait& wait = http_waits_[connection.index];
    return wait.waiting && wait.generation == connection.generation;
  }
  std::vector<std::uint8_t> local_peers_;  // peers of announces answered on this shard
  // Buffers lent to owners for the peers of forwarded HTTP announces (one per waiting request).
  std::vector<std::uint8_t> lent_buffers_;
  std::vector<std::uint32_t> free_lent_buffers_;
  // HTTP answers the owner could not push (mailbox full): retried every turn, never dropped,
  // because the requester holds a connection and a lent buffer for them.
  struct PendingAnswer {
    std::uint32_t to;
    HttpAnnounceAnswer answer;
  };
  std::vector<PendingAnswer> answers_to_retry_;
  std::vector<std::uint32_t> free_pending_scrapes_;
  std::unique_ptr<ControlAnswer> control_answer_;
  const AccessList* access_list_ = nullptr;  // this loop turn's (access_list.hpp)
  bool draining_ = false;                    // built here (8 KiB), then copied to the queue
};

}  // namespace tyto::shard
