#include "tyto/shard/access_list.hpp"

namespace tyto::shard {

AccessList::AccessList(Mode mode, std::size_t entries_count)
    : mode_(mode), secret_(HashSecret::random()) {
  std::size_t capacity = 16;
  while (capacity < 2 * entries_count) capacity *= 2;  // at most half full
  slots_.resize(capacity);
  used_.resize(capacity);
  mask_ = capacity - 1;
}

void AccessList::insert(const InfoHash& info_hash) {
  for (std::size_t i = hash_info_hash(info_hash, secret_) & mask_;; i = (i + 1) & mask_) {
    if (!used_[i]) {
      used_[i] = 1;
      slots_[i] = info_hash;
      ++size_;
      return;
    }
    if (slots_[i] == info_hash) return;  // listed twice
  }
}

bool AccessList::contains(const InfoHash& info_hash) const noexcept {
  for (std::size_t i = hash_info_hash(info_hash, secret_) & mask_;; i = (i + 1) & mask_) {
    if (!used_[i]) return false;
    if (slots_[i] == info_hash) return true;
  }
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
