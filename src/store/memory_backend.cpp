#include "tyto/store/memory_backend.hpp"

#include <algorithm>
#include <ctime>
#include <memory>
#include <set>
#include <utility>

namespace tyto::store {

std::unique_ptr<MemoryBackend> make_memory_backend() {
  return std::make_unique<MemoryBackend>();
}

void MemoryBackend::put_user(const UserRow& row) {
  TYTO_ASSERT(row.user_id > 0);
  users_[row.user_id] = row;
  changed_.push_back({Family::user, row.user_id, {}});
}

void MemoryBackend::remove_user(std::uint64_t user_id) {
  if (users_.erase(user_id) > 0) changed_.push_back({Family::user, user_id, {}});
}

void MemoryBackend::put_torrent(const TorrentRow& row) {
  TYTO_ASSERT(row.torrent_id > 0);
  torrents_[row.torrent_id] = row;
  changed_.push_back({Family::torrent, row.torrent_id, {}});
}

void MemoryBackend::remove_torrent(std::uint64_t torrent_id) {
  if (torrents_.erase(torrent_id) > 0) changed_.push_back({Family::torrent, torrent_id, {}});
}

void MemoryBackend::put_client_rule(const ClientRuleRow& row) {
  TYTO_ASSERT(row.prefix_size > 0 && row.prefix_size <= client_prefix_size_max);
  std::string prefix(reinterpret_cast<const char*>(row.prefix.data()), row.prefix_size);
  client_rules_[prefix] = row;
  changed_.push_back({Family::client_rule, 0, std::move(prefix)});
}

void MemoryBackend::remove_client_rule(std::string_view prefix) {
  if (client_rules_.erase(std::string(prefix)) > 0) {
    changed_.push_back({Family::client_rule, 0, std::string(prefix)});
  }
}

std::optional<TransferRow> MemoryBackend::transfer(std::uint64_t user_id,
                                                   std::uint64_t torrent_id) const {
  const auto found = transfers_.find({user_id, torrent_id});
  if (found == transfers_.end()) return std::nullopt;
  return found->second;
}

std::optional<UserTotalsRow> MemoryBackend::user_totals(std::uint64_t user_id) const {
  const auto found = user_totals_.find(user_id);
  if (found == user_totals_.end()) return std::nullopt;
  return found->second;
}

std::vector<Baseline> MemoryBackend::baselines() const {
  std::vector<Baseline> out;
  out.reserve(baselines_.size());
  for (const auto& [key, baseline] : baselines_) {
    if (!baseline.closed) out.push_back(baseline);
  }
  return out;
}

Result<CatalogueRows, std::string> MemoryBackend::load_catalogue() {
  CatalogueRows rows;
  for (const auto& [id, row] : users_) rows.users.push_back(row);
  for (const auto& [id, row] : torrents_) rows.torrents.push_back(row);
  for (const auto& [prefix, row] : client_rules_) rows.client_rules.push_back(row);
  changed_.clear();  // everything changed so far is in the rows
  return rows;
}

void MemoryBackend::resolve(const ChangedKey& key, std::vector<CatalogueChange>& out) const {
  CatalogueChange change;
  switch (key.family) {
    case Family::user: {
      const auto found = users_.find(key.id);
      change.kind =
          found == users_.end() ? CatalogueChangeKind::user_removed : CatalogueChangeKind::user;
      if (found == users_.end()) {
        change.user.user_id = key.id;
      } else {
        change.user = found->second;
      }
      break;
    }
    case Family::torrent: {
      const auto found = torrents_.find(key.id);
      change.kind = found == torrents_.end() ? CatalogueChangeKind::torrent_removed
                                             : CatalogueChangeKind::torrent;
      if (found == torrents_.end()) {
        change.torrent.torrent_id = key.id;
      } else {
        change.torrent = found->second;
      }
      break;
    }
    case Family::client_rule: {
      const auto found = client_rules_.find(key.prefix);
      change.kind = found == client_rules_.end() ? CatalogueChangeKind::client_rule_removed
                                                 : CatalogueChangeKind::client_rule;
      if (found == client_rules_.end()) {
        const auto removed = ClientRuleRow::make(key.prefix, false);
        TYTO_ASSERT(removed.has_value());  // put_client_rule took only valid prefixes
        change.client_rule = *removed;
      } else {
        change.client_rule = found->second;
      }
      break;
    }
  }
  out.push_back(change);
}

std::string MemoryBackend::changes(std::vector<CatalogueChange>& out) {
  // Each key once, at its last change, as the SQL backends report it: walk back, keep the first
  // sighting of each key, then report those in forward order.
  std::set<ChangedKey> seen;
  std::vector<const ChangedKey*> last_changes;
  for (auto key = changed_.rbegin(); key != changed_.rend(); ++key) {
    if (seen.insert(*key).second) last_changes.push_back(&*key);
  }
  for (auto key = last_changes.rbegin(); key != last_changes.rend(); ++key) resolve(**key, out);
  changed_.clear();
  return "";
}

Result<std::uint64_t, std::string> MemoryBackend::last_sequence(std::string_view node,
                                                                std::uint32_t shard) {
  const auto found = marks_.find({std::string(node), shard});
  return found == marks_.end() ? 0 : found->second;
}

Result<bool, std::string> MemoryBackend::write_batch(const AccountingBatch& batch) {
  if (writes_failing_count_ > 0) {
    --writes_failing_count_;
    return Failure{std::string("memory: write failed on purpose (fail_next_writes)")};
  }
  TYTO_ASSERT(batch.id.sequence > 0);
  std::uint64_t& mark = marks_[{batch.id.node, batch.id.shard}];
  if (batch.id.sequence <= mark) return false;
  if (batch.arbitrate) {
    const auto now_unix_s = static_cast<std::uint64_t>(std::time(nullptr));
    std::erase_if(baselines_, [&](const auto& held) {
      return held.second.closed && held.second.announced_unix_s + closed_baseline_keep_s < now_unix_s;
    });
  }
  for (AccountingDelta delta : batch.deltas) {
    const PeerMapKey peer_key{
        delta.key.user_id, delta.key.torrent_id,
        std::string(reinterpret_cast<const char*>(delta.key.peer_id.bytes.data()),
                    delta.key.peer_id.bytes.size())};
    const auto stored = baselines_.find(peer_key);
    if (batch.arbitrate) {
      arbitrate_delta(delta, stored == baselines_.end() ? nullptr : &stored->second,
                      batch.arbitrate_window_s);
    }
    TransferRow& transfer = transfers_[{delta.key.user_id, delta.key.torrent_id}];
    transfer.uploaded += delta.uploaded;
    transfer.downloaded += delta.downloaded;
    transfer.uploaded_real += delta.uploaded_real;
    transfer.downloaded_real += delta.downloaded_real;
    transfer.seed_s += delta.seed_s;
    transfer.leech_s += delta.leech_s;
    if (delta.completed && !transfer.completed_at) transfer.completed_at = delta.announced_unix_s;
    transfer.last_announce_at = std::max(transfer.last_announce_at, delta.announced_unix_s);
    UserTotalsRow& totals = user_totals_[delta.key.user_id];
    totals.uploaded += delta.uploaded;
    totals.downloaded += delta.downloaded;
    if (delta.closed && !batch.arbitrate) {
      if (stored != baselines_.end() &&
          baseline_not_older(delta.announced_unix_s, delta.baseline_uploaded,
                             delta.baseline_downloaded, stored->second.announced_unix_s,
                             stored->second.uploaded, stored->second.downloaded)) {
        baselines_.erase(stored);
      }
      continue;
    }
    Baseline& held = baselines_[peer_key];  // a new row: every field as the delta says below
    const bool created = stored == baselines_.end();
    if (const StopPoint stop = stop_of(delta); stop.unix_s > held.stopped_unix_s) {  // first
      held.stopped_unix_s = stop.unix_s;
      held.stopped_uploaded = stop.uploaded;
      held.stopped_downloaded = stop.downloaded;
    }
    if (created || (!delta.keeps_stored_baseline &&
                    baseline_replaces(delta.announced_unix_s, delta.baseline_uploaded,
                                      delta.baseline_downloaded, held))) {
      held.key = delta.key;
      held.uploaded = delta.baseline_uploaded;
      held.downloaded = delta.baseline_downloaded;
      held.announced_unix_s = delta.announced_unix_s;
      held.seeding = delta.seeding;
      held.closed = delta.closed;
    }  // else another node's later announce of the peer holds the baseline
  }
  for (const CompletionDelta& completion : batch.completions) {
    completions_[completion.info_hash] += completion.count;
  }
  mark = batch.id.sequence;
  return true;
}

Result<std::vector<Baseline>, std::string> MemoryBackend::load_baselines() {
  return baselines();
}

std::optional<std::uint64_t> MemoryBackend::completed(const InfoHash& info_hash) const {
  const auto found = completions_.find(info_hash);
  if (found == completions_.end()) return std::nullopt;
  return found->second;
}

Result<std::vector<CompletionCount>, std::string> MemoryBackend::load_completions() {
  std::vector<CompletionCount> rows;
  rows.reserve(completions_.size());
  for (const auto& [info_hash, completed] : completions_) rows.push_back({info_hash, completed});
  return rows;
}

}  // namespace tyto::store
