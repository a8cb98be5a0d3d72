#include "tyto/app/accounting_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "tyto/core/log.hpp"
#include "tyto/store/batch_codec.hpp"

namespace tyto::app {

namespace {
// A journal larger than this is refused at start (a batch record is at most ~100 MiB).
constexpr std::uint64_t journal_size_max = std::uint64_t{8} << 30;

std::string error_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool write_all(int fd, const std::uint8_t* bytes, std::size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes += written;
    size -= static_cast<std::size_t>(written);
  }
  return true;
}
}  // namespace

AccountingJournal::~AccountingJournal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::vector<store::AccountingBatch>, std::string> AccountingJournal::open(
    const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return Failure{error_text("opening the storage journal", path)};
  struct stat status {};
  if (::fstat(fd_, &status) != 0) return Failure{error_text("reading the storage journal", path)};
  const auto size = static_cast<std::uint64_t>(status.st_size);
  if (size > journal_size_max) {
    return Failure{"storage journal " + path + " is " + std::to_string(size) +
                   " bytes, more than it can be: refusing it"};
  }
  std::vector<std::uint8_t> bytes(size);
  std::size_t read_so_far = 0;
  while (read_so_far < bytes.size()) {
    const ssize_t got = ::pread(fd_, bytes.data() + read_so_far, bytes.size() - read_so_far,
                                static_cast<off_t>(read_so_far));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return Failure{error_text("reading the storage journal", path)};
    read_so_far += static_cast<std::size_t>(got);
  }
  store::DecodedRecords decoded = store::decode_batch_records(bytes);
  if (decoded.bytes_used != bytes.size()) {
    TYTO_LOG(log::Level::warning,
             "storage journal {}: {} bytes after its last whole batch cut off ({})", path,
             bytes.size() - decoded.bytes_used, decoded.stopped_because);
    if (::ftruncate(fd_, static_cast<off_t>(decoded.bytes_used)) != 0 || ::fsync(fd_) != 0) {
      return Failure{error_text("cutting the storage journal", path)};
    }
  }
  size_bytes_ = decoded.bytes_used;
  if (::lseek(fd_, static_cast<off_t>(size_bytes_), SEEK_SET) < 0) {
    return Failure{error_text("seeking in the storage journal", path)};
  }
  return std::move(decoded.batches);
}

std::string AccountingJournal::append(const store::AccountingBatch& batch) {
  TYTO_ASSERT(fd_ >= 0);
  buffer_.clear();
  store::append_batch_record(batch, buffer_);
  if (!write_all(fd_, buffer_.data(), buffer_.size()) || ::fdatasync(fd_) != 0) {
    const std::string error = error_text("appending to the storage journal", path_);
    // Whatever part was written is a torn tail: cut it, so later appends follow whole records.
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes_)) == 0) {
      [[maybe_unused]] const auto at = ::lseek(fd_, static_cast<off_t>(size_bytes_), SEEK_SET);
    }
    return error;
  }
  size_bytes_ += buffer_.size();
  return {};
}

std::string overlay_journal_baselines(const std::string& path, store::Backend& backend,
                                      std::vector<store::Baseline>& baselines,
                                      std::vector<store::CompletionCount>* completions) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? std::string() : error_text("reading", path);
  std::vector<std::uint8_t> bytes;
  std::uint8_t chunk[65536];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const std::string error = error_text("reading", path);
      ::close(fd);
      return error;
    }
    if (got == 0) break;
    bytes.insert(bytes.end(), chunk, chunk + got);
    if (bytes.size() > journal_size_max) break;
  }
  ::close(fd);
  const store::DecodedRecords decoded = store::decode_batch_records(bytes);
  if (decoded.batches.empty()) return {};
  auto less = [](const store::PeerKey& a, const store::PeerKey& b) {
    if (a.user_id != b.user_id) return a.user_id < b.user_id;
    if (a.torrent_id != b.torrent_id) return a.torrent_id < b.torrent_id;
    return std::memcmp(a.peer_id.bytes.data(), b.peer_id.bytes.data(), 20) < 0;
  };
  std::map<store::PeerKey, store::Baseline, decltype(less)> by_key(less);
  for (const store::Baseline& baseline : baselines) by_key[baseline.key] = baseline;
  std::map<std::pair<std::string, std::uint32_t>, std::uint64_t> marks;
  std::size_t overlaid = 0;
  std::map<InfoHash, std::uint64_t> completed_by_hash;  // what the journal will add
  for (const store::AccountingBatch& batch : decoded.batches) {
    const auto pair = std::make_pair(batch.id.node, batch.id.shard);
    auto mark = marks.find(pair);
    if (mark == marks.end()) {
      const auto last = backend.last_sequence(batch.id.node, batch.id.shard);
      if (!last.ok()) return "reading the batch marks: " + last.error();
      mark = marks.emplace(pair, last.value()).first;
    }
    if (batch.id.sequence <= mark->second) continue;  // applied: the database is newer
    for (const store::AccountingDelta& delta : batch.deltas) {
      ++overlaid;
      if (delta.closed) {
        by_key.erase(delta.key);
        continue;
      }
      by_key[delta.key] = {delta.key, delta.baseline_uploaded, delta.baseline_downloaded,
                           delta.announced_unix_s, delta.seeding};
    }
    for (const store::CompletionDelta& completion : batch.completions) {
      completed_by_hash[completion.info_hash] += completion.count;
    }
  }
  if (completions != nullptr && !completed_by_hash.empty()) {
    for (store::CompletionCount& persisted : *completions) {
      const auto added = completed_by_hash.find(persisted.info_hash);
      if (added == completed_by_hash.end()) continue;
      persisted.completed += added->second;
      completed_by_hash.erase(added);
    }
    for (const auto& [info_hash, count] : completed_by_hash) {
      completions->push_back({info_hash, count});
    }
    TYTO_LOG(log::Level::info, "storage journal {}: completed counts of torrents taken from it",
             path);
  }
  baselines.clear();
  for (const auto& [key, baseline] : by_key) baselines.push_back(baseline);
  if (overlaid != 0 && completions == nullptr) {  // with completions: a call for those
    TYTO_LOG(log::Level::info, "storage journal {}: {} peers' baselines taken from it", path,
             overlaid);
  }
  return {};
}

std::string AccountingJournal::clear() {
  TYTO_ASSERT(fd_ >= 0);
  if (size_bytes_ == 0) return {};
  if (::ftruncate(fd_, 0) != 0 || ::fsync(fd_) != 0 || ::lseek(fd_, 0, SEEK_SET) < 0) {
    return error_text("emptying the storage journal", path_);
  }
  size_bytes_ = 0;
  return {};
}

}  // namespace tyto::app
