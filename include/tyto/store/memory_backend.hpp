// The `memory:` backend (backend.hpp): nothing persisted. Its catalogue is what the caller puts
// in with the setters below (tests; a private tracker on memory: starts empty), and its sink
// keeps the tables accounting.hpp describes in memory, readable through the read-outs below.
// It behaves as the SQL backends do, so one test suite runs against all of them
// (tests/store/backend_test.cpp): changes() reports each changed key once, in the order of its
// last change, as the row is when changes() runs.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "tyto/store/backend.hpp"

namespace tyto::store {

// A row of tyto_transfers (user_id, torrent_id).
struct TransferRow {
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t uploaded_real = 0;
  std::uint64_t downloaded_real = 0;
  std::uint64_t seed_s = 0;
  std::uint64_t leech_s = 0;
  std::optional<std::uint64_t> completed_at;  // unix seconds of the first completed delta
  std::uint64_t last_announce_at = 0;
  friend bool operator==(const TransferRow&, const TransferRow&) = default;
};

// A row of tyto_user_totals (user_id): credited bytes.
struct UserTotalsRow {
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  friend bool operator==(const UserTotalsRow&, const UserTotalsRow&) = default;
};

class MemoryBackend final : public Backend {
 public:
  // --- Catalogue setters: insert or replace by key, or delete; each is a change for changes().
  // The caller keeps passkeys and info_hashes unique, as the SQL schema's UNIQUE does.
  void put_user(const UserRow& row);
  void remove_user(std::uint64_t user_id);
  void put_torrent(const TorrentRow& row);
  void remove_torrent(std::uint64_t torrent_id);
  void put_client_rule(const ClientRuleRow& row);
  void remove_client_rule(std::string_view prefix);

  // --- Read-outs of the sink.
  std::optional<TransferRow> transfer(std::uint64_t user_id, std::uint64_t torrent_id) const;
  std::optional<UserTotalsRow> user_totals(std::uint64_t user_id) const;
  std::vector<Baseline> baselines() const;
  // tyto_completions' count for the torrent; nullopt when it has no row.
  std::optional<std::uint64_t> completed(const InfoHash& info_hash) const;

  // The next `count` write_batch calls fail with an error and write nothing (the retry path).
  void fail_next_writes(std::uint32_t count) noexcept { writes_failing_count_ = count; }

  // --- Backend
  std::string migrate() override { return ""; }
  Result<CatalogueRows, std::string> load_catalogue() override;
  std::string changes(std::vector<CatalogueChange>& out) override;
  Result<std::uint64_t, std::string> last_sequence(std::string_view node,
                                                   std::uint32_t shard) override;
  Result<bool, std::string> write_batch(const AccountingBatch& batch) override;
  Result<std::vector<Baseline>, std::string> load_baselines() override;
  Result<std::vector<CompletionCount>, std::string> load_completions() override;
  // Rows come in typed through the setters, so none is ever refused.
  std::uint64_t rows_refused() const noexcept override { return 0; }
  std::string describe() const override { return "memory:"; }

 private:
  enum class Family : std::uint8_t { user, torrent, client_rule };
  // One changed key: an id for users and torrents, the prefix for client rules.
  struct ChangedKey {
    Family family = Family::user;
    std::uint64_t id = 0;
    std::string prefix;
    friend auto operator<=>(const ChangedKey&, const ChangedKey&) = default;
  };
  using PeerMapKey = std::tuple<std::uint64_t, std::uint64_t, std::string>;  // user, torrent, id

  void resolve(const ChangedKey& key, std::vector<CatalogueChange>& out) const;

  std::map<std::uint64_t, UserRow> users_;
  std::map<std::uint64_t, TorrentRow> torrents_;
  std::map<std::string, ClientRuleRow> client_rules_;
  std::vector<ChangedKey> changed_;  // since the last load_catalogue() or changes()

  std::map<std::pair<std::uint64_t, std::uint64_t>, TransferRow> transfers_;
  std::map<std::uint64_t, UserTotalsRow> user_totals_;
  std::map<PeerMapKey, Baseline> baselines_;
  std::map<InfoHash, std::uint64_t> completions_;
  std::map<std::pair<std::string, std::uint32_t>, std::uint64_t> marks_;  // (node, shard)
  std::uint32_t writes_failing_count_ = 0;
};

}  // namespace tyto::store
