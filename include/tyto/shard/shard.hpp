// Shard: one core's loop (DESIGN §1). It owns its io_uring, its peer store (the swarms whose
// shard_of(info_hash) is its index), its two front ends and its counters; it shares nothing
// mutable with other shards except the SPSC mailboxes, the bridge queues and its directory entry.
//
// Loop turn (turn()): read the clock once → drain inbound mailboxes (forwarded UDP announces are
// queued, then applied as one read-ahead batch) and bridge queues → walk the completions once
// (each front end parses; UDP queues the announces this shard owns and forwards the others, then
// applies its queue as a batch) → publish outbound mailboxes and bridge queues, waking only
// sleeping consumers → once a second: tick (expiry, timeouts) → submit; sleep in the kernel only
// when the turn found nothing.
//
// Where one announce goes, by file: udp_front.cpp (UDP: parse → route → reply from the owner),
// http_front.cpp (HTTP: parse → route → the accepting shard answers), scrape_gather.cpp (a scrape
// split over owners and gathered back), shard.cpp (this loop, mailboxes, the control bridge).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "tyto/core/clock.hpp"
#include "tyto/core/owner.hpp"
#include "tyto/net/ring.hpp"
#include "tyto/proto/connection_id.hpp"
#include "tyto/shard/access_list.hpp"
#include "tyto/shard/catalogue_copy.hpp"
#include "tyto/shard/completion_table.hpp"
#include "tyto/shard/counters.hpp"
#include "tyto/shard/directory.hpp"
#include "tyto/shard/http_front.hpp"
#include "tyto/shard/messages.hpp"
#include "tyto/shard/scrape_gather.hpp"
#include "tyto/shard/udp_front.hpp"
#include "tyto/store/peer_store.hpp"

namespace tyto::shard {

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
  // On the shard's own thread, after bind_udp(): create the ring, open both front ends, restore
  // this shard's part of a snapshot. Error text or "".
  std::string open();
  // On the shard's own thread, after every shard opened: run until directory.stopping.
  void run() noexcept;

  // On the shard's thread, or from any thread once the loop stopped.
  ShardTotals totals() const noexcept;
  // Once the loop stopped: this shard's swarms as snapshot records; returns how many.
  std::uint64_t append_snapshot(std::vector<std::uint8_t>& out) const {
    return store_->append_snapshot(now_s_, out);
  }

  // For the front ends and the scrape gatherer, on the shard's thread.
  std::uint32_t index() const noexcept { return index_; }
  const ShardConfig& config() const noexcept { return config_; }
  net::Ring& ring() noexcept { return ring_; }
  store::PeerStore& peer_store() noexcept { return *store_; }
  ShardCounters& counters() noexcept { return counters_; }
  // Shard-clock seconds: 1 at the tracker's start, read once per loop turn (not Unix time).
  std::uint32_t now_s() const noexcept { return now_s_; }
  bool draining() const noexcept { return draining_; }
  std::uint32_t owner_of(const InfoHash& info_hash) const noexcept {
    return shard_of(info_hash, directory_.shard_key, directory_.shards_count);
  }
  std::uint32_t shards_count() const noexcept { return directory_.shards_count; }
  bool denied(const InfoHash& info_hash) const noexcept {
    return access_list_ != nullptr && !access_list_->allows(info_hash);
  }
  // Private tracker (README "Private tracker").
  bool private_tracker() const noexcept { return ledger_ != nullptr; }
  // Whether a request naming `passkey_segment` (as sent in the URL, percent-encoded; empty for
  // none) may go on: nullptr and `member` set, or the failure reason (counted). `request` is the
  // announce (its left and peer_id are checked), or null for a scrape. Public mode: always on.
  const char* admit_member(std::string_view passkey_segment, const AnnounceRequest* request,
                           Member& member) noexcept;
  // The passkey a URL path segment names (percent-decoded), or nullopt when none could.
  static std::optional<store::Passkey> parse_passkey(std::string_view passkey_segment) noexcept;
  // Private mode's read-ahead over a batch of owned announces (UdpFront::apply_queued), in three
  // steps each a pass over the batch, so the batch's cache misses overlap: begin (when queued:
  // hashes, index entries), rows (the user's and the torrent's rows), finish (admission by the
  // passkey when `passkey` was given, else the member came admitted; the torrent found; the
  // ledger's entry read ahead): nullptr, or the refusal as admit_member gives it.
  void begin_read_ahead(const InfoHash& info_hash, const store::Passkey* passkey,
                        PrivateReadAhead& ahead) const noexcept;
  void read_ahead_rows(const PrivateReadAhead& ahead) const noexcept;
  const char* finish_read_ahead(PrivateReadAhead& ahead, const AnnounceRequest& request,
                                Member& member) noexcept;
  // On the owner: applies an announce for `member` (private mode: the torrent must be
  // registered and the peer admitted by the ledger, then it is accounted), writing peers into
  // peers_out as PeerStore::announce does. `ticket` is set (non-zero) when the reply must be
  // held until the accounting is durable (storage.sync = "always", a `stopped`): the caller
  // hands the reply to hold_reply() instead of sending it. `lookup`: this shard's store began
  // it for this request's info_hash (start_lookup), or null. `ahead`: finish_read_ahead found
  // the torrent for this request, or null.
  AnnounceReply apply_announce(const AnnounceRequest& request, const Member& member,
                               std::span<std::uint8_t> peers_out, std::uint64_t& ticket,
                               const store::SwarmLookup* lookup = nullptr,
                               const PrivateReadAhead* ahead = nullptr) noexcept;
  // A reply waiting for its durability ticket; released by the storage bridge's `durable`.
  struct HeldUdpReply {
    net::UdpRoute route;
    std::uint32_t transaction_id = 0;
    AnnounceReply reply;
  };
  struct HeldHttpReply {  // the connection is this shard's and waits
    net::ConnectionRef connection;
    AnnounceReply reply;
  };
  struct HeldHttpAnswer {  // an answer owed to the shard that forwarded the announce
    std::uint32_t to = 0;
    HttpAnnounceAnswer answer;
  };
  struct HeldReply {
    std::uint64_t ticket = 0;
    std::variant<HeldUdpReply, HeldHttpReply, HeldHttpAnswer> reply;
  };
  static constexpr std::size_t held_replies_max = 1024;
  void hold_reply(const HeldReply& held) noexcept;
  // Unix time, read with the shard clock (accounting).
  std::uint64_t now_unix_s() const noexcept;
  // The clock UDP connection ids are issued and judged by: the frame's Unix second (so it runs
  // with the test clock's speed-up), the same on every node of a cluster.
  std::uint64_t connection_clock_s() const noexcept {
    return directory_.time_frame.unix_at_zero_s() + now_s_;
  }
  // Once the loop stopped (any thread): hands every accounting delta still summed here to
  // give(const store::AccountingDelta&) -> bool.
  template <class Give>
  std::size_t take_ledger_deltas(Give&& give) {
    return ledger_ == nullptr ? 0 : ledger_->flush(give, SIZE_MAX);
  }
  // Once the loop stopped (any thread): hands every completion count still summed here to
  // give(const store::CompletionDelta&) -> bool.
  template <class Give>
  std::size_t take_completions(Give&& give) {
    return completions_ == nullptr ? 0 : completions_->flush(give, SIZE_MAX);
  }
  // On the owner: the swarm's counts for a scrape, its completed count at least the persisted
  // one (README "Completed counts"), whether or not the swarm still exists.
  ScrapeEntry scrape(const InfoHash& info_hash) noexcept;
  // Stages a message for another shard; false (counted, logged) when its mailbox is full.
  bool forward(std::uint32_t owner, const Message& message) noexcept;
  // The same, for a caller that keeps a refused message and retries it (nothing counted).
  bool push(std::uint32_t to, const Message& message) noexcept;
  // Shard `from`'s lent buffer `lent_index` (messages.hpp, ForwardedHttpAnnounce).
  std::span<std::uint8_t> lent_buffer(std::uint32_t from, std::uint32_t lent_index) noexcept;
  ScrapeGather& scrapes() noexcept { return scrapes_; }
  // A scrape finished gathering: the front end that received it replies. `resume`: an HTTP
  // connection may go on with its next request (false when its request loop is the caller).
  void scrape_gathered(PendingScrape& pending, bool resume) noexcept;
  // A scrape's part could not be sent (timed_out false) or an answer never came (true).
  void scrape_failed(PendingScrape& pending, bool timed_out) noexcept;

 private:
  struct SnapshotWork;
  bool turn(bool may_sleep) noexcept;
  // Stopping: no new requests; finish what is in flight (see run()).
  void drain() noexcept;
  bool quiet() const noexcept;
  bool mail_waiting() const noexcept;
  bool storage_waiting() const noexcept;
  void refresh_clock() noexcept;
  void refresh_access_list() noexcept;
  std::string restore_snapshot();
  void open_catalogue();
  void open_completions();
  bool storage_bridge_used() const noexcept {
    return catalogue_ != nullptr || completions_ != nullptr;
  }
  // After the store applied an announce: counts its completion for the storage. The persisted
  // total is not looked up: no announce answer carries a completed count (BEP 15's has none,
  // and the HTTP answer says complete and incomplete), only a scrape's (scrape() raises it).
  void note_completion(const InfoHash& info_hash, const AnnounceReply& reply) noexcept;
  // admit_member with the passkey's user found (nullptr: unknown passkey).
  const char* admit_user(const store::UserRow* user, const AnnounceRequest* request,
                         Member& member) noexcept;
  AnnounceReply store_announce(const AnnounceRequest& request, const store::SwarmLookup* lookup,
                               std::span<std::uint8_t> peers_out) noexcept;
  std::size_t flush_completions() noexcept;
  std::size_t drain_storage() noexcept;
  void on_catalogue_change(const store::CatalogueChange& change) noexcept;
  std::size_t flush_ledger() noexcept;
  void release_held(std::uint64_t ticket) noexcept;
  void on_completion(const io_uring_cqe& cqe) noexcept;
  std::size_t drain_mailboxes() noexcept;
  void on_message(const Message& message, std::uint32_t from) noexcept;
  void publish_mailboxes() noexcept;
  std::size_t drain_control() noexcept;
  std::size_t snapshot_step(SnapshotBridge& bridge, SnapshotWork& work) noexcept;
  bool hand_snapshot_piece(SnapshotBridge& bridge, SnapshotWork& work) noexcept;
  // Cluster (cluster_bridge.hpp).
  void replicate(const AnnounceRequest& request, const AnnounceReply& reply) noexcept;
  std::size_t drain_cluster() noexcept;
  void restore_warm_records(SharedRecords& records) noexcept;
  void adopt_baseline(const ReplicaBaseline& replica) noexcept;
  void tick() noexcept;

  std::uint32_t index_;
  const ShardConfig& config_;
  ShardDirectory& directory_;
  UdpFront udp_;  // declared before ring_: the ring is torn down first
  HttpFront http_;
  net::Ring ring_;
  std::unique_ptr<store::PeerStore> store_;
  ScrapeGather scrapes_;
  ShardCounters counters_;
  CoarseClock clock_;
  std::uint32_t now_s_ = 0;
  std::chrono::steady_clock::time_point last_work_at_;  // the start of the last turn with work
  std::uint32_t last_tick_s_ = 0;
  // The longest turn's work (the sleep excluded) this second and the last (the gauge).
  std::chrono::steady_clock::duration turn_max_this_second_{};
  std::chrono::steady_clock::duration turn_max_last_second_{};
  OwnerThread owner_;  // debug builds: the loop only ever runs on the shard's own thread
  std::unique_ptr<ControlAnswer> control_answer_;  // built here (8 KiB), then copied to the queue
  const AccessList* access_list_ = nullptr;        // this loop turn's (access_list.hpp)
  // This shard's catalogue copy (private mode, or public with access.mode = "catalogue"; null
  // otherwise) and accounting table (private mode only).
  std::unique_ptr<CatalogueCopy> catalogue_;
  std::unique_ptr<Ledger> ledger_;
  // This shard's torrents' completed counts (storage.uri keeps them; null otherwise).
  std::unique_ptr<CompletionTable> completions_;
  PrivateCounters private_counters_;
  ClusterCounters cluster_counters_;
  std::vector<HeldReply> held_replies_;  // at most held_replies_max, reserved at start
  // A snapshot in progress (snapshot_bridge.hpp): this shard's cursor and the piece it is filling
  // (or could not hand over yet: ready). One piece at most is held here. Two: the snapshot
  // writer's, and the cluster's (a warm-up served to another node).
  struct SnapshotWork {
    bool active = false;
    bool ready = false;  // piece is complete and waits for room in the writer's queue
    bool last = false;   // ... and it is this generation's last
    std::uint64_t generation = 0;
    std::size_t piece_bytes = 0;
    std::uint64_t piece_swarms = 0;
    std::uint32_t piece_cut_s = 0;  // the now_s every slice of the piece was cut at
    store::SnapshotCursor cursor;
    std::unique_ptr<std::vector<std::uint8_t>> piece;
  };
  SnapshotWork snapshot_;
  SnapshotWork cluster_snapshot_;
  bool draining_ = false;
};

}  // namespace tyto::shard
