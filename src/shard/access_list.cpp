#include "tyto/shard/access_list.hpp"

#include "tyto/core/open_addressing.hpp"

namespace tyto::shard {

namespace {
using ControlTraits = open_addressing::SentinelTraits<std::uint8_t, 0>;

// 0x80 | 7 low hash bits: the home comes from the high 32.
std::uint8_t control_of(std::uint64_t hash) noexcept {
  return static_cast<std::uint8_t>(0x80 | (hash & 0x7f));
}
}  // namespace

AccessList::AccessList(Mode mode, std::size_t entries_count)
    : mode_(mode), secret_(HashSecret::random()) {
  std::size_t capacity = 16;
  while (capacity < 2 * entries_count) capacity *= 2;  // at most half full
  static_assert(2 * entries_max <= 0xffffffffu, "slots are 32-bit");
  controls_.resize(capacity);
  keys_.resize(capacity);
}

std::uint32_t AccessList::slot_of(const InfoHash& info_hash, std::uint64_t hash) const noexcept {
  const auto capacity = static_cast<std::uint32_t>(controls_.size());
  const std::uint8_t control = control_of(hash);
  const std::uint8_t* controls = controls_.data();
  // The core passes the entry in place: its address gives the slot, and the key beside it.
  return open_addressing::find<ControlTraits>(
      controls_, open_addressing::home_of(open_addressing::tag_of(hash), capacity),
      [&](const std::uint8_t& entry) {
        return entry == control && keys_[&entry - controls] == info_hash;
      });
}

void AccessList::insert(const InfoHash& info_hash) {
  const std::uint64_t hash = hash_info_hash(info_hash, secret_);
  const std::uint32_t slot = slot_of(info_hash, hash);
  if (!ControlTraits::is_empty(controls_[slot])) return;  // listed twice
  controls_[slot] = control_of(hash);  // the empty slot ending the run: where insert would go
  keys_[slot] = info_hash;
  ++size_;
}

bool AccessList::contains(const InfoHash& info_hash) const noexcept {
  return !ControlTraits::is_empty(
      controls_[slot_of(info_hash, hash_info_hash(info_hash, secret_))]);
}

Result<std::unique_ptr<AccessList>, std::string> AccessList::parse(std::string_view text, Mode mode,
                                                                   std::string_view file_name) {
  std::vector<InfoHash> hashes;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (const auto comment = line.find('#'); comment != std::string_view::npos) {
      line = line.substr(0, comment);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
      line.remove_suffix(1);
    if (line.empty()) continue;
    const auto hash = parse_info_hash_hex(line);
    if (!hash) {
      return Failure{std::string(file_name) + ":" + std::to_string(line_number) +
                     ": not an info_hash (40 hex digits): '" + std::string(line.substr(0, 60)) +
                     "'"};
    }
    if (hashes.size() == entries_max) {
      return Failure{std::string(file_name) + ": more than " + std::to_string(entries_max) +
                     " info_hashes"};
    }
    hashes.push_back(*hash);
  }
  std::unique_ptr<AccessList> list(new AccessList(mode, hashes.size()));
  for (const InfoHash& hash : hashes) list->insert(hash);
  return list;
}

}  // namespace tyto::shard
