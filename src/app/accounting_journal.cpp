#include "tyto/app/accounting_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
