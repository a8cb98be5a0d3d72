// libFuzzer target for the TOML configuration (parse_config_text: toml++ underneath, then every
// key's type and range): never a crash or an exception out of it, an error names the file, and
// a configuration that parses prints (to_toml) to one that parses back to the same text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tyto/app/options.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = tyto::app::parse_config_text(text, "fuzz.toml");
  if (!parsed.ok()) {
    check(parsed.error().find("fuzz.toml") != std::string::npos);
    return 0;
  }
  const std::string printed = tyto::app::to_toml(parsed.value());
  const auto again = tyto::app::parse_config_text(printed, "printed.toml");
  check(again.ok());
  check(tyto::app::to_toml(again.value()) == printed);
  return 0;
}
