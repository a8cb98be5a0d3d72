// Command-line options (the operations issue moves these onto a TOML config + CLI11; the flag
// names stay). Parsing is pure: it returns the options or the reason they are wrong.
#pragma once

#include <string>
#include <vector>

#include "tyto/core/result.hpp"
#include "tyto/shard/runtime.hpp"

namespace tyto::app {

struct Options {
  shard::RuntimeConfig runtime;
  bool help = false;
  bool version = false;
  bool print_counters = true;  // counters on stderr at exit
};

// argv without the program name.
Result<Options, std::string> parse_options(const std::vector<std::string>& arguments);

extern const char* const usage_text;

}  // namespace tyto::app
