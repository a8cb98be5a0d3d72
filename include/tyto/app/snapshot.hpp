// Snapshot files: every swarm written at a graceful stop (and periodically, by
// app/snapshot_writer.hpp) and read back at start, so clients do not see empty swarms after a
// restart or a crash.
//
// Format (big-endian): "TYTOSNAP" | version u32 (1) | reserved u32 (0) | written_unix_s u64 |
// swarms u64 | records_size u64 | records (swarm/snapshot.cpp) | XXH3-64 of all the bytes
// before it, u64. Written to PATH.tmp, fsync'd, renamed over PATH, directory fsync'd: a crash
// leaves the old snapshot or the new one, never half of one.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tyto/core/result.hpp"

namespace tyto::app {

struct SnapshotFile {
  std::uint64_t written_unix_s = 0;
  std::uint64_t swarms = 0;
  std::vector<std::uint8_t> records;
};

inline constexpr std::uint32_t snapshot_version = 1;

// The file's bytes for `snapshot` (tests use it to make corrupt ones).
std::vector<std::uint8_t> encode_snapshot(const SnapshotFile& snapshot);
// Checks magic, version, sizes and checksum; the reason when any is wrong.
Result<SnapshotFile, std::string> decode_snapshot(const std::vector<std::uint8_t>& bytes);

// "" or what failed.
std::string write_snapshot_file(const std::string& path, const SnapshotFile& snapshot);
// The same file from records in pieces (their concatenation is the records), written in turn
// without copying them into one buffer; the checksum is computed as they go.
std::string write_snapshot_pieces(const std::string& path, std::uint64_t written_unix_s,
                                  std::uint64_t swarms,
                                  std::span<const std::span<const std::uint8_t>> pieces);
// `missing` is set when the failure is that the file does not exist.
Result<SnapshotFile, std::string> read_snapshot_file(const std::string& path, bool& missing);

}  // namespace tyto::app
