#include "tyto/app/storage_client.hpp"

#include <mimalloc.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "tyto/core/assert.hpp"
#include "tyto/core/log.hpp"

namespace tyto::app {

namespace {
constexpr auto retry_backoff_min = std::chrono::milliseconds(500);
constexpr auto retry_backoff_max = std::chrono::milliseconds(30000);
// Rows of written batches after which the thread's heap is collected once nothing is in flight:
// a burst's batches (100,000 rows, 184 B each, with their sums) leave tens of MB that mimalloc
// would otherwise keep committed while the thread idles (issue 19: ~9 B per private peer of a
// 1 M fill). Below it, steady traffic reuses what it has.
constexpr std::size_t collect_after_rows = 65536;

using Kind = store::CatalogueChangeKind;

std::string prefix_key(const store::ClientRuleRow& row) {
  return {reinterpret_cast<const char*>(row.prefix.data()), row.prefix_size};
}

bool same_user(const store::UserRow& a, const store::UserRow& b) noexcept {
  return a.user_id == b.user_id && a.passkey == b.passkey && a.enabled == b.enabled &&
         a.can_leech == b.can_leech && a.upload_factor == b.upload_factor &&
         a.download_factor == b.download_factor;
}

bool same_torrent(const store::TorrentRow& a, const store::TorrentRow& b) noexcept {
  return a.torrent_id == b.torrent_id && a.info_hash == b.info_hash &&
         a.upload_factor == b.upload_factor && a.download_factor == b.download_factor;
}

}  // namespace

std::vector<shard::CounterRow> StorageStatus::rows() const {
  auto read = [](const std::atomic<std::uint64_t>& field) {
    return field.load(std::memory_order_relaxed);
  };
  return {
      {"batches_written", "accounting batches written", false, read(batches_written)},
      {"batches_already_applied", "accounting batches found applied already (a retry)", false,
       read(batches_already_applied)},
      {"batch_failures", "accounting batch writes that failed (kept and retried)", false,
       read(batch_failures)},
      {"rows_written", "accounting rows written", false, read(rows_written)},
      {"backlog_rows", "accounting rows held by the storage thread, not yet written", true,
       read(backlog_rows)},
      {"oldest_unwritten_seconds", "age of the oldest accounting row not yet written", true,
       read(oldest_unwritten_s)},
      {"catalogue_changes", "catalogue changes read from the storage backend", false,
       read(catalogue_changes)},
      {"catalogue_reloads", "whole-catalogue reloads (the safety net)", false,
       read(catalogue_reloads)},
      {"catalogue_failures", "catalogue reads that failed", false, read(catalogue_failures)},
      {"batches_journalled", "accounting batches appended to the storage journal", false,
       read(batches_journalled)},
      {"journal_bytes", "bytes in the storage journal (batches the database does not have yet)",
       true, read(journal_bytes)},
      {"tickets_confirmed", "held `stopped` replies released once durable (storage.sync always)",
       false, read(tickets_confirmed)},
      {"wal_checkpoints", "SQLite: WAL checkpoints by the checkpointer thread that reached its end",
       false, read(wal_checkpoints)},
      {"wal_checkpoint_failures", "SQLite: WAL checkpoints that failed (logged, retried)", false,
       read(wal_checkpoint_failures)},
      {"wal_bytes", "SQLite: bytes in the WAL after the last commit", true, read(wal_bytes)},
      {"wal_bytes_max", "SQLite: the largest WAL after a commit since start", true,
       read(wal_bytes_max)},
      {"wal_over_bound",
       "SQLite: batches begun with the WAL past its bound, not checkpointed in time", false,
       read(wal_over_bound)},
  };
}

StorageClient::StorageClient(StorageClientConfig config, store::Backend& backend,
                             shard::StorageBridge& bridge, std::span<shard::Presence> shards,
                             OwnerOf owner_of)
    : config_(std::move(config)),
      backend_(backend),
      bridge_(bridge),
      shards_(shards),
      owner_of_(std::move(owner_of)) {
  const HashSecret secret = HashSecret::random();
  states_.reserve(shards.size());
  for (std::size_t shard = 0; shard < shards.size(); ++shard) states_.emplace_back(secret);
}

std::string StorageClient::init(const store::CatalogueRows& loaded) {
  if (std::string error = waker_.init(); !error.empty()) return "storage bridge: " + error;
  for (std::uint32_t shard = 0; shard < states_.size(); ++shard) {
    const auto last = backend_.last_sequence(config_.node, shard);
    if (!last.ok())
      return "storage: reading the last batch of shard " + std::to_string(shard) + ": " +
             last.error();
    states_[shard].next_sequence = last.value() + 1;
  }
  if (!config_.journal_path.empty()) {
    auto held = journal_.open(config_.journal_path);
    if (!held.ok()) return held.error();
    for (store::AccountingBatch& batch : held.value()) {
      // Later batches of this node and shard follow the journalled ones.
      if (batch.id.node == config_.node && batch.id.shard < states_.size()) {
        auto& next = states_[batch.id.shard].next_sequence;
        next = std::max(next, batch.id.sequence + 1);
      }
      backlog_rows_ += batch.deltas.size() + batch.completions.size();
      // Arbitrated as when it was formed: a version-3 record keeps each delta's from-baseline
      // (an earlier release's has none, so those deltas can only be cut).
      batch.arbitrate = config_.arbitrate;
      batch.arbitrate_window_s = config_.arbitrate_window_s;
      recovered_.push_back({std::move(batch), {}, true});
    }
    if (!recovered_.empty()) {
      TYTO_LOG(log::Level::info, "storage journal {}: {} batches ({} rows) left by the last run",
               config_.journal_path, recovered_.size(), backlog_rows_);
    }
  }
  for (const auto& user : loaded.users) users_[user.user_id] = user;
  for (const auto& torrent : loaded.torrents) torrents_[torrent.torrent_id] = torrent;
  for (const auto& rule : loaded.client_rules) client_rules_[prefix_key(rule)] = rule;
  const auto now = Clock::now();
  next_flush_at_ = now + config_.flush_interval;
  next_poll_at_ = now + config_.changes_poll_interval;
  next_reload_at_ = now + config_.reload_interval;
  return {};
}

void StorageClient::watch(std::vector<pollfd>& polled, Clock::time_point& wake_at) {
  if (!config_.catalogue) {
    wake_at = std::min(wake_at, next_flush_at_);
  } else {
    if (const int fd = backend_.change_fd(); fd >= 0) polled.push_back({fd, POLLIN, 0});
    wake_at = std::min({wake_at, next_flush_at_, next_poll_at_, next_reload_at_});
  }
  if (retry_at_ != Clock::time_point{}) wake_at = std::min(wake_at, retry_at_);
}

void StorageClient::turn(std::span<const pollfd> polled) {
  const auto now = Clock::now();
  receive_deltas();
  if (now >= next_flush_at_ || backlog_rows_ >= config_.batch_rows_max || urgent_) {
    write_batches(now, false);
    if (now >= next_flush_at_) next_flush_at_ = now + config_.flush_interval;
  }
  if (config_.catalogue) {
    const bool change_signalled = !polled.empty() && polled[0].revents != 0;
    if (now >= next_poll_at_ || change_signalled) poll_catalogue(now);
    if (now >= next_reload_at_) {
      reload_catalogue();
      next_reload_at_ = now + config_.reload_interval;
    }
  }
  send_changes();
  update_status(now);
}

void StorageClient::take(std::uint32_t shard, const store::AccountingDelta& delta,
                         std::uint64_t ticket) {
  TYTO_ASSERT(shard < states_.size());
  ShardState& state = states_[shard];
  if (ticket != 0) {
    state.pending_tickets.push_back(ticket);
    urgent_ = true;
  }
  if (state.pending.add(delta)) note_pending(state);
}

void StorageClient::take_completion(std::uint32_t shard, const store::CompletionDelta& completion) {
  TYTO_ASSERT(shard < states_.size() && completion.count > 0);
  ShardState& state = states_[shard];
  const auto [at, inserted] = state.completions.try_emplace(completion.info_hash, 0);
  at->second += completion.count;
  if (inserted) note_pending(state);
}

// A new row in a shard's pending sums.
void StorageClient::note_pending(ShardState& state) {
  ++backlog_rows_;
  if (state.pending.size() + state.completions.size() == 1 && state.in_flight.empty()) {
    state.oldest_pending = Clock::now();
  }
}

void StorageClient::receive(std::uint32_t shard, const shard::StorageFromShard& message) {
  if (message.kind == shard::StorageFromShard::Kind::completion) {
    take_completion(shard, message.completion);
  } else {
    take(shard, message.delta, message.ticket);
  }
}

void StorageClient::receive_deltas() {
  // Past the bound the deltas stay where they are (bridge queues, then the shards' ledgers).
  if (backlog_rows_ >= config_.backlog_rows_max) return;
  bridge_.receive([this](std::uint32_t shard, const shard::StorageFromShard& message) {
    receive(shard, message);
  });
}

// Recovered batches first, then each shard's in order. While the database is in back-off (or
// failed this turn), batches are still formed when a ticket waits, and every batch left waiting
// is journalled: durable without the database.
void StorageClient::write_batches(Clock::time_point now, bool force) {
  const bool database_due = force || retry_at_ == Clock::time_point{} || now >= retry_at_;
  bool failed = !database_due;
  while (!failed && !recovered_.empty()) {
    failed = !write_one(UINT32_MAX, recovered_.front());
    if (!failed) recovered_.pop_front();
  }
  for (std::uint32_t shard = 0; shard < states_.size(); ++shard) {
    ShardState& state = states_[shard];
    const bool rows_pending = !state.pending.empty() || !state.completions.empty();
    if (rows_pending && (!failed || !state.pending_tickets.empty())) {
      form_batch(shard, state);
    }
    while (!failed && !state.in_flight.empty()) {
      failed = !write_one(shard, state.in_flight.front());
      if (failed) break;
      confirm(shard, state.in_flight.front());
      rows_freed_ += state.in_flight.front().batch.deltas.size();
      state.in_flight.pop_front();
    }
    for (InFlight& waiting : state.in_flight) make_durable(shard, waiting);
  }
  urgent_ = false;
  if (failed && database_due) {
    retry_backoff_ = std::clamp(retry_backoff_ * 2, std::chrono::milliseconds(retry_backoff_min),
                                std::chrono::milliseconds(retry_backoff_max));
    retry_at_ = now + retry_backoff_;
  } else if (!failed) {
    retry_backoff_ = {};
    retry_at_ = {};
  }
  bool all_written = recovered_.empty();
  for (const ShardState& state : states_) all_written &= state.in_flight.empty();
  if (all_written && rows_freed_ >= collect_after_rows) {
    mi_collect(true);  // the freed batches' memory back to the system, not kept for later
    rows_freed_ = 0;
  }
  if (all_written && journal_.is_open() && journal_.size_bytes() != 0) {
    if (std::string error = journal_.clear(); !error.empty()) {
      TYTO_LOG_LIMITED(log::Level::warning, "storage: {}", error);
    }
  }
  status_.journal_bytes.store(journal_.size_bytes(), std::memory_order_relaxed);
}

// A batch takes the whole of pending (rows in key order: the primary key's order).
void StorageClient::form_batch(std::uint32_t shard, ShardState& state) {
  InFlight formed;
  formed.batch.id = {config_.node, shard, state.next_sequence++};
  formed.batch.arbitrate = config_.arbitrate;
  formed.batch.arbitrate_window_s = config_.arbitrate_window_s;
  state.pending.take_sorted(formed.batch.deltas);
  formed.batch.completions.reserve(state.completions.size());
  for (const auto& [info_hash, count] : state.completions) {
    formed.batch.completions.push_back({info_hash, count});  // the map's order: info_hash's
  }
  formed.tickets.swap(state.pending_tickets);
  state.completions.clear();
  state.in_flight.push_back(std::move(formed));
}

// Appends a waiting batch to the journal (once) and confirms its tickets; without a journal
// the tickets wait for the database.
void StorageClient::make_durable(std::uint32_t shard, InFlight& waiting) {
  if (waiting.journalled || !journal_.is_open()) return;
  if (std::string error = journal_.append(waiting.batch); !error.empty()) {
    TYTO_LOG_LIMITED(log::Level::error, "storage: {}", error);
    return;
  }
  waiting.journalled = true;
  status_.batches_journalled.fetch_add(1, std::memory_order_relaxed);
  confirm(shard, waiting);
}

void StorageClient::confirm(std::uint32_t shard, InFlight& durable) {
  for (const std::uint64_t ticket : durable.tickets) {
    shard::StorageToShard message;
    message.kind = shard::StorageToShard::Kind::durable;
    message.ticket = ticket;
    states_[shard].outbox.push_back(message);
  }
  status_.tickets_confirmed.fetch_add(durable.tickets.size(), std::memory_order_relaxed);
  durable.tickets.clear();
  hand_baselines(shard, durable);
}

// Each peer's baseline after a durable batch, for the other nodes (README "Cluster"); the
// torrent's info_hash from the mirror routes it there (a torrent removed since is skipped).
void StorageClient::hand_baselines(std::uint32_t shard, InFlight& durable) {
  if (config_.baselines == nullptr || durable.baselines_handed) return;
  durable.baselines_handed = true;
  baselines_.clear();
  for (const store::AccountingDelta& delta : durable.batch.deltas) {
    const auto torrent = torrents_.find(delta.key.torrent_id);
    if (torrent == torrents_.end()) continue;
    baselines_.push_back({torrent->second.info_hash,
                          {delta.key, delta.baseline_uploaded, delta.baseline_downloaded,
                           delta.announced_unix_s, delta.seeding},
                          delta.closed});
  }
  config_.baselines->put(shard, baselines_);
}

// `shard` is UINT32_MAX for a batch recovered from the journal (logged by its own id).
bool StorageClient::write_one(std::uint32_t shard, InFlight& in_flight) {
  const store::AccountingBatch& batch = in_flight.batch;
  const std::size_t rows = batch.deltas.size() + batch.completions.size();
  const auto written = backend_.write_batch(batch);
  if (!written.ok()) {
    status_.batch_failures.fetch_add(1, std::memory_order_relaxed);
    TYTO_LOG_LIMITED(log::Level::warning,
                     "storage: batch {} of shard {} ({} rows) not written, kept for a retry: {}",
                     batch.id.sequence, batch.id.shard, rows, written.error());
    return false;
  }
  if (written.value()) {
    status_.batches_written.fetch_add(1, std::memory_order_relaxed);
    status_.rows_written.fetch_add(rows, std::memory_order_relaxed);
  } else {
    status_.batches_already_applied.fetch_add(1, std::memory_order_relaxed);
    TYTO_LOG(log::Level::info, "storage: batch {} of {} shard {} had been applied already",
             batch.id.sequence, batch.id.node, batch.id.shard);
  }
  backlog_rows_ -= std::min(backlog_rows_, rows);
  if (shard != UINT32_MAX) {
    ShardState& state = states_[shard];
    state.oldest_pending =
        state.pending.empty() && state.completions.empty() && state.in_flight.size() <= 1
            ? Clock::time_point{}
            : Clock::now();
  }
  return true;
}

std::size_t StorageClient::finish(Clock::time_point deadline) {
  bridge_.receive([this](std::uint32_t shard, const shard::StorageFromShard& message) {
    receive(shard, message);
  });
  for (;;) {
    write_batches(Clock::now(), true);
    if (backlog_rows_ == 0 || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(retry_backoff_min, deadline - Clock::now()));
  }
  if (backlog_rows_ != 0) {
    TYTO_LOG(log::Level::error,
             "storage: {} accounting rows not written at exit; each peer's next announce "
             "re-derives its credit from the persisted baseline",
             backlog_rows_);
  }
  return backlog_rows_;
}

void StorageClient::poll_catalogue(Clock::time_point now) {
  next_poll_at_ = now + config_.changes_poll_interval;
  changes_.clear();
  if (std::string error = backend_.changes(changes_); !error.empty()) {
    status_.catalogue_failures.fetch_add(1, std::memory_order_relaxed);
    TYTO_LOG_LIMITED(log::Level::warning, "storage: reading catalogue changes: {}", error);
  }
  for (const store::CatalogueChange& change : changes_) apply_change(change);
}

void StorageClient::to_all(const store::CatalogueChange& change) {
  for (ShardState& state : states_) state.outbox.push_back({{}, change, 0});
}

// A backend's change names a removed row by its id; the shards key rows by passkey and
// info_hash, which the mirror knows.
void StorageClient::apply_change(const store::CatalogueChange& change) {
  status_.catalogue_changes.fetch_add(1, std::memory_order_relaxed);
  store::CatalogueChange out;
  switch (change.kind) {
    case Kind::user:
    case Kind::user_removed: {
      const auto held = users_.find(change.user.user_id);
      const bool removed = change.kind == Kind::user_removed;
      if (held != users_.end() && (removed || !(held->second.passkey == change.user.passkey))) {
        out.kind = Kind::user_removed;
        out.user = held->second;
        to_all(out);
      }
      if (removed) {
        if (held != users_.end()) users_.erase(held);
        return;
      }
      if (held != users_.end() && same_user(held->second, change.user)) return;
      users_[change.user.user_id] = change.user;
      to_all(change);
      return;
    }
    case Kind::torrent:
    case Kind::torrent_removed: {
      const auto held = torrents_.find(change.torrent.torrent_id);
      const bool removed = change.kind == Kind::torrent_removed;
      if (held != torrents_.end() &&
          (removed || !(held->second.info_hash == change.torrent.info_hash))) {
        out.kind = Kind::torrent_removed;
        out.torrent = held->second;
        states_[owner_of_(out.torrent.info_hash)].outbox.push_back({{}, out, 0});
      }
      if (removed) {
        if (held != torrents_.end()) torrents_.erase(held);
        return;
      }
      if (held != torrents_.end() && same_torrent(held->second, change.torrent)) return;
      torrents_[change.torrent.torrent_id] = change.torrent;
      states_[owner_of_(change.torrent.info_hash)].outbox.push_back({{}, change, 0});
      return;
    }
    case Kind::client_rule:
    case Kind::client_rule_removed: {
      const std::string key = prefix_key(change.client_rule);
      if (change.kind == Kind::client_rule_removed) {
        if (client_rules_.erase(key) != 0) to_all(change);
        return;
      }
      const auto held = client_rules_.find(key);
      if (held != client_rules_.end() && held->second.allowed == change.client_rule.allowed) return;
      client_rules_[key] = change.client_rule;
      to_all(change);
      return;
    }
  }
}

// The safety net: the whole catalogue against the mirror; what differs is sent as changes.
void StorageClient::reload_catalogue() {
  auto loaded = backend_.load_catalogue();
  if (!loaded.ok()) {
    status_.catalogue_failures.fetch_add(1, std::memory_order_relaxed);
    TYTO_LOG_LIMITED(log::Level::warning, "storage: catalogue reload failed: {}", loaded.error());
    return;
  }
  status_.catalogue_reloads.fetch_add(1, std::memory_order_relaxed);
  const store::CatalogueRows& rows = loaded.value();
  store::CatalogueChange change;
  std::unordered_map<std::uint64_t, bool> seen_users, seen_torrents;
  std::map<std::string, bool> seen_rules;
  for (const auto& user : rows.users) {
    seen_users[user.user_id] = true;
    change.kind = Kind::user;
    change.user = user;
    apply_change(change);
  }
  for (const auto& torrent : rows.torrents) {
    seen_torrents[torrent.torrent_id] = true;
    change.kind = Kind::torrent;
    change.torrent = torrent;
    apply_change(change);
  }
  for (const auto& rule : rows.client_rules) {
    seen_rules[prefix_key(rule)] = true;
    change.kind = Kind::client_rule;
    change.client_rule = rule;
    apply_change(change);
  }
  std::vector<store::CatalogueChange> removals;
  for (const auto& [id, user] : users_) {
    if (!seen_users.count(id)) removals.push_back({Kind::user_removed, user, {}, {}});
  }
  for (const auto& [id, torrent] : torrents_) {
    if (!seen_torrents.count(id)) removals.push_back({Kind::torrent_removed, {}, torrent, {}});
  }
  for (const auto& [key, rule] : client_rules_) {
    if (!seen_rules.count(key)) removals.push_back({Kind::client_rule_removed, {}, {}, rule});
  }
  for (const auto& removal : removals) apply_change(removal);
}

void StorageClient::send_changes() {
  bool sent = false;
  for (std::uint32_t shard = 0; shard < states_.size(); ++shard) {
    auto& outbox = states_[shard].outbox;
    while (!outbox.empty() && bridge_.send(shard, outbox.front())) {
      outbox.pop_front();
      sent = true;
    }
  }
  if (sent) bridge_.publish(shards_, waker_);
}

void StorageClient::update_status(Clock::time_point now) {
  status_.backlog_rows.store(backlog_rows_, std::memory_order_relaxed);
  const store::BackendStatus backend = backend_.status();
  status_.wal_checkpoints.store(backend.wal_checkpoints, std::memory_order_relaxed);
  status_.wal_checkpoint_failures.store(backend.wal_checkpoint_failures, std::memory_order_relaxed);
  status_.wal_bytes.store(backend.wal_bytes, std::memory_order_relaxed);
  status_.wal_bytes_max.store(backend.wal_bytes_max, std::memory_order_relaxed);
  status_.wal_over_bound.store(backend.wal_over_bound, std::memory_order_relaxed);
  Clock::time_point oldest{};
  for (const ShardState& state : states_) {
    if (state.oldest_pending != Clock::time_point{} &&
        (oldest == Clock::time_point{} || state.oldest_pending < oldest)) {
      oldest = state.oldest_pending;
    }
  }
  const auto age = oldest == Clock::time_point{} ? Clock::duration{} : now - oldest;
  status_.oldest_unwritten_s.store(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(age).count()),
      std::memory_order_relaxed);
}

}  // namespace tyto::app
