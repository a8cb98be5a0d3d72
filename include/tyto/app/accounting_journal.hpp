// The storage journal: an append-only file of accounting batches (store/batch_codec.hpp) that
// the storage thread makes durable before the database has them — a batch the database refused
// (down, slow, locked), and with storage.sync = "always" a batch a `stopped` announce's reply
// waits on. Each append is fsync'd before anything depends on it. At start every batch in it is
// written again with its own id (the database's (node, shard) mark makes that harmless for a
// batch that did get committed), and once the database has every batch it holds the file is
// emptied. A torn or corrupt tail (a crash in the middle of an append) is cut off and logged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tyto/core/result.hpp"
#include "tyto/store/accounting.hpp"
#include "tyto/store/backend.hpp"

namespace tyto::app {

class AccountingJournal {
 public:
  AccountingJournal() = default;
  ~AccountingJournal();
  AccountingJournal(const AccountingJournal&) = delete;
  AccountingJournal& operator=(const AccountingJournal&) = delete;

  // Opens (creating) `path` and returns the batches it holds. Error text on failure.
  Result<std::vector<store::AccountingBatch>, std::string> open(const std::string& path);
  bool is_open() const noexcept { return fd_ >= 0; }
  // Appends the batch and fsyncs. Error text or "".
  std::string append(const store::AccountingBatch& batch);
  // The database has every batch appended so far: empties the file. Error text or "".
  std::string clear();
  std::uint64_t size_bytes() const noexcept { return size_bytes_; }
  const std::string& path() const noexcept { return path_; }

 private:
  int fd_ = -1;
  std::uint64_t size_bytes_ = 0;
  std::string path_;
  std::vector<std::uint8_t> buffer_;
};

// At start, before the shards load the persisted baselines: the journal's batches the database
// has not applied (sequence above its (node, shard) mark) hold newer baselines than it does;
// they replace (or, for a closed peer, remove) those in `baselines`, so a peer's next announce
// is not credited again for what the journal will write. Reads `path` without changing it (a
// missing file holds nothing). With `completions` (the persisted completed counts), those
// batches' completions are added to them too (a torrent without a row gets one), as the journal
// will write them. Error text or "".
std::string overlay_journal_baselines(const std::string& path, store::Backend& backend,
                                      std::vector<store::Baseline>& baselines,
                                      std::vector<store::CompletionCount>* completions = nullptr);

}  // namespace tyto::app
