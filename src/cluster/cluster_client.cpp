#include "tyto/cluster/cluster_client.hpp"

#include <nats/nats.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "tyto/core/assert.hpp"
#include "tyto/core/clock.hpp"
#include "tyto/core/log.hpp"

namespace tyto::cluster {

namespace {
// A batch is cut well under NATS's default max_payload (1 MiB).
constexpr std::size_t batch_bytes_max = 256 * 1024;
// Pieces of a served warm-up: one NATS message each (room for the message's own head).
constexpr std::uint32_t warm_piece_bytes = warm_piece_records_max - 1024;
// Messages libnats handed over and this thread has not taken yet; past it they are dropped.
constexpr std::size_t inbound_max = 65536;
constexpr auto heartbeat_interval = std::chrono::seconds(1);
constexpr auto node_forgotten_after = std::chrono::seconds(5);
constexpr auto node_pruned_after = std::chrono::minutes(10);
constexpr auto local_take_interval = std::chrono::milliseconds(20);
constexpr std::uint32_t warm_attempts_max = 5;
// Other nodes are heard but no warm one answers (they started together, all cold): after this
// many warm_wait, the node calls itself warm and live changes fill it in.
constexpr int warm_give_up_factor = 3;
// NATS's "no responders" (nobody subscribed to the warm subject yet): ask again this soon.
constexpr auto no_responders_retry = std::chrono::milliseconds(250);
// A serve that no shard advanced for this long is abandoned (the requester asks again).
constexpr auto serve_stall = std::chrono::seconds(10);
constexpr std::size_t lag_samples_max = 65536;
// While a shard's queue is full, the bridge looks again this soon (the shard drains it meanwhile).
constexpr auto outbox_retry = std::chrono::milliseconds(1);

natsConnection* nats_connection(void* connection) {
  return static_cast<natsConnection*>(connection);
}


std::string nats_error(natsStatus status) {
  std::string text = natsStatus_GetText(status);
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != 0) {
    text += std::string(": ") + last;
  }
  return text;
}

void on_message(natsConnection*, natsSubscription*, natsMsg* message, void* closure) {
  static_cast<ClusterClient*>(closure)->deliver(message);
}
void on_disconnected(natsConnection*, void* closure) {
  static_cast<ClusterClient*>(closure)->connection_changed(false);
}
void on_connected(natsConnection*, void* closure) {
  static_cast<ClusterClient*>(closure)->connection_changed(true);
}
void on_reconnected(natsConnection*, void* closure) {
  static_cast<ClusterClient*>(closure)->connection_changed(true, true);
}

Change to_change(const ReplicaChange& replica) {
  Change change;
  change.info_hash = replica.info_hash;
  switch (replica.kind) {
    case ReplicaChange::Kind::peer:
      change.kind = ChangeKind::peer;
      change.peer = replica.peer;
      change.seeder = replica.seeder;
      break;
    case ReplicaChange::Kind::peer_removed:
      change.kind = ChangeKind::peer_removed;
      change.peer = replica.peer;
      break;
    case ReplicaChange::Kind::completed:
      change.kind = ChangeKind::completed;
      change.completed_count = replica.completed_count;
      break;
  }
  return change;
}

// base_at_zero_s: the batch's base second on this node's clock (frame Unix seconds less the
// frame's unix_at_zero_s).
ReplicaChange to_replica(const Change& change, std::int64_t base_at_zero_s) {
  ReplicaChange replica;
  replica.info_hash = change.info_hash;
  switch (change.kind) {
    case ChangeKind::peer:
      replica.kind = ReplicaChange::Kind::peer;
      replica.peer = change.peer;
      replica.seeder = change.seeder;
      replica.announced_s = static_cast<std::int32_t>(
          std::clamp<std::int64_t>(base_at_zero_s - change.announced_before_base_s, INT32_MIN, INT32_MAX));
      break;
    case ChangeKind::peer_removed:
      replica.kind = ReplicaChange::Kind::peer_removed;
      replica.peer = change.peer;
      break;
    case ChangeKind::completed:
      replica.kind = ReplicaChange::Kind::completed;
      replica.completed_count = change.completed_count;
      break;
    case ChangeKind::baseline:  // not a swarm change (on_batch hands it on as a baseline)
      TYTO_ASSERT(false);
      break;
  }
  return replica;
}
}  // namespace

std::vector<shard::CounterRow> ClusterStatus::rows() const {
  auto value = [](const std::atomic<std::uint64_t>& field) {
    return field.load(std::memory_order_relaxed);
  };
  std::vector<shard::CounterRow> rows = {
      {"connected", "1 while connected to a NATS server", true, value(connected)},
      {"reconnects", "connections to a NATS server made again after a loss", false,
       value(reconnects)},
      {"nodes_seen", "other nodes heard from in the last 5 s", true, value(nodes_seen)},
      {"warm", "1 once this node holds the cluster's swarms (warm-up done, or alone)", true,
       value(warm)},
      {"warm_pieces_in", "warm-up pieces received", false, value(warm_pieces_in)},
      {"warm_bytes_in", "warm-up record bytes received", false, value(warm_bytes_in)},
      {"warm_requests", "warm-ups this node asked for", false, value(warm_requests)},
      {"warm_served", "warm-ups this node streamed to another", false, value(warm_served)},
      {"warm_pieces_out", "warm-up pieces this node sent", false, value(warm_pieces_out)},
      {"batches_out", "replication batches published", false, value(batches_out)},
      {"bytes_out", "replication batch bytes published", false, value(bytes_out)},
      {"changes_out", "swarm changes published", false, value(changes_out)},
      {"publish_failures",
       "batches or pieces libnats refused (disconnected past its reconnect buffer)", false,
       value(publish_failures)},
      {"batches_in", "replication batches from other nodes, accepted", false, value(batches_in)},
      {"bytes_in", "replication batch bytes received", false, value(bytes_in)},
      {"changes_in", "swarm changes from other nodes handed to the shards", false,
       value(changes_in)},
      {"changes_in_deferred",
       "swarm changes from other nodes held back: a shard's queue was full (no message is taken "
       "until it drained)",
       false, value(changes_in_deferred)},
      {"baselines_out", "private peers' accounting baselines published (once durable here)", false,
       value(baselines_out)},
      {"baselines_in", "private peers' accounting baselines from other nodes handed to the shards",
       false, value(baselines_in)},
      {"baselines_dropped",
       "durable baselines not published: too many waited for this thread (storage is ahead)",
       false, value(baselines_dropped)},
      {"batches_duplicate", "batches skipped: at or below the last sequence of their origin", false,
       value(batches_duplicate)},
      {"batches_own", "batches skipped: sent under this node's own name", false,
       value(batches_own)},
      {"messages_dropped", "NATS messages dropped before this thread took them (too many)", false,
       value(messages_dropped)},
      {"lag_p50_ms", "age of the batches applied in the last second, median (ms)", true,
       value(lag_p50_ms)},
      {"lag_p99_ms", "age of the batches applied in the last second, 99th percentile (ms)", true,
       value(lag_p99_ms)},
  };
  static constexpr const char* refused_names[refusals_count] = {
      "refused_too_short",   "refused_too_large",  "refused_bad_mac",   "refused_bad_magic",
      "refused_bad_version", "refused_bad_header", "refused_bad_count", "refused_bad_change"};
  for (std::size_t i = 0; i < refusals_count; ++i) {
    rows.push_back({refused_names[i],
                    "messages refused (another cluster secret, altered, or malformed), by reason",
                    false, value(refused[i])});
  }
  return rows;
}

ClusterClient::ClusterClient(ClusterClientConfig config, shard::ClusterBridge& bridge,
                             shard::SnapshotBridge& snapshots, std::span<shard::Presence> shards,
                             OwnerOf owner_of,
                             shard::BaselineHandoff* baselines)
    : config_(std::move(config)),
      bridge_(bridge),
      snapshots_(snapshots),
      shards_(shards),
      owner_of_(std::move(owner_of)),
      baselines_(baselines),
      swarm_prefix_("tyto." + config_.name + ".swarm."),
      warm_subject_("tyto." + config_.name + ".warm"),
      local_(shards.size()),
      next_sequence_(shards.size()),
      outbox_(shards.size()) {
  // Sequences above every earlier run's: this run's start in µs.
  const auto start_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  for (auto& sequence : next_sequence_) sequence = static_cast<std::uint64_t>(start_us);
}

ClusterClient::~ClusterClient() {
  finish();
}

std::string ClusterClient::init() {
  if (std::string error = waker_.init(); !error.empty()) return error;
  inbound_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (inbound_fd_ < 0) return std::string("eventfd: ") + std::strerror(errno);
  natsOptions* options = nullptr;
  auto check = [](natsStatus status, const char* what) -> std::string {
    return status == NATS_OK ? std::string() : std::string(what) + ": " + nats_error(status);
  };
  if (std::string error = check(natsOptions_Create(&options), "NATS options"); !error.empty()) {
    return error;
  }
  options_ = options;
  std::vector<const char*> servers;
  for (const auto& server : config_.servers) servers.push_back(server.c_str());
  std::string error =
      check(natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size())),
            "cluster.nats");
  if (error.empty()) error = check(natsOptions_SetName(options, config_.node.c_str()), "name");
  if (error.empty()) error = check(natsOptions_SetNoEcho(options, true), "no echo");
  if (error.empty()) error = check(natsOptions_SetMaxReconnect(options, -1), "reconnect");
  if (error.empty()) error = check(natsOptions_SetReconnectWait(options, 250), "reconnect wait");
  if (error.empty()) error = check(natsOptions_SetTimeout(options, 2000), "connect timeout");
  if (error.empty()) error = check(natsOptions_SetPingInterval(options, 2000), "ping interval");
  if (error.empty()) error = check(natsOptions_SetMaxPingsOut(options, 2), "pings out");
  if (error.empty()) {
    error = check(natsOptions_SetReconnectBufSize(options, 8 * 1024 * 1024), "reconnect buffer");
  }
  if (error.empty()) {
    error = check(natsOptions_SetDisconnectedCB(options, on_disconnected, this), "callbacks");
  }
  if (error.empty()) {
    error = check(natsOptions_SetReconnectedCB(options, on_reconnected, this), "callbacks");
  }
  if (error.empty()) {
    error = check(natsOptions_SetRetryOnFailedConnect(options, true, on_connected, this),
                  "retry on failed connect");
  }
  if (error.empty() && !config_.credentials_file.empty()) {
    error = check(
        natsOptions_SetUserCredentialsFromFiles(options, config_.credentials_file.c_str(), nullptr),
        "cluster.credentials_file");
  }
  if (error.empty() && !config_.tls_ca_file.empty()) {
    error = check(natsOptions_SetSecure(options, true), "TLS");
    if (error.empty()) {
      error = check(natsOptions_LoadCATrustedCertificates(options, config_.tls_ca_file.c_str()),
                    "cluster.tls_ca_file");
    }
  }
  if (error.empty() && !config_.tls_cert_file.empty()) {
    error = check(natsOptions_SetSecure(options, true), "TLS");
    if (error.empty()) {
      error = check(natsOptions_LoadCertificatesChain(options, config_.tls_cert_file.c_str(),
                                                      config_.tls_key_file.c_str()),
                    "cluster.tls_cert_file");
    }
  }
  if (!error.empty()) return error;
  natsConnection* connection = nullptr;
  const natsStatus connected = natsConnection_Connect(&connection, options);
  if (connected != NATS_OK && connected != NATS_NOT_YET_CONNECTED) {
    return "cluster.nats: " + nats_error(connected);
  }
  connection_ = connection;
  if (connected == NATS_NOT_YET_CONNECTED) {
    TYTO_LOG(log::Level::warning,
             "cluster: no NATS server answers yet; serving alone and trying in the background");
  }
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK) return "cluster: cannot make an inbox";
  inbox_ = inbox;
  natsInbox_Destroy(inbox);
  natsSubscription* swarms = nullptr;
  natsSubscription* answers = nullptr;
  error = check(natsConnection_Subscribe(&swarms, connection, (swarm_prefix_ + ">").c_str(),
                                         on_message, this),
                "subscribe");
  swarm_subscription_ = swarms;
  if (error.empty()) {
    error = check(natsConnection_Subscribe(&answers, connection, inbox_.c_str(), on_message, this),
                  "subscribe");
    inbox_subscription_ = answers;
  }
  // The shards' changes and a warm-up's pieces come in bursts: let libnats hold plenty.
  if (error.empty()) natsSubscription_SetPendingLimits(swarms, 1 << 20, 1 << 30);
  if (error.empty()) natsSubscription_SetPendingLimits(answers, 1 << 20, 1 << 30);
  if (!error.empty()) return error;
  TYTO_LOG(log::Level::info, "cluster: node {} of cluster {} on {} NATS server(s)", config_.node,
           config_.name, config_.servers.size());
  return {};
}

shard::BridgeThread::Doorbell ClusterClient::doorbell() {
  return {inbound_fd_, [] { return true; },
          [this] {
            std::uint64_t count;
            [[maybe_unused]] const auto got = ::read(inbound_fd_, &count, sizeof count);
          }};
}

void ClusterClient::deliver(void* message) noexcept {
  {
    std::lock_guard lock(inbound_mutex_);
    if (inbound_.size() < inbound_max) {
      inbound_.push_back(message);
      message = nullptr;
    }
  }
  if (message != nullptr) {
    natsMsg_Destroy(static_cast<natsMsg*>(message));
    status_.messages_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(inbound_fd_, &one, sizeof one);
}

// libnats's threads: the first connection (when it was not there at start), a loss, a
// reconnection (counted here, whatever this thread read of the status meanwhile).
void ClusterClient::connection_changed(bool connected, bool reconnected) noexcept {
  if (reconnected) status_.reconnects.fetch_add(1, std::memory_order_relaxed);
  status_.connected.store(connected ? 1 : 0, std::memory_order_relaxed);
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(inbound_fd_, &one, sizeof one);
}

void ClusterClient::watch(std::vector<pollfd>&, Clock::time_point& wake_at) {
  // Held back by a full shard queue: try again soon, the shards drain it meanwhile.
  if (!outbox_empty() || inbound_next_ < inbound_taken_.size()) {
    wake_at = std::min(wake_at, Clock::now() + outbox_retry);
  }
  wake_at = std::min(wake_at, next_publish_at_);
  wake_at = std::min(wake_at, next_status_at_);
  // The shards' outgoing queues are emptied more often than batches go out: at 300 k announces/s
  // a shard's 32 k slots last about 100 ms, one publish interval; this leaves them 5 × room.
  wake_at = std::min(wake_at, Clock::now() + local_take_interval);
  if (!warm_ && warm_nonce_ != 0) wake_at = std::min(wake_at, warm_deadline_);
}

void ClusterClient::turn(std::span<const pollfd>) {
  const auto now = Clock::now();
  const bool connected =
      natsConnection_Status(nats_connection(connection_)) == NATS_CONN_STATUS_CONNECTED;
  status_.connected.store(connected ? 1 : 0, std::memory_order_relaxed);
  send_outbox();
  handle_inbound();
  take_local_changes();
  if (now >= next_publish_at_) {
    publish_batches(now - last_publish_at_ >= heartbeat_interval);
    next_publish_at_ = now + config_.publish_interval;
  }
  serve_pieces();
  if (serving_ && now > serve_deadline_) {
    TYTO_LOG(log::Level::warning, "cluster: warm-up for {} stalled; abandoned", serve_reply_);
    serving_ = false;
  }
  if (warm_streamed_) {
    if (!warm_ && outbox_empty() && records_.empty()) {
      become_warm(("streamed by " + warm_from_ + ", restored by every shard").c_str());
    }
  } else if (!warm_ && connected) {
    if (warm_nonce_ == 0) {
      request_warm(now);
    } else if (now >= warm_deadline_) {
      const auto waited = now - warm_started_;
      if (!warm_from_.empty()) {  // a transfer began and stalled
        if (warm_attempts_ < warm_attempts_max) {
          request_warm(now);
        } else {
          become_warm("gave up waiting for a complete warm-up; live changes fill in the rest");
        }
      } else if (nodes_heard(now) == 0 && waited >= config_.warm_wait) {
        become_warm("no other node heard from: the first of its cluster");
      } else if (waited >= warm_give_up_factor * config_.warm_wait) {
        become_warm("other nodes are heard but none answered (none warm yet?)");
      } else {
        request_warm(now);
      }
    }
  }
  if (now >= next_status_at_) {
    update_status(now);
    next_status_at_ = now + std::chrono::seconds(1);
  }
}

std::uint64_t ClusterClient::frame_unix_ms() const noexcept {
  CoarseClock clock;
  clock.refresh();
  return config_.frame.unix_ms(clock.now_ns());
}

void ClusterClient::take_local_changes() {
  bridge_.receive([this](std::uint32_t shard, const shard::ClusterFromShard& message) {
    const std::uint64_t announced_unix_s =
        message.change.kind == ReplicaChange::Kind::peer
            ? static_cast<std::uint64_t>(
                  std::max<std::int64_t>(0, std::int64_t{message.change.announced_s} +
                                                static_cast<std::int64_t>(config_.frame.unix_at_zero_s())))
            : 0;
    local_[shard].push_back({to_change(message.change), announced_unix_s});
  });
  if (baselines_ == nullptr) return;
  baselines_->take(baselines_taken_);
  for (const shard::BaselineHandoff::Held& held : baselines_taken_) {
    TYTO_ASSERT(held.shard < local_.size());
    const store::Baseline& baseline = held.baseline.baseline;
    Change change;
    change.kind = ChangeKind::baseline;
    change.info_hash = held.baseline.info_hash;
    change.user_id = baseline.key.user_id;
    change.torrent_id = baseline.key.torrent_id;
    change.peer_id = baseline.key.peer_id;
    change.uploaded = baseline.uploaded;
    change.downloaded = baseline.downloaded;
    change.announced_unix_s = baseline.announced_unix_s;
    change.seeder = baseline.seeding;
    change.closed = held.baseline.closed;
    local_[held.shard].push_back({change, 0});
  }
  status_.baselines_out.fetch_add(baselines_taken_.size(), std::memory_order_relaxed);
  status_.baselines_dropped.store(baselines_->dropped(), std::memory_order_relaxed);
}

void ClusterClient::publish(const std::string& subject, const std::vector<std::uint8_t>& bytes,
                            const char* reply) {
  const natsStatus status =
      reply == nullptr
          ? natsConnection_Publish(nats_connection(connection_), subject.c_str(), bytes.data(),
                                   static_cast<int>(bytes.size()))
          : natsConnection_PublishRequest(nats_connection(connection_), subject.c_str(), reply,
                                          bytes.data(), static_cast<int>(bytes.size()));
  if (status != NATS_OK) {
    status_.publish_failures.fetch_add(1, std::memory_order_relaxed);
    TYTO_LOG_LIMITED(log::Level::warning, "cluster: publish on {}: {}", subject,
                     natsStatus_GetText(status));
  }
}

// Every shard's changes since the last call, cut into batches; an empty batch as a heartbeat
// when nothing else went out for a second.
void ClusterClient::publish_batches(bool heartbeat) {
  const auto shards = static_cast<std::uint16_t>(local_.size());
  bool published = false;
  for (std::uint16_t shard = 0; shard < shards; ++shard) {
    std::vector<LocalChange>& changes = local_[shard];
    const bool beat = heartbeat && shard == 0 && !published;
    if (changes.empty() && !beat) continue;
    const std::string subject =
        swarm_prefix_ + std::to_string(shards) + "." + std::to_string(shard);
    std::size_t from = 0;
    do {
      batch_.origin = config_.node;
      batch_.shards_count = shards;
      batch_.shard = shard;
      batch_.sequence = next_sequence_[shard]++;
      batch_.base_unix_ms = frame_unix_ms();
      const std::uint64_t base_s = batch_.base_unix_ms / 1000;
      batch_.changes.clear();
      std::size_t size = batch_header_size_max + batch_mac_size;
      while (from < changes.size() &&
             size + encoded_change_size(changes[from].change) < batch_bytes_max) {
        const LocalChange& local = changes[from++];
        size += encoded_change_size(local.change);
        batch_.changes.push_back(local.change);
        if (local.change.kind == ChangeKind::peer) {  // the frame is monotonic: not after base
          batch_.changes.back().announced_before_base_s = static_cast<std::uint16_t>(
              std::min<std::uint64_t>(base_s - std::min(base_s, local.announced_unix_s), 0xffff));
        }
      }
      bytes_.clear();
      if (!encode_batch(batch_, config_.key, bytes_)) {
        status_.publish_failures.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      publish(subject, bytes_);
      status_.batches_out.fetch_add(1, std::memory_order_relaxed);
      status_.bytes_out.fetch_add(bytes_.size(), std::memory_order_relaxed);
      status_.changes_out.fetch_add(batch_.changes.size(), std::memory_order_relaxed);
      published = true;
    } while (from < changes.size());
    changes.clear();
  }
  if (published) last_publish_at_ = Clock::now();
}

// Messages are taken in order, and none while a shard's queue refused something (outbox_): the
// backlog waits in inbound_ (up to inbound_max) instead of being dropped (a paused node catching
// up).
void ClusterClient::handle_inbound() {
  if (inbound_next_ == inbound_taken_.size()) {
    inbound_taken_.clear();
    inbound_next_ = 0;
    std::lock_guard lock(inbound_mutex_);
    inbound_taken_.swap(inbound_);
  }
  while (inbound_next_ < inbound_taken_.size() && outbox_empty()) {
    auto* message = static_cast<natsMsg*>(inbound_taken_[inbound_next_++]);
    const std::string_view subject = natsMsg_GetSubject(message);
    const auto* data = reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(message));
    const std::span<const std::uint8_t> bytes(
        data, static_cast<std::size_t>(std::max(0, natsMsg_GetDataLength(message))));
    if (subject.starts_with(swarm_prefix_)) {
      on_batch(bytes);
    } else if (subject == warm_subject_) {
      on_warm_request(bytes, natsMsg_GetReply(message));
    } else {
      on_warm_answer(bytes);
    }
    natsMsg_Destroy(message);
  }
  TYTO_ASSERT(inbound_next_ <= inbound_taken_.size());
  bridge_.publish(shards_, waker_);
}

void ClusterClient::refuse(Refusal refusal, const char* what) {
  status_.refused[static_cast<std::size_t>(refusal)].fetch_add(1, std::memory_order_relaxed);
  TYTO_LOG_LIMITED(log::Level::warning, "cluster: {} refused: {}", what, refusal_name(refusal));
}

void ClusterClient::on_batch(std::span<const std::uint8_t> bytes) {
  Refusal refusal{};
  if (!decode_batch(bytes, config_.key, received_, refusal)) {
    refuse(refusal, "batch");
    return;
  }
  if (received_.origin == config_.node) {
    status_.batches_own.fetch_add(1, std::memory_order_relaxed);
    TYTO_LOG_LIMITED(log::Level::warning,
                     "cluster: a batch under this node's own name ({}): is cluster.node unique?",
                     config_.node);
    return;
  }
  nodes_[received_.origin] = Clock::now();
  std::uint64_t& last_sequence = last_sequences_[{received_.origin, received_.shard}];
  if (received_.sequence <= last_sequence) {
    status_.batches_duplicate.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  last_sequence = received_.sequence;
  status_.batches_in.fetch_add(1, std::memory_order_relaxed);
  status_.bytes_in.fetch_add(bytes.size(), std::memory_order_relaxed);
  const std::uint64_t now_ms = frame_unix_ms();
  const std::uint64_t lag_ms =
      now_ms > received_.base_unix_ms ? now_ms - received_.base_unix_ms : 0;
  if (lags_ms_.size() < lag_samples_max) {
    lags_ms_.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(lag_ms, UINT32_MAX)));
  }
  // Announce times on this node's clock, exactly (they do not depend on when a shard takes
  // them): the second the origin stamped is the second stamped here.
  const std::int64_t base_at_zero_s =
      static_cast<std::int64_t>(received_.base_unix_ms / 1000) -
      static_cast<std::int64_t>(config_.frame.unix_at_zero_s());
  // A change a full queue refuses waits in its shard's outbox, and so does every later one for
  // that shard (order kept): at most this batch's changes, as no message is taken meanwhile.
  std::uint64_t deferred = 0;
  std::uint64_t baselines = 0;
  for (const Change& change : received_.changes) {
    shard::ClusterToShard message;
    if (change.kind == ChangeKind::baseline) {
      message.kind = shard::ClusterToShard::Kind::baseline;
      message.baseline.info_hash = change.info_hash;
      message.baseline.baseline = {{change.user_id, change.torrent_id, change.peer_id},
                                   change.uploaded,
                                   change.downloaded,
                                   change.announced_unix_s,
                                   change.seeder};
      message.baseline.closed = change.closed;
      ++baselines;
    } else {
      message.kind = shard::ClusterToShard::Kind::change;
      message.change = to_replica(change, base_at_zero_s);
    }
    const std::uint32_t shard = owner_of_(change.info_hash);
    TYTO_ASSERT(shard < outbox_.size());
    if (!outbox_[shard].empty() || !bridge_.send(shard, message)) {
      outbox_[shard].push_back(message);
      ++deferred;
    }
  }
  TYTO_ASSERT(deferred <= received_.changes.size());
  status_.changes_in.fetch_add(received_.changes.size() - baselines, std::memory_order_relaxed);
  status_.baselines_in.fetch_add(baselines, std::memory_order_relaxed);
  if (deferred != 0) {
    status_.changes_in_deferred.fetch_add(deferred, std::memory_order_relaxed);
    bridge_.publish(shards_, waker_);  // let the shards start on what they took
  }
}

// --- Warm-up: asking ---

void ClusterClient::request_warm(Clock::time_point now) {
  std::random_device random;
  warm_nonce_ = (std::uint64_t{random()} << 32) | random();
  if (warm_nonce_ == 0) warm_nonce_ = 1;
  warm_from_.clear();
  warm_pieces_ = 0;
  ++warm_attempts_;
  if (warm_attempts_ == 1) warm_started_ = now;
  warm_deadline_ = now + config_.warm_wait;
  WarmMessage request;
  request.kind = WarmKind::request;
  request.origin = config_.node;
  request.nonce = warm_nonce_;
  bytes_.clear();
  if (!encode_warm(request, config_.key, bytes_)) return;
  publish(warm_subject_, bytes_, inbox_.c_str());
  status_.warm_requests.fetch_add(1, std::memory_order_relaxed);
  TYTO_LOG(log::Level::info, "cluster: asking the cluster for its swarms (attempt {})",
           warm_attempts_);
}

void ClusterClient::on_warm_answer(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) {  // NATS's "no responders" status: no warm node is subscribed (yet)
    if (!warm_) warm_deadline_ = std::min(warm_deadline_, Clock::now() + no_responders_retry);
    return;
  }
  WarmMessage message;
  Refusal refusal{};
  if (!decode_warm(bytes, config_.key, message, refusal)) {
    refuse(refusal, "warm-up answer");
    return;
  }
  if (warm_ || warm_streamed_ || message.nonce != warm_nonce_ ||
      message.kind == WarmKind::request) {
    return;
  }
  if (warm_from_.empty()) warm_from_ = message.origin;
  if (message.origin != warm_from_) return;  // another responder's: one is enough
  const auto now = Clock::now();
  if (message.kind == WarmKind::done) {
    if (message.index == warm_pieces_) {
      warm_streamed_ = true;  // warm once the shards restored every piece (turn)
    } else {
      TYTO_LOG(log::Level::warning, "cluster: warm-up from {} sent {} pieces, {} came; again",
               warm_from_, message.index, warm_pieces_);
      request_warm(now);
    }
    return;
  }
  if (message.index != warm_pieces_) {  // a gap: NATS dropped one (slow consumer)
    TYTO_LOG(log::Level::warning, "cluster: warm-up piece {} came where {} was due; again",
             message.index, warm_pieces_);
    request_warm(now);
    return;
  }
  ++warm_pieces_;
  warm_deadline_ = now + config_.warm_wait;
  status_.warm_pieces_in.fetch_add(1, std::memory_order_relaxed);
  status_.warm_bytes_in.fetch_add(message.records.size(), std::memory_order_relaxed);
  if (message.records.empty()) return;
  auto records = std::make_unique<shard::SharedRecords>();
  records->bytes.assign(message.records.begin(), message.records.end());
  records->cut_s = static_cast<std::int64_t>(message.unix_ms / 1000) -
                   static_cast<std::int64_t>(config_.frame.unix_at_zero_s());
  records->holders.store(static_cast<std::uint32_t>(shards_.size()), std::memory_order_relaxed);
  for (auto& outbox : outbox_) {
    outbox.push_back({shard::ClusterToShard::Kind::records, {}, records.get()});
  }
  records_.push_back(std::move(records));
  send_outbox();
}

bool ClusterClient::outbox_empty() const noexcept {
  return std::all_of(outbox_.begin(), outbox_.end(),
                     [](const auto& outbox) { return outbox.empty(); });
}

void ClusterClient::send_outbox() {
  bool sent = false;
  for (std::uint32_t shard = 0; shard < outbox_.size(); ++shard) {
    auto& outbox = outbox_[shard];
    while (!outbox.empty() && bridge_.send(shard, outbox.front())) {
      outbox.pop_front();
      sent = true;
    }
  }
  if (sent) bridge_.publish(shards_, waker_);
  std::erase_if(records_, [](const auto& records) { return records->released(); });
}

void ClusterClient::become_warm(const char* why) {
  warm_ = true;
  status_.warm.store(1, std::memory_order_relaxed);
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - warm_started_);
  TYTO_LOG(log::Level::info, "cluster: warm ({}) after {} ms: {} pieces, {} bytes", why,
           took.count(), status_.warm_pieces_in.load(), status_.warm_bytes_in.load());
  natsSubscription* subscription = nullptr;
  const natsStatus status = natsConnection_QueueSubscribe(
      &subscription, nats_connection(connection_), warm_subject_.c_str(), "warm", on_message, this);
  if (status != NATS_OK) {
    TYTO_LOG(log::Level::error, "cluster: cannot serve warm-ups: {}", nats_error(status));
    return;
  }
  warm_subscription_ = subscription;
}

// --- Warm-up: serving ---

void ClusterClient::on_warm_request(std::span<const std::uint8_t> bytes, const char* reply) {
  WarmMessage message;
  Refusal refusal{};
  if (!decode_warm(bytes, config_.key, message, refusal)) {
    refuse(refusal, "warm-up request");
    return;
  }
  if (message.kind != WarmKind::request || reply == nullptr || !warm_ ||
      message.origin == config_.node) {
    return;
  }
  if (serving_) {
    TYTO_LOG(log::Level::info, "cluster: a warm-up for {} abandoned for {}'s", serve_reply_,
             message.origin);
  }
  serving_ = true;
  ++serve_generation_;
  serve_nonce_ = message.nonce;
  serve_reply_ = reply;
  serve_pieces_ = 0;
  serve_shards_done_ = 0;
  serve_deadline_ = Clock::now() + serve_stall;
  for (std::uint32_t shard = 0; shard < shards_.size(); ++shard) {
    if (!snapshots_.send(shard, shard::SnapshotRequest{serve_generation_, warm_piece_bytes})) {
      TYTO_LOG(log::Level::warning, "cluster: shard {} cannot start a warm-up now", shard);
      serving_ = false;
    }
  }
  snapshots_.publish(shards_, waker_);
  TYTO_LOG(log::Level::info, "cluster: streaming this node's swarms to {}", message.origin);
}

void ClusterClient::serve_pieces() {
  snapshots_.receive([this](std::uint32_t, const shard::SnapshotPiece& piece) {
    std::unique_ptr<std::vector<std::uint8_t>> records(piece.bytes);  // ours now
    if (!serving_ || piece.generation != serve_generation_) return;
    serve_deadline_ = Clock::now() + serve_stall;
    WarmMessage message;
    message.kind = WarmKind::piece;
    message.origin = config_.node;
    message.nonce = serve_nonce_;
    message.index = serve_pieces_;
    message.unix_ms = (config_.frame.unix_at_zero_s() + piece.cut_s) * 1000;  // the cut's second
    message.records = *records;
    bytes_.clear();
    if (!encode_warm(message, config_.key, bytes_)) {
      TYTO_LOG(log::Level::error, "cluster: a warm-up piece of {} bytes does not fit; abandoned",
               records->size());
      serving_ = false;
      return;
    }
    publish(serve_reply_, bytes_);
    ++serve_pieces_;
    status_.warm_pieces_out.fetch_add(1, std::memory_order_relaxed);
    if (piece.last && ++serve_shards_done_ == shards_.size()) {
      WarmMessage done;
      done.kind = WarmKind::done;
      done.origin = config_.node;
      done.nonce = serve_nonce_;
      done.index = serve_pieces_;
      bytes_.clear();
      if (encode_warm(done, config_.key, bytes_)) publish(serve_reply_, bytes_);
      serving_ = false;
      status_.warm_served.fetch_add(1, std::memory_order_relaxed);
      TYTO_LOG(log::Level::info, "cluster: warm-up streamed: {} pieces", serve_pieces_);
    }
  });
}

std::uint64_t ClusterClient::nodes_heard(Clock::time_point now) const {
  std::uint64_t heard = 0;
  for (const auto& [node, at] : nodes_) heard += now - at < node_forgotten_after;
  return heard;
}

void ClusterClient::update_status(Clock::time_point now) {
  // Nodes silent for node_pruned_after are forgotten with their sequences, so the maps hold the
  // nodes of the last minutes, not every name ever seen. A batch of theirs older than that (no
  // NATS delivery is that late) would be applied again: peers are upserts; only a completion
  // could count twice.
  std::erase_if(nodes_, [&](const auto& node) {
    if (now - node.second < node_pruned_after) return false;
    std::erase_if(last_sequences_,
                  [&](const auto& origin) { return origin.first.first == node.first; });
    return true;
  });
  status_.nodes_seen.store(nodes_heard(now), std::memory_order_relaxed);
  if (!lags_ms_.empty()) {
    std::sort(lags_ms_.begin(), lags_ms_.end());
    status_.lag_p50_ms.store(lags_ms_[lags_ms_.size() / 2], std::memory_order_relaxed);
    status_.lag_p99_ms.store(lags_ms_[(lags_ms_.size() - 1) * 99 / 100], std::memory_order_relaxed);
    lags_ms_.clear();
  }
}

void ClusterClient::finish() noexcept {
  if (finished_) return;
  finished_ = true;
  if (connection_ != nullptr) {
    // Destroying a subscription or the connection waits for libnats's threads to let go.
    natsConnection_Close(nats_connection(connection_));
    for (void* subscription : {swarm_subscription_, inbox_subscription_, warm_subscription_}) {
      if (subscription != nullptr) {
        natsSubscription_Destroy(static_cast<natsSubscription*>(subscription));
      }
    }
    natsConnection_Destroy(nats_connection(connection_));
    connection_ = nullptr;
  }
  // Messages still queued go before the library closes: destroying one after nats_Close()
  // touched its freed state (a SIGSEGV at a stop with batches waiting).
  for (void* message : inbound_) natsMsg_Destroy(static_cast<natsMsg*>(message));
  inbound_.clear();
  for (; inbound_next_ < inbound_taken_.size(); ++inbound_next_) {
    natsMsg_Destroy(static_cast<natsMsg*>(inbound_taken_[inbound_next_]));
  }
  inbound_taken_.clear();
  inbound_next_ = 0;
  if (options_ != nullptr) {
    natsOptions_Destroy(static_cast<natsOptions*>(options_));
    options_ = nullptr;
    nats_Close();
  }
  // Pieces the shards handed over and nobody took (the shards stopped).
  snapshots_.release_bridge_side();
  snapshots_.receive([](std::uint32_t, const shard::SnapshotPiece& piece) { delete piece.bytes; });
  records_.clear();
  if (inbound_fd_ >= 0) ::close(inbound_fd_);
  inbound_fd_ = -1;
}

}  // namespace tyto::cluster
