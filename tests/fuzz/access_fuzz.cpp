// libFuzzer target for the access list file (AccessList::parse): never a crash. The file's
// grammar (access_list.hpp) is written out again here as the oracle: each line cut at '#',
// blanks trimmed (and a trailing '\r'), is blank or 40 hex digits. The input parses exactly when
// the oracle says so, and an error names the file; a list that parses holds each distinct hash
// of its lines once, allows each as its mode says, and answers the other way for a hash it does
// not hold. The oracle reads each line once (it used to try 40 digits at every offset of the
// input, O(size * 40), most of the target's time).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "not_covered.hpp"
#include "tyto/shard/access_list.hpp"

// The oracle is not instrumented for coverage (not_covered.hpp) and calls no instrumented
// templates (std::sort, memcmp, vector growth): coverage comes from the code under test.

namespace {
using tyto::InfoHash;

void check(bool condition) {
  if (!condition) std::abort();
}

TYTO_NOT_COVERED bool blank(char c) {
  return c == ' ' || c == '\t';
}

TYTO_NOT_COVERED int compare(const InfoHash& left, const InfoHash& right) {
  for (std::size_t i = 0; i < left.bytes.size(); ++i) {
    if (left.bytes[i] != right.bytes[i]) return left.bytes[i] < right.bytes[i] ? -1 : 1;
  }
  return 0;
}

// The hashes of the lines in order (`hashes` has room for one per line), or false at the first
// line that is not one.
TYTO_NOT_COVERED bool oracle_hashes(std::string_view text, std::vector<InfoHash>& hashes) {
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, std::min(text.find('#'), end));
    text.remove_prefix(std::min(end + 1, text.size()));
    while (!line.empty() && blank(line.front())) line.remove_prefix(1);
    while (!line.empty() && (blank(line.back()) || line.back() == '\r')) line.remove_suffix(1);
    if (line.empty()) continue;
    const auto hash = tyto::parse_info_hash_hex(line);
    if (!hash) return false;
    check(hashes.size() < hashes.capacity());
    hashes.push_back(*hash);
  }
  return true;
}

// Sorts ascending and drops repeats: an insertion sort, as lists here are short.
TYTO_NOT_COVERED void sort_distinct(std::vector<InfoHash>& hashes) {
  std::size_t distinct = 0;
  for (const InfoHash& hash : hashes) {
    std::size_t at = distinct;
    while (at > 0 && compare(hashes[at - 1], hash) > 0) --at;
    if (at > 0 && compare(hashes[at - 1], hash) == 0) continue;
    const InfoHash moved = hash;  // copied first: the shift may write over it
    for (std::size_t i = distinct; i > at; --i) hashes[i] = hashes[i - 1];
    hashes[at] = moved;
    ++distinct;
  }
  hashes.resize(distinct);
}

// The least hash not in `sorted` (ascending, distinct): counts up from zero past each one held.
TYTO_NOT_COVERED InfoHash hash_not_in(const std::vector<InfoHash>& sorted) {
  InfoHash candidate;
  for (const InfoHash& hash : sorted) {
    if (compare(hash, candidate) != 0) break;
    for (std::size_t i = candidate.bytes.size(); i-- > 0;) {  // big-endian + 1
      if (++candidate.bytes[i] != 0) break;
    }
  }
  return candidate;
}

TYTO_NOT_COVERED bool contains(const std::vector<InfoHash>& hashes, const InfoHash& wanted) {
  for (const InfoHash& hash : hashes) {
    if (compare(hash, wanted) == 0) return true;
  }
  return false;
}
}  // namespace

extern "C" TYTO_NOT_COVERED int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tyto::shard::AccessList;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<InfoHash> hashes;
  hashes.reserve(size / (2 * sizeof(InfoHash)) + 1);  // a line holds at most one
  // Inputs are far below entries_max hashes, so the oracle's answer is the whole grammar.
  const bool valid = oracle_hashes(text, hashes);
  sort_distinct(hashes);
  const InfoHash absent = hash_not_in(hashes);
  check(!contains(hashes, absent));
  for (const AccessList::Mode mode : {AccessList::Mode::whitelist, AccessList::Mode::blacklist}) {
    const auto parsed = AccessList::parse(text, mode, "fuzz.list");
    check(parsed.ok() == valid);
    if (!parsed.ok()) {
      check(parsed.error().find("fuzz.list") != std::string::npos);
      continue;
    }
    const AccessList& list = *parsed.value();
    const bool listed_allowed = mode == AccessList::Mode::whitelist;
    check(list.whitelist() == listed_allowed);
    check(list.size() == hashes.size());
    for (const InfoHash& hash : hashes) {
      check(list.contains(hash));
      check(list.allows(hash) == listed_allowed);
    }
    check(!list.contains(absent));
    check(list.allows(absent) != listed_allowed);
  }
  return 0;
}
