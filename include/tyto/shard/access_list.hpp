// Info-hash access list (whitelist or blacklist), and how shards see a new one without locks.
//
// An AccessList is immutable once built: a keyed open-addressing set of info_hashes at most half
// full. Publication is read-copy-update: the runtime stores the new list's pointer, then bumps
// an epoch; each shard, at the start of every loop turn, reads the epoch, then the pointer, uses
// that pointer for the whole turn, and records the epoch it read. A list is freed only when
// every shard has recorded an epoch at least that of its replacement (so none still uses it).
// Cost on the announce path: one keyed hash and a probe or two per announce when a list is set.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tyto/core/hash.hpp"
#include "tyto/core/result.hpp"
#include "tyto/core/types.hpp"

namespace tyto::shard {

class AccessList {
 public:
  enum class Mode : std::uint8_t { whitelist, blacklist };
  static constexpr std::size_t entries_max = 1u << 24;  // 16 Mi info_hashes

  // One info_hash per line as 40 hex digits (either case); leading/trailing blanks, blank
  // lines and '#' comments (whole-line or after the hash) are allowed. Errors name the line.
  static Result<std::unique_ptr<AccessList>, std::string> parse(std::string_view text, Mode mode,
                                                                std::string_view file_name);

  bool allows(const InfoHash& info_hash) const noexcept {
    return contains(info_hash) == whitelist();
  }
  bool contains(const InfoHash& info_hash) const noexcept;
  bool whitelist() const noexcept { return mode_ == Mode::whitelist; }
  std::size_t size() const noexcept { return size_; }

 private:
  AccessList(Mode mode, std::size_t entries_count);
  void insert(const InfoHash& info_hash);
  // The slot holding info_hash, or the empty slot ending its probe run (core/open_addressing.hpp;
  // the list is never erased from, so nothing shifts).
  std::uint32_t slot_of(const InfoHash& info_hash, std::uint64_t hash) const noexcept;

  Mode mode_;
  HashSecret secret_;
  // One control byte per slot: 0 = empty, else 0x80 | 7 hash bits that the home does not use.
  // Probes read the dense bytes; a key is compared only where its byte matches (1 in 128 of the
  // other keys), so a probe for an unlisted hash rarely touches keys_. Keys are parallel.
  std::vector<std::uint8_t> controls_;
  std::vector<InfoHash> keys_;
  std::size_t size_ = 0;
};

}  // namespace tyto::shard
