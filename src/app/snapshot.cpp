#include "tyto/app/snapshot.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "tyto/core/assert.hpp"
#include "tyto/core/bytes.hpp"

namespace tyto::app {
namespace {

constexpr std::uint8_t magic[8] = {'T', 'Y', 'T', 'O', 'S', 'N', 'A', 'P'};
constexpr std::size_t header_size = 8 + 4 + 4 + 8 + 8 + 8;
constexpr std::size_t checksum_size = 8;

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

std::vector<std::uint8_t> encode_snapshot(const SnapshotFile& snapshot) {
  std::vector<std::uint8_t> bytes(header_size + snapshot.records.size() + checksum_size);
  ByteWriter out(bytes);
  out.bytes(magic);
  out.u32(snapshot_version);
  out.u32(0);  // reserved
  out.u64(snapshot.written_unix_s);
  out.u64(snapshot.swarms);
  out.u64(snapshot.records.size());
  out.bytes(snapshot.records);
  TYTO_ASSERT(out.size() == header_size + snapshot.records.size());
  out.u64(XXH3_64bits(bytes.data(), out.size()));
  TYTO_ASSERT(out.ok() && out.remaining() == 0);
  return bytes;
}

Result<SnapshotFile, std::string> decode_snapshot(const std::vector<std::uint8_t>& bytes) {
  if (bytes.size() < header_size + checksum_size ||
      std::memcmp(bytes.data(), magic, sizeof magic) != 0) {
    return Failure{std::string("not a tyto snapshot (no TYTOSNAP header)")};
  }
  ByteReader in(bytes);
  in.bytes(sizeof magic);
  const std::uint32_t version = in.u32();
  if (version != snapshot_version) {
    return Failure{"snapshot version " + std::to_string(version) + ", this tyto reads version " +
                   std::to_string(snapshot_version)};
  }
  in.u32();
  SnapshotFile snapshot;
  snapshot.written_unix_s = in.u64();
  snapshot.swarms = in.u64();
  const std::uint64_t records_size = in.u64();
  if (records_size != bytes.size() - header_size - checksum_size) {
    return Failure{"snapshot size mismatch: header says " + std::to_string(records_size) +
                   " bytes of records, the file holds " +
                   std::to_string(bytes.size() - header_size - checksum_size) + " (truncated?)"};
  }
  const std::size_t checked = bytes.size() - checksum_size;
  ByteReader trailer(std::span<const std::uint8_t>(bytes).subspan(checked));
  if (trailer.u64() != XXH3_64bits(bytes.data(), checked)) {
    return Failure{std::string("snapshot checksum mismatch (corrupt file)")};
  }
  snapshot.records.assign(bytes.begin() + header_size, bytes.begin() + checked);
  return snapshot;
}

std::string write_snapshot_file(const std::string& path, const SnapshotFile& snapshot) {
  const std::span<const std::uint8_t> records(snapshot.records);
  return write_snapshot_pieces(path, snapshot.written_unix_s, snapshot.swarms,
                               std::span(&records, 1));
}

namespace {

// Writes all of `bytes` to fd; "" or what failed.
std::string write_all(int fd, std::span<const std::uint8_t> bytes, const std::string& name) {
  for (std::size_t written = 0; written < bytes.size();) {
    const ssize_t wrote = write(fd, bytes.data() + written, bytes.size() - written);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return errno_text("cannot write " + name);
    written += static_cast<std::size_t>(wrote);
  }
  return {};
}

// The header, then every piece, then the checksum of all of them: "" or what failed.
std::string write_contents(int fd, const std::string& name, std::uint64_t written_unix_s,
                           std::uint64_t swarms,
                           std::span<const std::span<const std::uint8_t>> pieces) {
  std::uint64_t records_size = 0;
  for (const auto& piece : pieces) records_size += piece.size();
  std::uint8_t header[header_size];
  ByteWriter out{std::span(header)};
  out.bytes(magic);
  out.u32(snapshot_version);
  out.u32(0);  // reserved
  out.u64(written_unix_s);
  out.u64(swarms);
  out.u64(records_size);
  TYTO_ASSERT(out.ok() && out.remaining() == 0);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 &XXH3_freeState);
  TYTO_ASSERT(state != nullptr);
  XXH3_64bits_reset(state.get());  // streaming gives the same value as XXH3_64bits at once
  XXH3_64bits_update(state.get(), header, sizeof header);
  if (std::string error = write_all(fd, header, name); !error.empty()) return error;
  for (const auto& piece : pieces) {
    XXH3_64bits_update(state.get(), piece.data(), piece.size());
    if (std::string error = write_all(fd, piece, name); !error.empty()) return error;
  }
  std::uint8_t trailer[checksum_size];
  ByteWriter checksum{std::span(trailer)};
  checksum.u64(XXH3_64bits_digest(state.get()));
  return write_all(fd, trailer, name);
}

}  // namespace

std::string write_snapshot_pieces(const std::string& path, std::uint64_t written_unix_s,
                                  std::uint64_t swarms,
                                  std::span<const std::span<const std::uint8_t>> pieces) {
  const std::string temporary = path + ".tmp";
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_text("cannot create " + temporary);
  std::string error = write_contents(fd, temporary, written_unix_s, swarms, pieces);
  if (error.empty() && fsync(fd) != 0) error = errno_text("fsync " + temporary);
  close(fd);
  if (error.empty() && rename(temporary.c_str(), path.c_str()) != 0) {
    error = errno_text("cannot rename " + temporary + " to " + path);
  }
  if (!error.empty()) {
    unlink(temporary.c_str());
    return error;
  }
  const auto slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "."
                                : slash == 0               ? "/"
                                                           : path.substr(0, slash);
  const int directory_fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd >= 0) {
    fsync(directory_fd);  // the rename itself survives a crash
    close(directory_fd);
  }
  return {};
}

Result<SnapshotFile, std::string> read_snapshot_file(const std::string& path, bool& missing) {
  missing = false;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    missing = errno == ENOENT;
    return Failure{errno_text("cannot read " + path)};
  }
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                                  std::istreambuf_iterator<char>());
  return decode_snapshot(bytes);
}

}  // namespace tyto::app
