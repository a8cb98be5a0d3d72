#include "tyto/shard/shard.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "tyto/core/assert.hpp"
#include "tyto/core/log.hpp"
#include "tyto/proto/http.hpp"

namespace tyto::shard {

namespace {
constexpr unsigned ring_entries = 4096;
// A sleeping shard still ticks once a second.
constexpr unsigned idle_wait_ms = 1000;
// A shard whose accounting deltas (or completions) wait for room in the storage bridge's full
// queue sleeps this long at most: the storage thread frees the room without waking it, and at a
// second a turn an idle shard handed on one queue's worth (4096) a second, so a ledger left
// holding a burst's deltas took minutes to be written after the burst (issue 19: the writer "did
// not catch up within 60 s"). At 2 ms, up to 2 M deltas a second can go, more than any writer
// takes; while the database is down (the storage thread's backlog full) it costs 500 wake-ups a
// second.
constexpr unsigned room_wait_ms = 2;
constexpr unsigned stop_drain_ms = 2000;

std::unique_ptr<store::PeerStore> make_store(const ShardConfig& config, const TimeFrame& frame,
                                             const HashSecret& secret, std::uint32_t index) {
  const std::uint64_t seed = 0x7f4a7c15u + index;
  store::StoreLimits limits = config.store_limits;
  limits.unix_at_zero_s = frame.unix_at_zero_s();
  if (config.make_peer_store) return config.make_peer_store(limits, secret, seed);
  return store::make_memory_peer_store(limits, secret, seed);
}
}  // namespace

ShardDirectory::ShardDirectory(std::uint32_t count, ShardKey key, std::uint32_t clock_speedup)
    : shards_count(count),
      shard_key(key),
      time_frame(clock_speedup),
      presence(new Presence[count]),
      entries(new Entry[count]),
      lent_areas(count) {
  TYTO_ASSERT(count > 0);
  mailboxes.reserve(std::size_t{count} * (count - 1));
  for (std::size_t i = 0; i < std::size_t{count} * (count - 1); ++i) {
    mailboxes.push_back(std::make_unique<Mailbox>());
  }
}

Shard::Shard(std::uint32_t index, const ShardConfig& config, ShardDirectory& directory,
             const proto::ConnectionIds& connection_ids, const HashSecret& secret)
    : index_(index),
      config_(config),
      directory_(directory),
      udp_(*this, connection_ids),
      http_(*this),
      store_(make_store(config, directory.time_frame, secret, index)),
      scrapes_(*this) {
  TYTO_ASSERT(index < directory.shards_count && store_ != nullptr);
  control_answer_ = std::make_unique<ControlAnswer>();
  if (config.private_tracker.enabled || config.catalogue_whitelist) {
    catalogue_ = std::make_unique<CatalogueCopy>(secret);
  }
  if (config.private_tracker.enabled) {
    ledger_ = std::make_unique<Ledger>(config.private_tracker.ledger, secret);
    held_replies_.reserve(held_replies_max);
  }
  if (config.completions_persisted) {
    completions_ = std::make_unique<CompletionTable>(config.completions_max, secret);
  }
}

Shard::~Shard() = default;

std::string Shard::open() {
  if (store_->swarms_max() < config_.store_limits.swarms_max) {
    TYTO_LOG(log::Level::warning,
             "shard {}: room for {} swarms only (limits.swarms_per_shard_max {}): "
             "more are refused",
             index_, store_->swarms_max(), config_.store_limits.swarms_max);
  }
  if (std::string error = ring_.init(ring_entries, true); !error.empty()) return error;
  if (std::string error = udp_.open(ring_, config_.udp_send_mode); !error.empty()) return error;
  if (std::string error = http_.open(ring_); !error.empty()) return error;
  directory_.lent_areas[index_] = http_.lent_area();
  if (std::string error = restore_snapshot(); !error.empty()) return error;
  if (catalogue_ != nullptr) open_catalogue();
  if (completions_ != nullptr) open_completions();
  ring_.submit();
  refresh_clock();
  last_tick_s_ = now_s_;
  directory_.presence[index_].ring_fd.store(ring_.fd(), std::memory_order_release);
  return {};
}

std::string Shard::restore_snapshot() {
  if (directory_.snapshot_records.empty()) return {};
  refresh_clock();
  const auto restored = store_->restore_snapshot(
      directory_.snapshot_records, now_s_, directory_.snapshot_extra_age_s,
      [this](const InfoHash& info_hash) { return owner_of(info_hash) == index_; });
  if (!restored.ok()) return "snapshot: " + restored.error();
  directory_.restored_swarms += restored.value().swarms;
  directory_.restored_peers += restored.value().peers;
  return {};
}

// The catalogue's users and client rules, the torrents this shard owns, and the baselines of
// their peers (start-up, on the shard's own thread: the tables are first touched here).
void Shard::open_catalogue() {
  refresh_clock();
  std::vector<std::uint64_t> own_torrent_ids;  // sorted, for the baselines below
  if (const store::CatalogueRows* rows = directory_.catalogue_rows) {
    for (const auto& torrent : rows->torrents) {
      if (owner_of(torrent.info_hash) == index_) own_torrent_ids.push_back(torrent.torrent_id);
    }
    // Users and client rules matter to the private tracker only.
    const bool users = private_tracker();
    catalogue_->reserve(users ? rows->users.size() : 0, own_torrent_ids.size());
    for (const auto& torrent : rows->torrents) {
      if (owner_of(torrent.info_hash) == index_) catalogue_->put_torrent(torrent);
    }
    for (const auto& user : users ? rows->users : std::vector<store::UserRow>{}) {
      catalogue_->put_user(user);
    }
    for (const auto& rule : users ? rows->client_rules : std::vector<store::ClientRuleRow>{}) {
      private_counters_.client_rules_refused += !catalogue_->put_client_rule(rule);
    }
  }
  if (!private_tracker()) return;
  std::sort(own_torrent_ids.begin(), own_torrent_ids.end());
  std::uint64_t refused = 0;
  for (const store::Baseline& baseline : directory_.baselines) {
    // A baseline belongs to the shard owning its torrent (unknown torrents: nobody's).
    if (!std::binary_search(own_torrent_ids.begin(), own_torrent_ids.end(),
                            baseline.key.torrent_id)) {
      continue;
    }
    refused += !ledger_->restore(baseline, now_s_, now_unix_s());
  }
  if (refused != 0) {
    TYTO_LOG(log::Level::warning,
             "shard {}: {} persisted baselines did not fit the accounting table", index_, refused);
  }
}

std::uint64_t Shard::now_unix_s() const noexcept {
  return (directory_.time_frame.unix_at_zero_s() + now_s_) / directory_.time_frame.speedup();
}

void Shard::refresh_clock() noexcept {
  clock_.refresh();
  now_s_ = directory_.time_frame.now_s(clock_.now_ns());
}

void Shard::run() noexcept {
  bool busy = true;
  while (!directory_.stopping.load(std::memory_order_relaxed)) busy = turn(!busy);
  drain();
}

// Stopping (SIGTERM): new UDP requests are dropped (counted) and HTTP connections take no new
// request, but what is in flight is finished: answers owed to other shards or to waiting HTTP
// connections, gathered scrapes, replies the kernel has not sent yet. A shard leaves only when
// every shard is quiet and its own mailboxes are empty — a shard publishes its forwards before
// it says it is quiet (both seq_cst), so a forward is never stranded in a mailbox of a shard
// that left. At most stop_drain_ms in all.
void Shard::drain() noexcept {
  draining_ = true;
  auto& self = directory_.entries[index_];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(stop_drain_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    turn(false);
    const bool quiet_now = quiet();
    self.quiet.store(quiet_now, std::memory_order_seq_cst);
    if (!quiet_now) continue;
    bool everyone_quiet = true;
    for (std::uint32_t i = 0; i < directory_.shards_count && everyone_quiet; ++i) {
      everyone_quiet = directory_.entries[i].quiet.load(std::memory_order_seq_cst);
    }
    if (everyone_quiet && !mail_waiting()) break;
    std::this_thread::yield();
  }
  ring_.submit();
}

bool Shard::quiet() const noexcept {
  return http_.idle() && scrapes_.idle() && udp_.idle() && held_replies_.empty();
}

// seq_cst, paired with the producers' publish (see turn()).
bool Shard::mail_waiting() const noexcept {
  for (std::uint32_t from = 0; from < directory_.shards_count; ++from) {
    if (from != index_ && !directory_.mailbox(from, index_).empty_before_sleep()) return true;
  }
  return directory_.control.waiting(index_) || directory_.snapshot.waiting(index_) ||
         (storage_bridge_used() && directory_.storage.waiting(index_)) ||
         (config_.cluster &&
          (directory_.cluster.waiting(index_) || directory_.cluster_snapshot.waiting(index_)));
}

// Deltas or completions the storage bridge's full queue refused (flush_ledger and
// flush_completions hand on all they hold, up to a turn's bound, unless the queue is full).
bool Shard::storage_waiting() const noexcept {
  return (ledger_ != nullptr && ledger_->dirty_count() != 0) ||
         (completions_ != nullptr && completions_->pending_count() != 0);
}

bool Shard::turn(bool may_sleep) noexcept {
  owner_.check();
  ++counters_.loop_turns;
  const auto work_start = std::chrono::steady_clock::now();
  refresh_clock();
  refresh_access_list();
  std::size_t work = drain_mailboxes();
  udp_.apply_queued();  // the forwarded announces, read ahead as one batch
  work += drain_control();
  work += snapshot_step(directory_.snapshot, snapshot_);
  if (storage_bridge_used()) work += drain_storage();
  if (config_.cluster) {
    work += drain_cluster();
    work += snapshot_step(directory_.cluster_snapshot, cluster_snapshot_);
  }
  // One walk over the completions; the announces it queued for this shard go as one batch.
  work += ring_.drain([this](const io_uring_cqe& cqe) { on_completion(cqe); });
  udp_.apply_queued();
  http_.retry_answers();
  publish_mailboxes();
  directory_.control.publish_answers(index_, ring_);
  directory_.snapshot.publish_answers(index_, ring_);
  if (config_.cluster) {
    directory_.cluster.publish_answers(index_, ring_);  // never wakes it: it takes them on time
    directory_.cluster_snapshot.publish_answers(index_, ring_);
  }
  // What was handed on counts as work: a shard with deltas still waiting keeps turning instead of
  // sleeping up to a second between flushes of deltas_per_turn_max.
  if (private_tracker()) work += flush_ledger();
  if (completions_ != nullptr) work += flush_completions();
  udp_.flush();
  if (now_s_ != last_tick_s_) tick();
  const auto work_time = std::chrono::steady_clock::now() - work_start;
  counters_.loop_turns_over_250us += work_time > std::chrono::microseconds(250);
  counters_.loop_turns_over_1ms += work_time > std::chrono::milliseconds(1);
  turn_max_this_second_ = std::max(turn_max_this_second_, work_time);
  if (work != 0) last_work_at_ = work_start;
  if (work != 0 || !may_sleep ||
      work_start - last_work_at_ < std::chrono::microseconds(config_.busy_poll_us)) {
    ring_.submit();
    return work != 0;
  }
  // Sleep only if nothing was published after we looked: announce the sleep first, then look
  // again; a producer publishes first, then checks the flag (waker.hpp).
  Presence& self = directory_.presence[index_];
  self.sleeping.store(true, std::memory_order_seq_cst);
  if (!mail_waiting() && !directory_.stopping.load(std::memory_order_seq_cst)) {
    ++counters_.sleeps;
    ring_.submit_and_wait(storage_waiting() ? room_wait_ms : idle_wait_ms);
  } else {
    ring_.submit();
  }
  self.sleeping.store(false, std::memory_order_relaxed);
  return true;
}

void Shard::tick() noexcept {
  last_tick_s_ = now_s_;
  turn_max_last_second_ = turn_max_this_second_;
  turn_max_this_second_ = {};
  store_->expire_step(now_s_);
  if (ledger_ != nullptr) ledger_->expire_step(now_s_);
  if (completions_ != nullptr) completions_->prepare();
  scrapes_.expire(now_s_);
  http_.tick(now_s_);
}

void Shard::on_completion(const io_uring_cqe& cqe) noexcept {
  switch (net::user_data_op(cqe.user_data)) {
    case net::Op::udp_recv:
    case net::Op::udp_send:
      udp_.on_completion(cqe);
      break;
    case net::Op::tcp_accept:
    case net::Op::tcp_recv:
    case net::Op::tcp_send:
    case net::Op::tcp_close:
      http_.on_completion(cqe);
      break;
    case net::Op::wake:
    case net::Op::wake_sent:
    case net::Op::none:
    case net::Op::tcp_cancel:
      break;
  }
}

void Shard::scrape_gathered(PendingScrape& pending, bool resume) noexcept {
  if (pending.front == PendingScrape::Front::udp) {
    udp_.send_scrape_reply(pending);
  } else {
    http_.write_scrape_reply(pending, resume);
  }
}

void Shard::scrape_failed(PendingScrape& pending, bool timed_out) noexcept {
  // UDP: nothing to say; the client retries.
  if (pending.front == PendingScrape::Front::http) http_.scrape_failed(pending, timed_out);
}

bool Shard::push(std::uint32_t to, const Message& message) noexcept {
  return directory_.mailbox(index_, to).try_push(message);
}

bool Shard::forward(std::uint32_t owner, const Message& message) noexcept {
  TYTO_ASSERT(owner != index_ && owner < directory_.shards_count);
  if (!push(owner, message)) {
    ++counters_.mailbox_full_drops;  // UDP: drop, the client retries (DESIGN §3)
    TYTO_LOG_LIMITED(log::Level::warning, "shard {}: mailbox to shard {} full, request dropped",
                     index_, owner);
    return false;
  }
  if (std::holds_alternative<ScrapePart>(message)) ++counters_.scrape_parts_forwarded;
  return true;
}

std::span<std::uint8_t> Shard::lent_buffer(std::uint32_t from, std::uint32_t lent_index) noexcept {
  return directory_.lent_buffer(from, lent_index);
}

void Shard::publish_mailboxes() noexcept {
  for (std::uint32_t to = 0; to < directory_.shards_count; ++to) {
    if (to == index_ || directory_.mailbox(index_, to).publish() == 0) continue;
    counters_.wakeups_sent += wake_if_sleeping(ring_, directory_.presence[to]);
  }
}

std::size_t Shard::drain_mailboxes() noexcept {
  std::size_t handled = 0;
  for (std::uint32_t from = 0; from < directory_.shards_count; ++from) {
    if (from == index_) continue;
    handled += directory_.mailbox(from, index_).consume([this, from](const Message& message) {
      on_message(message, from);
    });
  }
  return handled;
}

void Shard::on_message(const Message& message, std::uint32_t from) noexcept {
  if (const auto* announce = std::get_if<ForwardedUdpAnnounce>(&message)) {
    // Copied: the mailbox slot is freed after this drain.
    udp_.queue_announce(announce->request, announce->member, announce->transaction_id,
                        announce->route);
  } else if (const auto* part = std::get_if<ScrapePart>(&message)) {
    scrapes_.on_part(*part, from);
  } else if (const auto* answer = std::get_if<ScrapeAnswer>(&message)) {
    scrapes_.on_answer(*answer);
  } else if (const auto* http = std::get_if<ForwardedHttpAnnounce>(&message)) {
    http_.on_forwarded_announce(*http, from);
  } else if (const auto* http_answer = std::get_if<HttpAnnounceAnswer>(&message)) {
    http_.on_announce_answer(*http_answer);
  }
}

void Shard::refresh_access_list() noexcept {
  // Epoch first, then the pointer: the pointer is at least as new as the epoch says, and the
  // previous turn's pointer is no longer in use once the epoch is recorded.
  const std::uint64_t epoch = directory_.access_epoch.load(std::memory_order_seq_cst);
  access_list_ = directory_.access_list.load(std::memory_order_seq_cst);
  auto& seen = directory_.entries[index_].access_epoch_seen;
  if (seen.load(std::memory_order_relaxed) != epoch) seen.store(epoch, std::memory_order_seq_cst);
}

// The ops server's questions (control.hpp): answered from this shard's own state.
std::size_t Shard::drain_control() noexcept {
  return directory_.control.drain(index_, [this](const ControlRequest& request) {
    ControlAnswer& answer = *control_answer_;
    answer.serial = request.serial;
    answer.found = false;
    answer.top_count = 0;
    switch (request.kind) {
      case ControlKind::counters:
        answer.totals = totals();
        break;
      case ControlKind::swarm:
        answer.found = store_->statistics(request.info_hash, now_s_, answer.swarm);
        break;
      case ControlKind::top:
        answer.top_count = store_->top(
            request.order, now_s_, std::span(answer.top, std::min(request.count, top_count_max)));
        break;
    }
    if (!directory_.control.answer(index_, answer)) ++counters_.control_answers_dropped;
  });
}

// Periodic snapshots (snapshot_bridge.hpp). Invariants: the store is only read, on this thread,
// between announces; a turn spends at most snapshot_turn_budget here (checked after each slice
// of snapshot_slice_bytes, so at most one slice over), and none in a turn that ticks; nothing
// blocks or waits: a piece the writer has no room for waits here and slicing pauses. Returns
// the work done (0 lets the shard sleep; while slicing it does not, so a snapshot advances
// every turn).
std::size_t Shard::snapshot_step(SnapshotBridge& bridge, SnapshotWork& work) noexcept {
  std::size_t done_work = bridge.drain(index_, [&work](const SnapshotRequest& request) {
    work = SnapshotWork{};  // a new generation abandons an unfinished one
    work.active = true;
    work.generation = request.generation;
    work.piece_bytes = request.piece_bytes != 0 ? request.piece_bytes : snapshot_piece_bytes;
  });
  // Not in the turn that ticks (expiry's slice): the two together could pass 1 ms.
  if (!work.active || now_s_ != last_tick_s_) return done_work;
  const auto start = std::chrono::steady_clock::now();
  while (work.active) {
    if (work.ready) {
      if (!hand_snapshot_piece(bridge, work)) break;  // the writer is behind: try next turn
      ++done_work;
      continue;
    }
    if (work.piece == nullptr) {
      work.piece = std::make_unique<std::vector<std::uint8_t>>();
      work.piece->reserve(work.piece_bytes + 2 * snapshot_slice_bytes);
    }
    if (work.piece->empty()) {
      work.piece_cut_s = now_s_;
    } else if (work.piece_cut_s != now_s_) {  // a piece's records share one cut second
      work.ready = true;
      continue;
    }
    const std::uint64_t swarms_before = work.cursor.swarms;
    // The slice's budget is what the piece has room for, so a piece passes piece_bytes by at
    // most a slice's overshoot (a record header and a peer); it is handed over once less than
    // piece_room_min is left.
    constexpr std::size_t piece_room_min = 256;
    const std::size_t room = work.piece_bytes - std::min(work.piece_bytes, work.piece->size());
    const bool done = store_->append_snapshot_slice(work.cursor, now_s_, *work.piece,
                                                    std::min(snapshot_slice_bytes, room));
    work.piece_swarms += work.cursor.swarms - swarms_before;
    ++done_work;
    if (done || work.piece->size() + piece_room_min >= work.piece_bytes) {
      work.ready = true;
      work.last = done;
    }
    if (std::chrono::steady_clock::now() - start >= snapshot_turn_budget) break;
  }
  return done_work;
}

bool Shard::hand_snapshot_piece(SnapshotBridge& bridge, SnapshotWork& work) noexcept {
  TYTO_ASSERT(work.active && work.ready && work.piece != nullptr);
  const SnapshotPiece piece{work.generation, work.piece.get(), work.piece_swarms, work.last,
                            work.piece_cut_s};
  if (!bridge.answer(index_, piece)) return false;
  [[maybe_unused]] auto* handed = work.piece.release();  // the writer owns it now
  work.piece_swarms = 0;
  work.ready = false;
  if (work.last) work = SnapshotWork{};
  return true;
}

ShardTotals Shard::totals() const noexcept {
  ShardTotals totals;
  totals.shard = counters_;
  totals.udp = udp_.counters();
  totals.tcp = http_.counters();
  totals.store = store_->counters();
  totals.gauges.store_memory_bytes = store_->memory_bytes();
  totals.private_tracker = private_counters_;
  totals.cluster = cluster_counters_;
  if (private_tracker()) {
    totals.private_tracker.ledger_peers = ledger_->entries_count();
    totals.private_tracker.ledger_deltas_waiting = ledger_->dirty_count();
  }
  if (completions_ != nullptr) {
    totals.private_tracker.completions_refused = completions_->refused();
    totals.private_tracker.completions_torrents = completions_->size();
    totals.private_tracker.completions_waiting = completions_->pending_count();
  }
  if (catalogue_ != nullptr) {
    totals.private_tracker.catalogue_users = catalogue_->users_count();
    totals.private_tracker.catalogue_torrents = catalogue_->torrents_count();
  }
  totals.gauges.http_connections = http_.open_connections();
  totals.gauges.loop_turn_max_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(turn_max_last_second_).count());
  for (std::uint32_t from = 0; from < directory_.shards_count; ++from) {
    if (from != index_)
      totals.gauges.mailbox_depth += directory_.mailbox(from, index_).depth_approx();
  }
  return totals;
}

// --- Private tracker ---

namespace {
// Bounds what one turn hands to the storage bridge (its queue holds 4096 per shard anyway).
constexpr std::size_t deltas_per_turn_max = 1024;

// The passkey a URL path segment names (percent-decoded; '+' is a space, which no passkey has).
// Passkeys are printable ASCII, so a segment with neither '%' nor '+' is its own decoding.
std::optional<store::Passkey> passkey_of(std::string_view segment) noexcept {
  // A plain loop: string_view::find_first_of cost ~250 instructions here (a find per byte).
  bool encoded = false;
  for (const char c : segment) encoded |= c == '%' || c == '+';
  if (!encoded) return store::Passkey::parse(segment);
  std::uint8_t decoded[store::passkey_size_max];
  std::size_t decoded_size = 0;
  if (!proto::http::percent_decode(segment, decoded, decoded_size)) return std::nullopt;
  return store::Passkey::parse({reinterpret_cast<const char*>(decoded), decoded_size});
}
}  // namespace

const char* Shard::admit_member(std::string_view passkey_segment, const AnnounceRequest* request,
                                Member& member) noexcept {
  member = Member{};
  if (!private_tracker()) {
    return passkey_segment.empty() ? nullptr : "this tracker is public: announce to /announce";
  }
  if (passkey_segment.empty()) {
    ++private_counters_.refused_passkey_missing;
    return "passkey required: use the announce URL from your account page";
  }
  const auto passkey = passkey_of(passkey_segment);
  return admit_user(passkey ? catalogue_->user(*passkey) : nullptr, request, member);
}

std::optional<store::Passkey> Shard::parse_passkey(std::string_view passkey_segment) noexcept {
  return passkey_of(passkey_segment);
}

void Shard::begin_read_ahead(const InfoHash& info_hash, const store::Passkey* passkey,
                             PrivateReadAhead& ahead) const noexcept {
  TYTO_DEBUG_ASSERT(private_tracker());
  ahead.has_passkey = passkey != nullptr;
  if (passkey != nullptr) {
    ahead.passkey = *passkey;
    ahead.user_hash = catalogue_->users().start_find(*passkey);
  }
  ahead.torrent_hash = catalogue_->torrents().start_find(info_hash);
  ahead.torrent = nullptr;
  ahead.refused = false;
}

void Shard::read_ahead_rows(const PrivateReadAhead& ahead) const noexcept {
  if (ahead.has_passkey) catalogue_->users().prefetch_row(ahead.user_hash);
  catalogue_->torrents().prefetch_row(ahead.torrent_hash);
}

const char* Shard::finish_read_ahead(PrivateReadAhead& ahead, const AnnounceRequest& request,
                                     Member& member) noexcept {
  if (ahead.has_passkey) {
    const char* refusal =
        admit_user(catalogue_->users().find(ahead.passkey, ahead.user_hash), &request, member);
    if (refusal != nullptr) return refusal;
  }
  ahead.torrent = catalogue_->torrents().find(request.info_hash, ahead.torrent_hash);
  if (ahead.torrent != nullptr && member.user_id != 0) {
    ahead.ledger_tag =
        ledger_->prefetch({member.user_id, ahead.torrent->torrent_id, request.peer_id});
  }
  return nullptr;
}

const char* Shard::admit_user(const store::UserRow* user, const AnnounceRequest* request,
                              Member& member) noexcept {
  member = Member{};
  if (user == nullptr) {
    ++private_counters_.refused_passkey_unknown;
    return "unknown passkey";
  }
  if (!user->enabled) {
    ++private_counters_.refused_user_disabled;
    return "account disabled";
  }
  if (request != nullptr) {
    if (request->left_bytes > 0 && !user->can_leech && request->event != AnnounceEvent::stopped) {
      ++private_counters_.refused_leech_not_allowed;
      return "your account may not download: seeding only";
    }
    if (!catalogue_->client_allowed(request->peer_id)) {
      ++private_counters_.refused_client;
      return "client not allowed on this tracker";
    }
    ++private_counters_.announces;
  }
  member.user_id = user->user_id;
  member.upload_factor = user->upload_factor;
  member.download_factor = user->download_factor;
  return nullptr;
}

AnnounceReply Shard::apply_announce(const AnnounceRequest& request, const Member& member,
                                    std::span<std::uint8_t> peers_out, std::uint64_t& ticket,
                                    const store::SwarmLookup* lookup,
                                    const PrivateReadAhead* ahead) noexcept {
  TYTO_DEBUG_ASSERT(owner_of(request.info_hash) == index_);
  ticket = 0;
  if (member.user_id == 0) {
    if (config_.catalogue_whitelist && catalogue_->torrent(request.info_hash) == nullptr) {
      ++counters_.announces_denied;  // public mode: the catalogue is the whitelist
      return {AnnounceStatus::torrent_unregistered};
    }
    AnnounceReply reply = store_announce(request, lookup, peers_out);
    if (completions_ != nullptr) note_completion(request.info_hash, reply);
    if (config_.cluster) replicate(request, reply);
    return reply;
  }
  TYTO_ASSERT(private_tracker());
  const store::TorrentRow* torrent =
      ahead != nullptr ? ahead->torrent : catalogue_->torrent(request.info_hash);
  TYTO_DEBUG_ASSERT(torrent == catalogue_->torrent(request.info_hash));
  if (torrent == nullptr) {
    ++private_counters_.refused_torrent_unregistered;
    return {AnnounceStatus::torrent_unregistered};
  }
  const store::PeerKey key{member.user_id, torrent->torrent_id, request.peer_id};
  Ledger::Spot spot;  // where admit found the key: record uses it without probing again
  // The read-ahead hashed the key when it found the torrent (finish_read_ahead).
  const bool tag_known = ahead != nullptr && ahead->torrent != nullptr;
  switch (tag_known ? ledger_->admit(key, spot, ahead->ledger_tag) : ledger_->admit(key, spot)) {
    case LedgerVerdict::user_torrent_full:
      ++private_counters_.refused_user_torrent_full;
      return {AnnounceStatus::user_torrent_full};
    case LedgerVerdict::full:
      ++private_counters_.refused_ledger_full;
      return {AnnounceStatus::ledger_full};
    case LedgerVerdict::ok:
      break;
  }
  const bool hold = config_.private_tracker.sync_always && request.event == AnnounceEvent::stopped;
  if (hold && held_replies_.size() == held_replies_max) {
    ++private_counters_.refused_ledger_full;  // nothing recorded: the client retries
    return {AnnounceStatus::ledger_full};
  }
  AnnounceReply reply = store_announce(request, lookup, peers_out);
  if (reply.status == AnnounceStatus::ok) {
    ticket = ledger_->record(spot, key, request, *torrent, member, now_s_, now_unix_s(), hold);
  }
  if (completions_ != nullptr) note_completion(request.info_hash, reply);
  if (config_.cluster) replicate(request, reply);
  return reply;
}

AnnounceReply Shard::store_announce(const AnnounceRequest& request,
                                    const store::SwarmLookup* lookup,
                                    std::span<std::uint8_t> peers_out) noexcept {
  return lookup != nullptr ? store_->announce(request, *lookup, now_s_, peers_out)
                           : store_->announce(request, now_s_, peers_out);
}

void Shard::hold_reply(const HeldReply& held) noexcept {
  TYTO_ASSERT(held.ticket != 0 && held_replies_.size() < held_replies_max);
  held_replies_.push_back(held);  // reserved: never reallocates
}

// The storage bridge says a ticket's delta is durable: the replies waiting on it go out.
void Shard::release_held(std::uint64_t ticket) noexcept {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < held_replies_.size(); ++i) {
    HeldReply& held = held_replies_[i];
    if (held.ticket != ticket) {
      held_replies_[kept++] = held;
      continue;
    }
    if (const auto* udp = std::get_if<HeldUdpReply>(&held.reply)) {
      udp_.send_announce_reply(udp->reply, udp->transaction_id, udp->route);
    } else if (const auto* http = std::get_if<HeldHttpReply>(&held.reply)) {
      http_.release_reply(http->connection, http->reply);
    } else if (const auto* answer = std::get_if<HeldHttpAnswer>(&held.reply)) {
      http_.send_answer(answer->to, answer->answer);
    }
  }
  held_replies_.erase(held_replies_.begin() + static_cast<std::ptrdiff_t>(kept),
                      held_replies_.end());
}

std::size_t Shard::drain_storage() noexcept {
  return directory_.storage.drain(index_, [this](const StorageToShard& message) {
    if (message.kind == StorageToShard::Kind::durable) {
      release_held(message.ticket);
    } else {
      on_catalogue_change(message.change);
    }
  });
}

// Rows change one at a time between announces. Growing a table allocates (catalogue_copy.hpp).
void Shard::on_catalogue_change(const store::CatalogueChange& change) noexcept {
  using Kind = store::CatalogueChangeKind;
  ++private_counters_.catalogue_changes;
  const bool torrent = change.kind == Kind::torrent || change.kind == Kind::torrent_removed;
  if (!torrent && !private_tracker()) return;  // users and rules: private mode only
  switch (change.kind) {
    case Kind::user:
      catalogue_->put_user(change.user);
      break;
    case Kind::user_removed:
      catalogue_->remove_user(change.user.passkey);
      break;
    case Kind::torrent:
      TYTO_ASSERT(owner_of(change.torrent.info_hash) == index_);
      catalogue_->put_torrent(change.torrent);
      break;
    case Kind::torrent_removed:
      catalogue_->remove_torrent(change.torrent.info_hash);
      break;
    case Kind::client_rule:
      private_counters_.client_rules_refused += !catalogue_->put_client_rule(change.client_rule);
      break;
    case Kind::client_rule_removed:
      catalogue_->remove_client_rule(change.client_rule);
      break;
  }
}

std::size_t Shard::flush_ledger() noexcept {
  if (ledger_->dirty_count() == 0) return 0;
  const std::size_t handed = ledger_->flush(
      [this](const store::AccountingDelta& delta, std::uint64_t ticket) {
        return directory_.storage.answer(index_, StorageFromShard{delta, ticket});
      },
      deltas_per_turn_max);
  private_counters_.deltas_handed += handed;
  directory_.storage.publish_answers(index_, ring_);
  return handed;
}

// --- Cluster (cluster_bridge.hpp) ---

namespace {
// Bounds a turn's share of remote changes (about 0.1 µs each, so well under a millisecond).
constexpr std::size_t cluster_changes_per_turn_max = 4096;
}  // namespace

// What a local announce changed, for the other nodes: one queue push (two with a completion),
// dropped and counted when the bridge's queue is full. A refused announce changed nothing.
void Shard::replicate(const AnnounceRequest& request, const AnnounceReply& reply) noexcept {
  if (reply.status != AnnounceStatus::ok) return;
  ClusterFromShard message;
  message.change.info_hash = request.info_hash;
  message.change.peer = request.peer;
  if (request.event == AnnounceEvent::stopped) {
    message.change.kind = ReplicaChange::Kind::peer_removed;
  } else {
    message.change.kind = ReplicaChange::Kind::peer;
    message.change.seeder = request.left_bytes == 0;
    message.change.announced_s = static_cast<std::int32_t>(now_s_);
  }
  const bool sent = directory_.cluster.answer(index_, message);
  cluster_counters_.changes_sent += sent;
  cluster_counters_.changes_dropped += !sent;
  if (!reply.completion_counted) return;
  ClusterFromShard completed;
  completed.change.kind = ReplicaChange::Kind::completed;
  completed.change.info_hash = request.info_hash;
  completed.change.completed_count = 1;
  const bool completed_sent = directory_.cluster.answer(index_, completed);
  cluster_counters_.changes_sent += completed_sent;
  cluster_counters_.changes_dropped += !completed_sent;
}

std::size_t Shard::drain_cluster() noexcept {
  return directory_.cluster.drain(
      index_,
      [this](const ClusterToShard& message) {
        if (message.kind == ClusterToShard::Kind::records) {
          restore_warm_records(*message.records);
          return;
        }
        if (message.kind == ClusterToShard::Kind::baseline) {
          adopt_baseline(message.baseline);
          return;
        }
        TYTO_DEBUG_ASSERT(owner_of(message.change.info_hash) == index_);
        switch (store_->apply_replica(message.change, now_s_)) {
          case ReplicaResult::applied:
            ++cluster_counters_.changes_applied;
            break;
          case ReplicaResult::unchanged:
            ++cluster_counters_.changes_unchanged;
            break;
          case ReplicaResult::swarm_limit:
          case ReplicaResult::peer_limit:
            ++cluster_counters_.changes_refused;
            break;
          case ReplicaResult::expired:
            ++cluster_counters_.changes_expired;
            break;
        }
      },
      cluster_changes_per_turn_max);
}

// A private peer's baseline another node made durable (README "Cluster", private mode).
void Shard::adopt_baseline(const ReplicaBaseline& replica) noexcept {
  TYTO_DEBUG_ASSERT(owner_of(replica.info_hash) == index_);
  if (ledger_ == nullptr) {
    ++cluster_counters_.baselines_refused;
    return;
  }
  switch (ledger_->adopt(replica.baseline, replica.closed, now_s_, now_unix_s())) {
    case Ledger::Adopted::adopted:
      ++cluster_counters_.baselines_adopted;
      break;
    case Ledger::Adopted::unchanged:
      ++cluster_counters_.baselines_unchanged;
      break;
    case Ledger::Adopted::full:
      ++cluster_counters_.baselines_refused;
      break;
  }
}

// A warm-up's records (another node's swarms): this shard restores those it owns, merged with
// what live changes already brought (restore_snapshot never ages or replaces a peer it holds).
// Records are hostile input: a malformed one ends this piece here, counted.
void Shard::restore_warm_records(SharedRecords& records) noexcept {
  const auto extra_age_s = static_cast<std::uint32_t>(
      std::clamp<std::int64_t>(std::int64_t{now_s_} - records.cut_s, 0, UINT32_MAX));
  const auto restored = store_->restore_snapshot(
      records.bytes, now_s_, extra_age_s,
      [this](const InfoHash& info_hash) { return owner_of(info_hash) == index_; });
  if (restored.ok()) {
    cluster_counters_.warm_swarms += restored.value().swarms;
    cluster_counters_.warm_peers += restored.value().peers;
  } else {
    ++cluster_counters_.warm_pieces_refused;
    TYTO_LOG_LIMITED(log::Level::warning, "shard {}: cluster warm-up piece refused: {}", index_,
                     restored.error());
  }
  records.release();
}

// --- Completed counts (README "Completed counts") ---

namespace {
std::uint32_t clamp32(std::uint64_t count) noexcept {
  return count > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(count);
}
}  // namespace

// Start-up, on the shard's own thread: the persisted counts of the info_hashes it owns.
void Shard::open_completions() {
  std::uint64_t refused = 0;
  for (const store::CompletionCount& persisted : directory_.completions) {
    if (owner_of(persisted.info_hash) == index_) refused += !completions_->restore(persisted);
  }
  if (refused > 0) {
    TYTO_LOG(log::Level::warning,
             "shard {}: {} persisted completed counts not held (limits.completions_per_shard_max "
             "{}): their torrents' scrapes count from 0",
             index_, refused, completions_->capacity());
  }
}

void Shard::note_completion(const InfoHash& info_hash, const AnnounceReply& reply) noexcept {
  if (reply.status != AnnounceStatus::ok) return;
  if (reply.completion_counted && !completions_->count(info_hash)) {
    TYTO_LOG_LIMITED(log::Level::warning,
                     "shard {}: completion table full ({} torrents): a completion is counted in "
                     "memory only",
                     index_, completions_->capacity());
  }
}

ScrapeEntry Shard::scrape(const InfoHash& info_hash) noexcept {
  ScrapeEntry entry = store_->scrape(info_hash, now_s_);
  if (completions_ != nullptr) {
    entry.completed = std::max(entry.completed, clamp32(completions_->completed(info_hash)));
  }
  return entry;
}

std::size_t Shard::flush_completions() noexcept {
  if (completions_->pending_count() == 0) return 0;
  const std::size_t handed = completions_->flush(
      [this](const store::CompletionDelta& completion) {
        StorageFromShard message;
        message.kind = StorageFromShard::Kind::completion;
        message.completion = completion;
        return directory_.storage.answer(index_, message);
      },
      deltas_per_turn_max);
  private_counters_.completions_handed += handed;
  directory_.storage.publish_answers(index_, ring_);
  return handed;
}

}  // namespace tyto::shard
